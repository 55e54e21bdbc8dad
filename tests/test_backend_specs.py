"""Every spec in specs/: the JAX backend against the PennyLane reference backend, gradients
against the parameter-shift rule and central finite differences, and every prefix of the pass
pipeline computing the same function.

Tolerances: float64 values and gradients 1e-10 (relative to the gradient's scale for the
models); float32 against the float64 reference 1e-5 (same scaling); parameter shift 1e-10;
central differences (step 1e-6) 1e-7; pass prefixes 1e-12.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qvaf
from qvaf.compiler.passes import PIPELINE, run_pipeline

from _spec_targets import MODEL_ARGS, TARGETS

ANSATZ_TARGETS = [t for t in TARGETS if t.values[1] == "ansatz"]


def _compile(path, kind, name, **kw):
    if kind == "model":
        return qvaf.compile(path, name, args=MODEL_ARGS.get(name), **kw)
    return qvaf.compile(path, ansatz=name, **kw)


def _inputs(model, batch=3, seed=0):
    # inside [-1, 1]: px's data angle is acos(x)
    return np.random.default_rng(seed).uniform(-0.9, 0.9, (batch, model.in_width))


def _loss_weights(model, batch=3):
    return np.random.default_rng(1).normal(size=(batch, model.out_width))


def _value_and_grads(model, params, x, w):
    return jax.value_and_grad(lambda p: jnp.sum(w * model.apply(p, x)))(params)


def _output_and_grads(model, params, x, w):
    """The output and the gradient of sum(w * output), from one forward pass."""
    y, vjp = jax.vjp(lambda p: model.apply(p, x), params)
    return y, vjp(jnp.asarray(w, y.dtype))[0]


def _assert_trees_close(got, want, rel):
    for layer, arrays in want.items():
        for name, ref in arrays.items():
            ref = np.asarray(ref)
            scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
            np.testing.assert_allclose(np.asarray(got[layer][name], np.float64), ref, rtol=0, atol=rel * scale,
                                       err_msg=f"{layer}.{name}")


def test_specs_found():
    kinds = {t.values[1] for t in TARGETS}
    assert kinds == {"model", "ansatz"} and len(TARGETS) >= 6


@pytest.mark.parametrize("path,kind,name", TARGETS)
def test_jax_matches_reference(path, kind, name):
    ref = _compile(path, kind, name, backend="reference", dtype="float64")
    f64 = _compile(path, kind, name, dtype="float64")
    f32 = _compile(path, kind, name, dtype="float32")
    params = f64.init(jax.random.PRNGKey(7))
    x, w = _inputs(f64), _loss_weights(f64)

    y_ref, vjp = jax.vjp(lambda p: ref.apply(p, x), params)  # one reference pass for both
    (g_ref,) = vjp(jnp.asarray(w))

    y64, g64 = jax.jit(lambda p: _output_and_grads(f64, p, x, w))(params)
    np.testing.assert_allclose(np.asarray(y64), np.asarray(y_ref), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(f64.apply(params, x)), np.asarray(y_ref), rtol=0, atol=1e-10)
    _assert_trees_close(g64, g_ref, 1e-10)

    p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
    y32, g32 = jax.jit(lambda p: _output_and_grads(f32, p, x, w))(p32)
    assert y32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y32, np.float64), np.asarray(y_ref), rtol=0, atol=1e-5)
    assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(g32))
    _assert_trees_close(g32, g_ref, 1e-5)


def _shifted(params, layer, name, idx, delta):
    out = {k: dict(v) for k, v in params.items()}
    arr = np.array(params[layer][name], np.float64)
    arr[idx] += delta
    out[layer][name] = jnp.asarray(arr)
    return out


@pytest.mark.parametrize("path,kind,name", ANSATZ_TARGETS)
def test_gradients_match_parameter_shift_and_finite_differences(path, kind, name):
    """jax.grad of the JAX backend against derivatives of the reference backend's values:
    the shift rule dE/dt = [E(t + pi/2) - E(t - pi/2)] / 2 for every entry of ``theta``
    (each is one rotation angle), and central differences for every array entry."""
    model = _compile(path, kind, name, dtype="float64")
    ref = _compile(path, kind, name, backend="reference", dtype="float64")
    params = model.init(jax.random.PRNGKey(3))
    x, w = _inputs(model, batch=2), _loss_weights(model, batch=2)
    _, grads = jax.jit(lambda p: _value_and_grads(model, p, x, w))(params)

    def energy(p):
        return float(np.sum(w * np.asarray(ref.apply(p, x))))

    for spec in model.param_table:
        if spec.name == "mask":
            continue
        got = np.asarray(grads[spec.owner][spec.name])
        for idx in np.ndindex(spec.shape):
            g = got[idx]
            if spec.name == "theta":
                shift = (energy(_shifted(params, spec.owner, spec.name, idx, math.pi / 2))
                         - energy(_shifted(params, spec.owner, spec.name, idx, -math.pi / 2))) / 2
                assert abs(g - shift) < 1e-10, (spec.path, idx, g, shift)
            h = 1e-6
            fd = (energy(_shifted(params, spec.owner, spec.name, idx, h))
                  - energy(_shifted(params, spec.owner, spec.name, idx, -h))) / (2 * h)
            assert abs(g - fd) < 1e-7, (spec.path, idx, g, fd)


@pytest.mark.parametrize("path,kind,name", TARGETS)
def test_every_pass_prefix_preserves_the_function(path, kind, name):
    lowered = _compile(path, kind, name, dtype="float64", optimize=False)
    params = lowered.init(jax.random.PRNGKey(11))
    x, w = _inputs(lowered, batch=4), _loss_weights(lowered, batch=4)
    with jax.disable_jit():  # one graph per prefix: run op by op instead of compiling each
        v0, g0 = _value_and_grads(lowered, params, x, w)
        y0 = lowered.apply(params, x)
        for k in range(1, len(PIPELINE) + 1):
            graph = run_pipeline(lowered.ir, PIPELINE[:k])
            stage = qvaf.compile(graph, dtype="float64", optimize=False)
            assert stage.param_table == lowered.param_table
            np.testing.assert_allclose(np.asarray(stage.apply(params, x)), np.asarray(y0), rtol=0, atol=1e-12,
                                       err_msg=f"after {PIPELINE[k - 1][0]}")
            if kind == "ansatz":
                v, g = _value_and_grads(stage, params, x, w)
                _assert_trees_close(g, g0, 1e-12)
    full = _compile(path, kind, name, dtype="float64")
    np.testing.assert_allclose(np.asarray(full.apply(params, x)), np.asarray(y0), rtol=0, atol=1e-12)


BASES_MODEL = """
ansatz a(reps: int = 1) {
    param theta[reps + 1, 2] ~ normal(0, 1)
    param w[reps] ~ normal(1, 0.3)
    for l in 0..reps {
        rz(theta[l, 0]); ry(theta[l, 1])
        rx(w[l] * x)
    }
    ry(theta[reps, 0])
    measure z
}
model bases {
    input 2
    kan 3 using a { base gelu; group 2; postact weight }
    kan 2 using a { base relu; postact bias }
    kan 2 using a(2) { base identity; group 2; postact weight bias }
    kan 2 using a { base tanh }
    kan 1 using a { base none }
}
"""


def test_every_layer_option_against_the_reference():
    """Each base function, grouping and post-activation combination the language has, in one
    network: values and gradients of the JAX backend against the reference's own layer
    formula (1e-10, float64)."""
    from qvaf.dsl import program_from_text
    from qvaf.dsl.rules import BASES

    program = program_from_text(BASES_MODEL)
    assert {layer.options[0].values[0] for layer in program.models["bases"].body[1:] if hasattr(layer, "options")
            and layer.options} | {"silu"} == set(BASES)
    model = qvaf.compile(program, dtype="float64")
    ref = qvaf.compile(program, backend="reference", dtype="float64")
    params = model.init(jax.random.PRNGKey(5))
    rng = np.random.default_rng(2)
    params = {lid: {n: (a if n == "mask" else a + 0.3 * rng.normal(size=a.shape)) for n, a in layer.items()}
              for lid, layer in params.items()}  # post-activations and biases away from 1 and 0
    params["layer1"]["mask"] = np.asarray(params["layer1"]["mask"]).copy()
    params["layer1"]["mask"][0, 1] = 0.0  # a pruned edge
    x = rng.uniform(-1.5, 1.5, (5, 2))  # relu's kink and gelu's tails both reached
    w = rng.normal(size=(5, 1))
    y_ref = np.asarray(ref.apply(params, x))
    assert isinstance(ref.apply(params, x), np.ndarray)  # concrete inputs: the NumPy path
    y_ref_jax, vjp = jax.vjp(lambda p: ref.apply(p, x), params)
    np.testing.assert_allclose(np.asarray(y_ref_jax), y_ref, rtol=0, atol=1e-13)  # the two reference paths
    (g_ref,) = vjp(jnp.asarray(w))
    y, g = jax.jit(lambda p: _output_and_grads(model, p, x, w))(params)
    np.testing.assert_allclose(np.asarray(y), y_ref, rtol=0, atol=1e-10)
    _assert_trees_close(g, g_ref, 1e-10)
    for lid in ("layer0", "layer2"):
        np.testing.assert_allclose(np.asarray(model.edge_values(params, x, lid)), ref.edge_values(params, x, lid),
                                   rtol=0, atol=1e-12)


def test_the_reference_backend_shares_no_numerics_with_the_jax_backend():
    """The reference's layer formula, grouping gather and base functions are its own."""
    source = (Path(__file__).resolve().parents[1] / "compiler" / "backends" / "reference.py").read_text()
    for shared in ("kan_combine", "edge_params", "forward(", "base_function", "jax_backend", "_so3", "_adjoint"):
        assert f"_common.{shared}" not in source and f"import {shared}" not in source, shared
