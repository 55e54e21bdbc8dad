"""One edge's circuit as native gates: the stage of the pipeline it is read from, the
parameter values bound in, and the lowering to a basis.

Two levels (:data:`LEVELS`):

* ``written`` — the circuit as written: loops unrolled and constants inlined
  (``unroll_loops``, ``inline_constants``), every gate lowered on its own, ``measure x``
  / ``measure y`` preceded by ``h`` / ``sdg; h``.
* ``optimised`` — after the whole pass pipeline. With parameters baked in as numbers
  (``params="literal"``) every data-free stretch becomes one SU(2) matrix per edge and the
  circuit is rewritten as

  .. math::

      U = W_L\\, R_Z(f_L(x))\\, W_{L-1} \\cdots R_Z(f_1(x))\\, W_0,
      \\qquad R_a(f) = C_a R_Z(f) C_a^\\dagger,

  the fixed :data:`~qvaf.compiler.emit.native.TO_Z` conjugations ``C_a`` and the readout's
  basis change absorbed into the neighbouring blocks ``W_k``; each ``W_k`` is written as its
  ZYZ Euler angles :math:`R_Z(\\alpha) R_Y(\\beta) R_Z(\\gamma)`, so every data angle ends up
  in one ``rz`` that also carries the Euler angles on both sides of it. With parameters
  kept as program inputs (``params="input"``) no block can become numbers: the circuit is
  read before ``fuse_static`` and lowered gate by gate.

Optimised circuits then go through a peephole pass: adjacent ``rz`` merge (their constant
reduced to (-pi, pi]), zero rotations vanish, ``rz`` at the start (it fixes |0>) and before
the Z measurement (it commutes with Z) are dropped, and the basis' cancellation pairs apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from ..expr import Const, Expr, ParamRef, depends_on_input, evaluate, substitute
from ..ir import Circuit, FusedOp, GateOp, LoopOp, NoiseOp, Op
from ..simplify import fold
from .errors import EmitError
from .native import MEASURE_CHANGE, MEASURE_GATES, TO_Z, Basis, NativeGate, gate_matrix, get_basis, rz, zyz
from .text import angle_sum, is_zero_angle

LEVELS = ("written", "optimised")
PARAM_MODES = ("literal", "input")

_WRITTEN_PASSES = ("unroll_loops", "inline_constants")


@dataclass(frozen=True)
class EdgeCircuit:
    """One edge's circuit in a basis, measured in Z at the end.

    ``gates`` are in time order; their angles read the edge input (``Input()``) and, with
    ``params="input"``, parameter symbols ``ParamRef("theta_2_1")`` whose values are in
    ``params``. ``observable`` is the ansatz's readout that the final Z measurement gives.
    """

    gates: tuple[NativeGate, ...]
    observable: str
    basis: str
    level: str
    params: tuple[tuple[str, float], ...] = ()

    def counts(self) -> dict[str, int]:
        """Gates by name (see :func:`gate_counts`)."""
        return gate_counts(self.gates)


def gate_counts(gates) -> dict[str, int]:
    """Gates by name; ``rx`` by a fixed +-pi/2 counts as ``rx(pi/2)``/``rx(-pi/2)``."""
    out: dict[str, int] = {}
    for g in gates:
        name = g.name
        if name == "rx" and isinstance(g.angles[0], Const) and abs(abs(g.angles[0].value) - math.pi / 2) < 1e-12:
            name = "rx(pi/2)" if g.angles[0].value > 0 else "rx(-pi/2)"
        out[name] = out.get(name, 0) + 1
    return out


# ----------------------------------------------------------------------------- staging


def stage(kernel: Circuit, level: str = "optimised", params: str = "literal") -> Circuit:
    """The kernel at the pipeline stage a level reads (see the module docstring).

    Raises:
        EmitError: an unknown level or parameter mode, or ``measure inspired``.
    """
    from ..lower import kernel_graph
    from ..passes import PIPELINE, run_pipeline

    if level not in LEVELS:
        raise EmitError(f"unknown level {level!r}; levels: {', '.join(LEVELS)}")
    if params not in PARAM_MODES:
        raise EmitError(f"unknown parameter mode {params!r}; modes: {', '.join(PARAM_MODES)}")
    if kernel.observable == "inspired":
        raise EmitError("measure inspired is the reference's |alpha| - |beta| readout, not an observable: no "
                        "measurement estimates it, so it has no QASM program; use measure z (or x, y)")
    if level == "written":
        passes = list(_WRITTEN_PASSES)
    elif params == "input":
        passes = [name for name, _ in PIPELINE if name != "fuse_static"]
    else:
        passes = None
    graph = run_pipeline(kernel_graph(kernel), passes)
    return graph.nodes["layer0"]["op"].kernel


def _flat(ops) -> list:
    """The top-level ops of an unrolled kernel, ``noise`` marks left out (they carry no gate)."""
    out = []
    for op in ops:
        if isinstance(op, LoopOp):
            raise EmitError("internal: a loop survived unrolling")
        if not isinstance(op, NoiseOp):
            out.append(op)
    return out


# ----------------------------------------------------------------------------- binding


def _symbol(ref: ParamRef) -> str:
    return "_".join([ref.name] + [str(int(i.value)) for i in ref.indices])


def bind(staged: Circuit, values: Mapping[str, object] | None, params: str = "literal"):
    """Replace parameter references by numbers (``literal``) or by symbols (``input``).

    Args:
        staged: a kernel from :func:`stage`.
        values: per-edge array per parameter name, of the kernel's declared per-edge shape.

    Returns:
        ``(ops, symbols)``: the ops with bound angles, and ``(symbol, value)`` pairs.
    """
    values = dict(values or {})
    arrays = {}
    for name, shape in staged.params:
        if name not in values:
            raise EmitError(f"no value for parameter {name!r} (shape {list(shape)})")
        arr = np.asarray(values[name], dtype=np.float64)
        if arr.shape != tuple(shape):
            raise EmitError(f"parameter {name!r} has shape {list(arr.shape)}, the ansatz declares {list(shape)}")
        arrays[name] = arr
    symbols: dict[str, float] = {}

    def rep(n: Expr):
        if isinstance(n, ParamRef) and n.name in arrays:
            idx = tuple(int(i.value) for i in n.indices)
            value = float(arrays[n.name][idx])
            if params == "literal":
                return Const(value)
            sym = _symbol(n)
            symbols[sym] = value
            return ParamRef(sym)
        return None

    def gate(g: GateOp) -> GateOp:
        return replace(g, angles=tuple(fold(substitute(a, rep)) for a in g.angles))

    ops = [FusedOp(tuple(gate(g) for g in op.gates)) if isinstance(op, FusedOp) else gate(op)
           for op in _flat(staged.ops)]
    return ops, tuple(symbols.items())


# ----------------------------------------------------------------------------- lowering


def _lower_gates(gates, basis: Basis) -> list[NativeGate]:
    out: list[NativeGate] = []
    for g in gates:
        out.extend(basis.lower(g.op, g.angles))
    return out


def _numeric(g: GateOp) -> np.ndarray:
    angles = []
    for a in g.angles:
        v = float(evaluate(a, None, {}, np))
        if not math.isfinite(v):
            raise EmitError(f"gate {g.op.value} has angle {v}, not a real number")
        angles.append(v)
    return gate_matrix(g.op, tuple(angles))


def _blocks(ops, observable: str):
    """The W-block form: ``([W_0, ..., W_L], [f_1, ..., f_L])`` (see the module docstring)."""
    blocks, uploads = [], []
    cur = np.eye(2, dtype=complex)
    for op in ops:
        gates = op.gates if isinstance(op, FusedOp) else (op,)
        if isinstance(op, GateOp) and any(depends_on_input(a) for a in op.angles):
            if op.op not in (Op.RX, Op.RY, Op.RZ):
                raise EmitError(f"internal: data gate {op.op.value} after canonicalize")
            c = TO_Z[op.op.value[1]]
            blocks.append(c.conj().T @ cur)
            uploads.append(op.angles[0])
            cur = c
            continue
        for g in gates:
            cur = _numeric(g) @ cur
    blocks.append(MEASURE_CHANGE[observable] @ cur)
    return blocks, uploads


def _euler_sequence(blocks, uploads) -> list[GateOp]:
    """rz/ry gates of the W-block form, data angles merged with the Euler rz next to them."""
    seq: list[GateOp] = []
    for k, w in enumerate(blocks):
        alpha, beta, gamma = zyz(w)
        seq.append(GateOp(Op.RZ, (Const(gamma),)))
        if abs(beta) > 1e-14:
            seq.append(GateOp(Op.RY, (Const(beta),)))
        seq.append(GateOp(Op.RZ, (Const(alpha),)))
        if k < len(uploads):
            seq.append(GateOp(Op.RZ, (uploads[k],)))
    return seq


def peephole(gates: list[NativeGate], basis: Basis) -> list[NativeGate]:
    """Merge and drop rz gates, apply the basis' cancellation pairs; repeat until stable."""
    changed = True
    while changed:
        changed = False
        out: list[NativeGate] = []
        for g in gates:
            if g.name == "rz":
                if out and out[-1].name == "rz":
                    g = rz(angle_sum(out.pop().angles[0], g.angles[0]))
                    changed = True
                else:
                    g = rz(angle_sum(g.angles[0]))
                if is_zero_angle(g.angles[0]):
                    changed = True
                    continue
            elif out and (out[-1].key, g.key) in basis.cancel:
                out.extend(basis.cancel[(out.pop().key, g.key)])
                changed = True
                continue
            out.append(g)
        while out and out[0].name == "rz":  # rz fixes |0>
            out.pop(0)
            changed = True
        while out and out[-1].name == "rz":  # rz commutes with the Z measurement
            out.pop()
            changed = True
        gates = out
    return gates


def lower_bound(ops, symbols, observable: str, basis: str | Basis, level: str) -> EdgeCircuit:
    """An :class:`EdgeCircuit` from bound ops (see :func:`bind`)."""
    b = basis if isinstance(basis, Basis) else get_basis(basis)
    measure = [GateOp(op) for op in MEASURE_GATES[observable]]
    if level == "written":
        gates = _lower_gates([*ops, *measure], b)
    elif symbols:
        if any(isinstance(op, FusedOp) for op in ops):
            raise EmitError("internal: fused blocks with symbolic parameters")
        gates = peephole(_lower_gates([*ops, *measure], b), b)
    else:
        blocks, uploads = _blocks(ops, observable)
        gates = peephole(_lower_gates(_euler_sequence(blocks, uploads), b), b)
    return EdgeCircuit(tuple(gates), observable, b.name, level, tuple(symbols))


def edge_circuit(kernel: Circuit, values: Mapping[str, object] | None = None, *, basis: str = "stdgates",
                 level: str = "optimised", params: str = "literal") -> EdgeCircuit:
    """One edge's circuit in ``basis`` at ``level``, parameters bound from ``values``.

    Args:
        kernel: a kan layer's circuit IR (any stage; loops allowed).
        values: per-edge array per parameter name (shape as declared, without edge axes).
        basis: a name from :data:`~qvaf.compiler.emit.native.BASES`.
        level: ``"written"`` or ``"optimised"``.
        params: ``"literal"`` (numbers in the program) or ``"input"`` (program inputs).
    """
    staged = stage(kernel, level, params)
    ops, symbols = bind(staged, values, params)
    return lower_bound(ops, symbols, staged.observable, basis, level)
