"""Random ansätze (hypothesis): the JAX backend against an independent numpy statevector
simulator for every example (120) and against PennyLane default.qubit for a subset (20).

Each example is a random single-qubit circuit in IR form: named gates, trainable rotations,
phase and u3 gates, data encodings of x on random axes with random affine pre-processing
(fixed constants or per-edge pre-activation arrays), a loop of random reps, and a random
readout (z, x, y, inspired), run as a 2 -> 2 kan layer (optionally grouped).

Tolerances (float64): values 1e-10; gradients 1e-9 against the parameter-shift rule for
every rotation angle and 1e-6 against central finite differences (step 1e-5) for the
pre-activation arrays w, b; against PennyLane 1e-10 for values and gradients. float32 values
1e-5 against the float64 simulator.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import qvaf
from qvaf.compiler.expr import Binary, Const, Input, LoopVar, ParamRef, Unary
from qvaf.compiler.ir import Circuit, GateOp, LoopOp, Op

from _backend_ir import network
import _statevector as sv


FIXED = [Op.H, Op.X, Op.Y, Op.Z, Op.S, Op.SDG, Op.T, Op.TDG, Op.SX]
ROT = [Op.RX, Op.RY, Op.RZ, Op.PHASE]
AXES = {"x": Op.RX, "y": Op.RY, "z": Op.RZ}
I_W, O_W, BATCH = 2, 2, 3


def _c(v):
    return Const(float(v))


@st.composite
def random_ansatz(draw):
    """A random circuit plus the names of its shift-rule angles and its pre-activation arrays."""
    reps = draw(st.integers(0, 3))
    n_theta = 0
    n_phi = 0
    uses_pre = False

    def theta():
        nonlocal n_theta
        n_theta += 1
        return ParamRef("theta", (_c(n_theta - 1),))

    def phi():
        nonlocal n_phi
        n_phi += 1
        return ParamRef("phi", (LoopVar("l"), _c(n_phi - 1)))

    def affine(in_loop):
        nonlocal uses_pre
        kind = draw(st.sampled_from(["x", "affine", "atan", "pre"] if in_loop else ["x", "affine", "atan"]))
        if kind == "x":
            return Input()
        a = draw(st.floats(-2, 2, allow_nan=False).filter(lambda v: abs(v) > 0.1))
        b = draw(st.floats(-1.5, 1.5, allow_nan=False))
        if kind == "affine":
            return Binary("+", Binary("*", _c(a), Input()), _c(b))
        if kind == "atan":
            return Unary("atan", Binary("-", Binary("*", _c(a), Input()), _c(b)))
        uses_pre = True
        return Binary("+", Binary("*", ParamRef("w", (LoopVar("l"),)), Input()), ParamRef("b", (LoopVar("l"),)))

    def gate(in_loop):
        p = phi if in_loop else theta
        kind = draw(st.sampled_from(["fixed", "rot", "rot", "u3", "enc", "enc", "u3x"]))
        if kind == "fixed":
            return GateOp(draw(st.sampled_from(FIXED)))
        if kind == "rot":
            return GateOp(draw(st.sampled_from(ROT)), (p(),))
        if kind == "u3":
            return GateOp(Op.U3, (p(), p(), p()))
        if kind == "u3x":
            return GateOp(Op.U3, (p(), affine(in_loop), p()))
        return GateOp(AXES[draw(st.sampled_from("xyz"))], (affine(in_loop),))

    prefix = [gate(False) for _ in range(draw(st.integers(0, 3)))]
    body = [gate(True) for _ in range(draw(st.integers(1, 4)))]
    suffix = [gate(False) for _ in range(draw(st.integers(0, 3)))]
    ops = (*prefix, LoopOp("l", 0, reps, tuple(body)), *suffix)
    params = [("theta", (max(n_theta, 1),)), ("phi", (max(reps, 1), max(n_phi, 1)))]
    if uses_pre:
        params += [("w", (max(reps, 1),)), ("b", (max(reps, 1),))]
    obs = draw(st.sampled_from(["z", "x", "y", "inspired"]))
    group = draw(st.sampled_from([None, None, 1, 2]))
    seed = draw(st.integers(0, 2**31 - 1))
    return Circuit(ops, obs, tuple(params)), group, seed


def _setup(circuit, group, seed, dtype="float64"):
    graph = network([I_W, O_W], circuit, base="none", group=group)
    model = qvaf.compile(graph, dtype=dtype, optimize=False)
    rng = np.random.default_rng(seed)
    params = {"layer0": {s.name: rng.normal(size=s.shape) for s in model.param_table}}
    params["layer0"]["mask"] = np.ones((O_W, I_W))
    x = rng.uniform(-1.2, 1.2, size=(BATCH, I_W))
    weights = rng.normal(size=(BATCH, O_W, I_W))
    return model, params, x, weights


def _per_edge(arr, group):
    """Per-edge view [O, I, *shape] of an array stored [O, I, *shape] or [G, *shape]."""
    if group is None:
        return arr
    rows = np.arange(I_W) % group
    return np.broadcast_to(arr[rows][None], (O_W, I_W) + arr.shape[1:])


def _numpy_edges(circuit, params, x, group):
    kernel = {k: _per_edge(np.asarray(v), group) for k, v in params["layer0"].items() if k in dict(circuit.params)}
    return sv.edge_values(circuit, x, kernel)


def _scatter(grad_edge, group, shape):
    """Gradient w.r.t. the stored array from the gradient w.r.t. its per-edge view."""
    if group is None:
        return grad_edge
    out = np.zeros(shape)
    for i in range(I_W):
        out[i % group] += grad_edge[:, i].sum(axis=0)
    return out


def _numpy_grads(circuit, params, x, weights, group):
    """dL/d(array) for L = sum(weights * phi): shift rule for theta/phi (each entry is one
    rotation angle), central finite differences for the pre-activations w, b."""
    edge_params = {k: _per_edge(np.asarray(v), group).copy() for k, v in params["layer0"].items()
                   if k in dict(circuit.params)}
    grads = {}
    for name, arr in edge_params.items():
        g_edge = np.zeros(arr.shape)
        for idx in np.ndindex(arr.shape[2:]):
            def value(delta):
                shifted = dict(edge_params)
                a = arr.copy()
                a[(Ellipsis, *idx)] += delta
                shifted[name] = a
                return sv.edge_values(circuit, x, shifted)

            if name in ("w", "b"):
                h = 1e-5
                d = (value(h) - value(-h)) / (2 * h)
            elif circuit.observable == "inspired":
                # chain rule through |a| - |b| = f(<Z>): shift rule on <Z>
                zc = Circuit(circuit.ops, "z", circuit.params)
                z = sv.edge_values(zc, x, edge_params)

                def zval(delta):
                    shifted = dict(edge_params)
                    a = arr.copy()
                    a[(Ellipsis, *idx)] += delta
                    shifted[name] = a
                    return sv.edge_values(zc, x, shifted)

                dz = (zval(math.pi / 2) - zval(-math.pi / 2)) / 2
                pole = np.abs(z) > 1 - 1e-9  # weights are zero there (see _off_poles)
                zs = np.where(pole, 0.0, z)
                fprime = 0.25 / np.sqrt((1 + zs) / 2) + 0.25 / np.sqrt((1 - zs) / 2)
                d = np.where(pole, 0.0, fprime * dz)
            else:
                d = (value(math.pi / 2) - value(-math.pi / 2)) / 2
            g_edge[(Ellipsis, *idx)] = (weights * d).sum(axis=0)
        grads[name] = _scatter(g_edge, group, np.shape(params["layer0"][name]))
    return grads


def _off_poles(circuit, params, x, group, weights):
    """Zero the loss weights of samples at the poles <Z> = +-1, where |a| - |b| has no
    derivative (its slope in <Z> is infinite there)."""
    z = _numpy_edges(Circuit(circuit.ops, "z", circuit.params), params, x, group)
    return np.where(np.abs(z) > 1 - 1e-9, 0.0, weights)


def _jax_grads(model, params, x, weights):
    loss = lambda p: jnp.sum(weights * model.edge_values(p, x, "layer0"))
    return jax.grad(loss)(params)["layer0"]


def _jax_values_and_grads(model, params, x, weights):
    """Edge values and the gradient of sum(weights * values), from one forward pass."""
    values, vjp = jax.vjp(lambda p: model.edge_values(p, x, "layer0"), params)
    (grads,) = vjp(jnp.asarray(weights, values.dtype))
    return np.asarray(values), grads["layer0"]


#: an x-independent readout whose forward sweep folds the batch axis away (rz(x) on |0>, then
#: an upload just before the z readout): the adjoint once summed its cotangent over the batch
#: twice, giving B times the gradient of the per-edge matrices
FOLDED_BATCH = (Circuit((GateOp(Op.RZ, (Input(),)),
                         LoopOp("l", 0, 1, (GateOp(Op.U3, (ParamRef("phi", (LoopVar("l"), _c(0))), Input(),
                                                           ParamRef("phi", (LoopVar("l"), _c(1))))),))),
                        "z", (("theta", (1,)), ("phi", (1, 2)))), None, 0)


# 120 derandomised examples: every feature of the generator appears in them (each of the 14
# gates, x and the three kinds of data angle, reps 0..3, each of the 12 readout x grouping pairs)
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_ansatz())
@example(FOLDED_BATCH)
def test_random_ansatz_matches_numpy_statevector(example):
    circuit, group, seed = example
    model, params, x, weights = _setup(circuit, group, seed)
    want = _numpy_edges(circuit, params, x, group)
    if circuit.observable == "inspired":
        weights = _off_poles(circuit, params, x, group, weights)
    # op by op: the same kernel code as under jit without an XLA compilation per example
    # (test_random_ansatz_jit_matches_eager covers the jitted path)
    with jax.disable_jit():
        got, got_g = _jax_values_and_grads(model, params, x, weights)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    want_g = _numpy_grads(circuit, params, x, weights, group)
    for name, g in want_g.items():
        tol = 1e-6 if name in ("w", "b") else 1e-9
        np.testing.assert_allclose(np.asarray(got_g[name]), g, rtol=0, atol=tol, err_msg=name)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_ansatz())
def test_random_ansatz_jit_matches_eager(example):
    circuit, group, seed = example
    model, params, x, weights = _setup(circuit, group, seed)
    value_and_grad = jax.jit(jax.value_and_grad(lambda p: jnp.sum(weights * model.edge_values(p, x, "layer0"))))
    v, g = value_and_grad(params)
    with jax.disable_jit():
        v_eager, g_eager = jax.value_and_grad(lambda p: jnp.sum(weights * model.edge_values(p, x, "layer0")))(params)
    np.testing.assert_allclose(float(v), float(v_eager), rtol=0, atol=1e-12)
    for name in dict(circuit.params):
        np.testing.assert_allclose(np.asarray(g["layer0"][name]), np.asarray(g_eager["layer0"][name]),
                                   rtol=0, atol=1e-12, err_msg=name)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_ansatz())
def test_random_ansatz_float32(example):
    circuit, group, seed = example
    model, params, x, _ = _setup(circuit, group, seed, dtype="float32")
    with jax.disable_jit():
        got = model.edge_values(params, x, "layer0")
    assert got.dtype == jnp.float32
    want = _numpy_edges(circuit, params, x, group)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=1e-5)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_ansatz())
def test_random_ansatz_matches_pennylane(example):
    circuit, group, seed = example
    model, params, x, weights = _setup(circuit, group, seed)
    graph = network([I_W, O_W], circuit, base="none", group=group)
    ref = qvaf.compile(graph, backend="reference", dtype="float64", optimize=False)
    with jax.disable_jit():
        got, got_g = _jax_values_and_grads(model, params, x, weights)
    want = np.asarray(ref.edge_values(params, x, "layer0"))  # the reference's NumPy path
    want_g = _jax_grads(ref, params, x, weights)  # its jitted JAX path
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    for name in dict(circuit.params):
        np.testing.assert_allclose(np.asarray(got_g[name]), np.asarray(want_g[name]), rtol=0, atol=1e-10,
                                   err_msg=name)


def test_statevector_simulator_textbook_values():
    """The test's own simulator: a few closed forms it must reproduce."""
    ry = Circuit((GateOp(Op.RY, (Input(),)),), "z")
    x = np.linspace(-2, 2, 7)
    np.testing.assert_allclose(sv.expectation(ry, x, {}), np.cos(x), atol=1e-15)
    rx = Circuit((GateOp(Op.RX, (Input(),)),), "y")
    np.testing.assert_allclose(sv.expectation(rx, x, {}), -np.sin(x), atol=1e-15)
    hz = Circuit((GateOp(Op.H), GateOp(Op.RZ, (Input(),))), "y")
    np.testing.assert_allclose(sv.expectation(hz, x, {}), np.sin(x), atol=1e-15)
    insp = Circuit((GateOp(Op.RY, (Input(),)),), "inspired")
    np.testing.assert_allclose(sv.expectation(insp, x, {}), np.abs(np.cos(x / 2)) - np.abs(np.sin(x / 2)),
                               atol=1e-15)
