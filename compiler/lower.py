"""Lowering: checked AST -> IR graph (:mod:`qvaf.compiler.ir`).

A model becomes the chain ``input -> layer0 -> ... -> output`` of a ``networkx.DiGraph``;
each ``kan`` layer holds its ansatz lowered to a :class:`~qvaf.compiler.ir.Circuit`, with every
compile-time value (widths, shapes, loop bounds, ansatz arguments) evaluated. The graph
attribute ``"params"`` is the parameter table: one :class:`~qvaf.compiler.ir.ParamSpec` per
array of the network, in the order and shapes :func:`~qvaf.compiler.ir.layer_arrays` gives.

Expressions translate one to one: the edge input ``x`` -> :class:`Input`, ``pi`` and ansatz
arguments -> :class:`Const`, loop variables -> :class:`LoopVar`, params and consts ->
:class:`ParamRef`, calls -> :class:`Unary`. ``encode(a, axis)`` is the rotation about that
axis. A ``const`` with a literal value is a compile-time constant: it goes to
``Circuit.constants`` and the ``inline_constants`` pass replaces it by numbers.

Lowering trusts the checker (:mod:`qvaf.dsl.checker`) and translates. What the checker has
not seen is checked here with the checker's own rules: ansatz arguments given from Python or
computed from model arguments go through :func:`qvaf.dsl.check_ansatz.instantiate` (empty
shapes, indices out of range), and widths through the same positivity rule. The result is
verified (:func:`qvaf.compiler.verify.verify`); a program that bypassed the checker gets
verify's message, at the gate it concerns where there is one. Only what cannot be translated
at all (a gate or a name the IR has no record for) is reported by the lowering itself.

Example::

    >>> program = qvaf.dsl.load_program("specs/models/regression.qvaf")
    >>> graph = lower_model(program, "regression", ansatz_overrides={"*": {"reps": 5}})
    >>> graph.nodes["layer0"]["op"].kernel.params
    (('theta', (6, 2)),)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping

import networkx as nx

from qvaf.dsl import ast, rules
from qvaf.dsl.check_ansatz import instantiate
from qvaf.dsl.consteval import ConstError, bind_args, eval_const, eval_int

from . import expr as E
from .errors import CompileError, IRError
from .ir import (
    ROTATION_OF_AXIS,
    Circuit,
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
from .verify import verify

__all__ = ["lower_model", "lower_ansatz", "lower_kernel", "build_graph", "kernel_graph", "layer_params",
           "DeclaredArray"]

_GATES = {name: Op(name) for name in rules.GATES}


def _load(program):
    if isinstance(program, (str, os.PathLike)):
        from qvaf.dsl import load_program

        return load_program(program)
    return program


def _source_line(program, span) -> str | None:
    if span is None:
        return None
    text = (getattr(program, "sources", None) or {}).get(span.file)
    if text is None:
        return None
    lines = text.splitlines()
    return lines[span.line - 1] if 1 <= span.line <= len(lines) else None


def _err(program, message: str, span=None, hint: str | None = None) -> CompileError:
    return CompileError(message, span, _source_line(program, span), hint)


def _shown(args: Mapping[str, object]) -> str | None:
    return "with " + ", ".join(f"{k} = {v}" for k, v in args.items()) if args else None


@dataclass(frozen=True)
class DeclaredArray:
    """What an ansatz declares about one of its per-edge arrays (a ``param`` or a random
    ``const``): its initialiser, whether it trains, its ``grow`` fill value, and the axes of
    its per-edge shape whose size is ``reps + k`` as ``(axis, k)``."""

    init: Init
    trainable: bool
    grow: float | None = None
    reps_axes: tuple[tuple[int, int], ...] = ()


# ----------------------------------------------------------------------------- ansatz -> Circuit


class _KernelLowering:
    """Lowers one ansatz body under bound arguments ``env``."""

    def __init__(self, program, ansatz: ast.Ansatz, env: dict):
        self.program = program
        self.ansatz = ansatz
        self.env = env
        self.shapes: dict[str, tuple[int, ...]] = {}  # every declaration's per-edge shape
        self.arrays: dict[str, DeclaredArray] = {}  # the per-edge arrays
        self.constants: list[tuple[str, object]] = []  # the literal consts
        self.observable = "z"

    def err(self, message, span, hint=None):
        return _err(self.program, f"ansatz {self.ansatz.name}: {message}", span, hint)

    def lower(self) -> Circuit:
        ops = self.stmts(self.ansatz.body, ())
        params = tuple((name, self.shapes[name]) for name in self.arrays)
        return Circuit(tuple(ops), self.observable, params, tuple(self.constants))

    # --------------------------------------------------------------- statements
    def stmts(self, body, loops: tuple[str, ...]) -> list:
        ops = []
        for st in body:
            if isinstance(st, ast.ParamDecl):
                if loops:
                    raise self.err(f"'{st.name}' is declared inside a loop", st.span, "declare it at the top of the ansatz")
                self.decl(st)
            elif isinstance(st, ast.Gate):
                ops.append(self.gate(st, loops))
            elif isinstance(st, ast.Encode):
                ops.append(self.encode(st, loops))
            elif isinstance(st, ast.For):
                body = self.stmts(st.body, loops + (st.var,))
                ops.append(LoopOp(st.var, eval_int(st.start, self.env), eval_int(st.stop, self.env), tuple(body)))
            elif isinstance(st, ast.Measure):
                self.observable = st.observable
            elif isinstance(st, ast.Noise):
                ops.append(NoiseOp(span=st.span))
            elif not isinstance(st, ast.Comment):
                raise self.err(f"unexpected statement {type(st).__name__}", getattr(st, "span", None))
        return ops

    def gate(self, st: ast.Gate, loops) -> GateOp:
        op = _GATES.get(st.name)
        if op is None:
            raise self.err(f"unknown gate '{st.name}'", st.span, f"gates: {', '.join(rules.GATES)}")
        return GateOp(op, tuple(self.expr(a, loops) for a in st.args), span=st.span)

    def encode(self, st: ast.Encode, loops) -> GateOp:
        axis = self.env.get(st.axis, st.axis)
        if axis not in ROTATION_OF_AXIS:
            raise self.err(f"encode axis '{st.axis}' is not x, y, z or an axis argument", st.span)
        return GateOp(ROTATION_OF_AXIS[axis], (self.expr(st.angle, loops),), span=st.span)

    def decl(self, st: ast.ParamDecl) -> None:
        shape = tuple(eval_int(s, self.env) for s in st.shape)
        self.shapes[st.name] = shape
        grow = None if st.grow is None else float(self.number(st.grow))
        if st.random:
            init = Init(st.init.func, tuple(float(self.number(a)) for a in st.init.args))
        elif st.trainable:
            init = Init("constant", (float(self.number(st.init)),))
        else:  # a literal const: a compile-time constant, folded away by inline_constants
            self.constants.append((st.name, _filled(shape, float(self.number(st.init)))))
            return
        self.arrays[st.name] = DeclaredArray(init, st.trainable, grow, self.reps_axes(st))

    def reps_axes(self, st: ast.ParamDecl) -> tuple[tuple[int, int], ...]:
        """The axes of ``st``'s shape of size ``reps + k`` (k >= 0), for an int ``reps``."""
        reps = self.env.get("reps")
        if not isinstance(reps, int) or isinstance(reps, bool):
            return ()
        out = []
        for axis, dim in enumerate(st.shape):
            try:
                now, grown = eval_int(dim, self.env), eval_int(dim, {**self.env, "reps": reps + 1})
            except ConstError:
                continue
            if grown - now == 1 and now >= reps:
                out.append((axis, now - reps))
        return tuple(out)

    def number(self, e):
        v = eval_const(e, self.env)
        if isinstance(v, str):
            raise self.err(f"axis value '{v}' used as a number", e.span)
        return v

    # --------------------------------------------------------------- expressions
    def expr(self, e, loops) -> E.Expr:
        if isinstance(e, ast.Num):
            return E.Const(int(e.value) if e.is_int else float(e.value))
        if isinstance(e, ast.Name):
            return self.name(e, loops)
        if isinstance(e, ast.Index):
            if e.base.id not in self.shapes or e.base.id in loops:
                raise self.err(f"'{e.base.id}' is not a declared param or const", e.span)
            return E.ParamRef(e.base.id, tuple(self.expr(i, loops) for i in e.indices))
        if isinstance(e, ast.UnaryOp):
            inner = self.expr(e.operand, loops)
            return E.Unary("neg", inner) if e.op == "-" else inner
        if isinstance(e, ast.BinOp):
            return E.Binary(e.op, self.expr(e.left, loops), self.expr(e.right, loops))
        if isinstance(e, ast.Call):
            if len(e.args) != 1:
                raise self.err(f"function '{e.func}' takes 1 argument, got {len(e.args)}", e.span)
            return E.Unary(e.func, self.expr(e.args[0], loops))
        raise self.err(f"unexpected expression {type(e).__name__}", getattr(e, "span", None))

    def name(self, e: ast.Name, loops) -> E.Expr:
        n = e.id
        if n in loops:
            return E.LoopVar(n)
        if n in self.shapes:
            return E.ParamRef(n)
        if n in self.env:
            v = self.env[n]
            if isinstance(v, str):
                raise self.err(f"axis argument '{n}' used as a number", e.span)
            return E.Const(v)
        if n == "x":
            return E.Input()
        if n == "pi":
            return E.Const(math.pi)
        raise self.err(f"unknown name '{n}'", e.span)


def _filled(shape: tuple[int, ...], v: float):
    if not shape:
        return v
    return tuple(_filled(shape[1:], v) for _ in range(shape[0]))


def lower_kernel(program, ansatz: ast.Ansatz, args: Mapping[str, object]) -> tuple[Circuit, dict[str, DeclaredArray]]:
    """Lower one ansatz under bound arguments, after instantiating it with them.

    Returns:
        the circuit, and per-edge array name -> :class:`DeclaredArray` for its params and
        random consts (the rows of the parameter table, before the edge axes).

    Raises:
        CompileError: the arguments give an empty shape, an index out of range or a bad
            loop bound (the checker's message, at the expression's span).
    """
    problems = instantiate(ansatz, dict(args))
    if problems:
        first = problems[0]
        raise _err(program, f"ansatz {ansatz.name}: {first.message}", first.span, _shown(args))
    low = _KernelLowering(program, ansatz, dict(args))
    return low.lower(), low.arrays


# ----------------------------------------------------------------------------- graph assembly


def build_graph(name: str, in_width: int, layers, params, model_args: dict | None = None) -> nx.DiGraph:
    """The chain ``input -> layers... -> output`` with the given parameter table.

    Args:
        name: the model's name (graph attribute ``"name"``).
        in_width: network input width.
        layers: :class:`KanNode`/:class:`LinearNode` records named ``layer0``, ``layer1``, ...
        params: the :class:`ParamSpec` rows.
        model_args: bound model arguments (graph attribute ``"model_args"``).
    """
    g = nx.DiGraph(name=name, params=tuple(params), model_args=dict(model_args or {}))
    g.add_node("input", op=InputNode(in_width))
    prev, width = "input", in_width
    for rec in layers:
        g.add_node(rec.name, op=rec)
        g.add_edge(prev, rec.name)
        prev, width = rec.name, rec.out_width
    g.add_node("output", op=OutputNode(width))
    g.add_edge(prev, "output")
    return g


def layer_params(rec, declared: Mapping[str, DeclaredArray] | None = None) -> list[ParamSpec]:
    """The parameter-table rows of a layer: :func:`~qvaf.compiler.ir.layer_arrays` with the
    ansatz's declarations filled in for the per-edge arrays (their ``reps_axes`` moved past
    the leading edge axes)."""
    rows = []
    for arr in layer_arrays(rec):
        if not arr.per_edge:
            rows.append(ParamSpec(rec.name, arr.name, arr.shape, arr.init, arr.trainable))
            continue
        d = (declared or {})[arr.name]
        lead = len(arr.shape) - len(dict(rec.kernel.params)[arr.name])
        rows.append(ParamSpec(rec.name, arr.name, arr.shape, d.init, d.trainable, d.grow,
                              tuple((axis + lead, k) for axis, k in d.reps_axes)))
    return rows


def kernel_graph(kernel: Circuit, *, name: str = "kernel", in_width: int = 1, out_width: int = 1,
                 group: int | None = None, base: str = "none", postact_weight: bool = False,
                 postact_bias: bool = False, inits: Mapping[str, tuple[Init, bool]] | None = None) -> nx.DiGraph:
    """A one-layer network around a hand-built ``kernel`` (for tests and experiments).

    Per-edge params default to trainable ``normal(0, 1)``; ``inits`` maps a name to
    ``(Init, trainable)`` to change that.
    """
    node = KanNode("layer0", in_width, out_width, kernel, name, (), base, postact_weight, postact_bias, group)
    inits = dict(inits or {})
    declared = {n: DeclaredArray(*inits.get(n, (Init("normal", (0.0, 1.0)), True))) for n, _ in kernel.params}
    return build_graph(name, in_width, [node], layer_params(node, declared))


def _verified(program, graph: nx.DiGraph) -> nx.DiGraph:
    """``graph`` after :func:`verify`; its IRError becomes a CompileError at the gate's span."""
    try:
        verify(graph)
    except IRError as exc:
        raise _err(program, f"cannot compile {graph.graph.get('name')}: {exc}", exc.span) from None
    return graph


# ----------------------------------------------------------------------------- models


def _find(program, table: str, name: str, what: str):
    items = getattr(program, table)
    if name not in items:
        known = ", ".join(sorted(items)) or "none"
        raise _err(program, f"unknown {what} '{name}' (defined: {known})")
    return items[name]


def lower_ansatz(program, ansatz_name: str, args: Mapping[str, object] | None = None) -> nx.DiGraph:
    """The ansatz alone as a 1 -> 1 network: one kan layer, ``base none``, no post-activation.

    Its output is the raw activation phi(x). Args:
        program: a :class:`~qvaf.dsl.program.Program` (or a path to load).
        ansatz_name: which ansatz.
        args: ansatz arguments (name -> int/float/axis string); defaults fill the rest.
    """
    program = _load(program)
    ansatz = _find(program, "ansatze", ansatz_name, "ansatz")
    bound = bind_args(ansatz.args, dict(args or {}), ansatz.span)
    kernel, arrays = lower_kernel(program, ansatz, bound)
    node = KanNode("layer0", 1, 1, kernel, ansatz.name, tuple(bound.items()), base="none")
    return _verified(program, build_graph(ansatz.name, 1, [node], layer_params(node, arrays), {}))


def _options(program, layer: ast.KanLayer, env) -> dict:
    opts = {"base": rules.DEFAULT_BASE, "postact_weight": False, "postact_bias": False, "group": None}
    for opt in layer.options:
        if isinstance(opt, ast.Comment):
            continue
        if opt.name == "base":
            opts["base"] = " ".join(map(str, opt.values))  # verify names a bad one
        elif opt.name == "postact":
            opts["postact_weight"] = "weight" in opt.values
            opts["postact_bias"] = "bias" in opt.values
        elif opt.name == "group":
            if len(opt.values) != 1:
                raise _err(program, "option 'group' takes one integer", opt.span)
            v = opt.values[0]
            opts["group"] = eval_int(ast.Name(v, span=opt.span) if isinstance(v, str) else v, env)
        else:
            raise _err(program, f"unknown kan option '{opt.name}'", opt.span, rules.option_hint())
    return opts


def lower_model(program, model_name: str, args: Mapping[str, object] | None = None,
                ansatz_overrides: Mapping[str, Mapping[str, object]] | None = None) -> nx.DiGraph:
    """Lower a model to the IR graph.

    Args:
        program: a :class:`~qvaf.dsl.program.Program` (or a path to load).
        model_name: which model.
        args: model arguments (name -> value); defaults fill the rest.
        ansatz_overrides: layer id (``"layer0"``) or ``"*"`` (every kan layer) -> ansatz
            arguments replacing the spec's, e.g. ``{"*": {"reps": 5}}``. A layer id wins over
            ``"*"``.

    Raises:
        CompileError: unknown model, ansatz or layer id; bad override; arguments that give
            an empty shape, a width below 1 or an index out of range.
        ConstError: a width, shape or argument that does not evaluate (with its span).
    """
    program = _load(program)
    model = _find(program, "models", model_name, "model")
    env = bind_args(model.args, dict(args or {}), model.span)
    overrides = {str(k): dict(v) for k, v in (ansatz_overrides or {}).items()}
    layers, params, in_width, width = [], [], None, None
    for st in model.body:
        if isinstance(st, ast.Comment):
            continue
        if isinstance(st, ast.InputLayer):
            if in_width is not None:
                raise _err(program, "a model has one 'input' statement", st.span)
            in_width = width = _width(program, st.width, env)
            continue
        if in_width is None:
            raise _err(program, "the model must start with 'input N'", st.span)
        layer_id = f"layer{len(layers)}"
        out = _width(program, st.width, env)
        if isinstance(st, ast.LinearLayer):
            rec = LinearNode(layer_id, width, out)
        elif isinstance(st, ast.KanLayer):
            ansatz = _find(program, "ansatze", st.ansatz, "ansatz")
            bound = _bound(program, ansatz, st, layer_id, env, {**overrides.get("*", {}), **overrides.get(layer_id, {})})
            kernel, arrays = lower_kernel(program, ansatz, bound)
            rec = KanNode(layer_id, width, out, kernel, ansatz.name, tuple(bound.items()), **_options(program, st, env))
        else:
            raise _err(program, f"unexpected model statement {type(st).__name__}", getattr(st, "span", None))
        layers.append(rec)
        params += layer_params(rec, arrays if isinstance(rec, KanNode) else None)
        width = out
    if in_width is None:
        raise _err(program, f"model {model.name} has no 'input N' statement", model.span)
    kan_ids = [rec.name for rec in layers if isinstance(rec, KanNode)]
    bad = sorted(set(overrides) - set(kan_ids) - {"*"})
    if bad:
        raise _err(program, f"ansatz_overrides names {', '.join(map(repr, bad))}, not a kan layer of model "
                   f"{model.name} (kan layers: {', '.join(kan_ids) or 'none'}; '*' means all)")
    return _verified(program, build_graph(model.name, in_width, layers, params, env))


def _bound(program, ansatz, layer: ast.KanLayer, layer_id: str, env, override: dict) -> dict:
    """The ansatz arguments of a kan layer, with the overrides for its layer id applied."""
    bound = bind_args(ansatz.args, layer.args, layer.span, env)
    if not override:
        return bound
    try:
        return bind_args(ansatz.args, {**bound, **override}, layer.span)
    except ConstError as exc:
        raise _err(program, f"ansatz override for {layer_id} ({ansatz.name}): {exc.message}", layer.span) from None


def _width(program, e, env) -> int:
    w = eval_int(e, env)
    if w < 1:
        raise _err(program, f"a layer width must be at least 1, got {w}", e.span)
    return w
