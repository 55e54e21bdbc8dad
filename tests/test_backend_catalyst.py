"""The catalyst backend (qjit-compiled PennyLane programs on lightning.qubit) against the JAX
backend (closed-form Bloch kernels), on every spec in specs/.

Tolerances: float64 values and gradients 1e-9 (relative to the gradient's scale); shot
estimates of every edge of the first kan layer within 4 standard errors sqrt((1 - <O>^2)/S)
of the analytic value (drawn from fixed keys, so the test is deterministic); float32 against
float64 1e-6; training losses of a float64 fit 1e-9.

Compiled models are shared per spec (module fixture): Catalyst compiles each distinct edge
circuit once, in about a second.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qvaf

pytest.importorskip("catalyst")

from qvaf.compiler.backends import catalyst_backend as cb  # noqa: E402
from qvaf.compiler.backends import get_backend  # noqa: E402

from _spec_targets import MODEL_ARGS, SPECS, TARGETS  # noqa: E402

SHOTS = 4000


def _compile(path, kind, name, **kw):
    if kind == "model":
        return qvaf.compile(path, name, args=MODEL_ARGS.get(name), **kw)
    return qvaf.compile(path, ansatz=name, **kw)


class Pair:
    """One spec compiled by both backends in float64, with parameters and inputs."""

    def __init__(self, path, kind, name):
        self.cat = _compile(path, kind, name, backend="catalyst", dtype="float64")
        self.jax = _compile(path, kind, name, dtype="float64")
        self.params = self.jax.init(jax.random.PRNGKey(7))
        rng = np.random.default_rng(0)
        self.x = rng.uniform(-0.9, 0.9, (3, self.jax.in_width))  # inside [-1, 1]: px reads acos(x)
        self.w = rng.normal(size=(3, self.jax.out_width))


@pytest.fixture(scope="module")
def pairs():
    cache = {}

    def get(path, kind, name):
        if (path, name) not in cache:
            cache[(path, name)] = Pair(path, kind, name)
        return cache[(path, name)]

    return get


@pytest.fixture(scope="module")
def regression(pairs):
    return pairs(SPECS / "models" / "regression.qvaf", "model", "regression")


def _output_and_grads(model, params, x, w):
    y, vjp = jax.vjp(lambda p: model.apply(p, x), params)
    return y, vjp(jnp.asarray(w, y.dtype))[0]


def _assert_trees_close(got, want, rel):
    for layer, arrays in want.items():
        for name, ref in arrays.items():
            ref = np.asarray(ref)
            scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
            np.testing.assert_allclose(np.asarray(got[layer][name], np.float64), ref, rtol=0, atol=rel * scale,
                                       err_msg=f"{layer}.{name}")


def test_the_backend_is_registered_with_its_install_hint(monkeypatch):
    from qvaf.compiler import backends

    assert backends.BACKENDS["catalyst"].endswith("catalyst_backend")
    assert get_backend("catalyst") is cb
    real_find_spec = backends.importlib.util.find_spec
    monkeypatch.setattr(backends.importlib.util, "find_spec",
                        lambda name, *a: None if name == "catalyst" else real_find_spec(name, *a))
    with pytest.raises(qvaf.QvafError, match=r"needs the package 'catalyst'.*pip install 'pennylane-catalyst==0.15.0'"):
        get_backend("catalyst")


@pytest.mark.parametrize("path,kind,name", TARGETS)
def test_values_and_gradients_match_the_jax_backend(pairs, path, kind, name):
    pair = pairs(path, kind, name)
    y_jax, g_jax = _output_and_grads(pair.jax, pair.params, pair.x, pair.w)
    y_cat, g_cat = _output_and_grads(pair.cat, pair.params, pair.x, pair.w)
    assert y_cat.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(y_cat), np.asarray(y_jax), rtol=0, atol=1e-9)
    assert jax.tree_util.tree_structure(g_cat) == jax.tree_util.tree_structure(g_jax)
    _assert_trees_close(g_cat, g_jax, 1e-9)
    # inside jax.jit, and the input gradient (through the custom VJP's x cotangent)
    y_jit = jax.jit(pair.cat.apply)(pair.params, pair.x)
    np.testing.assert_allclose(np.asarray(y_jit), np.asarray(y_jax), rtol=0, atol=1e-9)
    gx_cat = jax.grad(lambda v: jnp.sum(pair.w * pair.cat.apply(pair.params, v)))(jnp.asarray(pair.x))
    gx_jax = jax.grad(lambda v: jnp.sum(pair.w * pair.jax.apply(pair.params, v)))(jnp.asarray(pair.x))
    np.testing.assert_allclose(np.asarray(gx_cat), np.asarray(gx_jax), rtol=0,
                               atol=1e-9 * max(1.0, float(np.abs(gx_jax).max())))


@pytest.mark.parametrize("path,kind,name", TARGETS)
def test_shot_estimates_lie_within_four_standard_errors(pairs, path, kind, name):
    """Every edge of the first kan layer, from S shots: |estimate - <O>| <= 4 sqrt((1 - <O>^2) / S)."""
    pair = pairs(path, kind, name)
    layer = pair.jax.layers[[isinstance(pair.jax.ir.nodes[n]["op"], qvaf.compiler.ir.KanNode)
                             for n in pair.jax.layers].index(True)]
    exact = np.asarray(pair.jax.edge_values(pair.params, pair.x, layer))
    fns = pair.cat._fns
    sampled = np.asarray(fns.edge_values(pair.params, pair.x, layer, key=jax.random.PRNGKey(3), shots=SHOTS))
    assert sampled.shape == exact.shape
    np.testing.assert_array_equal(np.round(sampled * SHOTS) % 2, SHOTS % 2)  # (n0 - n1) / S: S-parity counts
    assert not np.allclose(sampled, exact, atol=1e-12)
    se = np.sqrt(np.maximum(1 - exact ** 2, 0) / SHOTS)
    assert np.all(np.abs(sampled - exact) <= 4 * se + 1e-12), np.max(np.abs(sampled - exact) / (se + 1e-300))


def test_the_same_key_gives_the_same_samples(regression):
    fns = regression.cat._fns
    p, x = regression.params, regression.x
    a = np.asarray(fns.apply(p, x, key=jax.random.PRNGKey(11), shots=200))
    b = np.asarray(fns.apply(p, x, key=jax.random.PRNGKey(11), shots=200))
    c = np.asarray(fns.apply(p, x, key=jax.random.PRNGKey(12), shots=200))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # without a key the device draws fresh samples each call
    d = np.asarray(fns.apply(p, x, shots=200))
    e = np.asarray(fns.apply(p, x, shots=200))
    assert not np.array_equal(d, e)


def test_gradients_under_shots_are_those_of_the_expectation(pairs):
    """An ansatz alone is one edge: the gradient of its circuit parameters under shots is the
    analytic gradient exactly (the fixed mask multiplies the sampled value, so not its own)."""
    pair = pairs(SPECS / "ansatz" / "pz.qvaf", "ansatz", "pz")
    fns, p, x, w = pair.cat._fns, pair.params, pair.x, pair.w
    value, g_shots = jax.value_and_grad(lambda q: jnp.sum(w * fns.apply(q, x, key=jax.random.PRNGKey(5), shots=50)))(p)
    exact, g_exact = jax.value_and_grad(lambda q: jnp.sum(w * pair.jax.apply(q, x)))(p)
    assert value != exact
    trained = {layer: {k: g for k, g in arrays.items() if pair.jax.trainable[layer][k]}
               for layer, arrays in g_exact.items()}
    assert trained["layer0"]
    _assert_trees_close(g_shots, trained, 1e-12)


def test_float32_models_receive_rounded_float64_results(regression):
    cat32 = qvaf.compile(SPECS / "models" / "regression.qvaf", backend="catalyst", dtype="float32")
    p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), regression.params)
    y32, g32 = _output_and_grads(cat32, p32, regression.x.astype(np.float32), regression.w)
    y64, g64 = _output_and_grads(regression.jax, regression.params, regression.x, regression.w)
    assert y32.dtype == jnp.float32 and all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(g32))
    np.testing.assert_allclose(np.asarray(y32, np.float64), np.asarray(y64), rtol=0, atol=1e-6)
    _assert_trees_close(g32, g64, 1e-5)
    for layer in ("layer0", "layer1"):  # the deeper one reads the first one's host-computed values
        phi32 = cat32.edge_values(p32, regression.x.astype(np.float32), layer)
        phi64 = regression.jax.edge_values(regression.params, regression.x, layer)
        assert phi32.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(phi32, np.float64), np.asarray(phi64), rtol=0, atol=1e-6)


def test_one_compilation_per_circuit_whatever_the_batch_or_the_parameters(regression):
    model = regression.cat
    model.apply(regression.params, regression.x)  # compiled (the fixture's pair may be fresh)
    jax.grad(lambda q: jnp.sum(model.apply(q, regression.x)))(regression.params)
    before = cb.compile_count()
    for batch in (1, 5, 17):
        x = np.random.default_rng(batch).uniform(-1, 1, (batch, 2))
        params = model.init(jax.random.PRNGKey(batch))
        model.apply(params, x)
        jax.grad(lambda q: jnp.sum(model.apply(q, x)))(params)
    jax.vmap(lambda v: model.apply(regression.params, v))(regression.x)
    assert cb.compile_count() == before
    # both layers of the regression model run one circuit: one program of each kind
    progs = model._fns.programs()
    assert [ids for ids, _ in progs] == [("layer0", "layer1")]


def test_a_float64_fit_matches_the_jax_backend(regression):
    from qvaf.runtime.data import load_task
    from qvaf.runtime.train import TrainConfig, fit

    data = load_task("toy_sin2", n_train=24)
    config = TrainConfig(steps=3, batch_size=8, lr=2e-2, eval_every=3, log_every=3, seed=1)
    got = fit(regression.cat, regression.params, data, config)
    want = fit(regression.jax, regression.params, data, config)
    np.testing.assert_allclose(got.log.losses, want.log.losses, rtol=0, atol=1e-9)
    _assert_trees_close(got.params, want.params, 1e-9)


def test_the_compiled_program_is_shown_as_mlir(regression):
    (ids, prog), = regression.cat._fns.programs()
    text = prog.mlir
    assert "func.func" in text and "quantum" in text and f"tensor<?x{prog.width}xf64>" in text  # rows [n, A]


def test_bad_shot_requests_are_clear_errors(regression):
    fns, p, x = regression.cat._fns, regression.params, regression.x
    for shots, fragment in ((0, "shots must be a positive integer"), (2.5, "shots must be a positive integer"),
                            (True, "shots must be a positive integer")):
        with pytest.raises(qvaf.QvafError, match=fragment):
            fns.apply(p, x, shots=shots)
    with pytest.raises(qvaf.QvafError, match="pass shots=S with it"):
        fns.apply(p, x, key=jax.random.PRNGKey(0))
    with pytest.raises(qvaf.QvafError, match="unknown dtype"):
        cb.build(regression.cat.ir, "float16")


def test_train_and_eval_from_the_command_line(tmp_path):
    from qvaf.runtime.cli import main

    out = str(tmp_path / "run")
    spec = str(SPECS / "models" / "regression.qvaf")
    assert main(["train", spec, "--task", "toy_sin2", "--n-train", "30", "--batch", "0", "--steps", "2",
                 "--eval-every", "2", "--backend", "catalyst", "--out", out, "--quiet"]) == 0
    from qvaf.runtime.run import eval_run, load_run

    model, _, ck = load_run(out)
    assert model.backend == "catalyst" and ck.config["model"]["backend"] == "catalyst"
    on_catalyst, on_jax = eval_run(out), eval_run(out, backend="jax")
    assert abs(on_catalyst["loss"] - on_jax["loss"]) < 1e-5 * max(1.0, on_jax["loss"])
    assert main(["eval", out, "--backend", "jax", "--json"]) == 0
    assert main(["plot", out, "--out", str(tmp_path / "plots")]) == 0  # every layer's edge values


def test_inspect_prints_each_distinct_circuits_program(capsys):
    from qvaf.runtime.cli import main

    assert main(["inspect", str(SPECS / "models" / "regression.qvaf"), "--backend", "catalyst"]) == 0
    text = capsys.readouterr().out
    assert text.count("--- catalyst program for layer0, layer1") == 1 and "module @edge_value" in text


@pytest.mark.skipif(os.environ.get("JAX_ENABLE_X64") == "0", reason="needs the test session's 64-bit mode")
def test_the_64_bit_mode_it_needs_is_checked():
    fns = cb.build(qvaf.compile("regression", dtype="float32").ir, "float32")
    with jax.experimental.disable_x64():
        with pytest.raises(qvaf.QvafError, match="needs JAX's 64-bit mode"):
            fns.apply(qvaf.compile("regression").init(0), np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("observable", ["x", "y", "inspired"])
def test_every_gate_and_readout_matches_the_jax_backend(observable):
    """A hand-built circuit (no DSL) with every gate of the catalogue and grouped edges, for the
    readouts the specs do not use (one kan layer: its acos reads the inputs in [-1, 1])."""
    from _backend_ir import L, g, network, ref

    from qvaf.compiler.expr import Binary, Input, Unary
    from qvaf.compiler.ir import Circuit, LoopOp, Op

    body = (g(Op.U3, ref("theta", L, 0), ref("theta", L, 1), Binary("*", ref("theta", L, 2), Input())),
            g(Op.PHASE, Unary("acos", Input())), g(Op.RX, Binary("+", Input(), ref("theta", L, 1))))
    ops = (g(Op.H), g(Op.SX), g(Op.S), g(Op.T), g(Op.SDG), g(Op.TDG), g(Op.X), g(Op.Y), g(Op.Z),
           LoopOp("l", 0, 2, body), g(Op.RY, ref("theta", 2, 0)), g(Op.RZ, ref("theta", 2, 1)))
    kernel = Circuit(ops, observable, (("theta", (3, 3)),))
    graph = network([2, 3], kernel, group=2, postact_weight=True)
    cat = qvaf.compile(graph, backend="catalyst", dtype="float64", optimize=False)
    ref_model = qvaf.compile(graph, dtype="float64", optimize=False)
    params = ref_model.init(jax.random.PRNGKey(2))
    x = np.random.default_rng(4).uniform(-0.9, 0.9, (4, 2))
    w = np.random.default_rng(5).normal(size=(4, 3))
    y_cat, g_cat = _output_and_grads(cat, params, x, w)
    y_jax, g_jax = _output_and_grads(ref_model, params, x, w)
    np.testing.assert_allclose(np.asarray(y_cat), np.asarray(y_jax), rtol=0, atol=1e-9)
    assert np.all(np.isfinite(np.asarray(g_jax["layer0"]["theta"])))
    _assert_trees_close(g_cat, g_jax, 1e-9)
