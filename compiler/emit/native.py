"""Native gate sets: one table of bases, each an exact single-qubit lowering of every IR gate.

A lowering is exact up to a global phase, the only freedom no readout can see. Data stays in
``rz`` angles wherever the basis allows: a data rotation about x or y is conjugated onto z by
fixed gates, so a device sees the data only as a virtual-Z phase. The identities used
(operators right to left, sequences below in time order)::

    U3(t, p, l) = RZ(p) RY(t) RZ(l)
                ~ RZ(p + pi) SX RZ(t + pi) SX RZ(l)          ibm: rz(l) sx rz(t+pi) sx rz(p+pi)
                ~ RZ(p) RX(-pi/2) RZ(t) RX(pi/2) RZ(l)       rz-rx90: rz(l) rx(pi/2) rz(t) rx(-pi/2) rz(p)
    RX(a) = U3(a, -pi/2, pi/2)        RY(a) = U3(a, 0, 0)
    H ~ RZ(pi/2) SX RZ(pi/2)          Y ~ X Z          PHASE(a) ~ RZ(a)

Bases (:data:`BASES`):

=========== ====================== =========================================================
name        gates                  use
=========== ====================== =========================================================
stdgates    h x y z s sdg t tdg    the gates as written (``stdgates.inc``); optimised
            sx rx ry rz p u3       circuits use rz and ry only
ibm         rz sx x                IBM Quantum's native set (rz is virtual)
rz-rx90     rz rx(pi/2) rx(-pi/2)  a fixed pi/2 pulse plus virtual Z (many superconducting
                                   and trapped-ion stacks)
clifford    h s sdg x y z sx       stabilizer simulation: rotations only by constant
                                   multiples of pi/2; anything else is refused
=========== ====================== =========================================================

Each entry is data: a table ``Op -> lowering``. A lowering takes the gate's angle
expressions and returns :class:`NativeGate` records; angles stay symbolic, so data-dependent
gates lower exactly like fixed ones.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from ..expr import Binary, Const, Expr
from ..ir import Op
from ..simplify import fold
from .errors import EmitError

PI = math.pi


@dataclass(frozen=True)
class NativeGate:
    """One gate of an emitted circuit: its ``stdgates.inc`` name and angle expressions."""

    name: str
    angles: tuple[Expr, ...] = ()

    @property
    def key(self) -> tuple:
        """Name and constant angles: what the peephole rules match on."""
        return (self.name,) + tuple(round(a.value, 12) if isinstance(a, Const) else a for a in self.angles)


def _g(name: str, *angles) -> NativeGate:
    return NativeGate(name, tuple(a if not isinstance(a, (int, float)) else Const(float(a)) for a in angles))


def _plus(a: Expr, v: float) -> Expr:
    return fold(Binary("+", a, Const(v)))


def rz(a) -> NativeGate:
    return _g("rz", a)


# ----------------------------------------------------------------------------- the tables

_STDGATES: dict[Op, Callable[..., tuple[NativeGate, ...]]] = {
    Op.H: lambda: (_g("h"),), Op.X: lambda: (_g("x"),), Op.Y: lambda: (_g("y"),), Op.Z: lambda: (_g("z"),),
    Op.S: lambda: (_g("s"),), Op.SDG: lambda: (_g("sdg"),), Op.T: lambda: (_g("t"),),
    Op.TDG: lambda: (_g("tdg"),), Op.SX: lambda: (_g("sx"),),
    Op.PHASE: lambda a: (_g("p", a),), Op.U3: lambda t, p, l: (_g("u3", t, p, l),),
    Op.RX: lambda a: (_g("rx", a),), Op.RY: lambda a: (_g("ry", a),), Op.RZ: lambda a: (rz(a),),
}

_SX, _X = _g("sx"), _g("x")
_IBM = {
    Op.H: lambda: (rz(PI / 2), _SX, rz(PI / 2)),
    Op.X: lambda: (_X,),
    Op.Y: lambda: (rz(PI), _X),
    Op.Z: lambda: (rz(PI),), Op.S: lambda: (rz(PI / 2),), Op.SDG: lambda: (rz(-PI / 2),),
    Op.T: lambda: (rz(PI / 4),), Op.TDG: lambda: (rz(-PI / 4),),
    Op.SX: lambda: (_SX,),
    Op.PHASE: lambda a: (rz(a),), Op.RZ: lambda a: (rz(a),),
    Op.RX: lambda a: (rz(PI / 2), _SX, rz(_plus(a, PI)), _SX, rz(PI / 2)),
    Op.RY: lambda a: (_SX, rz(_plus(a, PI)), _SX, rz(PI)),
    Op.U3: lambda t, p, l: (rz(l), _SX, rz(_plus(t, PI)), _SX, rz(_plus(p, PI))),
}

_P90, _M90 = _g("rx", PI / 2), _g("rx", -PI / 2)
_RZRX90 = {
    Op.H: lambda: (rz(PI / 2), _P90, rz(PI / 2)),
    Op.X: lambda: (_P90, _P90),
    Op.Y: lambda: (rz(PI), _P90, _P90),
    Op.Z: lambda: (rz(PI),), Op.S: lambda: (rz(PI / 2),), Op.SDG: lambda: (rz(-PI / 2),),
    Op.T: lambda: (rz(PI / 4),), Op.TDG: lambda: (rz(-PI / 4),),
    Op.SX: lambda: (_P90,),
    Op.PHASE: lambda a: (rz(a),), Op.RZ: lambda a: (rz(a),),
    Op.RX: lambda a: (rz(PI / 2), _P90, rz(a), _M90, rz(-PI / 2)),
    Op.RY: lambda a: (_P90, rz(a), _M90),
    Op.U3: lambda t, p, l: (rz(l), _P90, rz(t), _M90, rz(p)),
}

# Clifford rotations by k * pi/2 (k mod 4), in time order; t/tdg and every other angle refused.
_CLIFF_Z = ((), (_g("s"),), (_g("z"),), (_g("sdg"),))
_CLIFF_X = ((), (_g("sx"),), (_g("x"),), (_g("h"), _g("sdg"), _g("h")))
_CLIFF_Y = ((), (_g("z"), _g("h")), (_g("y"),), (_g("h"), _g("z")))
_CLIFF_ROT = {Op.RZ: _CLIFF_Z, Op.RX: _CLIFF_X, Op.RY: _CLIFF_Y, Op.PHASE: _CLIFF_Z}
_CLIFF_FIXED = {Op.H: "h", Op.X: "x", Op.Y: "y", Op.Z: "z", Op.S: "s", Op.SDG: "sdg", Op.SX: "sx"}


def _quarter_turns(angle: Expr, gate: str) -> int:
    """``k`` with ``angle = k * pi / 2`` (mod 2 pi), or refuse."""
    value = angle.value if isinstance(angle, Const) else None
    if value is not None and math.isfinite(value):
        k = round(value / (PI / 2))
        if abs(value - k * PI / 2) <= 1e-9:
            return k % 4
    raise EmitError(f"gate {gate} has no exact lowering in basis 'clifford': its gates (h s sdg x y z sx) "
                    f"rotate by constant multiples of pi/2 only; choose basis stdgates, ibm or rz-rx90")


def _clifford(op: Op, angles: tuple[Expr, ...]) -> tuple[NativeGate, ...]:
    from .text import render

    if op in _CLIFF_FIXED:
        return (_g(_CLIFF_FIXED[op]),)
    shown = f"{op.value}({', '.join(render(a, functions=True) for a in angles)})" if angles else op.value
    if op in _CLIFF_ROT:
        return _CLIFF_ROT[op][_quarter_turns(angles[0], shown)]
    if op == Op.U3:
        t, p, l = angles
        return _clifford(Op.RZ, (l,)) + _clifford(Op.RY, (t,)) + _clifford(Op.RZ, (p,))
    raise EmitError(f"gate {shown} has no exact lowering in basis 'clifford' (T gates are not Clifford); "
                    f"choose basis stdgates, ibm or rz-rx90")


def _table(table: Mapping[Op, Callable]) -> Callable[[Op, tuple[Expr, ...]], tuple[NativeGate, ...]]:
    def lower(op: Op, angles: tuple[Expr, ...]) -> tuple[NativeGate, ...]:
        if op not in table:
            raise EmitError(f"gate {op.value} has no lowering in this basis")
        return table[op](*angles)

    return lower


@dataclass(frozen=True)
class Basis:
    """A native gate set.

    Attributes:
        name: what ``--basis`` takes.
        gates: the gate names its circuits use (``stdgates.inc`` names; ``rx`` means
            ``rx(pi/2)`` and ``rx(-pi/2)`` in rz-rx90).
        lower: ``lower(op, angles) -> NativeGate records``, exact up to global phase.
        cancel: adjacent pairs (by :attr:`NativeGate.key`) the peephole pass rewrites.
        universal: False when only some circuits have an exact lowering (clifford).
    """

    name: str
    gates: tuple[str, ...]
    description: str
    lower: Callable[[Op, tuple[Expr, ...]], tuple[NativeGate, ...]]
    cancel: Mapping[tuple, tuple[NativeGate, ...]]
    universal: bool = True


#: every basis, by name
BASES: dict[str, Basis] = {
    "stdgates": Basis("stdgates", ("h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz", "p", "u3"),
                      "the gates of stdgates.inc as written", _table(_STDGATES), {}),
    "ibm": Basis("ibm", ("rz", "sx", "x"), "IBM Quantum native gates", _table(_IBM),
                 {(_SX.key, _SX.key): (_X,), (_X.key, _X.key): ()}),
    "rz-rx90": Basis("rz-rx90", ("rz", "rx"), "rz and fixed rx(+-pi/2) pulses", _table(_RZRX90),
                     {(_P90.key, _M90.key): (), (_M90.key, _P90.key): ()}),
    "clifford": Basis("clifford", ("h", "s", "sdg", "x", "y", "z", "sx"),
                      "Clifford gates (stabilizer simulation)", _clifford, {}, universal=False),
}


def get_basis(name: str) -> Basis:
    if name not in BASES:
        raise EmitError(f"unknown basis {name!r}; bases: {', '.join(BASES)}")
    return BASES[name]


# ----------------------------------------------------------------------------- SU(2) numerics

_I2 = np.eye(2, dtype=complex)
_HM = np.array([[1, 1], [1, -1]], complex) / math.sqrt(2)


def _rot(axis: str, t: float) -> np.ndarray:
    c, s = math.cos(t / 2), math.sin(t / 2)
    if axis == "x":
        return np.array([[c, -1j * s], [-1j * s, c]])
    if axis == "y":
        return np.array([[c, -s], [s, c]], complex)
    return np.array([[cmath.exp(-0.5j * t), 0], [0, cmath.exp(0.5j * t)]])


#: SU(2) (up to phase) of the fixed gates
FIXED_SU2 = {
    Op.H: _HM, Op.X: np.array([[0, 1], [1, 0]], complex), Op.Y: np.array([[0, -1j], [1j, 0]]),
    Op.Z: np.diag([1, -1]).astype(complex), Op.S: _rot("z", PI / 2), Op.SDG: _rot("z", -PI / 2),
    Op.T: _rot("z", PI / 4), Op.TDG: _rot("z", -PI / 4), Op.SX: _rot("x", PI / 2),
}


def gate_matrix(op: Op, angles: tuple[float, ...]) -> np.ndarray:
    """The 2x2 unitary of a gate with numeric angles (up to global phase)."""
    if op in FIXED_SU2:
        return FIXED_SU2[op]
    if op in (Op.RX, Op.RY, Op.RZ):
        return _rot(op.value[1], angles[0])
    if op == Op.PHASE:
        return _rot("z", angles[0])
    if op == Op.U3:
        t, p, l = angles
        return _rot("z", p) @ _rot("y", t) @ _rot("z", l)
    raise EmitError(f"gate {op.value} has no matrix")


#: fixed C_a with R_a(t) = C_a RZ(t) C_a^dagger: how a data rotation is moved onto z
TO_Z = {"z": _I2, "x": _HM, "y": _rot("x", -PI / 2)}
#: basis change B before a Z measurement with B^dagger Z B = P: measure x (h), measure y (sdg; h)
MEASURE_CHANGE = {"z": _I2, "x": _HM, "y": _HM @ _rot("z", -PI / 2)}
MEASURE_GATES = {"z": (), "x": (Op.H,), "y": (Op.SDG, Op.H)}


def zyz(u: np.ndarray) -> tuple[float, float, float]:
    """Euler angles ``(alpha, beta, gamma)`` with ``u ~ RZ(alpha) RY(beta) RZ(gamma)``.

    With ``v = u / sqrt(det u)`` in SU(2)::

        v = [[e^{-i(a+g)/2} cos(b/2), -e^{-i(a-g)/2} sin(b/2)],
             [e^{+i(a-g)/2} sin(b/2),  e^{+i(a+g)/2} cos(b/2)]]

    so ``b = 2 atan2(|v10|, |v00|)``, ``(a + g)/2 = arg v11``, ``(a - g)/2 = arg v10``; a
    vanishing entry leaves its phase free and it is set to 0. The sign of the square root
    shifts ``a`` by 2 pi: a global phase.
    """
    v = u / np.sqrt(u[0, 0] * u[1, 1] - u[0, 1] * u[1, 0])
    c, s = abs(v[0, 0]), abs(v[1, 0])
    beta = 2 * math.atan2(s, c)
    half_sum = cmath.phase(v[1, 1]) if c > 1e-15 else 0.0
    half_diff = cmath.phase(v[1, 0]) if s > 1e-15 else 0.0
    return half_sum + half_diff, beta, half_sum - half_diff
