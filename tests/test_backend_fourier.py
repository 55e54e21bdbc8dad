"""The Fourier form of kan layers whose re-uploads share one encoding (compiler/backends/_fourier.py).

The JAX backend computes such a layer's output as a matrix product of per-sample harmonics with
per-edge coefficients taken from the circuit at 2L + 1 nodes; every other path (edge values,
layers without the form) runs the circuit sample by sample. Here: the discrete transform is
exact on trigonometric polynomials (numpy, float64, an independent construction); the layer
output and its gradients equal the per-sample circuit's (edge values through the layer formula)
to 1e-12 in float64 for every ansatz that has the form, with inputs well outside [-pi, pi];
layers without the form are recognised. Agreement of ``apply`` with the PennyLane reference is
in test_backend_specs.py and test_backend_qkan.py.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qvaf
from qvaf.compiler.backends import _common, _fourier, jax_backend
from qvaf.dsl import program_from_text

SPECS = Path(__file__).resolve().parents[1] / "specs" / "ansatz"


@pytest.mark.parametrize("degree", [1, 3, 6])
def test_dft_matrix_recovers_a_trigonometric_polynomial(degree):
    rng = np.random.default_rng(degree)
    a = rng.normal(size=degree + 1)
    b = rng.normal(size=degree + 1)

    def f(t):
        return sum(a[k] * np.cos(k * t) + b[k] * np.sin(k * t) for k in range(degree + 1))

    coeffs = _fourier.dft_matrix(degree) @ f(_fourier.nodes(degree))
    expected = [a[0]] + [v for k in range(1, degree + 1) for v in (a[k], b[k])]
    np.testing.assert_allclose(coeffs, expected, atol=1e-13)
    g = rng.uniform(-20, 20, 11)
    np.testing.assert_allclose(_fourier.harmonics(g, degree, np) @ coeffs, f(g), atol=1e-11)


def _model(ansatz, options, reps=3):
    text = (SPECS / f"{ansatz}.qvaf").read_text()
    return qvaf.compile(program_from_text(
        text + f"\nmodel m {{\n    input 3\n    kan 4 using {ansatz}(reps = {reps}) {{ {options} }}\n}}\n"),
        dtype="float64")


def _kan_node(model):
    return dict(_common.layer_order(model.ir))[model.layers[0]]


CASES = [
    ("pz", "base silu", 3),
    ("pz", "postact weight bias; base none", 1),
    ("pz", "group 2; postact weight", 4),
    ("real", "postact bias", 3),
    ("mix", "base tanh", 2),
    ("px", "postact weight bias", 3),
]


@pytest.mark.parametrize("ansatz,options,reps", CASES, ids=[f"{a}-{o}-{r}" for a, o, r in CASES])
def test_fourier_layer_equals_the_per_sample_circuit(ansatz, options, reps):
    model = _model(ansatz, options, reps)
    node = _kan_node(model)
    assert jax_backend.shared_encoding(node, jax_backend.expand(node.kernel)) is not None
    rng = np.random.default_rng(1)
    params = model.init(3)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=np.shape(a))), params)
    params["layer0"]["mask"] = jnp.asarray(rng.integers(0, 2, (4, 3)), jnp.float64)
    bound = 0.95 if ansatz == "px" else 9.0  # px encodes acos(x)
    x = jnp.asarray(rng.uniform(-bound, bound, (6, 3)))

    def by_edges(p):
        phi = model.edge_values(p, x, 0)
        return _common.kan_combine(node, p["layer0"], x, phi, jnp)

    def by_fourier(p):
        return model.apply(p, x)

    np.testing.assert_allclose(by_fourier(params), by_edges(params), atol=1e-12)
    weights = jnp.asarray(rng.normal(size=(6, 4)))
    g_fourier = jax.grad(lambda p: jnp.sum(weights * by_fourier(p)))(params)
    g_edges = jax.grad(lambda p: jnp.sum(weights * by_edges(p)))(params)
    for name in g_edges["layer0"]:
        if not model.trainable["layer0"][name]:
            continue  # fixed arrays (the mask): apply stops their gradient
        np.testing.assert_allclose(g_fourier["layer0"][name], g_edges["layer0"][name], atol=1e-11, err_msg=name)
    gx_fourier = jax.grad(lambda v: jnp.sum(model.apply(params, v)))(x)
    gx_edges = jax.grad(lambda v: jnp.sum(_common.kan_combine(node, params["layer0"], v, model.edge_values(params, v, 0), jnp)))(x)
    np.testing.assert_allclose(gx_fourier, gx_edges, atol=1e-11)


@pytest.mark.parametrize("ansatz,measure", [("daruan", None), ("rpz", None), ("pz", "inspired")])
def test_layers_without_a_fourier_form_are_recognised(ansatz, measure):
    text = (SPECS / f"{ansatz}.qvaf").read_text()
    if measure:
        text = text.replace("measure z", f"measure {measure}")
    model = qvaf.compile(program_from_text(text + f"\nmodel m {{\n    input 2\n    kan 2 using {ansatz}(reps = 2)\n}}\n"),
                         dtype="float64")
    node = _kan_node(model)
    assert jax_backend.shared_encoding(node, jax_backend.expand(node.kernel)) is None
