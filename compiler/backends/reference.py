r"""The reference backend: PennyLane ``default.qubit`` and the layer formula written out, edge
by edge. Slow and obvious by design: a second opinion on the JAX backend.

It shares no numerics with the JAX backend. Each kan layer's circuit is built gate by gate
from the IR as PennyLane operations (``qml.Hadamard``, ``qml.RZ``, ``qml.U3``, ...) acting on a
statevector and read out with ``qml.expval``; every edge's angles are evaluated from that
edge's own parameters (with ``group g``, edge (o, i) reads row ``i mod g``), and the edges
and samples of a layer run as one broadcast execution. The layer output is then summed edge by
edge, as DESIGN.md section 3 writes it, term by term on edge-first arrays:

.. math::

    y_{bj} = \sum_i m_{ji} \left[ (\varphi_{ji}(x_{bi}) + c_{ji})\, a_{ji} + \beta_{ji}\, \mathrm{base}(x_{bi}) \right]

with its own base functions (SciPy's ``erf`` for the exact GELU). ``inspired`` is derived
from <Z> as ``sqrt((1 + z) / 2) - sqrt((1 - z) / 2)``.

It computes in float64 only, on one of two array paths chosen by the inputs:

* concrete arrays (NumPy, or JAX arrays outside any transformation): NumPy float64, which
  needs no JAX 64-bit mode; the results are NumPy arrays;
* arrays traced by a JAX transformation (``jax.grad``, ``jax.vjp``, ``jax.jit``): the same
  formulas in ``jax.numpy`` with PennyLane's JAX interface (backpropagation through the
  statevector), jitted as one program, so tests can differentiate it. This path needs JAX's
  64-bit mode on and says so otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..expr import evaluate
from ..ir import InputNode, KanNode, LinearNode, Op, OutputNode
from . import _common
from ._common import BackendError

NAME = "reference"
DTYPES = ("float64",)

_DEVICE = {}


def _device():
    import pennylane as qml

    if "dev" not in _DEVICE:
        _DEVICE["dev"] = qml.device("default.qubit", wires=1)
    return _DEVICE["dev"]


def gate_table():
    """IR gate -> a function that queues the PennyLane operation on wire 0 (also the
    catalyst backend's gate catalogue)."""
    import pennylane as qml

    return {
        Op.H: lambda: qml.Hadamard(wires=0),
        Op.X: lambda: qml.PauliX(wires=0),
        Op.Y: lambda: qml.PauliY(wires=0),
        Op.Z: lambda: qml.PauliZ(wires=0),
        Op.S: lambda: qml.S(wires=0),
        Op.SDG: lambda: qml.adjoint(qml.S(wires=0)),
        Op.T: lambda: qml.T(wires=0),
        Op.TDG: lambda: qml.adjoint(qml.T(wires=0)),
        Op.SX: lambda: qml.SX(wires=0),
        Op.PHASE: lambda a: qml.PhaseShift(a, wires=0),
        Op.RX: lambda a: qml.RX(a, wires=0),
        Op.RY: lambda a: qml.RY(a, wires=0),
        Op.RZ: lambda a: qml.RZ(a, wires=0),
        Op.U3: lambda t, p, l: qml.U3(t, p, l, wires=0),
    }


# ----------------------------------------------------------------------------- array paths


class _Numpy:
    """The concrete path: NumPy float64."""

    np = np

    @staticmethod
    def asarray(a):
        return np.asarray(a, np.float64)

    @staticmethod
    def erf(v):
        from scipy.special import erf

        return erf(v)


class _Jax:
    """The traced path: jax.numpy in float64."""

    def __init__(self):
        import jax.numpy as jnp

        self.np = jnp

    def asarray(self, a):
        return self.np.asarray(a, self.np.float64)

    @staticmethod
    def erf(v):
        from jax.scipy.special import erf

        return erf(v)


def _path(params, x):
    """The array path for these inputs (traced ones need JAX's 64-bit mode)."""
    import jax

    leaves = jax.tree_util.tree_leaves((params, x))
    if not any(isinstance(a, jax.core.Tracer) for a in leaves):
        return _Numpy()
    if not jax.config.jax_enable_x64:
        from ..options import X64_FIX

        raise BackendError(f"differentiating the reference backend runs it in JAX float64, which needs 64-bit "
                           f"mode: {X64_FIX}")
    return _Jax()


def _base(name: str, ops):
    """``base(v)`` of the residual branch, written out (None for ``base none``)."""
    xp = ops.np
    table = {
        "silu": lambda v: v / (1.0 + xp.exp(-v)),
        "gelu": lambda v: 0.5 * v * (1.0 + ops.erf(v / math.sqrt(2.0))),
        "tanh": lambda v: xp.tanh(v),
        "relu": lambda v: xp.where(v > 0, v, 0.0 * v),
        "identity": lambda v: v,
        "none": None,
    }
    if name not in table:
        raise BackendError(f"the reference backend has no base function {name!r}")
    return table[name]


# ----------------------------------------------------------------------------- one kan layer


def _edge_rows(node: KanNode) -> tuple[list[tuple[int, int]], list[tuple[int, ...]]]:
    """Every edge (o, i) of the layer in edge-major order, and the row of the per-edge arrays
    it reads: (o, i), or (i mod g,) with ``group g``."""
    edges = [(o, i) for o in range(node.out_width) for i in range(node.in_width)]
    rows = [(i % node.group,) if node.group is not None else (o, i) for o, i in edges]
    return edges, rows


def edge_values(node: KanNode, layer, x, ops):
    """Raw activations ``phi[o, i]`` (an ``[out, in, B]`` array) from one broadcast execution
    of the layer's circuit over every (edge, sample) pair."""
    import pennylane as qml

    xp = ops.np
    table = gate_table()
    gates = _common.flatten_ops(node.kernel)
    edges, rows = _edge_rows(node)
    batch = x.shape[0]
    # per edge e: its own slice of each per-edge array, [E, 1, *shape], and its input, [E, B]
    per_edge = {k: ops.asarray(v) for k, v in node.kernel.constant_arrays().items()}
    for name, _ in node.kernel.params:
        index = tuple(np.array(axis) for axis in zip(*rows))
        per_edge[name] = layer[name][index][:, None]
    inputs = x[:, np.array([i for _, i in edges])].T
    angle_lists = []
    for gate, env in gates:
        if gate.op not in table:
            raise BackendError(f"the reference backend cannot run gate {gate.op.value!r}")
        angle_lists.append([xp.broadcast_to(ops.asarray(evaluate(a, inputs, per_edge, xp, env)),
                                            (len(edges), batch)).reshape(-1) for a in gate.angles])
    pauli = {"x": qml.PauliX, "y": qml.PauliY, "z": qml.PauliZ, "inspired": qml.PauliZ}[node.kernel.observable]

    @qml.qnode(_device(), interface="auto", diff_method="backprop")
    def circuit(all_angles):
        for (gate, _env), angles in zip(gates, all_angles):
            table[gate.op](*angles)
        return qml.expval(pauli(0))

    value = xp.broadcast_to(ops.asarray(circuit(angle_lists)), (len(edges) * batch,))
    if node.kernel.observable == "inspired":
        value = xp.sqrt(xp.maximum((1.0 + value) / 2.0, 0.0)) - xp.sqrt(xp.maximum((1.0 - value) / 2.0, 0.0))
    return value.reshape(node.out_width, node.in_width, batch)


def kan_layer(node: KanNode, layer, x, ops):
    """The layer formula (module docstring) term by term, on edge-first arrays: every
    per-edge factor is ``[out, in]``, the edge values ``[out, in, B]``; the sum over ``i``
    comes last. ``[B, out]``."""
    xp = ops.np
    phi = edge_values(node, layer, x, ops)  # [out, in, B]
    shape = (node.out_width, node.in_width)
    ones, zeros = xp.ones(shape, xp.float64), xp.zeros(shape, xp.float64)
    a = layer["postact_weight"] if node.postact_weight else ones
    c = layer["postact_bias"] if node.postact_bias else zeros
    terms = (phi + c[:, :, None]) * a[:, :, None]
    base = _base(node.base, ops)
    if base is not None:
        terms = terms + layer["base_weight"][:, :, None] * base(x.T)[None, :, :]
    return (layer["mask"][:, :, None] * terms).sum(axis=1).T


def linear_layer(layer, x, ops):
    """``y_bj = sum_i W_ji x_bi + b_j``, as a sum of products."""
    return (layer["weight"][None, :, :] * x[:, None, :]).sum(axis=2) + layer["bias"][None, :]


# ----------------------------------------------------------------------------- network functions


@dataclass(frozen=True)
class ReferenceFunctions:
    """Network functions with the same signatures as the JAX backend's (not jitted)."""

    apply: Callable
    layer_inputs: Callable
    edge_values: Callable


def build(graph, dtype: str) -> ReferenceFunctions:
    """Network functions for ``graph``; ``dtype`` must be "float64"."""
    if dtype not in DTYPES:
        raise BackendError(
            f"the reference backend computes in float64 only, got dtype {dtype!r}; use dtype='float64'"
        )
    order = _common.layer_order(graph)
    table = tuple(graph.graph.get("params", ()))
    in_width = order[0][1].width
    kan_ids = _common.kan_layer_ids(order)

    def forward(params, x, ops, stop_at):
        """``(output, the input of every layer)``, or the raw edge values of ``stop_at``."""
        x = ops.asarray(x)
        single = x.ndim == 1
        if single:
            x = x[None]
        _common.check_input(x, in_width)
        h, inputs = x, {}
        for node_id, rec in order:
            if isinstance(rec, (InputNode, OutputNode)):
                continue
            inputs[node_id] = h[0] if single else h
            layer = {k: ops.asarray(v) for k, v in params[node_id].items()}
            if node_id == stop_at:
                phi = ops.np.transpose(edge_values(rec, layer, h, ops), (2, 0, 1))
                return (phi[0] if single else phi), inputs
            if isinstance(rec, KanNode):
                h = kan_layer(rec, layer, h, ops)
            elif isinstance(rec, LinearNode):
                h = linear_layer(layer, h, ops)
            else:
                raise BackendError(f"unknown graph node {node_id!r}: {type(rec).__name__}")
        return (h[0] if single else h), inputs

    traced = {}

    def run(params, x, stop_at=None):
        _common.check_params(table, params)
        ops = _path(params, x)
        if isinstance(ops, _Numpy):
            return forward(params, x, ops, stop_at)
        if "fn" not in traced:  # one XLA program for the unrolled loops, not one per operation
            import jax

            traced["fn"] = jax.jit(lambda p, v, stop_at: forward(p, v, ops, stop_at), static_argnames="stop_at")
        return traced["fn"](params, x, stop_at=stop_at)

    def apply(params, x):
        return run(params, x)[0]

    def layer_inputs(params, x):
        return run(params, x)[1]

    def edges(params, x, layer_id):
        if layer_id not in kan_ids:
            raise BackendError(f"{layer_id!r} is not a kan layer; kan layers: {', '.join(kan_ids) or 'none'}")
        return run(params, x, stop_at=layer_id)[0]

    return ReferenceFunctions(apply=apply, layer_inputs=layer_inputs, edge_values=edges)
