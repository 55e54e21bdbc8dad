"""Layer extension on compiled qvaf models: slot mapping, function preservation, refusals,
and extension schedules inside training."""

from __future__ import annotations

import json
from pathlib import Path

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
    np.testing.assert_array_equal(th2[:, :, :3], th)                # slots 0..reps keep their index
    np.testing.assert_array_equal(th2[:, :, 3:], 0.0)               # new slots after them: grow 0
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


def test_pz_grows_exactly_with_fixed_data_rotations():
    m = _model(PZ, "pz", reps=2)
    p = _randomise(m.init(jax.random.PRNGKey(0)))
    m2, p2 = extend(m, p, 3)
    th, th2 = np.asarray(p["layer0"]["theta"]), np.asarray(p2["layer0"]["theta"])
    np.testing.assert_array_equal(th2[:, :, :3], th)
    np.testing.assert_array_equal(th2[:, :, 3], 0.0)
    x = np.random.default_rng(3).uniform(-3, 3, (100, 2))
    np.testing.assert_allclose(np.asarray(m2.apply(p2, x)), np.asarray(m.apply(p, x)), rtol=0, atol=1e-12)


def test_mix_growth_is_refused_naming_the_gate():
    m = _model(f"{specs_dir()}/ansatz/mix.qvaf", "mix", reps=2)
    with pytest.raises(ExtendError, match=r"layer0 \(ansatz 'mix', reps 2 -> 3\).*appended gate ry\(x\) \(mix.qvaf:\d+:\d+\)"
                                          r".*does not commute with measure z"):
        extend(m, m.init(jax.random.PRNGKey(0)), 3)


def test_array_without_grow_value_is_refused():
    """The appended gates are harmless whatever theta's new slots hold (rz(theta) before
    measure z), but theta declares no grow value: refused, naming the array."""
    text = ('ansatz nogrow(reps: int = 2) {\n    param theta[reps + 1] ~ normal(0, 1)\n    h\n'
            '    for l in 0..reps {\n        rz(theta[l])\n        rz(x)\n    }\n    rz(theta[reps])\n    measure z\n}\n'
            'model net {\n    input 1\n    kan 1 using nogrow(reps = 2)\n}\n')
    m = qvaf.compile(program_from_text(text), "net", dtype="float64")
    with pytest.raises(ExtendError, match=r"ansatz 'nogrow'.*'theta'.*no grow value"):
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
    m = _model(f"{specs_dir()}/ansatz/mix.qvaf", "mix", reps=1, dtype="float32", widths=(2, 1))
    data = load_task("toy_sin2", n_train=64, n_test=16)
    calls = []
    with pytest.raises(ExtendError, match=r"appended gate ry\(x\)"):
        T.fit(m, m.init(jax.random.PRNGKey(0)), data, T.TrainConfig(steps=100, extend="1:0,2:50"),
              on_record=calls.append)
    assert calls == []  # nothing was trained


# ----------------------------------------------------------------------------- the reference's refine()

DATA = Path(__file__).resolve().parent / "data"
#: our array names -> qkan's state-dict names
QKAN_NAME = {"w": "preacts_weight", "b": "preacts_bias", "postact_weight": "postact_weights"}
#: refine vector -> (ansatz file, edits making it the reference's configuration, widths, reps before)
REFINE = {
    # fixed pre-activations: pz as it is (data angle exactly x)
    "refine_pz_231_r2to4": ("pz", {}, (2, 3, 1), 2),
    # trainable pre-activations, grown as refine() grows them: new w = 1, new b = 0
    "refine_pz_preact_231_r1to3": ("pz", {"const w[reps] = 1.0": "param w[reps] = 1.0 grow 1.0",
                                          "const b[reps] = 0.0": "param b[reps] = 0.0 grow 0.0"}, (2, 3, 1), 1),
    # qkan's rpz reads its pre-activation weight (randomised in this vector) and bias
    "refine_rpz_32_r2to3": ("rpz", {"const w[reps] = 1.0": "param w[reps] = 1.0 grow 1.0"}, (3, 2), 2),
}


def _refine_case(name):
    ansatz, edits, widths, reps = REFINE[name]
    text = Path(f"{specs_dir()}/ansatz/{ansatz}.qvaf").read_text()
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text += (f"\nmodel m {{\n    input {widths[0]}\n"
             + "".join(f"    kan {w} using {ansatz}(reps = {reps}) {{ postact weight bias }}\n" for w in widths[1:]) + "}\n")
    model = qvaf.compile(program_from_text(text, filename=f"<{name}>"), "m", dtype="float64")
    d = np.load(DATA / f"{name}.npz")
    vec = {k: d[k] for k in d.files if k != "meta"}
    return model, vec, json.loads(str(d["meta"]))


def _from_qkan(model, vec, which):
    """Our parameter dict from a vector's ``param_before``/``param_after`` arrays."""
    out = {}
    for s in model.param_table:
        qname = f"layers.{s.owner.removeprefix('layer')}.{QKAN_NAME.get(s.name, s.name)}"
        out.setdefault(s.owner, {})[s.name] = vec[f"{which}/{qname}"].reshape(s.shape)
    return out


@pytest.mark.parametrize("name", sorted(REFINE))
def test_extension_reproduces_the_reference_refine(name):
    model, vec, meta = _refine_case(name)
    before = _from_qkan(model, vec, "param_before")
    np.testing.assert_allclose(np.asarray(model.apply(before, vec["x"])), vec["output_before"], rtol=0, atol=1e-12)
    model2, after = extend(model, before, meta["config"]["new_reps"])
    want = _from_qkan(model2, vec, "param_after")
    for spec in model2.param_table:  # every array exactly as refine() leaves it
        np.testing.assert_array_equal(np.asarray(after[spec.owner][spec.name]), want[spec.owner][spec.name],
                                      err_msg=spec.path)
    np.testing.assert_allclose(np.asarray(model2.apply(after, vec["x"])), vec["output_after"], rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- every spec

#: ansatz -> the appended gate that breaks its growth (None: growth keeps the function)
BREAKS = {"pz": None, "rpz": None, "daruan": None, "mix": r"ry\(x\)", "px": r"rx\(acos\(x\)\)", "real": r"x \("}


def _numpy_outputs(model, params, x):
    """An evaluation independent of the compiled kernels: the lowered (unoptimised) circuits
    as 2x2 complex matrices, one edge and one sample at a time, with the layer formula."""
    from qvaf.compiler.expr import evaluate
    from qvaf.compiler.ir import KanNode
    from qvaf.compiler.lower import lower_model
    from qvaf.compiler.passes import _inline, _canonical, unroll_circuit

    graph = lower_model(model.program, model.model_name, model.model_args or None, model.ansatz_overrides or None)
    paulis = {"x": np.array([[0, 1], [1, 0]], complex), "y": np.array([[0, -1j], [1j, 0]]),
              "z": np.diag([1.0 + 0j, -1.0])}
    h = x
    for lid in model.layers:
        rec = graph.nodes[lid]["op"]
        assert isinstance(rec, KanNode)
        gates = [r for g in _inline(unroll_circuit(rec.kernel)).ops for r in _canonical(g)]
        p = {k: np.asarray(v, np.float64) for k, v in params[lid].items()}
        out = np.zeros((len(h), rec.out_width))
        for o in range(rec.out_width):
            for i in range(rec.in_width):
                edge = {name: p[name][o, i] for name, _ in rec.kernel.params}
                for n, xv in enumerate(h[:, i]):
                    psi = np.array([1.0 + 0j, 0.0])
                    for g in gates:
                        a = float(evaluate(g.angles[0], xv, edge, np))
                        psi = (np.cos(a / 2) * np.eye(2) - 1j * np.sin(a / 2) * paulis[g.op.value[1]]) @ psi
                    phi = float(np.real(np.conj(psi) @ paulis[rec.kernel.observable] @ psi))
                    silu = xv / (1 + np.exp(-xv))
                    out[n, o] += p["mask"][o, i] * ((phi + p["postact_bias"][o, i]) * p["postact_weight"][o, i]
                                                    + p["base_weight"][o, i] * silu)
        h = out
    return h


@pytest.mark.parametrize("ansatz", sorted(BREAKS))
def test_growth_of_every_spec_is_accepted_exactly_when_it_keeps_the_function(ansatz):
    spec_dir = Path(specs_dir()) / "ansatz"
    assert sorted(p.stem for p in spec_dir.glob("*.qvaf")) == sorted(BREAKS)  # a new spec needs a row here
    m = _model(f"{spec_dir}/{ansatz}.qvaf", ansatz, reps=1, widths=(2, 2))  # one layer: px needs |input| <= 1
    p = _randomise(m.init(jax.random.PRNGKey(2)), seed=4)
    x = np.random.default_rng(5).uniform(-0.9, 0.9, (6, 2))  # inside px's domain [-1, 1]
    if BREAKS[ansatz] is None:
        m2, p2 = extend(m, p, 3, check_inputs=x)
        y1, y2 = _numpy_outputs(m, p, x), _numpy_outputs(m2, p2, x)
        np.testing.assert_allclose(np.asarray(m.apply(p, x)), y1, rtol=0, atol=1e-12)  # the evaluation agrees
        np.testing.assert_allclose(y2, y1, rtol=0, atol=1e-12)
        return
    with pytest.raises(ExtendError, match=rf"ansatz '{ansatz}'.*appended gate {BREAKS[ansatz]}"):
        extend(m, p, 3, check_inputs=x)
    # and the refusal is right: growing with the grow values (0 where none) changes the function
    mapped = _naive_growth(m, p, 3)
    assert np.max(np.abs(_numpy_outputs(mapped[0], mapped[1], x) - _numpy_outputs(m, p, x))) > 1e-3


def _naive_growth(model, params, reps):
    """The refine() mapping applied without any check (grow value, or 0 where there is none)."""
    m2 = qvaf.compile(model.program, model.model_name, ansatz_overrides={"*": {"reps": reps}}, dtype=model.dtype)
    p2 = {}
    for spec in m2.param_table:
        old = np.asarray(params[spec.owner][spec.name])
        new = np.full(spec.shape, spec.grow if spec.grow is not None else 0.0)
        new[tuple(slice(0, n) for n in old.shape)] = old
        p2.setdefault(spec.owner, {})[spec.name] = new
    return m2, p2


# ----------------------------------------------------------------------------- the command line


def test_cli_trains_pz_with_an_extension_schedule_and_extends_a_saved_run(tmp_path, capsys):
    from qvaf.runtime import checkpoint as C
    from qvaf.runtime.cli import main

    regression = f"{specs_dir()}/models/regression.qvaf"  # pz edges
    run = str(tmp_path / "run")
    assert main(["train", regression, "--task", "toy_sin2", "--n-train", "40", "--batch", "0", "--steps", "4",
                 "--eval-every", "2", "--extend", "1:0,2:2", "--dtype", "float64", "--out", run, "--quiet"]) == 0
    model, params = qvaf.restore(run)
    assert kan_reps(model) == {"layer0": 2, "layer1": 2}
    out = str(tmp_path / "grown")
    capsys.readouterr()
    assert main(["extend", run, "--reps", "5", "--out", out, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layers"] == {"layer0": {"before": 2, "after": 5}, "layer1": {"before": 2, "after": 5}}
    assert report["max_output_change"] < 1e-12
    model2, params2 = qvaf.restore(out)
    assert kan_reps(model2) == {"layer0": 5, "layer1": 5} and model2.dtype == "float64"
    x = np.random.default_rng(0).uniform(-1, 1, (30, 2))
    np.testing.assert_allclose(np.asarray(model2.apply(params2, x)), np.asarray(model.apply(params, x)),
                               rtol=0, atol=1e-12)
    assert C.load(out).config["extended_from"]["reps"] == {"layer0": 2, "layer1": 2}
    assert main(["eval", out, "--json"]) == 0  # the run's task came along
    assert json.loads(capsys.readouterr().out)["task"] == "toy_sin2"
