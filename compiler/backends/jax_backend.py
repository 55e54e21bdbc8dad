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

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..expr import depends_on_input, evaluate
from ..ir import KanNode, Op
from . import _common
from ._common import BackendError

NAME = "jax"

_TRACES = {"count": 0}
_CACHE: dict[tuple, "JaxFunctions"] = {}
_CACHE_LIMIT = 256


def trace_count() -> int:
    """How many times a network function of this backend has been traced (for tests)."""
    return _TRACES["count"]


# ----------------------------------------------------------------------------- gate catalogue


def _rot_np(axis: str, t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


#: SO(3) action of the fixed named gates (global phase dropped).
FIXED_GATES = {
    Op.H: np.array([[0.0, 0, 1], [0, -1, 0], [1, 0, 0]]),  # x <-> z, y -> -y
    Op.X: np.diag([1.0, -1, -1]),
    Op.Y: np.diag([-1.0, 1, -1]),
    Op.Z: np.diag([-1.0, -1, 1]),
    Op.S: _rot_np("z", math.pi / 2),
    Op.SDG: _rot_np("z", -math.pi / 2),
    Op.T: _rot_np("z", math.pi / 4),
    Op.TDG: _rot_np("z", -math.pi / 4),
    Op.SX: _rot_np("x", math.pi / 2),
}


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
        if gate.op in FIXED_GATES:
            steps.append(_Fixed(FIXED_GATES[gate.op]))
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
                steps.append(_Fixed(_rot_np(axis, value)))
            else:
                steps.append(_Rot(axis, angle, env))
    return steps


# ----------------------------------------------------------------------------- the kernel


def _rot_matrix(axis: str, c, s, jnp):
    """Stack ``[..., 3, 3]`` rotation matrices from cos/sin arrays of any shape."""
    one = jnp.ones_like(c)
    zero = jnp.zeros_like(c)
    if axis == "x":
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == "y":
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def _rotate(axis: str, r, c, s):
    """Rotate Bloch components ``r = (rx, ry, rz)`` (broadcastable arrays) about ``axis``."""
    rx, ry, rz = r
    if axis == "x":
        return rx, c * ry - s * rz, s * ry + c * rz
    if axis == "y":
        return c * rx + s * rz, ry, c * rz - s * rx
    return c * rx - s * ry, s * rx + c * ry, rz


def _apply_rows(m, r, rows):
    """Components ``rows`` of ``m @ r`` for a matrix ``m`` [..., 3, 3] and components ``r``."""
    return tuple(m[..., k, 0] * r[0] + m[..., k, 1] * r[1] + m[..., k, 2] * r[2] for k in rows)


_READ_ROW = {"x": 0, "y": 1, "z": 2, "inspired": 2}


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
    xe = x[:, None, :]  # [B, 1, in]: data angles without per-edge parameters stay this shape

    m = None  # pending data-free rotation, [..., 3, 3]
    r = None  # batched Bloch components, None while still |0> (then m @ e_z is per edge)
    for step in steps:
        if isinstance(step, _Fixed):
            mat = jnp.asarray(step.matrix, dtype)
            m = mat if m is None else mat @ m
            continue
        angle = jnp.asarray(evaluate(step.angle, xe, p, jnp, step.env), dtype)
        if not depends_on_input(step.angle):
            mat = _rot_matrix(step.axis, jnp.cos(angle), jnp.sin(angle), jnp)
            m = mat if m is None else mat @ m
            continue
        # a data re-upload: flush the pending segment, then rotate per sample
        if r is None:
            if m is None:
                r = (jnp.zeros((), dtype), jnp.zeros((), dtype), jnp.ones((), dtype))
            else:
                r = (m[..., 0, 2], m[..., 1, 2], m[..., 2, 2])
        elif m is not None:
            r = _apply_rows(m, r, (0, 1, 2))
        m = None
        r = _rotate(step.axis, r, jnp.cos(angle), jnp.sin(angle))

    row = _READ_ROW[node.kernel.observable]
    if r is None:  # no data re-upload at all: a per-edge constant
        value = jnp.ones((), dtype) if row == 2 else jnp.zeros((), dtype)
        if m is not None:
            value = m[..., row, 2]
    elif m is None:
        value = r[row]
    else:
        (value,) = _apply_rows(m, r, (row,))
    if node.kernel.observable == "inspired":
        half = jnp.asarray(0.5, dtype)
        value = jnp.sqrt(jnp.maximum(half * (1 + value), 0)) - jnp.sqrt(jnp.maximum(half * (1 - value), 0))
    shape = (x.shape[0], node.out_width, node.in_width)
    return jnp.broadcast_to(value.astype(dtype), shape)


# ----------------------------------------------------------------------------- network functions


@dataclass(frozen=True)
class JaxFunctions:
    """The jitted network functions of one compiled graph.

    ``apply(params, x)`` -> [B, out]; ``layer_inputs(params, x)`` -> {layer_id: [B, width]};
    ``edge_values(params, x, layer_id)`` -> [B, out, in] (``layer_id`` static).
    """

    apply: Callable
    layer_inputs: Callable
    edge_values: Callable


def _prepare(table, in_width, dtype, params, x):
    import jax
    import jax.numpy as jnp

    _common.check_params(table, params)
    x = jnp.asarray(x)
    single = x.ndim == 1
    if single:
        x = x[None]
    _common.check_input(x, in_width)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    return params, x.astype(dtype), single


def build(graph, dtype: str) -> JaxFunctions:
    """Jitted functions for ``graph`` in ``dtype`` ("float32" or "float64"), cached by structure."""
    if dtype not in _common.DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}; expected one of {', '.join(_common.DTYPES)}")
    key = (_common.structural_key(graph), dtype)
    try:
        hit = _CACHE.get(key)
    except TypeError:  # an unhashable record field: build without caching
        hit, key = None, None
    if hit is not None:
        return hit

    import jax
    import jax.numpy as jnp

    order = _common.layer_order(graph)
    table = tuple(graph.graph.get("params", ()))
    jdtype = jnp.dtype(dtype)
    in_width = order[0][1].width
    kan_ids = _common.kan_layer_ids(order)

    def edge_fn(node, layer, h):
        return edge_values(node, layer, h, jdtype)

    def apply(params, x):
        _TRACES["count"] += 1
        params, x, single = _prepare(table, in_width, jdtype, params, x)
        y = _common.forward(order, params, x, edge_fn, jnp)
        return y[0] if single else y

    def layer_inputs(params, x):
        _TRACES["count"] += 1
        params, x, single = _prepare(table, in_width, jdtype, params, x)
        out = {}
        _common.forward(order, params, x, edge_fn, jnp, collect=out)
        return {k: (v[0] if single else v) for k, v in out.items()}

    def edges(params, x, layer_id):
        _TRACES["count"] += 1
        if layer_id not in kan_ids:
            raise BackendError(f"{layer_id!r} is not a kan layer; kan layers: {', '.join(kan_ids) or 'none'}")
        params, x, single = _prepare(table, in_width, jdtype, params, x)
        phi = _common.forward(order, params, x, edge_fn, jnp, stop_at=layer_id)
        return phi[0] if single else phi

    fns = JaxFunctions(
        apply=jax.jit(apply),
        layer_inputs=jax.jit(layer_inputs),
        edge_values=jax.jit(edges, static_argnames="layer_id"),
    )
    if key is not None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = fns
    return fns
