"""An independent numeric model of the circuit IR for the compiler tests.

Every gate is given by its textbook 2x2 unitary (not by the compiler's canonicalisation
table); its action on the Bloch vector is the SO(3) matrix R_ij = tr(sigma_i U sigma_j U^+)/2.
A circuit's matrix is the product over its gates (loops and fused blocks expanded here, by
this module's own walker), and its readout is the observable's component of R @ (0, 0, 1).
"""

from __future__ import annotations

import math

import numpy as np

from qvaf.compiler.expr import evaluate
from qvaf.compiler.ir import FusedOp, GateOp, LoopOp, Op

I2 = np.eye(2, dtype=complex)
PAULI = [
    np.array([[0, 1], [1, 0]], dtype=complex),
    np.array([[0, -1j], [1j, 0]], dtype=complex),
    np.array([[1, 0], [0, -1]], dtype=complex),
]


def _rot(sigma, t):
    return math.cos(t / 2) * I2 - 1j * math.sin(t / 2) * sigma


def unitary(op: Op, angles) -> np.ndarray:
    s2 = 1 / math.sqrt(2)
    if op == Op.RX:
        return _rot(PAULI[0], angles[0])
    if op == Op.RY:
        return _rot(PAULI[1], angles[0])
    if op == Op.RZ:
        return _rot(PAULI[2], angles[0])
    if op == Op.PHASE:
        return np.diag([1, np.exp(1j * angles[0])])
    if op == Op.U3:  # OpenQASM / qiskit convention
        th, ph, lam = angles
        return np.array([
            [math.cos(th / 2), -np.exp(1j * lam) * math.sin(th / 2)],
            [np.exp(1j * ph) * math.sin(th / 2), np.exp(1j * (ph + lam)) * math.cos(th / 2)],
        ])
    table = {
        Op.H: np.array([[s2, s2], [s2, -s2]], dtype=complex),
        Op.X: PAULI[0], Op.Y: PAULI[1], Op.Z: PAULI[2],
        Op.S: np.diag([1, 1j]), Op.SDG: np.diag([1, -1j]),
        Op.T: np.diag([1, np.exp(1j * math.pi / 4)]), Op.TDG: np.diag([1, np.exp(-1j * math.pi / 4)]),
        Op.SX: 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]),
    }
    return table[op]


def so3(u: np.ndarray) -> np.ndarray:
    r = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            r[i, j] = 0.5 * np.real(np.trace(PAULI[i] @ u @ PAULI[j] @ u.conj().T))
    return r


def _walk(ops, x, params, env, out):
    for op in ops:
        if isinstance(op, GateOp):
            angles = [float(evaluate(a, x, params, np, env)) for a in op.angles]
            out.append(so3(unitary(op.op, angles)))
        elif isinstance(op, FusedOp):
            _walk(op.gates, x, params, env, out)
        elif isinstance(op, LoopOp):
            for v in range(op.start, op.stop):
                _walk(op.body, x, params, {**env, op.var: v}, out)
        else:
            raise TypeError(op)


def circuit_matrix(circuit, x: float, params: dict) -> np.ndarray:
    """The SO(3) matrix of the whole circuit (first gate applied first)."""
    mats: list[np.ndarray] = []
    table = {**circuit.constant_arrays(), **params}
    _walk(circuit.ops, x, table, {}, mats)
    m = np.eye(3)
    for r in mats:
        m = r @ m
    return m


def measured_component(circuit, x: float, params: dict) -> float:
    """The Bloch component the readout is a function of (z for ``inspired``).

    Compare this, not :func:`readout`, between circuits: |alpha| - |beta| has an infinite
    derivative at z = +-1, so it amplifies rounding errors there.
    """
    r = circuit_matrix(circuit, x, params) @ np.array([0.0, 0.0, 1.0])
    obs = "z" if circuit.observable == "inspired" else circuit.observable
    return float(r["xyz".index(obs)])


def readout(circuit, x: float, params: dict) -> float:
    v = measured_component(circuit, x, params)
    if circuit.observable == "inspired":
        z = min(1.0, max(-1.0, v))
        return math.sqrt((1 + z) / 2) - math.sqrt((1 - z) / 2)
    return v


def random_params(circuit, rng) -> dict:
    return {name: rng.normal(size=shape) for name, shape in circuit.params}
