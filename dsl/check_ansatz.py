"""Semantic checks of an ansatz body (see :mod:`qvaf.dsl.checker` for the rules), and the
instantiation of a checked ansatz for concrete arguments (:func:`instantiate`), which both the
checker (for every ``kan`` layer's arguments) and the compiler (for arguments given from
Python) use.
"""

from __future__ import annotations

from typing import NamedTuple

from . import ast
from .consteval import ConstError, eval_int
from .rules import AXES, GATES, INITIALISERS, OBSERVABLES, RESERVED

#: how many loop iterations the range check enumerates per instantiation
MAX_ENUMERATION = 100_000


def _stmts(body):
    return [s for s in body if not isinstance(s, ast.Comment)]


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _size_message(name: str, axis: int, size: int) -> str:
    return f"shape of '{name}' has size {size} on axis {axis}; every size must be at least 1"


def check_ansatz(c, a: ast.Ansatz) -> None:
    """Report every problem of one ansatz through the checker ``c``."""
    _AnsatzCheck(c, a).run()


class _AnsatzCheck:
    """One pass over an ansatz body.

    State of the walk: the declarations in scope (``decls``), the names gate angles read
    (``used``), whether any angle reads the edge input (``reads_x``) and the ``measure``
    statements seen. Scopes map a name to its kind (see :mod:`qvaf.dsl.checker`).
    """

    def __init__(self, c, a: ast.Ansatz):
        self.c, self.r, self.a = c, c.r, a
        self.scope, self.env = c.formals(a.args, "an argument")
        self.decls: dict[str, ast.ParamDecl] = {}
        self.used: set[str] = set()
        self.reads_x = False
        self.measures: list[ast.Measure] = []

    def run(self) -> None:
        errors_before = self._errors()
        top = _stmts(self.a.body)
        self.c.pending = {s.name: s for s in top if isinstance(s, ast.ParamDecl)}
        self.statements(top, dict(self.scope), in_loop=False)
        self.c.pending = {}
        self.check_measure(top)
        self.warn_unused()
        if self._errors() == errors_before and all(arg.name in self.env for arg in self.a.args):
            for problem in instantiate(self.a, self.env):  # with the default arguments
                self.r.error(problem.span, problem.message)

    def _errors(self) -> int:
        return sum(d.severity == "error" for d in self.r.diagnostics)

    # ------------------------------------------------------------------ statements

    def statements(self, stmts, scope: dict, in_loop: bool) -> None:
        for s in stmts:
            if isinstance(s, ast.ParamDecl):
                self.declaration(s, scope, in_loop)
            elif isinstance(s, ast.Gate):
                self.gate(s, scope)
            elif isinstance(s, ast.Encode):
                self.encode(s, scope)
            elif isinstance(s, ast.For):
                self.loop(s, scope)
            elif isinstance(s, ast.Measure):
                self.measure(s, in_loop)

    def gate(self, s: ast.Gate, scope: dict) -> None:
        from .checker import did_you_mean

        if s.name not in GATES:
            hint = None if did_you_mean(s.name, GATES) else (
                "gates: " + " ".join(GATES) + "; data encoding: encode(angle, axis)")
            self.r.error(s.span, f"unknown gate '{s.name}'" + did_you_mean(s.name, GATES), hint)
        elif len(s.args) != GATES[s.name]:
            want = GATES[s.name]
            takes = "no angle" if want == 0 else _plural(want, "angle")
            self.r.error(s.span, f"gate '{s.name}' takes {takes}, got {len(s.args)}")
        for arg in s.args:
            self.angle(arg, scope)

    def encode(self, s: ast.Encode, scope: dict) -> None:
        self.angle(s.angle, scope)
        if s.axis not in AXES and scope.get(s.axis) != "axis":
            self.r.error(s.span, f"encode() axis must be x, y, z or an axis argument, got '{s.axis}'")

    def loop(self, s: ast.For, scope: dict) -> None:
        for bound in (s.start, s.stop):
            if self.c.const_expr(bound, scope, "a loop bound", self.env, integer=True):
                self.c.evaluate(bound, self.env, True, "a loop bound")
        inner = dict(scope)
        if self.c.check_new_name(s.var, s.span, "a loop variable"):
            if s.var in scope:
                self.r.error(s.span, f"loop variable '{s.var}' shadows an existing name")
            inner[s.var] = "loop"
        self.statements(_stmts(s.body), inner, in_loop=True)

    def measure(self, s: ast.Measure, in_loop: bool) -> None:
        from .checker import did_you_mean

        self.measures.append(s)
        if in_loop:
            self.r.error(s.span, "'measure' cannot be inside a loop", "move it to the end")
        if s.observable not in OBSERVABLES:
            self.r.error(s.span, f"unknown observable '{s.observable}'" + did_you_mean(s.observable, OBSERVABLES),
                         "measure z, x, y or inspired (simulator only)")

    # ------------------------------------------------------------------ declarations

    def declaration(self, s: ast.ParamDecl, scope: dict, in_loop: bool) -> None:
        if in_loop:
            self.r.error(s.span, "declarations must be at the top level of the ansatz body, not inside a loop",
                         "move it above the loop")
        named = self.c.check_new_name(s.name, s.span, "a declaration")
        if named:
            self.declared_name(s, scope)
        self.shape(s, scope)
        if s.random:
            self.random_init(s, scope)
        elif isinstance(s.init, ast.Call) and s.init.func in INITIALISERS:
            self.r.error(s.init.span, f"'{s.init.func}(...)' is a random initialiser",
                         f"write '~ {s.init.func}(...)' instead of '= {s.init.func}(...)'")
        elif self.c.const_expr(s.init, scope, "an initial value", self.env):
            self.c.evaluate(s.init, self.env, False, "an initial value")
        if s.grow is not None:
            self.grow(s, scope)
        if named and s.name not in scope:
            scope[s.name] = s
            self.decls[s.name] = s
        self.c.pending.pop(s.name, None)

    def declared_name(self, s: ast.ParamDecl, scope: dict) -> None:
        if s.name in RESERVED:
            self.r.error(s.span, f"'{s.name}' is reserved for the arrays a kan layer adds",
                         "rename it; reserved names: " + ", ".join(RESERVED))
        elif s.name in scope:
            other = scope[s.name]
            where = (f"on line {other.span.line}" if isinstance(other, ast.ParamDecl) and other.span is not None
                     else "as an argument")
            self.r.error(s.span, f"duplicate name '{s.name}': already declared {where}")

    def shape(self, s: ast.ParamDecl, scope: dict) -> None:
        for axis, dim in enumerate(s.shape):
            if self.c.const_expr(dim, scope, "a shape", self.env, integer=True):
                value = self.c.evaluate(dim, self.env, True, "a shape")
                if value is not None and value < 1:
                    self.r.error(dim.span, _size_message(s.name, axis, value))

    def random_init(self, s: ast.ParamDecl, scope: dict) -> None:
        from .checker import did_you_mean

        init = s.init
        if init.func not in INITIALISERS:
            self.r.error(init.span, f"unknown initialiser '{init.func}'" + did_you_mean(init.func, INITIALISERS),
                         "initialisers: " + ", ".join(f"{k}({', '.join(v)})" for k, v in INITIALISERS.items()))
            return
        names = INITIALISERS[init.func]
        if len(init.args) != len(names):
            want = f"{_plural(len(names), 'argument')} ({', '.join(names)})" if names else "no arguments"
            self.r.error(init.span, f"initialiser '{init.func}' takes {want}, got {len(init.args)}")
            return
        values = [self.c.evaluate(arg, self.env, False, "an initialiser")
                  if self.c.const_expr(arg, scope, "an initialiser", self.env) else None for arg in init.args]
        if init.func == "normal" and values[1] is not None and values[1] < 0:
            self.r.error(init.args[1].span, f"normal(mu, sigma) needs sigma >= 0, got {values[1]}")
        if init.func == "uniform" and None not in values and values[0] > values[1]:
            self.r.error(init.span, f"uniform(a, b) needs a <= b, got a = {values[0]} and b = {values[1]}")

    def grow(self, s: ast.ParamDecl, scope: dict) -> None:
        if not s.trainable and not s.random:
            self.r.error(s.grow.span,
                         f"'{s.name}' is a compile-time constant (a const with a literal value) and cannot grow",
                         f"declare it 'param {s.name}' to train and grow it, or remove 'grow'")
        elif self.c.const_expr(s.grow, scope, "a grow value", self.env):
            self.c.evaluate(s.grow, self.env, False, "a grow value")

    # ------------------------------------------------------------------ gate angles

    def angle(self, expr, scope: dict) -> None:
        """Check an angle expression, left to right: names in scope, arrays indexed by their
        rank (an index is a compile-time expression, checked as one)."""
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Name):
                self.name(node, scope)
            elif isinstance(node, ast.Index):
                self.indexed(node, scope)
            elif isinstance(node, ast.UnaryOp):
                stack.append(node.operand)
            elif isinstance(node, ast.BinOp):
                stack.extend((node.right, node.left))
            elif isinstance(node, ast.Call):
                self.c.call(node)
                stack.extend(reversed(node.args))

    def name(self, node: ast.Name, scope: dict) -> None:
        kind = scope.get(node.id)
        if kind is None and node.id == "x":
            self.reads_x = True
        elif kind is None and node.id == "pi":
            pass
        elif kind is None:
            self.c.unknown_name(node, scope)
        elif isinstance(kind, ast.ParamDecl):
            self.used.add(node.id)
            if kind.shape:
                rank = _plural(len(kind.shape), "axis", "axes")
                self.r.error(node.span, f"'{node.id}' is an array with {rank}; index it",
                             f"write {node.id}[" + ", ".join("0" * len(kind.shape)) + "]")
        elif kind == "axis":
            self.r.error(node.span, f"axis argument '{node.id}' used as a number")

    def indexed(self, node: ast.Index, scope: dict) -> None:
        name = node.base.id
        kind = scope.get(name)
        if kind is None:
            self.c.unknown_name(node.base, scope)
        elif not isinstance(kind, ast.ParamDecl):
            self.r.error(node.span, f"'{name}' is not an array and cannot be indexed")
        else:
            self.used.add(name)
            if not kind.shape:
                self.r.error(node.span, f"'{name}' is a scalar and cannot be indexed")
            elif len(node.indices) != len(kind.shape):
                rank = _plural(len(kind.shape), "axis", "axes")
                count = _plural(len(node.indices), "index", "indices")
                self.r.error(node.span, f"'{name}' has {rank} but {count} given")
        for index in node.indices:
            self.c.const_expr(index, scope, "an index", {}, integer=True)

    # ------------------------------------------------------------------ the whole body

    def check_measure(self, top) -> None:
        from .checker import _keyword_span

        if not self.measures:
            self.r.error(_keyword_span(self.a, "ansatz"), f"ansatz '{self.a.name}' has no 'measure'",
                         "end the body with 'measure z'")
            return
        for extra in self.measures[1:]:
            self.r.error(extra.span, f"more than one 'measure' in ansatz '{self.a.name}'")
        if top and not isinstance(top[-1], ast.Measure) and self.measures[0] in top:
            self.r.error(self.measures[0].span, "'measure' must be the last statement of the ansatz",
                         "move it after the last gate")

    def warn_unused(self) -> None:
        from .checker import _keyword_span

        for name, decl in self.decls.items():
            if name not in self.used:
                self.r.warning(decl.span, f"'{name}' is declared but never used",
                               "use it in a gate angle or remove the declaration")
        if not self.reads_x:
            self.r.warning(_keyword_span(self.a, "ansatz"), f"ansatz '{self.a.name}' never uses the edge input 'x'",
                           "its value does not depend on the data; re-upload x with a gate angle or encode()")


# ----------------------------------------------------------------------------- instantiation


class Problem(NamedTuple):
    """A problem of an ansatz instantiated with concrete arguments.

    ``names`` are the names the offending expression reads, so a caller can point at the
    argument that caused it.
    """

    span: ast.Span | None
    message: str
    names: frozenset[str] = frozenset()


def instantiate(a: ast.Ansatz, env: dict) -> list[Problem]:
    """Evaluate shapes, loop bounds and indices of a checked ansatz for concrete arguments.

    Returns:
        One :class:`Problem` per finding: a shape size below 1, a shape or loop bound that is
        not an integer, an index outside its declared shape (reported once per index
        expression). Loops are enumerated up to :data:`MAX_ENUMERATION` iterations in total.
    """
    return _Instance(a, env).run()


def _names(expr) -> frozenset[str]:
    return frozenset(n.id for n in ast.iter_expr(expr) if isinstance(n, ast.Name))


class _Instance:
    """One instantiation: the evaluated shapes, then a walk over every loop iteration."""

    def __init__(self, a: ast.Ansatz, env: dict):
        self.a, self.env = a, dict(env)
        self.problems: list[Problem] = []
        self.shapes: dict[str, list[int]] = {}
        self.reported: set[int] = set()
        self.budget = MAX_ENUMERATION
        self.loop_vars: set[str] = set()

    def once(self, node, message: str, expr=None) -> None:
        if id(node) not in self.reported:
            self.reported.add(id(node))
            self.problems.append(Problem(node.span, message, _names(expr) if expr is not None else frozenset()))

    def run(self) -> list[Problem]:
        for s in _stmts(self.a.body):
            if isinstance(s, ast.ParamDecl):
                self.declare(s)
        self.walk(_stmts(self.a.body), self.env)
        return self.problems

    def declare(self, s: ast.ParamDecl) -> None:
        dims = []
        for axis, dim in enumerate(s.shape):
            try:
                size = eval_int(dim, self.env)
            except ConstError as exc:
                self.once(dim, f"shape of '{s.name}': {exc.message}", dim)
                return
            if size < 1:
                self.once(dim, _size_message(s.name, axis, size), dim)
                return
            dims.append(size)
        self.shapes[s.name] = dims

    def walk(self, stmts, env) -> bool:
        """Visit ``stmts`` under loop bindings ``env``; False once the budget is spent."""
        for s in stmts:
            if self.budget <= 0:
                return False
            if isinstance(s, ast.Gate):
                for arg in s.args:
                    self.indices(arg, env)
            elif isinstance(s, ast.Encode):
                self.indices(s.angle, env)
            elif isinstance(s, ast.For) and not self.loop(s, env):
                return False
        return True

    def loop(self, s: ast.For, env) -> bool:
        try:
            start, stop = eval_int(s.start, env), eval_int(s.stop, env)
        except ConstError as exc:
            self.once(s, f"loop bound: {exc.message}")
            return True
        self.loop_vars.add(s.var)
        for value in range(start, stop):
            self.budget -= 1
            if self.budget <= 0 or not self.walk(_stmts(s.body), {**env, s.var: value}):
                return False
        return True

    def indices(self, expr, env) -> None:
        for node in ast.iter_expr(expr):
            if not isinstance(node, ast.Index):
                continue
            dims = self.shapes.get(node.base.id)
            for axis, index in enumerate(node.indices):
                try:
                    value = eval_int(index, env)
                except ConstError as exc:
                    self.once(index, exc.message, index)
                    continue
                if dims is not None and axis < len(dims) and not 0 <= value < dims[axis]:
                    loops = ", ".join(f"{k} = {v}" for k, v in env.items() if k in self.loop_vars)
                    where = f" (at {loops})" if loops else ""
                    self.once(node, f"index {value} is out of range for axis {axis} of "
                                    f"'{node.base.id}' with size {dims[axis]}{where}", node)
