"""The JAX backend: closed-form batched kernels on the real Bloch vector (the training path).

A single-qubit pure state is a unit vector r in R^3 and every gate, up to global phase, is a
rotation in SO(3)::

    RX(t) = [[1, 0, 0], [0, c, -s], [0, s, c]]     c = cos t, s = sin t
    RY(t) = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    RZ(t) = [[c, -s, 0], [s, c, 0], [0, 0, 1]]

(RZ(t) = exp(-i t Z / 2) turns the Bloch vector about z by t, right-hand rule.) An edge's
circuit is therefore

    r_out = M_L R(phi_L(x)) M_{L-1} ... R(phi_1(x)) M_0 e_z

where every ``M_k`` fuses a data-free stretch of gates (a 3x3 matrix per edge, computed once
per call, never per sample) and every ``R(phi_l(x))`` is a data-dependent rotation applied
per sample with one cos/sin of its angle array. The leading ``M_0 e_z`` is a per-edge vector.
Shapes broadcast: a data angle that reads no per-edge parameter (the reference's fixed
pre-activations, or grouped ones) is evaluated on ``[B, 1, in]`` and its cos/sin is shared
by every output edge.

Readouts: ``z``, ``x``, ``y`` pick one component of r_out; ``inspired`` is the reference's
non-physical ``|alpha| - |beta| = sqrt((1 + z) / 2) - sqrt((1 - z) / 2)``.

Jitted functions are cached per (graph structure, dtype): compiling the same spec twice does
not retrace, and new parameter values never recompile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..expr import depends_on_input, evaluate, param_refs
from ..ir import KanNode, Op
from . import _adjoint, _common, _fourier, _noise, _so3
from ._common import BackendError

NAME = "jax"

_TRACES = {"count": 0}
#: The jitted functions of every graph built, shared by structurally equal graphs. Key:
#: ``(_common.structural_key(graph), dtype name)``: the graph's node records in chain order and
#: its parameter table, so equal specs share one compilation. At most ``_CACHE_LIMIT`` are
#: kept; the oldest goes first.
_CACHE: dict[tuple, "JaxFunctions"] = {}
_CACHE_LIMIT = 256


def trace_count() -> int:
    """How many times a network function of this backend has been traced (for tests)."""
    return _TRACES["count"]


# ----------------------------------------------------------------------------- gate catalogue
# (the fixed gates' SO(3) matrices live in _so3.FIXED_GATES, shared with the noisy kernel)


@dataclass(frozen=True)
class _Fixed:
    """A constant 3x3 rotation."""

    matrix: np.ndarray


@dataclass(frozen=True)
class _Rot:
    """A rotation about ``axis`` by the expression ``angle`` (loop variables bound in ``env``)."""

    axis: str
    angle: object
    env: dict


def expand(circuit) -> list:
    """The circuit as a flat list of :class:`_Fixed` and :class:`_Rot` steps, in order.

    ``phase(l)`` is RZ(l) and ``u3(t, p, l)`` is RZ(p) RY(t) RZ(l) (applied RZ(l) first), both
    up to global phase. Rotations by compile-time constants become :class:`_Fixed`.
    """
    constants = circuit.constant_arrays()
    steps = []
    for gate, env in _common.flatten_ops(circuit):
        if gate.op in _so3.FIXED_GATES:
            steps.append(_Fixed(_so3.FIXED_GATES[gate.op]))
            continue
        if gate.op in (Op.RX, Op.RY, Op.RZ):
            rots = [(gate.op.value[1], gate.angles[0])]
        elif gate.op == Op.PHASE:
            rots = [("z", gate.angles[0])]
        elif gate.op == Op.U3:
            theta, phi, lam = gate.angles
            rots = [("z", lam), ("y", theta), ("z", phi)]
        else:
            raise BackendError(f"the jax backend cannot run gate {gate.op.value!r}")
        for axis, angle in rots:
            if _common.is_constant(angle, constants):
                value = float(evaluate(angle, None, constants, np, env))
                steps.append(_Fixed(_so3.rotation_np(axis, value)))
            else:
                steps.append(_Rot(axis, angle, env))
    return steps


# ----------------------------------------------------------------------------- the kernel


_READ_ROW = {"x": 0, "y": 1, "z": 2, "inspired": 2}


def _segments(steps, p, dtype):
    """Fuse the data-free stretches of a circuit, per edge.

    Returns ``(v0, plan, tail)``: the symbolic state before the first re-upload, one
    ``(axis, M)`` per re-upload (``M`` the fused matrix after it, None when the next gate is
    another re-upload) and, for a circuit without re-uploads, the matrix of the whole
    circuit in ``tail``. Data angles are not evaluated here (see :func:`_data_trig`).
    """
    import jax.numpy as jnp

    m = None  # pending data-free rotation (symbolic 3x3), None = identity
    v0 = (0.0, 0.0, 1.0)
    plan = []
    for step in steps:
        if isinstance(step, _Fixed):
            mat = _so3.const_matrix(step.matrix)
            m = mat if m is None else _so3.matmul(mat, m)
            continue
        if not depends_on_input(step.angle):
            # per edge, not per sample: XLA's own cos/sin (one op each; the fused float32
            # polynomial of _so3.sincos is for the per-sample angles, where XLA's does not
            # vectorise, and copied into every consumer here it only makes the program larger)
            angle = jnp.asarray(evaluate(step.angle, None, p, jnp, step.env), dtype)
            c, s = jnp.cos(angle), jnp.sin(angle)
            mat = _so3.rot_matrix(step.axis, c, s)
            m = mat if m is None else _so3.matmul(mat, m)
            continue
        # a data re-upload closes the pending data-free segment
        if plan:
            plan[-1][1] = m
        elif m is not None:
            v0 = _so3.apply(m, v0)
        m = None
        plan.append([step.axis, None])
    if plan:
        plan[-1][1] = m
        m = None
    return v0, tuple(tuple(u) for u in plan), m


def _data_steps(steps):
    return [s for s in steps if isinstance(s, _Rot) and depends_on_input(s.angle)]


def _data_angles(steps, p, xe, dtype):
    """Every re-upload's data angle, in order (``[B, O' or 1, in]``)."""
    import jax.numpy as jnp

    return [jnp.asarray(evaluate(step.angle, xe, p, jnp, step.env), dtype) for step in _data_steps(steps)]


def _uploads(plan, angles):
    return tuple((axis, angle, m) for (axis, m), angle in zip(plan, angles))


def edge_values(node: KanNode, layer_params, x, dtype):
    """Raw activations ``phi_oi(x_bi)`` of every edge of a kan layer: ``[B, out, in]``.

    Args:
        node: the kan layer record.
        layer_params: that layer's arrays (already cast to ``dtype``).
        x: the layer input ``[B, in]``.
        dtype: a jnp dtype.
    """
    import jax.numpy as jnp

    steps = expand(node.kernel)
    p = _common.edge_params(node, layer_params, jnp, dtype)
    # the kernel runs batch-last, [O', in, B]: its per-edge reductions over the batch are then
    # over the contiguous axis (several times faster on CPU than over the leading one)
    per_edge = {name for name, _ in node.kernel.params}
    p = {k: (jnp.expand_dims(v, 2) if k in per_edge else v) for k, v in p.items()}  # [O', in, 1, ...]
    xe = x.T[None]  # [1, in, B]: data angles without per-edge parameters stay this shape
    probe = next((a for a in (*layer_params.values(), x) if a.size > 0), None)
    v0, plan, tail = _so3.materialise(lambda p_: _segments(steps, p_, dtype), (p,), probe)
    uploads = _uploads(plan, _data_angles(steps, p, xe, dtype))

    row = _READ_ROW[node.kernel.observable]
    if uploads:
        value = _adjoint.run(v0, uploads, row, dtype)
    else:  # no data re-upload at all: a per-edge constant
        (value,) = _so3.apply(tail, v0, (row,)) if tail is not None else (v0[row],)
    value = jnp.broadcast_to(jnp.asarray(value, dtype), (node.out_width, node.in_width, x.shape[0]))
    value = jnp.transpose(value, (2, 0, 1))
    if node.kernel.observable == "inspired":
        # |alpha| - |beta| = sqrt((1 + z) / 2) - sqrt((1 - z) / 2); clamped at the poles so a
        # gradient that is zero there stays finite
        tiny = jnp.finfo(dtype).tiny
        value = jnp.sqrt(jnp.maximum((1 + value) / 2, tiny)) - jnp.sqrt(jnp.maximum((1 - value) / 2, tiny))
    return value


def shared_encoding(node: KanNode, steps):
    """The one data re-upload step whose angle every re-upload of ``node`` shares, with the
    number of re-uploads, when the layer has a Fourier form (:mod:`._fourier`): a linear
    readout, at least one re-upload, every re-upload's angle the same expression (same loop
    bindings) reading no per-edge parameter. Otherwise None."""
    if node.kernel.observable not in ("x", "y", "z"):
        return None
    uploads = _data_steps(steps)
    if not uploads:
        return None
    first = uploads[0]
    constants = node.kernel.constant_arrays()
    if any(u.angle != first.angle or u.env != first.env for u in uploads[1:]):
        return None
    if any(ref.name not in constants for ref in param_refs(first.angle)):
        return None
    return first, len(uploads)


def at_nodes(v0, plan, degree: int, row: int, dtype):
    """The readout of the circuit at the Fourier nodes ``t_j`` (:func:`._fourier.nodes`) for
    every data angle: ``[nodes, O' or 1, in or 1]``.

    The nodes are constants, so their cos/sin are too (computed in float64 at trace time), and
    what remains is a short chain of per-edge products on ``[nodes, O', in]`` arrays that JAX
    differentiates itself: the adjoint kernel (:mod:`._adjoint`) is for per-sample arrays, and
    at this size its recomputed cos/sin only make the program larger.
    """
    import jax.numpy as jnp

    t = _fourier.nodes(degree)[:, None, None]
    c, s = jnp.asarray(np.cos(t), dtype), jnp.asarray(np.sin(t), dtype)
    r = v0
    for axis, m in plan:
        r = _so3.rotate(axis, r, c, s)
        if m is not None:
            r = _so3.apply(m, r)
    return r[row]


def layer_output(node: KanNode, layer_params, x, dtype):
    """A kan layer's output ``[B, out]`` through the Fourier form of its edges
    (:mod:`._fourier`), or None where the layer has none (its edges are then evaluated one by
    one by :func:`edge_values`).
    """
    import jax.numpy as jnp

    try:
        steps = expand(node.kernel)
    except BackendError:  # gates this kernel does not run: another kernel's business
        return None
    shared = shared_encoding(node, steps)
    if shared is None:
        return None
    encoding, degree = shared
    p = _common.edge_params(node, layer_params, jnp, dtype)
    # the circuit at the 2L + 1 nodes, per edge: [nodes, O', in]
    v0, plan, _ = _segments(steps, p, dtype)
    values = jnp.asarray(at_nodes(v0, plan, degree, _READ_ROW[node.kernel.observable], dtype), dtype)
    coeffs = jnp.einsum("kj,joi->koi", jnp.asarray(_fourier.dft_matrix(degree), dtype), values)
    coeffs = jnp.broadcast_to(coeffs, (coeffs.shape[0], node.out_width, node.in_width))
    g = jnp.asarray(evaluate(encoding.angle, x, p, jnp, encoding.env), dtype)
    g = jnp.broadcast_to(g, x.shape)
    feats = _fourier.harmonics(g, degree, jnp, _so3.sincos)
    return _fourier.combine(node, layer_params, x, feats, coeffs, jnp)


# ----------------------------------------------------------------------------- network functions


@dataclass(frozen=True)
class JaxFunctions:
    """The jitted network functions of one compiled graph.

    ``apply(params, x, key=None, shots=None)`` -> [B, out]; ``layer_inputs(params, x)`` -> {layer_id: [B, width]};
    ``edge_values(params, x, layer_id)`` -> [B, out, in] (``layer_id`` static).
    """

    apply: Callable
    layer_inputs: Callable
    edge_values: Callable


def build(graph, dtype: str, noise=None) -> JaxFunctions:
    """Jitted functions for ``graph`` in ``dtype`` ("float32" or "float64"), cached by structure.

    ``apply`` also takes ``key`` and ``shots`` (finite-shot estimates, :mod:`._noise`). With a
    :class:`~qvaf.compiler.noise.NoiseModel` the functions are the noisy kernel's (:mod:`._noise`).
    """
    if noise is not None:
        return _noise.build(graph, dtype, noise)
    if dtype not in _common.DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}; expected one of {', '.join(_common.DTYPES)}")
    return _common.cached(_CACHE, _CACHE_LIMIT, (_common.structural_key(graph), dtype),
                          lambda: _build(graph, dtype))


def _build(graph, dtype: str) -> JaxFunctions:
    import jax.numpy as jnp

    jdtype = jnp.dtype(dtype)

    def edge_fn(node, layer, h):
        return edge_values(node, layer, h, jdtype)

    def layer_fn(node, layer, h):
        return layer_output(node, layer, h, jdtype)

    def count():
        _TRACES["count"] += 1

    return JaxFunctions(**_common.network_functions(
        graph, jdtype, edge_fn, lambda fn, key, shots: _noise.sampled(fn, key, shots, jdtype),
        layer_fn=layer_fn, on_trace=count))
