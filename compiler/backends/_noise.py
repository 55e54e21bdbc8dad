r"""The JAX backend under noise and finite shots.

**Noise.** Every channel of :mod:`qvaf.compiler.noise` is affine on the Bloch vector, so an
edge's circuit with a noise step after every gate (after every data re-upload, or at every
``noise`` statement of the spec) is still

.. math::

    r_{\text{out}} = A_L\, R(\varphi_L(x))\, A_{L-1} \cdots R(\varphi_1(x))\, A_0\, e_z,
    \qquad A_k: r \mapsto M_k r + c_k

with each affine ``A_k`` fusing a data-free stretch of gates and the noise steps after them
(per edge, computed once per call), and the data rotations ``R`` applied per sample. The
readout error then maps the measured component affinely. The gates are those of the graph
the functions are built from, one by one as :func:`~._common.flatten_ops` lists them (a
``u3`` is one gate): built from the network as written (``Compiled.with_noise`` does that)
they are exactly the gates of the ``written`` level of the QASM emitter.

Gradients: the kernel is plain JAX (affine maps and rotations), differentiated by JAX's own
autodiff, forward and reverse mode; exact like the noise-free kernel's adjoint sweep, slower.

**Shots.** A Z measurement of a state with ``<Z> = z`` is Bernoulli with ``p = (1 + z)/2``;
``S`` shots estimate ``z`` by ``2 K / S - 1``, ``K ~ Binomial(S, p)``. Each kan layer samples
from ``fold_in(key, k)`` (k = its position among the kan layers), independently per sample
and per circuit: per edge, except that edges running the same circuit on the same input
(``group``: edge (o, i) depends on ``i mod g`` and ``x_i`` only) share one estimate, as on
hardware, where :mod:`qvaf.runtime.hardware.plan` measures such a circuit once. Packing
circuits into one program changes nothing: its qubits never interact, so their outcomes are
independent.

Under autodiff the sampled value is used forward and the gradient of the expectation
backward (straight-through: ``z + stop_gradient(estimate - z)``); see docs/noise.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..expr import depends_on_input, evaluate
from ..ir import KanNode, NoiseOp, Op
from . import _common, _so3
from ._common import BackendError

_READ_ROW = {"x": 0, "y": 1, "z": 2}
_IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))




def gate_rotations(gate) -> list[tuple[str, object]]:
    """The rotations of one gate, in order: ``("fixed", matrix)`` or ``(axis, angle)``.

    ``phase(l)`` is RZ(l); ``u3(t, p, l)`` is RZ(p) RY(t) RZ(l), applied RZ(l) first.
    """
    if gate.op in _so3.FIXED_GATES:
        return [("fixed", _so3.FIXED_GATES[gate.op])]
    if gate.op in (Op.RX, Op.RY, Op.RZ):
        return [(gate.op.value[1], gate.angles[0])]
    if gate.op == Op.PHASE:
        return [("z", gate.angles[0])]
    if gate.op == Op.U3:
        theta, phi, lam = gate.angles
        return [("z", lam), ("y", theta), ("z", phi)]
    raise BackendError(f"the jax backend cannot run gate {gate.op.value!r}")


# ----------------------------------------------------------------------------- affine algebra


def _compose(outer, inner):
    """``outer o inner`` of affine maps ``(M, c)`` (None is the identity)."""
    if inner is None:
        return outer
    if outer is None:
        return inner
    m2, c2 = outer
    m1, c1 = inner
    return _so3.matmul(m2, m1), tuple(_so3.add(a, b) for a, b in zip(_so3.apply(m2, c1), c2))


def _apply(aff, r):
    if aff is None:
        return r
    m, c = aff
    return tuple(_so3.add(a, b) for a, b in zip(_so3.apply(m, r), c))


def _linear(m):
    return m, (0.0, 0.0, 0.0)


def _noise_step(noise):
    dx, dy, dz, cz = noise.step_map()
    return ((dx, 0.0, 0.0), (0.0, dy, 0.0), (0.0, 0.0, dz)), (0.0, 0.0, cz)


def _segments(kernel, p, xe, dtype, noise):
    """``(v0, uploads, tail)``: the per-edge state before the first re-upload, one
    ``(axis, cos, sin, A)`` per re-upload with ``A`` the affine map after it (noise
    included), and the affine map of a circuit without re-uploads in ``tail``.

    A noise step follows every gate (``where="gate"``), every gate that reads ``x``
    (``"upload"``) or stands at every ``noise`` mark (``"spec"``); marks are skipped otherwise."""
    import jax.numpy as jnp

    constants = kernel.constant_arrays()
    step = _noise_step(noise) if noise.has_channel else None
    aff = None
    v0 = (0.0, 0.0, 1.0)
    uploads: list[list] = []
    for gate, env in _common.flatten_ops(kernel, marks=True):
        if isinstance(gate, NoiseOp):
            if step is not None and noise.where == "spec":
                aff = _compose(step, aff)
            continue
        uploaded = False
        for axis, angle in gate_rotations(gate):
            if axis == "fixed":
                aff = _compose(_linear(_so3.const_matrix(angle)), aff)
                continue
            if _common.is_constant(angle, constants):
                value = float(evaluate(angle, None, constants, np, env))
                aff = _compose(_linear(_so3.const_matrix(_so3.rotation_np(axis, value))), aff)
                continue
            a = jnp.asarray(evaluate(angle, xe, p, jnp, env), dtype)
            c, s = jnp.cos(a), jnp.sin(a)
            if not depends_on_input(angle):
                aff = _compose(_linear(_so3.rot_matrix(axis, c, s)), aff)
                continue
            uploaded = True
            if uploads:
                uploads[-1][3] = aff
            else:
                v0 = _apply(aff, v0)
            aff = None
            uploads.append([axis, c, s, None])
        if step is not None and (noise.where == "gate" or noise.where == "upload" and uploaded):
            aff = _compose(step, aff)
    if uploads:
        uploads[-1][3] = aff
        aff = None
    return v0, tuple(tuple(u) for u in uploads), aff


def noisy_edge_values(node: KanNode, layer_params, x, dtype, noise):
    """The measured expectation of every edge under ``noise``, ``[B, O', in]`` (``O' = 1``
    when every output edge of an input runs the same circuit, else ``out``)."""
    import jax.numpy as jnp

    observable = node.kernel.observable
    if observable not in _READ_ROW:
        raise BackendError(f"{node.name}: measure {observable} is not an observable; noise and shots apply to "
                           "measure z, x or y only")
    p = _common.edge_params(node, layer_params, jnp, dtype)
    xe = x[:, None, :]
    probe = next((a for a in (*layer_params.values(), x) if a.size > 0), None)
    v0, uploads, tail = _so3.materialise(lambda p_, xe_: _segments(node.kernel, p_, xe_, dtype, noise), (p, xe), probe)
    row = _READ_ROW[observable]
    r = v0
    for axis, c, s, aff in uploads:
        r = _apply(aff, _so3.rotate(axis, r, c, s))
    r = _apply(tail, r)
    value = jnp.asarray(r[row], dtype)
    a, b = noise.readout_map()
    if (a, b) != (1.0, 0.0):
        value = value * jnp.asarray(a, dtype) + jnp.asarray(b, dtype)
    width = 1 if node.group is not None else node.out_width
    return jnp.broadcast_to(value, jnp.broadcast_shapes(value.shape, (x.shape[0], width, node.in_width)))


# ----------------------------------------------------------------------------- shots


def sample_expectation(key, z, shots: int, dtype):
    """``2 K / S - 1`` with ``K ~ Binomial(S, (1 + z) / 2)``, elementwise; straight-through:
    the value is the sample, the derivative that of ``z``."""
    import jax
    import jax.numpy as jnp

    prob = jnp.clip((1 + jax.lax.stop_gradient(z)) / 2, 0, 1)
    k = jax.random.binomial(key, jnp.asarray(shots, dtype), prob, shape=z.shape, dtype=dtype)
    estimate = 2 * k / jnp.asarray(shots, dtype) - 1
    return z + jax.lax.stop_gradient(estimate - z)


def sampled(edge_fn: Callable, key, shots: int | None, dtype) -> Callable:
    """``edge_fn(node, layer, h) -> [B, out, in]`` with each kan layer's values replaced by
    their ``shots``-shot estimates (unchanged for ``shots=None``); see the module docstring."""
    if shots is None:
        return edge_fn
    import jax
    import jax.numpy as jnp

    calls = [0]

    def fn(node, layer, h):
        if node.kernel.observable not in _READ_ROW:
            raise BackendError(f"{node.name}: measure {node.kernel.observable} is not an observable: no shots "
                               "estimate it; use measure z (or x, y)")
        phi = edge_fn(node, layer, h)
        k = jax.random.fold_in(key, calls[0])
        calls[0] += 1
        shared = phi[:, :1, :] if node.group is not None else phi
        est = sample_expectation(k, shared, shots, dtype)
        return jnp.broadcast_to(est, phi.shape) if node.group is not None else est

    return fn


# ----------------------------------------------------------------------------- network functions


@dataclass(frozen=True)
class NoisyFunctions:
    """The jitted network functions of one graph under one noise model (as the JAX backend's).

    ``apply(params, x, key=None, shots=None)`` -> [B, out]; ``layer_inputs(params, x)``;
    ``edge_values(params, x, layer_id)`` -> [B, out, in] (the noisy expectations).
    """

    apply: Callable
    layer_inputs: Callable
    edge_values: Callable
    noise: object


_CACHE: dict[tuple, NoisyFunctions] = {}
_CACHE_LIMIT = 64


def build(graph, dtype: str, noise) -> NoisyFunctions:
    """Jitted functions for ``graph`` under ``noise``, cached by (structure, dtype, noise)."""
    if dtype not in _common.DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}; expected one of {', '.join(_common.DTYPES)}")
    return _common.cached(_CACHE, _CACHE_LIMIT, (_common.structural_key(graph), dtype, noise),
                          lambda: _build(graph, dtype, noise))


def _build(graph, dtype: str, noise) -> NoisyFunctions:
    import jax.numpy as jnp

    jdtype = jnp.dtype(dtype)

    def edge_fn(node, layer, h):
        phi = noisy_edge_values(node, layer, h, jdtype, noise)
        return jnp.broadcast_to(phi, (h.shape[0], node.out_width, node.in_width))

    return NoisyFunctions(**_common.network_functions(
        graph, jdtype, edge_fn, lambda fn, key, shots: sampled(fn, key, shots, jdtype)), noise=noise)
