"""Semantic checks: every rule a parsed spec must satisfy beyond its grammar.

The checker walks all loaded modules and reports *every* problem it finds as a
:class:`~qvaf.dsl.errors.Diagnostic` (file:line:col, the source line with a caret, the message
and, where the fix is clear, a ``help:`` line). It never stops at the first error. Rules:

* names: one namespace for ansätze and models; arguments, declarations and loop variables
  unique within an ansatz; no keywords, no ``x``/``pi``, no reserved layer-array names;
* ansatz bodies: declarations at the top level and before use; gates known, with the right
  number of angles; ``encode`` on an axis; ``measure`` present exactly once and last;
* expressions: the edge input ``x`` and the declared params appear only in gate angles;
  shapes, loop bounds, indices, initialisers and widths are compile-time constants of the
  right type; indices stay inside the declared shapes (checked by instantiating the ansatz
  with its default arguments, and again with the arguments of every ``kan`` layer);
* models: ``input N`` first and once, positive integer widths, known ansätze called with
  matching arguments, known options with valid values;
* warnings: a declaration never used, an ansatz that never reads ``x``, a ``group`` larger
  than the layer's input width.
"""

from __future__ import annotations

import difflib

from . import ast
from .consteval import ConstError, coerce_arg, eval_const, eval_int
from .errors import Diagnostic
from .parser import source_line
from .rules import ARG_TYPES, AXES, FUNCTIONS, INITIALISERS, KEYWORDS


def did_you_mean(word: str, choices) -> str:
    """Return ``"; did you mean 'w'?"`` for the closest choice, or ``""``."""
    match = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


class _Reporter:
    def __init__(self, sources: dict[str, str]):
        self.sources = sources
        self.diagnostics: list[Diagnostic] = []

    def add(self, severity, span, message, hint=None):
        text = self.sources.get(span.file) if span is not None else None
        line = source_line(text, span.line) if text is not None else None
        self.diagnostics.append(Diagnostic(severity, message, span, line, hint))

    def error(self, span, message, hint=None):
        self.add("error", span, message, hint)

    def warning(self, span, message, hint=None):
        self.add("warning", span, message, hint)


def _keyword_span(node, keyword: str) -> ast.Span | None:
    """The span of the leading keyword of a definition (for errors about the whole thing)."""
    span = node.span
    if span is None:
        return None
    return ast.Span(span.file, span.line, span.col, span.line, span.col + len(keyword) - 1)


def _names_in(expr) -> list[ast.Name]:
    """All Name nodes (including indexed bases) of an expression."""
    return [node for node in ast.iter_expr(expr) if isinstance(node, ast.Name)]


# ----------------------------------------------------------------------------- scopes

# A scope maps a name to its kind: "int", "float", "axis" (arguments), "loop", or the ParamDecl.


class _Checker:
    def __init__(self, reporter: _Reporter, namespace: dict):
        self.r = reporter
        self.namespace = namespace
        #: declarations of the ansatz being checked that are not yet in scope
        self.pending: dict[str, ast.ParamDecl] = {}

    # -- names
    def check_new_name(self, name: str, span, what: str) -> bool:
        if name in KEYWORDS:
            self.r.error(span, f"'{name}' is a keyword and cannot name {what}")
            return False
        if name == "x":
            self.r.error(
                span, f"'x' is the edge input and cannot name {what}", "choose another name"
            )
            return False
        if name == "pi":
            self.r.error(span, f"'pi' is a built-in constant and cannot name {what}")
            return False
        return True

    # -- compile-time expressions
    def const_expr(self, expr, scope: dict, what: str, env: dict, integer: bool = False) -> bool:
        """Statically check a compile-time expression; True when it can be evaluated in env.

        ``integer`` flags float-typed arguments, which can never give an integer.
        """
        ok = True
        evaluable = True
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Name):
                name = node.id
                kind = scope.get(name)
                if name == "x" and kind is None:
                    self.r.error(
                        node.span,
                        f"the edge input 'x' cannot be used in {what}",
                        f"{what} must be a compile-time constant; 'x' may only appear in "
                        "gate angles and encode() inside an ansatz",
                    )
                    ok = False
                elif name == "pi" and kind is None:
                    pass
                elif kind is None:
                    self.unknown_name(node, scope)
                    ok = False
                elif isinstance(kind, ast.ParamDecl):
                    self.r.error(
                        node.span,
                        f"'{name}' is a per-edge {'param' if kind.trainable else 'const'} and "
                        f"cannot be used in {what}",
                        f"{what} must be a compile-time constant",
                    )
                    ok = False
                elif kind == "axis":
                    self.r.error(node.span, f"axis argument '{name}' used as a number in {what}")
                    ok = False
                elif kind == "float" and integer:
                    self.r.error(
                        node.span,
                        f"float argument '{name}' used in {what}, which must be an integer",
                        f"declare it as '{name}: int'",
                    )
                    ok = False
                elif name not in env:
                    evaluable = False
            elif isinstance(node, ast.Index):
                kind = scope.get(node.base.id)
                if isinstance(kind, ast.ParamDecl):
                    self.r.error(
                        node.span,
                        f"'{node.base.id}' is a per-edge "
                        f"{'param' if kind.trainable else 'const'} and cannot be used in {what}",
                        f"{what} must be a compile-time constant",
                    )
                else:
                    self.r.error(node.span, f"cannot index '{node.base.id}' in {what}")
                ok = False
            elif isinstance(node, ast.UnaryOp):
                stack.append(node.operand)
            elif isinstance(node, ast.BinOp):
                stack.extend((node.right, node.left))
            elif isinstance(node, ast.Call):
                ok = self.call(node) and ok
                stack.extend(reversed(node.args))
        return ok and evaluable

    def unknown_name(self, node: ast.Name, scope: dict) -> None:
        later = self.pending.get(node.id)
        if later is not None:
            self.r.error(
                node.span,
                f"'{node.id}' is used before its declaration on line {later.span.line}",
                "move the declaration above its first use",
            )
            return
        self.r.error(
            node.span, f"unknown name '{node.id}'" + did_you_mean(node.id, list(scope) + ["pi"])
        )

    def call(self, node: ast.Call) -> bool:
        if node.func in FUNCTIONS:
            if len(node.args) != 1:
                self.r.error(
                    node.span, f"function '{node.func}' takes 1 argument, got {len(node.args)}"
                )
                return False
            return True
        if node.func in INITIALISERS:
            self.r.error(
                node.span,
                f"'{node.func}(...)' is an initialiser, not a function",
                f"initialisers follow '~' in a declaration: param p[2] ~ {node.func}(...)",
            )
            return False
        self.r.error(
            node.span,
            f"unknown function '{node.func}'" + did_you_mean(node.func, FUNCTIONS),
            "functions: " + ", ".join(FUNCTIONS),
        )
        return False

    def evaluate(self, expr, env, integer: bool, what: str):
        """Evaluate a statically valid expression; report and return None on failure."""
        try:
            value = eval_int(expr, env) if integer else eval_const(expr, env)
        except ConstError as exc:
            message = exc.message
            if message.startswith("expected a compile-time integer"):
                message = f"{what} must be a compile-time integer" + message[len(
                    "expected a compile-time integer"):]
            self.r.error(exc.span or expr.span, message, exc.hint)
            return None
        return value

    # -- formals
    def formals(self, args: tuple, what: str) -> tuple[dict, dict]:
        """Check formal arguments; return (scope: name -> type, env: name -> default value)."""
        scope: dict = {}
        env: dict = {}
        for arg in args:
            if not self.check_new_name(arg.name, arg.span, "an argument"):
                continue
            if arg.name in scope:
                self.r.error(arg.span, f"duplicate argument '{arg.name}'")
                continue
            if arg.type not in ARG_TYPES:
                self.r.error(
                    arg.span,
                    f"unknown argument type '{arg.type}'" + did_you_mean(arg.type, ARG_TYPES),
                    "argument types are int, float and axis",
                )
                scope[arg.name] = "float"
                continue
            scope[arg.name] = arg.type
            if arg.default is None:
                continue
            if arg.type == "axis":
                d = arg.default
                if isinstance(d, ast.Name) and d.id in AXES:
                    env[arg.name] = d.id
                elif isinstance(d, ast.Name) and scope.get(d.id) == "axis":
                    if d.id in env:
                        env[arg.name] = env[d.id]
                else:
                    self.r.error(
                        d.span, f"argument '{arg.name}' is an axis; its default must be x, y or z"
                    )
                continue
            earlier = {k: v for k, v in scope.items() if k != arg.name}
            if not self.const_expr(arg.default, earlier, "a default value", env):
                continue
            value = self.evaluate(arg.default, env, False, "a default value")
            if value is None:
                continue
            try:
                env[arg.name] = coerce_arg(arg, value, arg.default.span)
            except ConstError as exc:
                self.r.error(arg.default.span, exc.message)
        return scope, env


def check_modules(modules, sources):
    """Check loaded modules (post-order list of ``(filename, Module)``).

    Returns:
        ``(ansatze, models, diagnostics)``: every definition by name (first one wins on a
        duplicate) and all diagnostics, errors and warnings.
    """
    from .check_ansatz import check_ansatz
    from .check_model import check_model

    reporter = _Reporter(sources)
    ansatze: dict[str, ast.Ansatz] = {}
    models: dict[str, ast.Model] = {}
    where: dict[str, ast.Span] = {}
    for filename, module in modules:
        seen_definition = False
        for item in module.items:
            if isinstance(item, ast.Import):
                if seen_definition:
                    reporter.error(
                        item.span,
                        "imports must come before ansatz and model definitions",
                        "move this import to the top of the file",
                    )
                continue
            if not isinstance(item, (ast.Ansatz, ast.Model)):
                continue
            seen_definition = True
            keyword = "ansatz" if isinstance(item, ast.Ansatz) else "model"
            if item.name in KEYWORDS or item.name in ("x", "pi"):
                reporter.error(
                    _keyword_span(item, keyword),
                    f"'{item.name}' is a keyword or built-in name and cannot name "
                    f"{'an ansatz' if keyword == 'ansatz' else 'a model'}",
                )
            if item.name in where:
                reporter.error(
                    _keyword_span(item, keyword),
                    f"duplicate name '{item.name}': already defined at {where[item.name]}",
                    "rename one of the two definitions",
                )
                continue
            where[item.name] = item.span
            (ansatze if keyword == "ansatz" else models)[item.name] = item
    namespace = {"ansatze": ansatze, "models": models}
    checker = _Checker(reporter, namespace)
    for filename, module in modules:
        for item in module.items:
            if isinstance(item, ast.Ansatz) and ansatze.get(item.name) is item:
                check_ansatz(checker, item)
            elif isinstance(item, ast.Model) and models.get(item.name) is item:
                check_model(checker, item)
    return ansatze, models, reporter.diagnostics
