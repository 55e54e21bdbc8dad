"""Lowering: checked AST -> IR graph (:mod:`qvaf.compiler.ir`).

A model becomes the chain ``input -> layer0 -> ... -> output`` of a ``networkx.DiGraph``;
each ``kan`` layer holds its ansatz lowered to a :class:`~qvaf.compiler.ir.Circuit`, with every
compile-time value (widths, shapes, loop bounds, ansatz arguments) evaluated. The graph
attribute ``"params"`` is the parameter table: one :class:`~qvaf.compiler.ir.ParamSpec` per
array of the network.

Expressions translate one to one: the edge input ``x`` -> :class:`Input`, ``pi`` and ansatz
arguments -> :class:`Const`, loop variables -> :class:`LoopVar`, params and consts ->
:class:`ParamRef`, calls -> :class:`Unary`. ``encode(a, axis)`` is the rotation about that
axis. A ``const`` with a literal value is a compile-time constant: it goes to
``Circuit.constants`` and the ``inline_constants`` pass replaces it by numbers.

Per kan layer the arrays are (``[out, in]`` edges, or ``[G]`` rows with ``group G``)::

    <param or random const>  [out, in, *shape]   its initialiser; trainable for param
    postact_weight           [out, in]           with `postact weight`; trainable, ones
    postact_bias             [out, in]           with `postact bias`;   trainable, zeros
    base_weight              [out, in]           unless `base none`;    trainable, normal(0, 1/sqrt(in))
    mask                     [out, in]           fixed, ones

and per linear layer ``weight [out, in]`` (xavier) and ``bias [out]`` (zeros).

Example::

    >>> program = qvaf.dsl.load_program("specs/models/regression.qvaf")
    >>> graph = lower_model(program, "regression", ansatz_overrides={"*": {"reps": 5}})
    >>> graph.nodes["layer0"]["op"].kernel.params
    (('theta', (6, 2)),)
"""

from __future__ import annotations

import math
import os
from typing import Mapping

import networkx as nx
import numpy as np

from qvaf.dsl import ast
from qvaf.dsl.consteval import ConstError, bind_args, eval_const, eval_int
from qvaf.dsl.rules import BASES

from . import expr as E
from .errors import CompileError, IRError
from .ir import (
    GATE_ARITY,
    OBSERVABLES,
    ROTATION_OF_AXIS,
    Circuit,
    GateOp,
    Init,
    InputNode,
    KanNode,
    LinearNode,
    LoopOp,
    Op,
    OutputNode,
    ParamSpec,
)
from .verify import RESERVED_NAMES, check_gate

__all__ = ["lower_model", "lower_ansatz", "lower_kernel", "build_graph", "kernel_graph", "BASES"]

_GATES = {op.value: op for op in GATE_ARITY}
_RANDOM_INITS = {"normal": 2, "uniform": 2, "xavier": 0}


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


# ----------------------------------------------------------------------------- ansatz -> Circuit


class _Decl:
    __slots__ = ("name", "shape", "kind", "trainable", "init", "value", "grow", "span")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


class _KernelLowering:
    """Lowers one ansatz body under bound arguments ``env``."""

    def __init__(self, program, ansatz: ast.Ansatz, env: dict):
        self.program = program
        self.ansatz = ansatz
        self.env = env
        self.decls: dict[str, _Decl] = {}
        self.observable = "z"

    def err(self, message, span, hint=None):
        return _err(self.program, f"ansatz {self.ansatz.name}: {message}", span, hint)

    # --------------------------------------------------------------- statements
    def lower(self) -> Circuit:
        ops = self.stmts(self.ansatz.body, ())
        params = tuple((d.name, d.shape) for d in self.decls.values() if d.kind != "literal")
        constants = tuple((d.name, d.value) for d in self.decls.values() if d.kind == "literal")
        return Circuit(tuple(ops), self.observable, params, constants)

    def stmts(self, body, loops: tuple[str, ...]) -> list:
        ops = []
        for st in body:
            if isinstance(st, ast.Comment):
                continue
            if isinstance(st, ast.ParamDecl):
                if loops:
                    raise self.err(f"'{st.name}' is declared inside a loop", st.span, "declare it at the top of the ansatz")
                self.decl(st)
            elif isinstance(st, ast.Gate):
                ops.append(self.gate(st, loops))
            elif isinstance(st, ast.Encode):
                axis = st.axis
                if axis not in ROTATION_OF_AXIS:
                    value = self.env.get(axis)
                    if not isinstance(value, str) or value not in ROTATION_OF_AXIS:
                        raise self.err(f"encode axis '{axis}' is not x, y, z or an axis argument", st.span)
                    axis = value
                ops.append(GateOp(ROTATION_OF_AXIS[axis], (self.expr(st.angle, loops),), span=st.span))
            elif isinstance(st, ast.For):
                start, stop = eval_int(st.start, self.env), eval_int(st.stop, self.env)
                if st.var in loops:
                    raise self.err(f"loop variable '{st.var}' shadows an enclosing loop", st.span)
                body = self.stmts(st.body, loops + (st.var,))
                ops.append(LoopOp(st.var, start, stop, tuple(body)))
            elif isinstance(st, ast.Measure):
                if st.observable not in OBSERVABLES:
                    raise self.err(f"unknown observable '{st.observable}'", st.span, f"use one of {', '.join(OBSERVABLES)}")
                self.observable = st.observable
            else:
                raise self.err(f"unexpected statement {type(st).__name__}", getattr(st, "span", None))
        return ops

    def decl(self, st: ast.ParamDecl) -> None:
        if st.name in self.decls:
            raise self.err(f"'{st.name}' is declared twice", st.span)
        if st.name in RESERVED_NAMES:
            raise self.err(f"'{st.name}' is a reserved array name", st.span)
        shape = tuple(eval_int(s, self.env) for s in st.shape)
        for s, dim in zip(st.shape, shape):
            if dim < 1:
                shown = ", ".join(f"{k} = {v}" for k, v in self.env.items())
                raise self.err(f"dimension of '{st.name}' is {dim}; it must be at least 1", s.span,
                               f"with {shown}" if shown else None)
        grow = None if st.grow is None else float(self.number(st.grow))
        if st.random:
            call = st.init
            if not isinstance(call, ast.Call) or call.func not in _RANDOM_INITS:
                raise self.err("a random initialiser is normal(mu, sigma), uniform(a, b) or xavier()", st.init.span)
            if len(call.args) != _RANDOM_INITS[call.func]:
                raise self.err(f"{call.func}() takes {_RANDOM_INITS[call.func]} arguments, got {len(call.args)}", call.span)
            init = Init(call.func, tuple(float(self.number(a)) for a in call.args))
            kind, value = "array", None
        else:
            v = float(self.number(st.init))
            if st.trainable:
                init, kind, value = Init("constant", (v,)), "array", None
            else:
                init, kind, value = None, "literal", _filled(shape, v)
                if grow is not None:
                    raise self.err(f"'{st.name}' is a compile-time constant and cannot grow", st.grow.span,
                                   "make it a param, or a const with a random initialiser")
        self.decls[st.name] = _Decl(name=st.name, shape=shape, kind=kind, trainable=st.trainable,
                                    init=init, value=value, grow=grow, span=st.span)

    def number(self, e):
        v = eval_const(e, self.env)
        if isinstance(v, str):
            raise self.err(f"axis value '{v}' used as a number", e.span)
        return v

    def gate(self, st: ast.Gate, loops) -> GateOp:
        op = _GATES.get(st.name)
        if op is None:
            raise self.err(f"unknown gate '{st.name}'", st.span, f"gates: {', '.join(sorted(_GATES))}")
        if len(st.args) != GATE_ARITY[op]:
            raise self.err(f"gate '{st.name}' takes {GATE_ARITY[op]} angles, got {len(st.args)}", st.span)
        return GateOp(op, tuple(self.expr(a, loops) for a in st.args), span=st.span)

    # --------------------------------------------------------------- expressions
    def expr(self, e, loops) -> E.Expr:
        if isinstance(e, ast.Num):
            return E.Const(int(e.value) if e.is_int else float(e.value))
        if isinstance(e, ast.Name):
            return self.name(e, loops)
        if isinstance(e, ast.Index):
            d = self.decls.get(e.base.id)
            if d is None or e.base.id in loops:
                raise self.err(f"'{e.base.id}' is not a declared param or const", e.span)
            if len(e.indices) != len(d.shape):
                raise self.err(f"'{d.name}' has {len(d.shape)} dimensions, indexed with {len(e.indices)}", e.span)
            idx = []
            for i in e.indices:
                ie = self.expr(i, loops)
                if E.depends_on_input(ie) or E.param_refs(ie):
                    raise self.err(f"an index of '{d.name}' must be a compile-time integer", i.span)
                idx.append(ie)
            return E.ParamRef(d.name, tuple(idx))
        if isinstance(e, ast.UnaryOp):
            inner = self.expr(e.operand, loops)
            return E.Unary("neg", inner) if e.op == "-" else inner
        if isinstance(e, ast.BinOp):
            return E.Binary(e.op, self.expr(e.left, loops), self.expr(e.right, loops))
        if isinstance(e, ast.Call):
            if e.func not in E.FUNCTIONS:
                raise self.err(f"unknown function '{e.func}'", e.span, f"functions: {', '.join(E.FUNCTIONS)}")
            if len(e.args) != 1:
                raise self.err(f"function '{e.func}' takes 1 argument, got {len(e.args)}", e.span)
            return E.Unary(e.func, self.expr(e.args[0], loops))
        raise self.err(f"unexpected expression {type(e).__name__}", getattr(e, "span", None))

    def name(self, e: ast.Name, loops) -> E.Expr:
        n = e.id
        if n in loops:
            return E.LoopVar(n)
        if n in self.decls:
            d = self.decls[n]
            if d.shape:
                raise self.err(f"'{n}' has shape {list(d.shape)}: index it", e.span)
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


def lower_kernel(program, ansatz: ast.Ansatz, args: Mapping[str, object]) -> tuple[Circuit, dict]:
    """Lower one ansatz under bound arguments.

    Returns:
        the circuit, and per-edge array name -> ``(shape, Init, trainable, grow)`` for its
        params and random consts (the rows of the parameter table, before the edge axes).
    """
    low = _KernelLowering(program, ansatz, dict(args))
    circuit = low.lower()
    _check_indices(program, ansatz, circuit, args)
    arrays = {d.name: (d.shape, d.init, d.trainable, d.grow) for d in low.decls.values() if d.kind != "literal"}
    return circuit, arrays


def _check_indices(program, ansatz, circuit: Circuit, args) -> None:
    """Every index in range for every loop iteration, reported at the gate's span."""
    shapes = dict(circuit.params)
    shapes.update((n, np.shape(v)) for n, v in circuit.constants)

    def walk(ops, loops):
        for op in ops:
            if isinstance(op, LoopOp):
                walk(op.body, {**loops, op.var: range(op.start, op.stop)})
            elif isinstance(op, GateOp):
                try:
                    check_gate(ansatz.name, op, shapes, loops)
                except IRError as exc:
                    shown = ", ".join(f"{k} = {v}" for k, v in args.items())
                    raise _err(program, f"ansatz {ansatz.name}: {str(exc).split(': ', 2)[-1]}", op.span,
                               f"with {shown}" if shown else None) from None

    walk(circuit.ops, {})


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


def layer_params(node: KanNode, arrays: Mapping[str, tuple]) -> list[ParamSpec]:
    """The parameter-table rows of a kan layer (see the module docstring)."""
    eo = (node.out_width, node.in_width)
    lead = (node.group,) if node.group is not None else eo
    rows = [ParamSpec(node.name, n, lead + tuple(shape), init, trainable, grow)
            for n, (shape, init, trainable, grow) in arrays.items()]
    if node.postact_weight:
        rows.append(ParamSpec(node.name, "postact_weight", eo, Init("ones"), True))
    if node.postact_bias:
        rows.append(ParamSpec(node.name, "postact_bias", eo, Init("zeros"), True))
    if node.base != "none":
        rows.append(ParamSpec(node.name, "base_weight", eo, Init("normal", (0.0, 1.0 / math.sqrt(node.in_width))), True))
    rows.append(ParamSpec(node.name, "mask", eo, Init("ones"), False))
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
    arrays = {n: (shape, *inits.get(n, (Init("normal", (0.0, 1.0)), True)), None) for n, shape in kernel.params}
    return build_graph(name, in_width, [node], layer_params(node, arrays))


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
    return build_graph(ansatz.name, 1, [node], layer_params(node, arrays), {})


def _options(program, layer: ast.KanLayer, env) -> dict:
    opts = {"base": "silu", "postact_weight": False, "postact_bias": False, "group": None}
    seen = set()
    for opt in layer.options:
        if isinstance(opt, ast.Comment):
            continue
        if opt.name in seen:
            raise _err(program, f"option '{opt.name}' given twice", opt.span)
        seen.add(opt.name)
        words = [v for v in opt.values if isinstance(v, str)]
        if opt.name == "base":
            if len(opt.values) != 1 or len(words) != 1 or words[0] not in BASES:
                raise _err(program, "option 'base' takes one of: " + ", ".join(BASES), opt.span)
            opts["base"] = words[0]
        elif opt.name == "postact":
            if not opt.values or len(words) != len(opt.values) or not set(words) <= {"weight", "bias"}:
                raise _err(program, "option 'postact' takes 'weight', 'bias' or both", opt.span)
            opts["postact_weight"] = "weight" in words
            opts["postact_bias"] = "bias" in words
        elif opt.name == "group":
            if len(opt.values) != 1:
                raise _err(program, "option 'group' takes one integer", opt.span)
            v = opt.values[0]
            g = eval_int(ast.Name(v, span=opt.span) if isinstance(v, str) else v, env)
            if g < 1:
                raise _err(program, f"group must be at least 1, got {g}", opt.span)
            opts["group"] = g
        else:
            raise _err(program, f"unknown kan option '{opt.name}'", opt.span, "options: base, postact, group")
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
        CompileError: unknown model, ansatz or layer id; bad override; bad option.
        ConstError: a width, shape or argument that does not evaluate (with its span).
    """
    program = _load(program)
    model = _find(program, "models", model_name, "model")
    env = bind_args(model.args, dict(args or {}), model.span)
    overrides = {str(k): dict(v) for k, v in (ansatz_overrides or {}).items()}
    layers, params, in_width, width = [], [], None, None
    kan_ids = []
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
            layers.append(LinearNode(layer_id, width, out))
            params += [ParamSpec(layer_id, "weight", (out, width), Init("xavier"), True),
                       ParamSpec(layer_id, "bias", (out,), Init("zeros"), True)]
        elif isinstance(st, ast.KanLayer):
            kan_ids.append(layer_id)
            ansatz = _find(program, "ansatze", st.ansatz, "ansatz")
            bound = bind_args(ansatz.args, st.args, st.span, env)
            override = {**overrides.get("*", {}), **overrides.get(layer_id, {})}
            if override:
                try:
                    bound = bind_args(ansatz.args, {**bound, **override}, st.span)
                except ConstError as exc:
                    raise _err(program, f"ansatz override for {layer_id} ({ansatz.name}): {exc.message}", st.span) from None
            opts = _options(program, st, env)
            kernel, arrays = lower_kernel(program, ansatz, bound)
            node = KanNode(layer_id, width, out, kernel, ansatz.name, tuple(bound.items()), **opts)
            layers.append(node)
            params += layer_params(node, arrays)
        else:
            raise _err(program, f"unexpected model statement {type(st).__name__}", getattr(st, "span", None))
        width = out
    if in_width is None:
        raise _err(program, f"model {model.name} has no 'input N' statement", model.span)
    bad = sorted(set(overrides) - set(kan_ids) - {"*"})
    if bad:
        raise _err(program, f"ansatz_overrides names {', '.join(map(repr, bad))}, not a kan layer of model "
                   f"{model.name} (kan layers: {', '.join(kan_ids) or 'none'}; '*' means all)")
    return build_graph(model.name, in_width, layers, params, env)


def _width(program, e, env) -> int:
    w = eval_int(e, env)
    if w < 1:
        raise _err(program, f"a layer width must be at least 1, got {w}", e.span)
    return w
