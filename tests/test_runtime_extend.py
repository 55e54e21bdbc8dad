"""Layer extension on compiled qvaf models: slot mapping, function preservation, refusals,
and extension schedules inside training."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import qvaf
from qvaf.dsl import program_from_text
from qvaf.runtime import train as T
from qvaf.runtime.data import load_task
from qvaf.runtime.extend import ExtendError, extend, kan_reps
from qvaf.runtime.run import specs_dir

DARUAN = f"{specs_dir()}/ansatz/daruan.qvaf"
PZ = f"{specs_dir()}/ansatz/pz.qvaf"


def _model(ansatz_file, ansatz, reps=2, dtype="float64", widths=(2, 3, 1), options="postact weight bias"):
    text = (f'import "{ansatz_file}"\nmodel net {{\n    input {widths[0]}\n'
            + "".join(f"    kan {w} using {ansatz}(reps = {reps}) {{ {options} }}\n" for w in widths[1:]) + "}\n")
    return qvaf.compile(program_from_text(text), "net", dtype=dtype)


def _randomise(params, seed=0):
    """Random values everywhere (also w, b, postact), so copied slots are distinguishable."""
    rng = np.random.default_rng(seed)
    return {lid: {n: (a if n == "mask" else np.asarray(rng.normal(size=a.shape), a.dtype)) for n, a in layer.items()}
            for lid, layer in params.items()}


def test_daruan_growth_keeps_the_function_and_maps_slots():
    m = _model(DARUAN, "daruan", reps=2)
    p = _randomise(m.init(jax.random.PRNGKey(0)))
    m2, p2 = extend(m, p, 5)
    assert kan_reps(m2) == {"layer0": 5, "layer1": 5}
    th, th2 = np.asarray(p["layer0"]["theta"]), np.asarray(p2["layer0"]["theta"])
    assert th2.shape == (3, 2, 6, 2)
    np.testing.assert_array_equal(th2[:, :, :2], th[:, :, :2])      # first reps slots copied
    np.testing.assert_array_equal(th2[:, :, 5], th[:, :, 2])        # final rotation moved to the end
    np.testing.assert_array_equal(th2[:, :, 2:5], 0.0)              # new slots: grow 0
    np.testing.assert_array_equal(np.asarray(p2["layer1"]["w"])[..., 2:], 0.0)
    np.testing.assert_array_equal(np.asarray(p2["layer1"]["w"])[..., :2], np.asarray(p["layer1"]["w"]))
    np.testing.assert_array_equal(np.asarray(p2["layer0"]["postact_weight"]), np.asarray(p["layer0"]["postact_weight"]))
    # independent check of function preservation on fresh inputs (extend checks its own)
    x = np.random.default_rng(7).uniform(-3, 3, (200, 2))
    np.testing.assert_allclose(np.asarray(m2.apply(p2, x)), np.asarray(m.apply(p, x)), atol=1e-12)
    assert m2.param_count > m.param_count


def test_growth_of_one_layer_only():
    m = _model(DARUAN, "daruan", reps=1)
    p = _randomise(m.init(jax.random.PRNGKey(1)))
    m2, p2 = extend(m, p, 3, layers="layer1")
    assert kan_reps(m2) == {"layer0": 1, "layer1": 3}
    assert np.asarray(p2["layer0"]["theta"]).shape == np.asarray(p["layer0"]["theta"]).shape
    x = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    np.testing.assert_allclose(np.asarray(m2.apply(p2, x)), np.asarray(m.apply(p, x)), atol=1e-12)


def test_pz_growth_is_refused_because_it_changes_the_function():
    m = _model(PZ, "pz", reps=2)
    p = m.init(jax.random.PRNGKey(0))
    with pytest.raises(ExtendError, match=r"extending ansatz 'pz' changes the network's function.*'daruan'"):
        extend(m, p, 3)


def test_array_without_grow_value_is_refused():
    text = ('ansatz nogrow(reps: int = 2) {\n    param theta[reps + 1] ~ normal(0, 1)\n    h\n'
            '    for l in 0..reps {\n        ry(theta[l])\n        rz(x)\n    }\n    ry(theta[reps])\n    measure z\n}\n'
            'model net {\n    input 1\n    kan 1 using nogrow(reps = 2)\n}\n')
    m = qvaf.compile(program_from_text(text), "net", dtype="float64")
    with pytest.raises(ExtendError, match=r"ansatz 'nogrow'.*'theta'.*no grow value.*daruan"):
        extend(m, m.init(jax.random.PRNGKey(0)), 4)


def test_bad_requests_are_refused():
    m = _model(DARUAN, "daruan", reps=3)
    p = m.init(jax.random.PRNGKey(0))
    with pytest.raises(ExtendError, match="cannot shrink layer0 from reps 3 to 2"):
        extend(m, p, 2)
    with pytest.raises(ExtendError, match="'layer7' is not a kan layer"):
        extend(m, p, 4, layers="layer7")
    assert extend(m, p, 3) == (m, p)  # nothing to do


def test_extension_schedule_in_training_float32():
    m = _model(DARUAN, "daruan", reps=1, dtype="float32", widths=(2, 2, 1))
    data = load_task("toy_sin2", n_train=128, n_test=64)
    cfg = T.TrainConfig(steps=30, batch_size=None, extend="1:0,2:10,4:20", eval_every=10, log_every=5)
    res = T.fit(m, m.init(jax.random.PRNGKey(0)), data, cfg)
    assert kan_reps(res.model) == {"layer0": 4, "layer1": 4}
    assert [r["reps"] for r in res.log.history] == [1, 2, 4]
    assert res.state.phase_start == 20
    # the loss is continuous across an extension: the first loss after it equals what the
    # extended model computes for the parameters reached just before
    assert abs(res.log.losses[10] - res.log.losses[9]) < 0.5 * res.log.losses[9]


def test_impossible_schedule_is_refused_before_training():
    m = _model(PZ, "pz", reps=1, dtype="float32", widths=(2, 1))
    data = load_task("toy_sin2", n_train=64, n_test=16)
    calls = []
    with pytest.raises(ExtendError, match="changes the network's function"):
        T.fit(m, m.init(jax.random.PRNGKey(0)), data, T.TrainConfig(steps=100, extend="1:0,2:50"),
              on_record=calls.append)
    assert calls == []  # nothing was trained
