"""An independent single-qubit statevector simulator in numpy (2x2 unitaries), used by the
backend tests as ground truth for the JAX Bloch-vector kernel.

It reads the circuit IR directly (its own loop unrolling, the gates' textbook matrices) and
is vectorised over the angle arrays' leading axes.
"""

from __future__ import annotations

import numpy as np

from qvaf.compiler.expr import evaluate
from qvaf.compiler.ir import FusedOp, GateOp, LoopOp, Op

_I = 1j
_FIXED = {
    Op.H: np.array([[1, 1], [1, -1]], complex) / np.sqrt(2),
    Op.X: np.array([[0, 1], [1, 0]], complex),
    Op.Y: np.array([[0, -_I], [_I, 0]], complex),
    Op.Z: np.array([[1, 0], [0, -1]], complex),
    Op.S: np.diag([1, _I]),
    Op.SDG: np.diag([1, -_I]),
    Op.T: np.diag([1, np.exp(_I * np.pi / 4)]),
    Op.TDG: np.diag([1, np.exp(-_I * np.pi / 4)]),
    Op.SX: 0.5 * np.array([[1 + _I, 1 - _I], [1 - _I, 1 + _I]]),
}
PAULI = {
    "x": np.array([[0, 1], [1, 0]], complex),
    "y": np.array([[0, -_I], [_I, 0]], complex),
    "z": np.array([[1, 0], [0, -1]], complex),
}


def _mat(*rows):
    """Stack a 2x2 matrix whose entries are broadcastable arrays into [..., 2, 2]."""
    entries = np.broadcast_arrays(*[np.asarray(e, complex) for row in rows for e in row])
    return np.stack(entries, axis=-1).reshape(entries[0].shape + (2, 2))


def unitary(op: Op, angles):
    """The textbook 2x2 unitary of a gate (angles: arrays of any common broadcast shape)."""
    if op in _FIXED:
        return _FIXED[op]
    if op == Op.RX:
        (t,) = angles
        c, s = np.cos(t / 2), np.sin(t / 2)
        return _mat((c, -_I * s), (-_I * s, c))
    if op == Op.RY:
        (t,) = angles
        c, s = np.cos(t / 2), np.sin(t / 2)
        return _mat((c, -s), (s, c))
    if op == Op.RZ:
        (t,) = angles
        return _mat((np.exp(-_I * t / 2), 0), (0, np.exp(_I * t / 2)))
    if op == Op.PHASE:
        (t,) = angles
        return _mat((1, 0), (0, np.exp(_I * t)))
    if op == Op.U3:
        t, p, l = angles
        c, s = np.cos(t / 2), np.sin(t / 2)
        return _mat((c, -np.exp(_I * l) * s), (np.exp(_I * p) * s, np.exp(_I * (p + l)) * c))
    raise ValueError(op)


def _gates(ops, env):
    for op in ops:
        if isinstance(op, GateOp):
            yield op, env
        elif isinstance(op, FusedOp):
            yield from _gates(op.gates, env)
        elif isinstance(op, LoopOp):
            for v in range(op.start, op.stop):
                yield from _gates(op.body, {**env, op.var: v})


def expectation(circuit, x, params):
    """The circuit's readout for edge input ``x`` and arrays ``params`` (trailing axes are
    the per-edge shapes, leading axes broadcast with ``x``)."""
    arrays = {**circuit.constant_arrays(), **params}
    psi = np.array([1, 0], complex)
    for gate, env in _gates(circuit.ops, {}):
        angles = [np.asarray(evaluate(a, x, arrays, np, env), float) for a in gate.angles]
        u = unitary(gate.op, angles)
        psi = np.einsum("...ij,...j->...i", u, psi)
    obs = "z" if circuit.observable == "inspired" else circuit.observable
    value = np.einsum("...i,ij,...j->...", psi.conj(), PAULI[obs], psi).real
    if circuit.observable == "inspired":
        # |alpha| - |beta| straight from the amplitudes
        return np.abs(psi[..., 0]) - np.abs(psi[..., 1])
    return value


def edge_values(circuit, x, params):
    """``[B, O, I]`` values of a layer from ``x`` [B, I] and per-edge arrays ``[O, I, *shape]``."""
    per_edge = {k: np.asarray(v, float)[None] for k, v in params.items()}
    x = np.asarray(x, float)
    out = expectation(circuit, x[:, None, :], per_edge)
    o = next((np.shape(v)[0] for v in params.values()), 1)
    return np.broadcast_to(out, (x.shape[0], o, x.shape[1]))
