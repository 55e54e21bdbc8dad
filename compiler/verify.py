"""``verify(graph)``: the invariants every IR graph satisfies, at every pipeline stage.

Tests run it on the lowered graph and after every pass (``run_pipeline(..., verify_each=True)``).
It checks, and raises :class:`~qvaf.compiler.errors.IRError` naming the node and the broken
rule otherwise:

* **chain**: nodes ``input``, ``layer0`` ... ``layerK``, ``output`` joined by exactly the edges
  input -> layer0 -> ... -> output; each node's ``op`` record has the matching type;
  every layer's input width is the previous node's width, the output's width the last one's.
* **kernels**: every op is a ``GateOp``/``LoopOp``/``FusedOp``/``NoiseOp`` (a mark, outside
  fused blocks); gates have their arity and
  well-formed angle expressions; the observable is known; loop variables are bound by an
  enclosing loop; every ``ParamRef`` names a per-edge param or a constant of the circuit with
  as many indices as its rank, each an integer in range (checked for every loop iteration);
  a ``FusedOp`` holds gates only, none reading ``x``.
* **layers**: a kan layer's base function is one of the language's; its group count is
  positive.
* **parameter table**: paths are unique; each row's owner is a layer; every layer has
  exactly the rows :func:`~qvaf.compiler.ir.layer_arrays` lists, with those shapes (a kan
  layer: one per per-edge param, ``[out, in, *shape]`` or ``[G, *shape]`` with ``group G``,
  plus ``mask``, ``base_weight``, ``postact_weight`` / ``postact_bias`` as enabled; a linear
  layer: ``weight [out, in]``, ``bias [out]``); ``mask`` is fixed; every initialiser is known
  and has its number of arguments; ``reps_axes`` name axes of the array.

An error about a gate carries the gate's span (``IRError.span``) when the IR has one.
"""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np

from .errors import IRError
from .expr import BINARY_OPS, FUNCTIONS, Binary, Const, Expr, Input, LoopVar, ParamRef, Unary, depends_on_input, walk
from qvaf.dsl import rules

from .ir import (
    GATE_ARITY,
    INIT_KINDS,
    OBSERVABLES,
    Circuit,
    FusedOp,
    GateOp,
    Init,
    InputNode,
    KanNode,
    LinearNode,
    LoopOp,
    NoiseOp,
    Op,
    OutputNode,
    ParamSpec,
    layer_arrays,
)

__all__ = ["verify", "RESERVED_NAMES"]

#: array names a per-edge param may not take (the language's reserved names)
RESERVED_NAMES = rules.RESERVED


def verify(graph: nx.DiGraph) -> None:
    """Check every invariant of an IR graph; raise :class:`IRError` on the first broken one."""
    if not isinstance(graph, nx.DiGraph):
        raise IRError(f"expected a networkx.DiGraph, got {type(graph).__name__}")
    order = _check_chain(graph)
    for node in order:
        rec = graph.nodes[node]["op"]
        if isinstance(rec, KanNode):
            _check_kan(node, rec)
    _check_params(graph, order)


# ----------------------------------------------------------------------------- chain


def _check_chain(graph: nx.DiGraph) -> list[str]:
    for attr in ("name", "params"):
        if attr not in graph.graph:
            raise IRError(f"graph attribute {attr!r} is missing")
    n_layers = graph.number_of_nodes() - 2
    order = ["input"] + [f"layer{k}" for k in range(n_layers)] + ["output"]
    if set(graph.nodes) != set(order):
        raise IRError(f"nodes must be {order[:3]}...{order[-1:]} in a chain, got {sorted(graph.nodes)}")
    want_edges = set(zip(order, order[1:]))
    if set(graph.edges) != want_edges:
        extra = set(graph.edges) - want_edges
        missing = want_edges - set(graph.edges)
        raise IRError(f"graph is not the chain input -> ... -> output (extra {sorted(extra)}, missing {sorted(missing)})")
    width = None
    for node in order:
        data = graph.nodes[node]
        if "op" not in data:
            raise IRError(f"node {node!r} has no 'op' record")
        rec = data["op"]
        if node == "input":
            if not isinstance(rec, InputNode):
                raise IRError(f"node 'input' holds {type(rec).__name__}, not InputNode")
            width = _pos_int(rec.width, "input width")
        elif node == "output":
            if not isinstance(rec, OutputNode):
                raise IRError(f"node 'output' holds {type(rec).__name__}, not OutputNode")
            if rec.width != width:
                raise IRError(f"output width {rec.width} != width {width} of the last layer")
        else:
            if not isinstance(rec, (KanNode, LinearNode)):
                raise IRError(f"node {node!r} holds {type(rec).__name__}, not KanNode or LinearNode")
            if rec.name != node:
                raise IRError(f"node {node!r} holds a record named {rec.name!r}")
            if rec.in_width != width:
                raise IRError(f"{node}: in_width {rec.in_width} != width {width} of the previous node")
            _pos_int(rec.out_width, f"{node}: out_width")
            width = rec.out_width
    return order


def _pos_int(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise IRError(f"{what} must be a positive int, got {v!r}")
    return v


# ----------------------------------------------------------------------------- kernels


def _check_kan(node: str, rec: KanNode) -> None:
    c = rec.kernel
    if not isinstance(c, Circuit):
        raise IRError(f"{node}: kernel is {type(c).__name__}, not Circuit")
    if c.observable not in OBSERVABLES:
        raise IRError(f"{node}: unknown observable {c.observable!r} (known: {', '.join(OBSERVABLES)})")
    if rec.base not in rules.BASES:
        raise IRError(f"{node}: unknown base function {rec.base!r} (known: {', '.join(rules.BASES)})")
    if rec.group is not None:
        _pos_int(rec.group, f"{node}: group")
    shapes: dict[str, tuple[int, ...]] = {}
    for name, shape in c.params:
        if name in shapes:
            raise IRError(f"{node}: per-edge param {name!r} declared twice")
        if name in RESERVED_NAMES:
            raise IRError(f"{node}: per-edge param name {name!r} is reserved")
        if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise IRError(f"{node}: param {name!r} has a bad shape {shape!r}")
        shapes[name] = shape
    for name, value in c.constants:
        if name in shapes:
            raise IRError(f"{node}: {name!r} is both a param and a constant")
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise IRError(f"{node}: constant {name!r} is not a numeric array: {exc}") from None
        shapes[name] = arr.shape
    _check_ops(node, c.ops, shapes, {}, fused=False)


def _check_ops(node, ops, shapes, loops: dict[str, range], fused: bool) -> None:
    for op in ops:
        if isinstance(op, GateOp):
            try:
                check_gate(node, op, shapes, loops)
            except IRError as exc:
                raise IRError(str(exc), exc.span or op.span) from None
            if fused and any(depends_on_input(a) for a in op.angles):
                raise IRError(f"{node}: fused block contains a gate reading x: {op.op.value}")
        elif isinstance(op, LoopOp):
            if fused:
                raise IRError(f"{node}: a fused block may hold gates only, found a loop")
            if not isinstance(op.start, int) or not isinstance(op.stop, int):
                raise IRError(f"{node}: loop {op.var!r} bounds must be ints, got {op.start!r}..{op.stop!r}")
            if op.var in loops:
                raise IRError(f"{node}: loop variable {op.var!r} shadows an enclosing loop")
            _check_ops(node, op.body, shapes, {**loops, op.var: range(op.start, op.stop)}, fused=False)
        elif isinstance(op, FusedOp):
            if fused:
                raise IRError(f"{node}: nested fused block")
            _check_ops(node, op.gates, shapes, loops, fused=True)
        elif isinstance(op, NoiseOp):
            if fused:
                raise IRError(f"{node}: a fused block may hold gates only, found a noise mark")
        else:
            raise IRError(f"{node}: not a circuit op: {op!r}")


def check_gate(node, g: GateOp, shapes, loops) -> None:
    """Arity and angle expressions of one gate; ``loops`` maps bound loop variables to ranges."""
    if not isinstance(g.op, Op) or g.op not in GATE_ARITY:
        raise IRError(f"{node}: not a gate: {g.op!r}")
    if len(g.angles) != GATE_ARITY[g.op]:
        raise IRError(f"{node}: gate {g.op.value} takes {GATE_ARITY[g.op]} angles, has {len(g.angles)}")
    for a in g.angles:
        _check_expr(node, g, a, shapes, loops)


def _check_expr(node, g, e: Expr, shapes, loops) -> None:
    where = f"{node}: gate {g.op.value}"
    for n in walk(e):
        if isinstance(n, Const):
            if isinstance(n.value, bool) or not isinstance(n.value, (int, float)):
                raise IRError(f"{where}: constant {n.value!r} is not a number")
        elif isinstance(n, Input):
            pass
        elif isinstance(n, LoopVar):
            if n.name not in loops:
                raise IRError(f"{where}: loop variable {n.name!r} is not bound by an enclosing loop")
        elif isinstance(n, Unary):
            if n.fn != "neg" and n.fn not in FUNCTIONS:
                raise IRError(f"{where}: unknown function {n.fn!r}")
        elif isinstance(n, Binary):
            if n.op not in BINARY_OPS:
                raise IRError(f"{where}: unknown operator {n.op!r}")
        elif isinstance(n, ParamRef):
            _check_ref(where, n, shapes, loops)
        else:
            raise IRError(f"{where}: not an expression: {n!r}")


def _check_ref(where, ref: ParamRef, shapes, loops) -> None:
    if ref.name not in shapes:
        raise IRError(f"{where}: {ref.name!r} is not a per-edge param or constant of this layer")
    shape = shapes[ref.name]
    if len(ref.indices) != len(shape):
        raise IRError(f"{where}: {ref.name} has rank {len(shape)}, indexed with {len(ref.indices)} indices")
    for i in ref.indices:
        if depends_on_input(i) or any(isinstance(n, ParamRef) for n in walk(i)):
            raise IRError(f"{where}: index of {ref.name} must be a compile-time integer")
    used = sorted({n.name for i in ref.indices for n in walk(i) if isinstance(n, LoopVar)})
    from .expr import evaluate

    for values in itertools.product(*(loops[v] for v in used)):
        env = dict(zip(used, values))
        for axis, (i, size) in enumerate(zip(ref.indices, shape)):
            try:
                v = evaluate(i, 0.0, {}, np, env)
            except (ArithmeticError, ValueError, KeyError) as exc:
                raise IRError(f"{where}: index {axis} of {ref.name} cannot be evaluated: {exc}") from None
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if not isinstance(v, (int, np.integer)):
                raise IRError(f"{where}: index {axis} of {ref.name} is {v!r}, not an integer")
            if not 0 <= v < size:
                at = f" (at {', '.join(f'{k}={x}' for k, x in env.items())})" if env else ""
                raise IRError(f"{where}: index {axis} of {ref.name} is {v}, out of range 0..{size - 1}{at}")


# ----------------------------------------------------------------------------- parameter table


def _check_params(graph: nx.DiGraph, order: list[str]) -> None:
    table = graph.graph["params"]
    if not isinstance(table, tuple) or not all(isinstance(p, ParamSpec) for p in table):
        raise IRError("graph attribute 'params' must be a tuple of ParamSpec")
    by_owner: dict[str, dict[str, ParamSpec]] = {}
    for p in table:
        if p.owner not in graph.nodes or p.owner in ("input", "output"):
            raise IRError(f"param {p.path}: owner {p.owner!r} is not a layer of the graph")
        if p.name in by_owner.setdefault(p.owner, {}):
            raise IRError(f"param path {p.path} appears twice")
        if not isinstance(p.shape, tuple) or not all(isinstance(s, int) and s >= 1 for s in p.shape):
            raise IRError(f"param {p.path}: bad shape {p.shape!r}")
        _check_row(p)
        by_owner[p.owner][p.name] = p
    for node in order[1:-1]:
        rec = graph.nodes[node]["op"]
        want = {a.name: a.shape for a in layer_arrays(rec)}
        have = by_owner.get(node, {})
        if set(have) != set(want):
            missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
            raise IRError(f"{node}: parameter table mismatch (missing {missing}, unexpected {extra})")
        for name, shape in want.items():
            if have[name].shape != shape:
                raise IRError(f"param {node}.{name}: shape {have[name].shape} != expected {shape}")
        if "mask" in have and have["mask"].trainable:
            raise IRError(f"param {node}.mask must be fixed (not trainable)")


def _check_row(p: ParamSpec) -> None:
    """One row on its own: its initialiser and its reps axes."""
    if not isinstance(p.init, Init) or p.init.kind not in INIT_KINDS:
        raise IRError(f"param {p.path}: unknown initialiser {getattr(p.init, 'kind', p.init)!r} "
                      f"(known: {', '.join(INIT_KINDS)})")
    if len(p.init.args) != INIT_KINDS[p.init.kind]:
        raise IRError(f"param {p.path}: initialiser {p.init.kind} takes {INIT_KINDS[p.init.kind]} "
                      f"arguments, has {len(p.init.args)}")
    for axis, k in p.reps_axes:
        if not 0 <= axis < len(p.shape) or not isinstance(k, int) or not 0 <= k <= p.shape[axis]:
            raise IRError(f"param {p.path}: reps axis ({axis}, {k}) does not fit its shape {p.shape}")
