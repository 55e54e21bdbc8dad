"""Optimisation passes over the IR graph: each a pure function ``graph -> new graph``.

A pass copies the graph and replaces the :class:`~qvaf.compiler.ir.KanNode` records whose
kernel it rewrites (``dataclasses.replace``); the input graph is never modified. Every pass
preserves the function each edge computes — the readout of the circuit for every ``x`` and
every parameter value — up to a global phase of the state, which no readout can see.
The gates act on the Bloch vector of the qubit as rotations in SO(3)::

    RZ(t): (x, y, z) -> (x cos t - y sin t, x sin t + y cos t, z)

and so on cyclically, which is the view the rewrite rules below are proved in.

The pipeline, in order (:data:`PIPELINE`)::

    unroll_loops        for-loops -> straight-line gates, integer indices folded
    inline_constants    literal consts -> numbers; angles constant-folded
    drop_noise_marks    ``noise`` statements removed (they place simulated noise only)
    canonicalize        named gates -> rx/ry/rz (up to global phase)
    merge_rotations     rz(a) rz(b) -> rz(a + b); identity rotations dropped
    drop_boundary_gates gates that fix |0> at the start / commute with the readout at the end
    fuse_static         data-free stretches -> one FusedOp (one SO(3) matrix per edge)

Example::

    graph = lower_model(program, "regression")
    optimised = run_pipeline(graph, verify_each=True,
                             dump=lambda name, g: print(name, len(g.nodes)))
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Iterable, Sequence

import networkx as nx

from .errors import CompileError, IRError
from .expr import Binary, Const, Expr, LoopVar, ParamRef, depends_on_input, param_refs, substitute
from .ir import Circuit, CircuitOp, FusedOp, GateOp, KanNode, LoopOp, NoiseOp, Op, ROTATIONS
from .simplify import fold, is_zero_rotation

__all__ = [
    "PIPELINE",
    "run_pipeline",
    "unroll_loops",
    "inline_constants",
    "drop_noise_marks",
    "canonicalize",
    "merge_rotations",
    "drop_boundary_gates",
    "fuse_static",
    "unroll_circuit",
    "map_kernels",
    "count_gates",
    "resolve_passes",
]

Pass = Callable[[nx.DiGraph], nx.DiGraph]


# ----------------------------------------------------------------------------- plumbing


def map_kernels(graph: nx.DiGraph, fn: Callable[[Circuit], Circuit]) -> nx.DiGraph:
    """A copy of ``graph`` with every kan node's kernel replaced by ``fn(kernel)``."""
    out = graph.copy()
    out.graph = dict(graph.graph)
    if isinstance(out.graph.get("model_args"), dict):
        out.graph["model_args"] = dict(out.graph["model_args"])
    for node, data in out.nodes(data=True):
        rec = data.get("op")
        if isinstance(rec, KanNode):
            data["op"] = replace(rec, kernel=fn(rec.kernel))
    return out


def _map_ops(ops: Sequence[CircuitOp], fn: Callable[[tuple[CircuitOp, ...]], tuple[CircuitOp, ...]]):
    """Apply a sequence rewrite ``fn`` bottom-up: to loop bodies and fused blocks first."""
    inner = []
    for op in ops:
        if isinstance(op, LoopOp):
            op = replace(op, body=_map_ops(op.body, fn))
        elif isinstance(op, FusedOp):
            op = FusedOp(tuple(_map_ops(op.gates, fn)))
        inner.append(op)
    return fn(tuple(inner))


def _map_angles(ops: Sequence[CircuitOp], fn: Callable[[Expr], Expr]) -> tuple[CircuitOp, ...]:
    def per_seq(seq):
        return tuple(replace(g, angles=tuple(fn(a) for a in g.angles)) if isinstance(g, GateOp) else g for g in seq)

    return _map_ops(ops, per_seq)


def count_gates(ops: Iterable[CircuitOp]) -> int:
    """Gates a circuit applies: loops count once per iteration, fused blocks per gate."""
    n = 0
    for op in ops:
        if isinstance(op, GateOp):
            n += 1
        elif isinstance(op, FusedOp):
            n += count_gates(op.gates)
        elif isinstance(op, LoopOp):
            n += max(0, op.stop - op.start) * count_gates(op.body)
    return n


# ----------------------------------------------------------------------------- unroll_loops


def _fold_index(e: Expr, where: str) -> Const:
    f = fold(e)
    if not isinstance(f, Const):
        raise IRError(f"{where}: index {f!r} does not fold to an integer constant")
    v = f.value
    if isinstance(v, float):
        if not v.is_integer():
            raise IRError(f"{where}: index evaluates to {v}, not an integer")
        v = int(v)
    return Const(int(v))


def _bind(e: Expr, env: dict[str, int]) -> Expr:
    def rep(n: Expr):
        if isinstance(n, LoopVar):
            if n.name not in env:
                raise IRError(f"loop variable {n.name!r} used outside its loop")
            return Const(env[n.name])
        if isinstance(n, ParamRef):
            return ParamRef(n.name, tuple(_fold_index(_bind(i, env), f"index of {n.name!r}") for i in n.indices))
        return None

    return substitute(e, rep)


def _unroll(ops: Sequence[CircuitOp], env: dict[str, int]) -> list[CircuitOp]:
    out: list[CircuitOp] = []
    for op in ops:
        if isinstance(op, LoopOp):
            for value in range(op.start, op.stop):
                out.extend(_unroll(op.body, {**env, op.var: value}))
        elif isinstance(op, FusedOp):
            out.append(FusedOp(tuple(_unroll(op.gates, env))))
        elif isinstance(op, NoiseOp):
            out.append(op)
        else:
            out.append(replace(op, angles=tuple(_bind(a, env) for a in op.angles)))
    return out


def unroll_circuit(circuit: Circuit) -> Circuit:
    """:func:`unroll_loops` for one circuit (what a backend calls on a kernel with loops)."""
    return replace(circuit, ops=tuple(_unroll(circuit.ops, {})))


def unroll_loops(graph: nx.DiGraph) -> nx.DiGraph:
    """Replace every ``LoopOp`` by copies of its body, one per iteration.

    Assumes: loop bounds are integers; loop variables appear only inside their loop.
    Guarantees: no ``LoopOp`` and no ``LoopVar`` remain; every ``ParamRef`` index is a
    ``Const`` holding a Python int (index arithmetic such as ``l + 1`` folded). Other uses of
    a loop variable in an angle become ``Const`` values, left unfolded for
    :func:`inline_constants`. Raises :class:`IRError` for a non-integer index.
    """
    return map_kernels(graph, unroll_circuit)


# ----------------------------------------------------------------------------- inline_constants


def _inline(circuit: Circuit) -> Circuit:
    table = circuit.constant_arrays()

    def rep(n: Expr):
        if isinstance(n, ParamRef) and n.name in table:
            arr = table[n.name]
            if len(n.indices) != arr.ndim or not all(isinstance(i, Const) for i in n.indices):
                return None
            idx = tuple(int(i.value) for i in n.indices)
            if any(not 0 <= k < s for k, s in zip(idx, arr.shape)):
                raise IRError(f"constant {n.name}{list(idx)} is out of range for shape {arr.shape}")
            return Const(float(arr[idx]))
        return None

    ops = _map_angles(circuit.ops, lambda a: fold(substitute(a, rep)))
    used = {r.name for op in _all_gates(ops) for a in op.angles for r in param_refs(a)}
    constants = tuple((name, value) for name, value in circuit.constants if name in used)
    return replace(circuit, ops=ops, constants=constants)


def _all_gates(ops: Iterable[CircuitOp]):
    for op in ops:
        if isinstance(op, GateOp):
            yield op
        elif isinstance(op, FusedOp):
            yield from _all_gates(op.gates)
        elif isinstance(op, LoopOp):
            yield from _all_gates(op.body)


def inline_constants(graph: nx.DiGraph) -> nx.DiGraph:
    """Replace references to compile-time constants by their values; fold every angle.

    Assumes: nothing (run after :func:`unroll_loops` to reach every reference).
    Guarantees: every ``ParamRef`` to a ``Circuit.constants`` entry whose indices are
    constants is replaced by a ``Const``; every angle is folded by
    :func:`qvaf.compiler.simplify.fold` (``1.0 * x + 0.0`` becomes ``x``); constants no
    longer referenced are removed from ``Circuit.constants``.
    """
    return map_kernels(graph, _inline)


# ----------------------------------------------------------------------------- drop_noise_marks


def drop_noise_marks(graph: nx.DiGraph) -> nx.DiGraph:
    """Remove the ``noise`` statements' marks.

    Assumes: nothing. Guarantees: no ``NoiseOp`` remains (also inside loops). A mark changes
    no state: it only says where a noise model placed ``where="spec"`` acts, and noisy
    simulation runs the circuits as written, before this pass. Without it the marks would
    stand between gates that later passes merge or fuse.
    """

    def drop(seq):
        return tuple(op for op in seq if not isinstance(op, NoiseOp))

    return map_kernels(graph, lambda c: replace(c, ops=_map_ops(c.ops, drop)))


# ----------------------------------------------------------------------------- canonicalize

_PI = math.pi


def _rot(op: Op, angle: Expr, span) -> GateOp:
    return GateOp(op, (angle,), span=span)


def _canonical(g: GateOp) -> list[GateOp]:
    """The rotations a named gate equals up to global phase, in time order."""
    s = g.span
    c = lambda v: Const(v)  # noqa: E731
    table = {
        # H: z -> x, x -> z, y -> -y  ==  rz(pi) then ry(pi/2)
        Op.H: lambda: [_rot(Op.RZ, c(_PI), s), _rot(Op.RY, c(_PI / 2), s)],
        Op.X: lambda: [_rot(Op.RX, c(_PI), s)],
        Op.Y: lambda: [_rot(Op.RY, c(_PI), s)],
        Op.Z: lambda: [_rot(Op.RZ, c(_PI), s)],
        Op.S: lambda: [_rot(Op.RZ, c(_PI / 2), s)],
        Op.SDG: lambda: [_rot(Op.RZ, c(-_PI / 2), s)],
        Op.T: lambda: [_rot(Op.RZ, c(_PI / 4), s)],
        Op.TDG: lambda: [_rot(Op.RZ, c(-_PI / 4), s)],
        Op.SX: lambda: [_rot(Op.RX, c(_PI / 2), s)],
        Op.PHASE: lambda: [_rot(Op.RZ, g.angles[0], s)],
        # U3(theta, phi, lam) = RZ(phi) RY(theta) RZ(lam) e^{i(phi+lam)/2}: rz(lam) acts first
        Op.U3: lambda: [_rot(Op.RZ, g.angles[2], s), _rot(Op.RY, g.angles[0], s), _rot(Op.RZ, g.angles[1], s)],
    }
    if g.op in ROTATIONS:
        return [g]
    if g.op not in table:
        raise IRError(f"canonicalize: not a gate: {g.op}")
    return table[g.op]()


def _canonicalize_seq(seq: tuple[CircuitOp, ...]) -> tuple[CircuitOp, ...]:
    out: list[CircuitOp] = []
    for op in seq:
        out.extend(_canonical(op) if isinstance(op, GateOp) else [op])
    return tuple(out)


def canonicalize(graph: nx.DiGraph) -> nx.DiGraph:
    """Rewrite every named gate as rotations ``rx``/``ry``/``rz``.

    Assumes: nothing. Guarantees: every ``GateOp`` (also inside loops and fused blocks) is
    ``RX``, ``RY`` or ``RZ``; the circuit's unitary is unchanged up to global phase::

        h = rz(pi); ry(pi/2)     x = rx(pi)    y = ry(pi)    z = rz(pi)
        s = rz(pi/2)   sdg = rz(-pi/2)   t = rz(pi/4)   tdg = rz(-pi/4)   sx = rx(pi/2)
        phase(t) = rz(t)         u3(th, ph, lam) = rz(lam); ry(th); rz(ph)
    """
    return map_kernels(graph, lambda c: replace(c, ops=_map_ops(c.ops, _canonicalize_seq)))


# ----------------------------------------------------------------------------- merge_rotations


def _reads_params(e: Expr) -> bool:
    return bool(param_refs(e))


def _mergeable(a: Expr, b: Expr) -> bool:
    """Whether two angles may be added into one rotation.

    A data-dependent angle is never merged with a data-free angle that reads parameters: the
    data-free rotation joins a fused block computed once per edge, while the data angle's
    sincos is per sample — and shared by all output edges while it reads no per-edge
    parameter. Merging with a pure constant keeps both properties.
    """
    da, db = depends_on_input(a), depends_on_input(b)
    if da == db:
        return True
    free = b if da else a
    return not _reads_params(free)


def _merge_seq(seq: tuple[CircuitOp, ...]) -> tuple[CircuitOp, ...]:
    out: list[CircuitOp] = []
    for op in seq:
        if isinstance(op, GateOp) and op.op in ROTATIONS:
            angle = fold(op.angles[0])
            if is_zero_rotation(angle):
                continue
            top = out[-1] if out else None
            if (
                isinstance(top, GateOp)
                and top.op == op.op
                and _mergeable(top.angles[0], angle)
            ):
                out.pop()
                total = fold(Binary("+", top.angles[0], angle))
                if not is_zero_rotation(total):
                    out.append(replace(top, angles=(total,)))
                continue
            out.append(replace(op, angles=(angle,)))
        else:
            out.append(op)
    return tuple(out)


def merge_rotations(graph: nx.DiGraph) -> nx.DiGraph:
    """Merge adjacent rotations about the same axis; drop identity rotations.

    Assumes: nothing (best after :func:`canonicalize`, which turns named gates into
    rotations). Guarantees: ``r(a) r(b)`` becomes ``r(a + b)`` for ``r`` in rx/ry/rz within one
    op sequence (loop bodies and fused blocks separately; a loop is a barrier), except that
    a data angle is not merged with a parameter-reading data-free angle (see
    :func:`_mergeable`); rotations whose angle folds to a multiple of 2*pi are removed
    (identity in SO(3), a sign in SU(2)). Repeats until no two neighbours merge.
    """
    return map_kernels(graph, lambda c: replace(c, ops=_map_ops(c.ops, _merge_seq)))


# ----------------------------------------------------------------------------- drop_boundary_gates

#: gates diagonal in the computational basis: they fix |0> and commute with Z
_DIAGONAL = {Op.RZ, Op.Z, Op.S, Op.SDG, Op.T, Op.TDG, Op.PHASE}
#: gates that commute with the measured observable (the |alpha|-|beta| readout is a function of <Z>)
_COMMUTES = {
    "z": _DIAGONAL,
    "inspired": _DIAGONAL,
    "x": {Op.RX, Op.X, Op.SX},
    "y": {Op.RY, Op.Y},
}


def _drop_boundary(c: Circuit) -> Circuit:
    ops = list(c.ops)
    while ops and isinstance(ops[0], GateOp) and ops[0].op in _DIAGONAL:
        ops.pop(0)
    commuting = _COMMUTES.get(c.observable, set())
    while ops and isinstance(ops[-1], GateOp) and ops[-1].op in commuting:
        ops.pop()
    return replace(c, ops=tuple(ops))


def drop_boundary_gates(graph: nx.DiGraph) -> nx.DiGraph:
    """Drop leading gates that fix |0> and trailing gates that commute with the readout.

    Assumes: nothing; looks at top-level gates only (a loop or fused block at either end stops
    the search). Guarantees: the first gate is not diagonal (rz, z, s, sdg, t, tdg, phase
    map |0> to itself up to phase); the last gate does not commute with the observable
    (diagonal gates before ``measure z`` or ``inspired``, rx/x/sx before ``measure x``, ry/y
    before ``measure y``: U^dagger O U = O). Both ends are stripped until nothing changes.
    """
    return map_kernels(graph, _drop_boundary)


# ----------------------------------------------------------------------------- fuse_static


def _fuse_seq(seq: tuple[CircuitOp, ...]) -> tuple[CircuitOp, ...]:
    out: list[CircuitOp] = []
    run: list[GateOp] = []

    def flush():
        if len(run) >= 2:
            out.append(FusedOp(tuple(run)))
        else:
            out.extend(run)
        run.clear()

    for op in seq:
        if isinstance(op, FusedOp):
            run.extend(op.gates)
        elif isinstance(op, GateOp) and not any(depends_on_input(a) for a in op.angles):
            run.append(op)
        else:
            flush()
            out.append(op)
    flush()
    return tuple(out)


def fuse_static(graph: nx.DiGraph) -> nx.DiGraph:
    """Gather every maximal data-free stretch of two or more gates into one ``FusedOp``.

    Assumes: nothing (loop bodies are fused separately; a loop is a barrier).
    Guarantees: no two data-free ops are adjacent at the same level — each stretch of gates
    whose angles do not read ``x`` is one ``FusedOp`` (existing blocks are absorbed), which
    a backend applies as one SO(3) matrix computed once per edge. A lone data-free gate
    stays a ``GateOp``. Idempotent.
    """
    return map_kernels(graph, lambda c: replace(c, ops=_fuse_top(c.ops)))


def _fuse_top(ops: tuple[CircuitOp, ...]) -> tuple[CircuitOp, ...]:
    inner = []
    for op in ops:
        if isinstance(op, LoopOp):
            op = replace(op, body=_fuse_top(op.body))
        inner.append(op)
    return _fuse_seq(tuple(inner))


# ----------------------------------------------------------------------------- pipeline

PIPELINE: list[tuple[str, Pass]] = [
    ("unroll_loops", unroll_loops),
    ("inline_constants", inline_constants),
    ("drop_noise_marks", drop_noise_marks),
    ("canonicalize", canonicalize),
    ("merge_rotations", merge_rotations),
    ("drop_boundary_gates", drop_boundary_gates),
    ("fuse_static", fuse_static),
]


def resolve_passes(passes) -> list[tuple[str, Pass]]:
    """``(name, pass)`` pairs for pass names, ``(name, fn)`` pairs or functions (None: all)."""
    if passes is None:
        return list(PIPELINE)
    table = dict(PIPELINE)
    out = []
    for p in passes:
        if isinstance(p, str):
            if p not in table:
                raise CompileError(f"unknown pass {p!r}; passes: {', '.join(table)}")
            out.append((p, table[p]))
        elif isinstance(p, tuple) and len(p) == 2 and callable(p[1]):
            out.append(p)
        elif callable(p):
            out.append((getattr(p, "__name__", "pass"), p))
        else:
            raise CompileError(f"not a pass: {p!r}")
    return out


def run_pipeline(
    graph: nx.DiGraph,
    passes: Sequence | None = None,
    dump: Callable[[str, nx.DiGraph], None] | None = None,
    *,
    verify_each: bool = False,
) -> nx.DiGraph:
    """Run ``passes`` (default :data:`PIPELINE`) in order and return the final graph.

    Args:
        graph: a lowered graph (not modified).
        passes: pass names, ``(name, fn)`` pairs or functions; None runs the whole pipeline.
        dump: called as ``dump(name, graph)`` after each pass (``qvaf inspect --dump-ir``).
        verify_each: run :func:`qvaf.compiler.verify.verify` on the input and after each pass.
    """
    from .verify import verify

    if verify_each:
        verify(graph)
    for name, fn in resolve_passes(passes):
        graph = fn(graph)
        if verify_each:
            try:
                verify(graph)
            except IRError as exc:
                raise IRError(f"after pass {name}: {exc}") from exc
        if dump is not None:
            dump(name, graph)
    return graph
