"""The reference backend: the same graph executed through PennyLane ``default.qubit``.

Slow by design and independent of the JAX Bloch kernel: each kan layer's circuit is built
gate by gate from the IR as PennyLane operations (``qml.Hadamard``, ``qml.RZ``, ``qml.U3``,
...) acting on a statevector, and read out with ``qml.expval``. PennyLane's parameter
broadcasting runs every (sample, edge) pair of a layer as one broadcast execution of that
circuit. The JAX interface with backprop makes it differentiable with ``jax.grad``.

It computes in float64 only (``jax_enable_x64`` must be on; ``qvaf.compile`` does that).
``inspired`` is derived from <Z> as ``sqrt((1 + z) / 2) - sqrt((1 - z) / 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..expr import evaluate
from ..ir import KanNode, Op
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


def _gate_table():
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


def edge_values(node: KanNode, layer_params, x):
    """Raw activations of every edge of a kan layer, ``[B, out, in]``, via default.qubit.

    Every angle is evaluated on the full ``[B, out, in]`` grid and flattened into one
    broadcast dimension of the circuit.
    """
    import jax.numpy as jnp
    import pennylane as qml

    table = _gate_table()
    gates = _common.flatten_ops(node.kernel)
    p = _common.edge_params(node, layer_params, jnp, jnp.float64)
    constants = node.kernel.constant_arrays()
    shape = (x.shape[0], node.out_width, node.in_width)
    xe = x[:, None, :]

    angle_lists = []
    for gate, env in gates:
        if gate.op not in table:
            raise BackendError(f"the reference backend cannot run gate {gate.op.value!r}")
        angles = []
        for a in gate.angles:
            if _common.is_constant(a, constants):
                angles.append(float(evaluate(a, None, constants, np, env)))
            else:
                value = jnp.asarray(evaluate(a, xe, p, jnp, env), jnp.float64)
                angles.append(jnp.broadcast_to(value, shape).reshape(-1))
        angle_lists.append(angles)

    obs = node.kernel.observable
    pauli = {"x": qml.PauliX, "y": qml.PauliY, "z": qml.PauliZ, "inspired": qml.PauliZ}[obs]

    @qml.qnode(_device(), interface="jax", diff_method="backprop")
    def circuit(all_angles):
        for (gate, _env), angles in zip(gates, all_angles):
            table[gate.op](*angles)
        return qml.expval(pauli(0))

    value = jnp.asarray(circuit(angle_lists), jnp.float64)
    if obs == "inspired":
        value = jnp.sqrt(jnp.maximum((1 + value) / 2, 0)) - jnp.sqrt(jnp.maximum((1 - value) / 2, 0))
    if value.ndim == 0:
        return jnp.broadcast_to(value, shape)
    return value.reshape(shape)


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
    import jax
    import jax.numpy as jnp

    if not jax.config.jax_enable_x64:
        raise BackendError("the reference backend needs jax_enable_x64 (qvaf.compile(dtype='float64') sets it)")
    order = _common.layer_order(graph)
    table = tuple(graph.graph.get("params", ()))
    in_width = order[0][1].width
    kan_ids = _common.kan_layer_ids(order)

    def prepare(params, x):
        _common.check_params(table, params)
        x = jnp.asarray(x, jnp.float64)
        single = x.ndim == 1
        if single:
            x = x[None]
        _common.check_input(x, in_width)
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
        return params, x, single

    def apply(params, x):
        params, x, single = prepare(params, x)
        y = _common.forward(order, params, x, edge_values, jnp)
        return y[0] if single else y

    def layer_inputs(params, x):
        params, x, single = prepare(params, x)
        out = {}
        _common.forward(order, params, x, edge_values, jnp, collect=out)
        return {k: (v[0] if single else v) for k, v in out.items()}

    def edges(params, x, layer_id):
        if layer_id not in kan_ids:
            raise BackendError(f"{layer_id!r} is not a kan layer; kan layers: {', '.join(kan_ids) or 'none'}")
        params, x, single = prepare(params, x)
        phi = _common.forward(order, params, x, edge_values, jnp, stop_at=layer_id)
        return phi[0] if single else phi

    return ReferenceFunctions(apply=apply, layer_inputs=layer_inputs, edge_values=edges)
