"""The public API: qvaf.load / qvaf.compile / Compiled, its errors, parameter pytree, and
the JAX transformations it must survive (jit, grad, value_and_grad, vmap), plus the
no-retrace guarantees of the JAX backend."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qvaf
from qvaf.compiler import backends
from qvaf.compiler.backends import jax_backend
from qvaf.dsl import program_from_text


ROOT = Path(__file__).resolve().parents[1]
REGRESSION = ROOT / "specs" / "models" / "regression.qvaf"
PZ = ROOT / "specs" / "ansatz" / "pz.qvaf"
HQKAN = ROOT / "specs" / "models" / "hqkan.qvaf"

TWO_MODELS = PZ.read_text() + """
model small {
    input 2
    kan 3 using pz(reps = 2)
}
model deeper {
    input 2
    kan 3 using pz(reps = 2)
    kan 2 using pz(reps = 1) { postact weight bias; base tanh }
}
"""


@pytest.fixture(scope="module")
def regression():
    return qvaf.compile(REGRESSION, dtype="float64")


def test_public_names():
    public = {"load", "compile", "Compiled", "CompileOptions", "NoiseModel", "QvafError", "__version__", "extend", "hqkan",
              "HQKAN", "fit", "TrainConfig", "evaluate", "load_task", "save", "restore", "hardware", "Spectrum",
              "network_spectra", "network_formula", "attribute", "prune_run", "compare"}
    assert set(qvaf.__all__) == public
    for name in sorted(public):  # every lazily exported name resolves to a real object
        assert getattr(qvaf, name) is not None, name
    assert callable(qvaf.extend) and callable(qvaf.hqkan) and callable(qvaf.fit)
    assert isinstance(qvaf.__version__, str)
    assert issubclass(qvaf.QvafError, Exception)


def test_import_is_light():
    code = ("import sys, qvaf; heavy = [m for m in ('jax', 'pennylane', 'catalyst', 'qiskit', 'qiskit_aer', 'braket') if m in sys.modules];"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_module_is_imported_before_the_tests():
    """conftest.py imports every module, so hypothesis draws from the same constants whatever
    ran before (a module it missed, or one whose import failed, would change the examples with
    the order of the tests). Checked file by file against the package folders."""
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as fh:
        package_dir = tomllib.load(fh)["tool"]["setuptools"]["package-dir"]  # package -> folder
    missing = []
    for package, folder in package_dir.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            if parts[-1] != "__main__" and name not in sys.modules:
                missing.append(name)
    assert not missing, missing


def test_load_returns_program():
    program = qvaf.load(REGRESSION)
    assert "regression" in program.models and "pz" in program.ansatze
    with pytest.raises(qvaf.QvafError, match="no spec file"):
        qvaf.load(ROOT / "specs" / "does_not_exist.qvaf")


def test_compile_accepts_path_program_and_string(regression):
    a = qvaf.compile(str(REGRESSION), dtype="float64")
    b = qvaf.compile(qvaf.load(REGRESSION), "regression", dtype="float64")
    assert a.model_name == b.model_name == "regression"
    assert (a.in_width, a.out_width) == (b.in_width, b.out_width) == (2, 1)
    assert a.param_table == b.param_table == regression.param_table
    assert isinstance(a.program.models, dict)


def test_counts_and_names(regression):
    # [2, 5, 1] pz(reps=3): theta [5,2,4,2] + base [5,2]; theta [1,5,4,2] + base [1,5]
    assert regression.param_count == 80 + 10 + 40 + 5
    assert regression.fixed_count == 10 + 5  # masks
    params = regression.init(jax.random.PRNGKey(0))
    assert set(params) == {"layer0", "layer1"}
    assert set(params["layer0"]) == {"theta", "base_weight", "mask"}
    assert params["layer0"]["theta"].shape == (5, 2, 4, 2)
    assert regression.trainable == {
        "layer0": {"theta": True, "base_weight": True, "mask": False},
        "layer1": {"theta": True, "base_weight": True, "mask": False},
    }
    np.testing.assert_array_equal(params["layer1"]["mask"], 1.0)
    assert "regression" in repr(regression)


def test_init_values_follow_names_not_order():
    program = program_from_text(TWO_MODELS)
    small = qvaf.compile(program, "small", dtype="float64")
    deeper = qvaf.compile(program, "deeper", dtype="float64")
    a, b = small.init(jax.random.PRNGKey(5)), deeper.init(jax.random.PRNGKey(5))
    np.testing.assert_array_equal(a["layer0"]["theta"], b["layer0"]["theta"])
    np.testing.assert_array_equal(a["layer0"]["base_weight"], b["layer0"]["base_weight"])
    c = small.init(jax.random.PRNGKey(6))
    assert not np.allclose(a["layer0"]["theta"], c["layer0"]["theta"])
    np.testing.assert_array_equal(small.init(5)["layer0"]["theta"], a["layer0"]["theta"])  # int seed
    assert deeper.trainable["layer1"] == {"theta": True, "postact_weight": True, "postact_bias": True,
                                          "base_weight": True, "mask": False}
    p = deeper.init(0)
    np.testing.assert_array_equal(p["layer1"]["postact_weight"], 1.0)
    np.testing.assert_array_equal(p["layer1"]["postact_bias"], 0.0)


def test_initialiser_statistics():
    text = PZ.read_text() + """
model wide {
    input 40
    kan 30 using pz(reps = 3)
    linear 50
}
"""
    model = qvaf.compile(program_from_text(text), dtype="float64")
    p = model.init(jax.random.PRNGKey(1))
    theta = np.asarray(p["layer0"]["theta"])  # Glorot over [out, in, 4, 2]
    want = math.sqrt(2 / (40 * 8 + 30 * 8))
    assert abs(theta.std() / want - 1) < 0.05 and abs(theta.mean()) < 0.05 * want
    lim = math.sqrt(6 / (40 * 8 + 30 * 8))
    assert np.abs(theta).max() <= lim
    base = np.asarray(p["layer0"]["base_weight"])  # normal(0, 1/sqrt(in))
    assert abs(base.std() * math.sqrt(40) - 1) < 0.1
    weight = np.asarray(p["layer1"]["weight"])  # linear [50, 30]: Glorot uniform
    assert np.abs(weight).max() <= math.sqrt(6 / 80) and abs(weight.std() / math.sqrt(2 / 80) - 1) < 0.1
    np.testing.assert_array_equal(p["layer1"]["bias"], 0.0)


def test_grouped_layer_shapes_and_init():
    model = qvaf.compile(HQKAN, args={"d": 8, "k": 1}, dtype="float64")
    p = model.init(0)
    assert p["layer1"]["theta"].shape == (3, 2, 2)  # group 3, pz(reps=1)
    assert p["layer0"]["weight"].shape == (6, 8) and p["layer2"]["weight"].shape == (8, 6)
    assert model.model_args == {"d": 8, "k": 1, "hidden": 6, "reps": 1, "group": 3}
    assert model.apply(p, np.zeros((2, 8))).shape == (2, 8)


def test_ansatz_compilation_and_overrides():
    phi = qvaf.compile(PZ, ansatz="pz", args={"reps": 2}, dtype="float64")
    assert (phi.in_width, phi.out_width) == (1, 1)
    assert phi.init(0)["layer0"]["theta"].shape == (1, 1, 3, 2)
    # a spec with ansätze only and no model name: its only ansatz
    assert qvaf.compile(PZ, dtype="float64").init(0)["layer0"]["theta"].shape == (1, 1, 4, 2)
    over = qvaf.compile(REGRESSION, ansatz_overrides={"*": {"reps": 5}}, dtype="float64")
    assert over.init(0)["layer1"]["theta"].shape == (1, 5, 6, 2)
    assert over.ansatz_overrides == {"*": {"reps": 5}}


@pytest.mark.parametrize("kwargs,match", [
    ({"backend": "tpu"}, "unknown backend 'tpu'.*jax.*reference"),
    ({"dtype": "float16"}, "unknown dtype 'float16'.*float32.*float64"),
    ({"dtype": "float64", "optimize": "no"}, "optimize takes True or False"),
    ({"model": "nope"}, "nope.*regression"),
    ({"ansatz": "nope"}, "nope.*pz"),
    ({"backend": "reference", "dtype": "float32"}, "float64"),
])
def test_compile_errors(kwargs, match):
    with pytest.raises(qvaf.QvafError, match=match):
        qvaf.compile(REGRESSION, **kwargs)


def test_several_models_need_a_name():
    program = program_from_text(TWO_MODELS)
    with pytest.raises(qvaf.QvafError, match="several models.*deeper.*small"):
        qvaf.compile(program)


def test_backend_registry_and_install_hint(monkeypatch):
    assert backends.BACKENDS["jax"].endswith("jax_backend")
    assert backends.get_backend("jax") is jax_backend
    real_find_spec = backends.importlib.util.find_spec
    monkeypatch.setattr(backends.importlib.util, "find_spec",
                        lambda name, *a: None if name == "pennylane" else real_find_spec(name, *a))
    with pytest.raises(qvaf.QvafError, match="needs the package 'pennylane'.*pip install"):
        backends.get_backend("reference")


def test_input_and_params_validation(regression):
    p = regression.init(0)
    with pytest.raises(qvaf.QvafError, match=r"shape \[batch, 2\], got \[4, 3\]"):
        regression.apply(p, np.zeros((4, 3)))
    with pytest.raises(qvaf.QvafError, match=r"shape \[batch, 2\]"):
        jax.jit(regression.apply)(p, np.zeros((4, 3)))
    bad = {k: dict(v) for k, v in p.items()}
    del bad["layer1"]["theta"]
    with pytest.raises(qvaf.QvafError, match="missing layer1.theta"):
        regression.apply(bad, np.zeros((4, 2)))
    bad["layer1"]["theta"] = np.zeros((1, 5, 3, 2))
    with pytest.raises(qvaf.QvafError, match=r"layer1.theta has shape \[1, 5, 3, 2\], expected \[1, 5, 4, 2\]"):
        regression.apply(bad, np.zeros((4, 2)))
    with pytest.raises(qvaf.QvafError, match="not a kan layer"):
        regression.edge_values(p, np.zeros((4, 2)), "output")


def test_transformations():
    regression = qvaf.compile(program_from_text(TWO_MODELS), "small", dtype="float64")  # small: one compile each
    p = regression.init(1)
    x = np.random.default_rng(0).uniform(-1, 1, (6, 2))
    y = regression.apply(p, x)
    assert y.shape == (6, 3) and y.dtype == jnp.float64
    np.testing.assert_allclose(jax.jit(regression.apply)(p, x), y, rtol=0, atol=1e-14)
    # a single sample, and vmap over samples
    np.testing.assert_allclose(regression.apply(p, x[0]), y[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(jax.vmap(regression.apply, in_axes=(None, 0))(p, x), y, rtol=0, atol=1e-14)
    # vmap over a stack of parameter sets
    p2 = regression.init(2)
    stacked = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), p, p2)
    ys = jax.vmap(regression.apply, in_axes=(0, None))(stacked, x)
    np.testing.assert_allclose(ys[1], regression.apply(p2, x), rtol=0, atol=1e-14)
    # grad and value_and_grad agree, inside and outside jit
    loss = lambda q: jnp.sum(regression.apply(q, x) ** 2)
    g = jax.grad(loss)(p)
    v, g2 = jax.jit(jax.value_and_grad(loss))(p)
    assert abs(float(v) - float(loss(p))) < 1e-12
    for layer in g:
        for name in g[layer]:
            np.testing.assert_allclose(g[layer][name], g2[layer][name], rtol=0, atol=1e-12)
    # per-sample gradients with vmap(grad)
    per = jax.vmap(jax.grad(lambda q, xi: regression.apply(q, xi).sum()), in_axes=(None, 0))(p, x)
    np.testing.assert_allclose(per["layer0"]["theta"].sum(0),
                               jax.grad(lambda q: regression.apply(q, x).sum())(p)["layer0"]["theta"],
                               rtol=0, atol=1e-12)


def test_layer_inputs_and_edge_values_compose(regression):
    p = regression.init(3)
    x = np.random.default_rng(1).uniform(-1, 1, (5, 2))
    acts = regression.layer_inputs(p, x)
    np.testing.assert_allclose(acts["layer0"], x, rtol=0, atol=0)
    phi = regression.edge_values(p, x, "layer0")
    assert phi.shape == (5, 5, 2)
    silu = x / (1 + np.exp(-x))
    layer0 = p["layer0"]
    want = np.einsum("boi,oi->bo", phi, layer0["mask"]) + silu @ (layer0["base_weight"] * layer0["mask"]).T
    np.testing.assert_allclose(acts["layer1"], want, rtol=0, atol=1e-13)
    assert np.all(np.abs(phi) <= 1 + 1e-12)


def test_float32_stays_float32_with_x64_enabled():
    model = qvaf.compile(REGRESSION, dtype="float32")
    assert jax.config.jax_enable_x64  # the test session turns it on (conftest.py)
    p = model.init(0)
    assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(p))
    x = np.random.default_rng(2).uniform(-1, 1, (4, 2))  # float64 input
    y = model.apply(p, x)
    assert y.dtype == jnp.float32
    g = jax.grad(lambda q: jnp.sum(model.apply(q, x)))(p)
    assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(g))
    p64 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), p)
    y64 = qvaf.compile(REGRESSION, dtype="float64").apply(p64, x)
    np.testing.assert_allclose(np.asarray(y, np.float64), y64, rtol=0, atol=1e-5)


@pytest.mark.parametrize("spelling", ["float64", np.float64, jnp.float64, np.dtype("float64"), jnp.dtype("float64")])
def test_every_spelling_of_a_dtype_is_accepted(spelling):
    model = qvaf.compile(PZ, ansatz="pz", dtype=spelling)
    assert model.dtype == "float64" and model.options.dtype == "float64"
    assert model.init(0)["layer0"]["theta"].dtype == jnp.float64
    assert qvaf.compile(PZ, ansatz="pz", dtype=np.float32).dtype == "float32"
    assert qvaf.hqkan(d=4, dtype=jnp.float32).dtype == "float32"


@pytest.mark.parametrize("bad", ["float16", np.int32, "f8x", 3])
def test_a_dtype_that_is_not_float32_or_float64_is_refused(bad):
    with pytest.raises(qvaf.QvafError, match="unknown dtype .*expected one of float32, float64"):
        qvaf.compile(PZ, ansatz="pz", dtype=bad)


def test_the_same_key_gives_the_same_initial_values_in_float32_and_float64():
    program = program_from_text(TWO_MODELS)
    f32, f64 = (qvaf.compile(program, "deeper", dtype=d) for d in ("float32", "float64"))
    for key in (jax.random.PRNGKey(3), 3, jax.random.key(3)):
        a, b = f32.init(key), f64.init(key)
        for layer in a:
            for name in a[layer]:
                x32, x64 = np.asarray(a[layer][name]), np.asarray(b[layer][name])
                assert x32.dtype == np.float32 and x64.dtype == np.float64
                np.testing.assert_array_equal(x32, x64.astype(np.float32), err_msg=f"{layer}.{name}")
    assert not np.array_equal(np.asarray(f64.init(3)["layer0"]["theta"]), np.asarray(f64.init(4)["layer0"]["theta"]))
    # traced keys draw the same values through a host callback: jit, vmap, eval_shape
    key = jax.random.PRNGKey(8)
    jitted, eager = jax.jit(f64.init)(key), f64.init(key)
    np.testing.assert_array_equal(jitted["layer1"]["theta"], eager["layer1"]["theta"])
    keys = jax.random.split(key, 3)
    stacked = jax.vmap(f32.init)(keys)
    np.testing.assert_array_equal(stacked["layer0"]["theta"][2], f32.init(keys[2])["layer0"]["theta"])
    assert jax.eval_shape(f32.init, key)["layer0"]["theta"].shape == (3, 2, 3, 2)


def test_fixed_arrays_get_zero_gradient_and_a_masked_optax_loop_keeps_them():
    import optax

    model = qvaf.compile(program_from_text(TWO_MODELS), "deeper", dtype="float64")
    params = model.init(0)
    x = np.random.default_rng(4).uniform(-1, 1, (16, 2))
    y = np.sin(x[:, :1] * 2) * np.ones((1, 2))

    def loss(p):
        return jnp.mean((model.apply(p, x) - y) ** 2)

    g = jax.grad(loss)(params)
    for layer in params:
        np.testing.assert_array_equal(g[layer]["mask"], 0.0)
        assert np.abs(np.asarray(g[layer]["theta"])).max() > 0
    # a user's own loop: optax.masked passes the raw gradient through to the masked-out leaves
    opt = optax.masked(optax.adam(0.05), model.trainable)
    state = opt.init(params)
    p = params
    losses = []
    for _ in range(25):
        value, grads = jax.value_and_grad(loss)(p)
        updates, state = opt.update(grads, state, p)
        p = optax.apply_updates(p, updates)
        losses.append(float(value))
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.7 * losses[0]
    for layer in params:
        np.testing.assert_array_equal(p[layer]["mask"], params[layer]["mask"])


def test_compile_options_in_one_place(monkeypatch):
    from qvaf.compiler import passes as P
    from qvaf.compiler.errors import IRError

    opts = qvaf.CompileOptions(dtype=jnp.float64, keep_ir=True)
    assert (opts.backend, opts.dtype, opts.optimize, opts.passes, opts.verify_each) == ("jax", "float64", True, None,
                                                                                          True)
    model = qvaf.compile(REGRESSION, options=opts)
    assert [name for name, _ in model.stages] == ["lowering"] + [name for name, _ in P.PIPELINE]
    assert model.stages[-1][1] is model.ir and model.options is opts
    # keywords replace fields of the options
    two = qvaf.compile(REGRESSION, options=opts, passes=("unroll_loops", "inline_constants"), keep_ir=False)
    assert two.options.passes == ("unroll_loops", "inline_constants") and two.stages == ()
    assert qvaf.compile(REGRESSION, dtype="float64", optimize=False).ir.nodes["layer0"]["op"].kernel.ops[1].op.value == "loop"
    for kwargs, match in [({"passes": ("fold_everything",)}, "unknown pass 'fold_everything'"),
                          ({"optimize": False, "passes": ("unroll_loops",)}, "cannot go with optimize=False"),
                          ({"verify_each": "yes"}, "takes True or False")]:
        with pytest.raises(qvaf.QvafError, match=match):
            qvaf.CompileOptions(**kwargs)
    # verification after every pass is what qvaf.compile does by default: a pass that breaks
    # the IR is named
    def broken(graph):
        out = P.unroll_loops(graph)
        out.graph["params"] = out.graph["params"][1:]
        return out

    monkeypatch.setattr(P, "PIPELINE", [("unroll_loops", broken)] + P.PIPELINE[1:])
    with pytest.raises(IRError, match="after pass unroll_loops: layer0: parameter table mismatch"):
        qvaf.compile(REGRESSION, dtype="float64")
    assert qvaf.compile(REGRESSION, dtype="float64", verify_each=False).param_count < 135


def test_float64_needs_64_bit_mode_and_says_how():
    from jax.experimental import disable_x64

    model = qvaf.compile(PZ, ansatz="pz", dtype="float64")
    p = model.init(0)
    with disable_x64():
        for call in (lambda: qvaf.compile(PZ, ansatz="pz", dtype="float64"), lambda: model.apply(p, np.zeros((1, 1))),
                     lambda: model.init(0)):
            with pytest.raises(qvaf.QvafError, match=r"float64 needs JAX's 64-bit mode.*jax_enable_x64.*JAX_ENABLE_X64=1"):
                call()
    assert jax.config.jax_enable_x64


def test_compiling_twice_does_not_retrace():
    program = program_from_text(TWO_MODELS)
    first = qvaf.compile(program, "deeper", dtype="float64")
    p = first.init(0)
    x = np.ones((3, 2))
    first.apply(p, x)
    traces = jax_backend.trace_count()
    second = qvaf.compile(program_from_text(TWO_MODELS), "deeper", dtype="float64")
    assert second.apply is not None
    np.testing.assert_allclose(second.apply(p, x), first.apply(p, x), rtol=0, atol=0)
    assert jax_backend.trace_count() == traces
    # new parameter values (same shapes and dtypes) never recompile
    for seed in range(1, 4):
        second.apply(second.init(seed), x)
        second.apply(jax.tree_util.tree_map(lambda a: a * 0.5, p), x * 2)
    assert jax_backend.trace_count() == traces
    # a different dtype or structure does trace
    qvaf.compile(program, "deeper", dtype="float32").apply(p, x)
    assert jax_backend.trace_count() == traces + 1


def test_reference_backend_through_api(regression):
    ref = qvaf.compile(REGRESSION, backend="reference", dtype="float64")
    p = regression.init(4)
    x = np.random.default_rng(3).uniform(-1, 1, (2, 2))
    np.testing.assert_allclose(ref.apply(p, x), regression.apply(p, x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ref.edge_values(p, x, "layer1"), regression.edge_values(p, x, "layer1"),
                               rtol=0, atol=1e-12)
    assert ref.backend == "reference" and ref.param_table == regression.param_table
