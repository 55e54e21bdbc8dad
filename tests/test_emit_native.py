"""Native gate sets: every IR gate's lowering in every basis equals the gate's unitary up to a
global phase, for random angles and for data-dependent angles, with the matrices written here
(and in tests/_statevector.py), independent of the emitter's own numerics.

Tolerance: |tr(U^dagger V)| / 2 = 1 to 1e-12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from qvaf.compiler.emit import BASES, EmitError, get_basis
from qvaf.compiler.emit.native import zyz
from qvaf.compiler.expr import Binary, Const, Input, evaluate
from qvaf.compiler.ir import GATE_ARITY, Op

import _statevector as sv

UNIVERSAL = [name for name, b in BASES.items() if b.universal]
GATES = list(GATE_ARITY)

# the native gates' textbook matrices, by stdgates.inc name (angles in radians)
_NAME_TO_OP = {"h": Op.H, "x": Op.X, "y": Op.Y, "z": Op.Z, "s": Op.S, "sdg": Op.SDG, "t": Op.T, "tdg": Op.TDG,
               "sx": Op.SX, "rx": Op.RX, "ry": Op.RY, "rz": Op.RZ, "p": Op.PHASE, "u3": Op.U3}


def _native_unitary(gates, x=0.0) -> np.ndarray:
    u = np.eye(2, dtype=complex)
    for g in gates:
        angles = [float(evaluate(a, x, {}, np)) for a in g.angles]
        u = np.asarray(sv.unitary(_NAME_TO_OP[g.name], angles)) @ u
    return u


def _same_up_to_phase(u, v) -> float:
    return abs(abs(np.trace(u.conj().T @ v)) / 2 - 1)


@pytest.mark.parametrize("basis", UNIVERSAL)
@pytest.mark.parametrize("op", GATES, ids=lambda o: o.value)
def test_lowering_is_exact_for_random_angles(basis, op):
    b = get_basis(basis)
    rng = np.random.default_rng(hash((basis, op.value)) & 0xFFFF)
    for _ in range(5):
        angles = rng.uniform(-2 * math.pi, 2 * math.pi, GATE_ARITY[op])
        lowered = b.lower(op, tuple(Const(float(a)) for a in angles))
        assert {g.name for g in lowered} <= set(b.gates), lowered
        want = np.asarray(sv.unitary(op, list(angles)))
        assert _same_up_to_phase(_native_unitary(lowered), want) < 1e-12


@pytest.mark.parametrize("basis", UNIVERSAL)
@pytest.mark.parametrize("op", [o for o in GATES if GATE_ARITY[o]], ids=lambda o: o.value)
def test_data_dependent_lowering_is_exact_and_keeps_data_in_rz(basis, op):
    b = get_basis(basis)
    data = Binary("+", Binary("*", Const(0.7), Input()), Const(-0.3))
    rng = np.random.default_rng(7)
    for slot in range(GATE_ARITY[op]):
        fixed = rng.uniform(-3, 3, GATE_ARITY[op])
        angles = tuple(data if k == slot else Const(float(fixed[k])) for k in range(GATE_ARITY[op]))
        lowered = b.lower(op, angles)
        if basis != "stdgates":  # the data angle reaches the device only through rz
            for g in lowered:
                if any(not isinstance(a, Const) for a in g.angles):
                    assert g.name == "rz", (op, g)
        for x in (-1.1, 0.25, 2.0):
            values = [0.7 * x - 0.3 if k == slot else fixed[k] for k in range(GATE_ARITY[op])]
            assert _same_up_to_phase(_native_unitary(lowered, x), np.asarray(sv.unitary(op, values))) < 1e-12


def test_clifford_basis_lowers_clifford_gates_and_quarter_turns():
    b = get_basis("clifford")
    for op in (Op.H, Op.X, Op.Y, Op.Z, Op.S, Op.SDG, Op.SX):
        assert _same_up_to_phase(_native_unitary(b.lower(op, ())), np.asarray(sv.unitary(op, []))) < 1e-12
    for op in (Op.RX, Op.RY, Op.RZ, Op.PHASE):
        for k in range(-4, 5):
            lowered = b.lower(op, (Const(k * math.pi / 2),))
            assert {g.name for g in lowered} <= set(b.gates)
            assert _same_up_to_phase(_native_unitary(lowered), np.asarray(sv.unitary(op, [k * math.pi / 2]))) < 1e-12
    lowered = b.lower(Op.U3, (Const(math.pi / 2), Const(math.pi), Const(-math.pi / 2)))
    want = np.asarray(sv.unitary(Op.U3, [math.pi / 2, math.pi, -math.pi / 2]))
    assert _same_up_to_phase(_native_unitary(lowered), want) < 1e-12


@pytest.mark.parametrize("op,angles", [(Op.T, ()), (Op.TDG, ()), (Op.RZ, (Const(0.3),)), (Op.RY, (Input(),))],
                         ids=["t", "tdg", "rz(0.3)", "ry(x)"])
def test_clifford_basis_refuses_what_it_cannot_express(op, angles):
    with pytest.raises(EmitError, match="no exact lowering in basis 'clifford'"):
        get_basis("clifford").lower(op, angles)


def test_unknown_basis_names_the_choices():
    with pytest.raises(EmitError, match="unknown basis 'ionq'.*stdgates, ibm, rz-rx90, clifford"):
        get_basis("ionq")


def test_zyz_reconstructs_random_unitaries():
    rng = np.random.default_rng(3)
    for _ in range(200):
        a = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
        u, _ = np.linalg.qr(a)
        alpha, beta, gamma = zyz(u)
        v = np.asarray(sv.unitary(Op.RZ, [alpha])) @ np.asarray(sv.unitary(Op.RY, [beta])) @ np.asarray(
            sv.unitary(Op.RZ, [gamma]))
        assert _same_up_to_phase(u, v) < 1e-12
    for u in (np.eye(2), np.array([[0, 1], [1, 0]]), np.diag([1, 1j])):  # degenerate: beta = 0 or pi
        alpha, beta, gamma = zyz(np.asarray(u, complex))
        v = np.asarray(sv.unitary(Op.RZ, [alpha])) @ np.asarray(sv.unitary(Op.RY, [beta])) @ np.asarray(
            sv.unitary(Op.RZ, [gamma]))
        assert _same_up_to_phase(np.asarray(u, complex), v) < 1e-12
