r"""The per-sample part of a kan layer's kernel, with a hand-written backward pass (adjoint sweep).

After the data-free stretches are fused (per-edge matrices ``M_l``, computed by ordinary JAX
code and differentiated by JAX), what remains per sample is

.. math::

    p_l = s_{l-1}, \qquad t_l = R_{a_l}(\varphi_l)\, p_l, \qquad s_l = M_l\, t_l,
    \qquad s_0 = v_0, \qquad y = (s_L)_{\mathrm{row}}

with ``v0`` the per-edge state before the first re-upload. The kernel takes the data angles
``phi_l`` and evaluates their cos/sin itself (:func:`._so3.sincos`), inside the sweeps.
Every ``M_l`` and ``R`` is a rotation, so the backward pass needs no stored states: it
starts from the final state ``s_L`` and the co-state ``lambda = e_row g`` and walks back,
undoing each step with the transposes while it accumulates:

.. math::

    t_l = M_l^T s_l, \quad \bar M_l = \sum_b \lambda\, t_l^T, \quad \lambda \leftarrow M_l^T \lambda,
    \quad \bar\varphi_l = \lambda_v t_u - \lambda_u t_v,
    \quad s_{l-1} = R(\varphi_l)^T t_l, \quad \lambda \leftarrow R(\varphi_l)^T \lambda,
    \quad \bar v_0 = \sum_b \lambda

where (u, v) is the plane the rotation turns (``t_u = c p_u - s p_v``, ``t_v = s p_u + c p_v``,
so ``dt_u / dphi = -t_v`` and ``dt_v / dphi = t_u``). The forward pass of a gradient keeps
only the final state (three arrays), the backward pass recomputes each cos/sin once.
Sums run over every axis an input was broadcast along: the batch for per-edge matrices, and
the output axis for data angles shared by all outputs. Letting JAX derive the backward pass
itself costs several times more here (XLA re-derives the forward chain inside the backward
fusions).

Matrices and vectors are symbolic (:mod:`._so3`): entries known at trace time stay Python
floats, so a fused block with zeros or ones costs only its non-trivial entries, forward and
backward. Being a ``jax.custom_vjp``, the kernel supports reverse mode (``grad``, ``vjp``,
``value_and_grad``) under ``jit`` and ``vmap``, not forward mode (``jvp``, ``jacfwd``).
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

from . import _so3

#: One custom-VJP core per kernel structure, shared by every network that has it. Key:
#: ``(v0 template, ((axis, matrix template, hoisted) per re-upload), readout row, dtype name)``, where
#: a template is the trace-time shape of a symbolic vector or matrix (which entries are the
#: constants 0/+-1/floats and which are arrays; see ``_so3.split``), not array values or
#: shapes. At most ``_CORES_LIMIT`` are kept; the oldest goes first.
_CORES: dict[tuple, object] = {}
_CORES_LIMIT = 256

#: the rotated plane (u, v) of each axis: t_u = c p_u - s p_v, t_v = s p_u + c p_v
_PLANE = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}


def _sum_to(g, shape, dtype):
    """Reduce a cotangent ``g`` to an input's ``shape`` (undo broadcasting)."""
    import jax.numpy as jnp

    if isinstance(g, float):
        return jnp.full(shape, g, dtype)
    g = jnp.broadcast_to(g, jnp.broadcast_shapes(g.shape, tuple(shape)))
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return jnp.broadcast_to(g, shape).astype(dtype)


def run(v0, uploads: Sequence[tuple], row: int, dtype):
    """The readout component ``row`` of the final state, differentiable by the adjoint sweep.

    Args:
        v0: symbolic state (3 entries) before the first re-upload.
        uploads: ``(axis, angle, M)`` per re-upload: the data angle array and the symbolic
            matrix applied after the rotation (None for none).
        row: 0, 1, 2 for the x, y, z component.
        dtype: the computation dtype.
    """
    v0_t, v0_arrays = _so3.split(v0)
    angles = tuple(angle for _, angle, _ in uploads)
    plan, m_arrays = [], []
    edges = max((a.shape[0] for a in (*v0_arrays, *angles) if a.ndim), default=1)
    for axis, angle, m in uploads:
        m_t, arrays = _so3.split(m)
        edges = max([edges, *(a.shape[0] for a in arrays if a.ndim)])
        plan.append([axis, m_t])
        m_arrays.append(tuple(arrays))
    for step, angle in zip(plan, angles):  # an angle shared by every output edge: hoist its cos/sin
        step.append(angle.ndim > 0 and angle.shape[0] == 1 and edges > 1)
    plan = [tuple(step) for step in plan]
    key = (v0_t, tuple(plan), row, str(dtype))
    core = _CORES.get(key)
    if core is None:
        while len(_CORES) >= _CORES_LIMIT:
            _CORES.pop(next(iter(_CORES)))
        core = _CORES[key] = _make_core(v0_t, tuple(plan), row, dtype)
    return core(tuple(v0_arrays), angles, tuple(m_arrays))


def _make_core(v0_t, plan, row, dtype):
    import jax
    import jax.numpy as jnp

    last = len(plan) - 1

    def trig(angle, hoisted):
        # a cos/sin shared by every output is computed once, as a block of its own, not
        # inside each consumer once per output
        return _so3.materialise(_so3.sincos, (angle,), angle) if hoisted else _so3.sincos(angle)

    def sweep(v0_arrays, angles, m_arrays, rows_last):
        r = _so3.join(v0_t, v0_arrays)
        for l, ((axis, m_t, hoisted), angle, arrays) in enumerate(zip(plan, angles, m_arrays)):
            c, s = trig(angle, hoisted)
            r = _so3.rotate(axis, r, c, s)
            m = _so3.join(m_t, arrays)
            if m is not None:
                rows = rows_last if l == last else (0, 1, 2)
                r = dict(zip(rows, _so3.apply(m, r, rows)))
                r = tuple(r.get(k, 0.0) for k in range(3))
        return r

    def value_of(r, v0_arrays, angles, m_arrays):
        """The readout, broadcast over every axis of every input. The forward sweep can fold
        an input's axes away (a z-rotation of |0>, a z-rotation just before a z readout), the
        backward sweep does not: its states carry every axis, and a cotangent without them
        would be summed over them twice."""
        shape = jnp.broadcast_shapes(*(jnp.shape(a) for a in (*v0_arrays, *angles, *sum(m_arrays, ()))))
        return jnp.broadcast_to(jnp.asarray(r[row], dtype), shape)

    @jax.custom_vjp
    def core(v0_arrays, angles, m_arrays):
        return value_of(sweep(v0_arrays, angles, m_arrays, (row,)), v0_arrays, angles, m_arrays)

    def core_fwd(v0_arrays, angles, m_arrays):
        probe = angles[0]
        final = _so3.materialise(lambda *a: sweep(*a, (0, 1, 2)), (v0_arrays, angles, m_arrays), probe)
        return value_of(final, v0_arrays, angles, m_arrays), (v0_arrays, angles, m_arrays, final)

    # Each step of the backward pass runs as a block of its own (_so3.materialise): the
    # state and co-state it returns are written once, instead of XLA re-deriving the chain
    # inside every consumer (a cost quadratic in the number of re-uploads).

    def backward_step(axis, m_t, hoisted, lam, state, angle, arrays):
        m = _so3.join(m_t, arrays)
        grads = [None] * len(arrays)
        t = state
        if m is not None:
            mt = _so3.transpose(m)
            t = _so3.apply(mt, state)
            for i in range(3):
                for j in range(3):
                    kind, slot = m_t[1][i][1][j]
                    if kind == "a":
                        grads[slot] = _sum_to(_so3.mul(lam[i], t[j]), arrays[slot].shape, dtype)
            lam = _so3.apply(mt, lam)
        u, v = _PLANE[axis]
        d_angle = _so3.add(_so3.mul(lam[v], t[u]), -_so3.mul(lam[u], t[v]))
        c, s = trig(angle, hoisted)
        state = _so3.rotate(axis, t, c, -s)  # R(phi)^T = R(-phi)
        lam = _so3.rotate(axis, lam, c, -s)
        return lam, state, _sum_to(d_angle, angle.shape, dtype), tuple(grads)

    def core_bwd(res, g):
        v0_arrays, angles, m_arrays, state = res
        lam = tuple(g if k == row else 0.0 for k in range(3))
        d_angles, d_mats = [None] * len(plan), [None] * len(plan)
        for l in range(last, -1, -1):
            lam, state, d_angles[l], d_mats[l] = _so3.materialise(
                partial(backward_step, *plan[l]), (lam, state, angles[l], m_arrays[l]), angles[l])
        d_v0 = [None] * len(v0_arrays)
        for k, (kind, slot) in enumerate(v0_t[1]):
            if kind == "a":
                d_v0[slot] = _sum_to(lam[k], v0_arrays[slot].shape, dtype)
        return tuple(d_v0), tuple(d_angles), tuple(d_mats)

    core.defvjp(core_fwd, core_bwd)
    return core
