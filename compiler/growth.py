"""Growth analysis: does adding re-uploads to a kernel keep the function it computes?

Layer extension (:mod:`qvaf.runtime.extend`) recompiles a kan layer with a larger ``reps``
and maps every per-edge array onto its new shape the way the reference package's
``refine()`` does: an entry whose index lies inside the old shape keeps its value (the old
final rotation ``theta[reps]`` included); every entry outside it — a new slot — takes the
array's ``grow`` value. This module decides from the two circuits, before any number is
computed, whether that growth is *function preserving*:

1. Unroll both circuits and inline their compile-time constants; in the new one replace
   every new-slot entry by its ``grow`` value (an array without one stays symbolic) and
   fold the angles.
2. The new circuit must start with the old one, gate for gate (same gate, same angles):
   then the growth only *appends* gates, ``U_new = S U_old`` with ``S`` the suffix.
3. Every appended gate must be the identity (all its rotations fold to multiples of 2 pi,
   e.g. ``ry(0)``) or commute with the observable measured at the end (diagonal gates
   before ``measure z`` and ``inspired``, ``rx``/``x``/``sx`` before ``measure x``,
   ``ry``/``y`` before ``measure y``: the table :data:`qvaf.compiler.passes._COMMUTES`
   that ``drop_boundary_gates`` strips by). Then ``S^dagger O S = O`` and the readout is
   unchanged for every ``x`` and every value of the old parameters.

For pz growing from reps R the suffix is ``rz(x)`` followed by ``rz(0) ry(0) rz(x)`` per new
slot and ``rz(0) ry(0)``: identities and Z rotations, so the growth is accepted even though
its data rotations are not the identity. For mix it is ``ry(x) ...``, which moves the Bloch
vector off the Z axis: refused, naming that gate. The proof is sufficient, not necessary
(``x x`` appended would be refused); :func:`qvaf.runtime.extend.extend` also compares the
outputs numerically.

Example::

    verdict = check_growth(old_kernel, new_kernel, {"theta": 0.0, "w": None})
    if not verdict.ok:
        print(verdict.reason)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from .expr import Const, Expr, ParamRef, substitute
from .ir import Circuit, FusedOp, GateOp, LoopOp
from .passes import _COMMUTES, _canonical, _inline, unroll_circuit
from .printer import _gate
from .simplify import fold, is_zero_rotation

__all__ = ["GrowthVerdict", "check_growth", "new_slot"]


@dataclass(frozen=True)
class GrowthVerdict:
    """The outcome of :func:`check_growth`.

    ``ok`` says the growth provably keeps the readout; otherwise ``gate`` is the text of the
    first gate that breaks the proof (``ry(x)``), ``span`` its place in the spec and
    ``reason`` a sentence saying why. ``appended`` counts the gates the growth adds and
    ``identity`` those among them that are the identity with the grow values.
    """

    ok: bool
    appended: int = 0
    identity: int = 0
    gate: str | None = None
    span: object = None
    reason: str = ""


def new_slot(index: tuple[int, ...], old_shape: tuple[int, ...]) -> bool:
    """Whether an entry of a grown per-edge array lies outside the old shape (a new slot)."""
    return any(i >= s for i, s in zip(index, old_shape))


def _flat_gates(circuit: Circuit) -> list[GateOp]:
    """The gates of ``circuit`` in time order: loops unrolled, constants inlined and folded,
    fused blocks opened."""
    circuit = _inline(unroll_circuit(circuit))

    def flat(ops):
        for op in ops:
            if isinstance(op, GateOp):
                yield op
            elif isinstance(op, FusedOp):
                yield from flat(op.gates)
            elif isinstance(op, LoopOp):  # pragma: no cover - unroll_circuit removed them
                yield from flat(op.body)

    return list(flat(circuit.ops))


def _fill_new_slots(e: Expr, old_shapes: Mapping[str, tuple[int, ...]], grow: Mapping[str, float | None]) -> Expr:
    def rep(n: Expr):
        if not isinstance(n, ParamRef) or n.name not in old_shapes or not n.indices:
            return None
        if not all(isinstance(i, Const) for i in n.indices):
            return None
        idx = tuple(int(i.value) for i in n.indices)
        if new_slot(idx, old_shapes[n.name]) and grow.get(n.name) is not None:
            return Const(float(grow[n.name]))
        return None

    return fold(substitute(e, rep))


def _where(span) -> str:
    """``file.qvaf:12:9`` for a gate's span (the file's base name), or '' without one."""
    if span is None:
        return ""
    return f"{os.path.basename(str(span.file))}:{span.line}:{span.col}"


def _named(g: GateOp) -> str:
    at = _where(g.span)
    return f"{_gate(g)}" + (f" ({at})" if at else "")


def _is_identity(g: GateOp) -> bool:
    return all(is_zero_rotation(r.angles[0]) for r in _canonical(g))


def _commutes(g: GateOp, observable: str) -> bool:
    allowed = _COMMUTES.get(observable, set())
    return all(r.op in allowed or is_zero_rotation(r.angles[0]) for r in _canonical(g))


def check_growth(old: Circuit, new: Circuit, grow: Mapping[str, float | None]) -> GrowthVerdict:
    """Decide whether growing ``old`` into ``new`` keeps the readout (see the module docstring).

    Args:
        old: the kernel as lowered at the old ``reps`` (loops and constants allowed).
        new: the kernel as lowered at the new ``reps``.
        grow: per-edge array name -> fill value of its new slots (None: the array has none;
            its new entries then stay symbolic, which only a gate that commutes whatever its
            angle can absorb).

    Assumes: both circuits come from the same ansatz; per-edge arrays are mapped by index
    (an entry inside the old shape keeps its value).
    Guarantees: ``ok`` only when the new circuit is the old one followed by gates each of
    which is the identity or commutes with the observable, for every ``x`` and every value
    of the old entries; otherwise the first offending gate is named.
    """
    if old.observable != new.observable:
        return GrowthVerdict(False, reason=f"the readout changes from measure {old.observable} to "
                                           f"measure {new.observable}")
    old_shapes = {name: tuple(shape) for name, shape in old.params}
    before = _flat_gates(old)
    after = [GateOp(g.op, tuple(_fill_new_slots(a, old_shapes, grow) for a in g.angles), span=g.span)
             for g in _flat_gates(new)]
    for i, g in enumerate(before):
        if i >= len(after) or after[i] != g:
            now = _named(after[i]) if i < len(after) else "nothing"
            return GrowthVerdict(False, gate=_named(g), span=g.span,
                                 reason=f"gate {i + 1} of the old circuit, {_named(g)}, becomes {now}: growth "
                                        f"does not only append gates after the old circuit")
    suffix = after[len(before):]
    identity = 0
    for g in suffix:
        if _is_identity(g):
            identity += 1
            continue
        if not _commutes(g, new.observable):
            text = _named(g)
            return GrowthVerdict(False, appended=len(suffix), identity=identity, gate=text, span=g.span,
                                 reason=f"the appended gate {text} is not the identity with the grow values "
                                        f"and does not commute with measure {new.observable}")
    return GrowthVerdict(True, appended=len(suffix), identity=identity)
