"""Semantic checks of an ansatz body (see :mod:`qvaf.dsl.checker` for the rules)."""

from __future__ import annotations

from . import ast
from .consteval import AXES, ConstError, eval_int
from .rules import GATES, INITIALISERS, OBSERVABLES, RESERVED

#: how many loop iterations the range check enumerates per instantiation
MAX_ENUMERATION = 100_000


def _stmts(body):
    return [s for s in body if not isinstance(s, ast.Comment)]


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def check_ansatz(c, a: ast.Ansatz) -> None:
    """Report every problem of one ansatz through the checker ``c``."""
    from .checker import _keyword_span, did_you_mean

    r = c.r
    errors_before = sum(d.severity == "error" for d in r.diagnostics)
    scope, env = c.formals(a.args, "an argument")
    top = _stmts(a.body)
    c.pending = {s.name: s for s in top if isinstance(s, ast.ParamDecl)}
    decls: dict[str, ast.ParamDecl] = {}
    used: set[str] = set()
    state = {"x": False, "measures": []}

    def angle(expr, scope):
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Name):
                kind = scope.get(node.id)
                if node.id == "x" and kind is None:
                    state["x"] = True
                elif node.id == "pi" and kind is None:
                    pass
                elif kind is None:
                    c.unknown_name(node, scope)
                elif isinstance(kind, ast.ParamDecl):
                    used.add(node.id)
                    if kind.shape:
                        r.error(
                            node.span,
                            f"'{node.id}' is an array with "
                            f"{_plural(len(kind.shape), 'axis', 'axes')}; index it",
                            f"write {node.id}[" + ", ".join("0" * len(kind.shape)) + "]",
                        )
                elif kind == "axis":
                    r.error(node.span, f"axis argument '{node.id}' used as a number")
            elif isinstance(node, ast.Index):
                name = node.base.id
                kind = scope.get(name)
                if kind is None:
                    c.unknown_name(node.base, scope)
                elif not isinstance(kind, ast.ParamDecl):
                    r.error(node.span, f"'{name}' is not an array and cannot be indexed")
                else:
                    used.add(name)
                    if not kind.shape:
                        r.error(node.span, f"'{name}' is a scalar and cannot be indexed")
                    elif len(node.indices) != len(kind.shape):
                        rank = _plural(len(kind.shape), "axis", "axes")
                        count = _plural(len(node.indices), "index", "indices")
                        r.error(node.span, f"'{name}' has {rank} but {count} given")
                for index in node.indices:
                    c.const_expr(index, scope, "an index", {}, integer=True)
            elif isinstance(node, ast.UnaryOp):
                stack.append(node.operand)
            elif isinstance(node, ast.BinOp):
                stack.extend((node.right, node.left))
            elif isinstance(node, ast.Call):
                c.call(node)
                stack.extend(reversed(node.args))

    def declaration(s: ast.ParamDecl, scope, in_loop):
        if in_loop:
            r.error(
                s.span,
                "declarations must be at the top level of the ansatz body, not inside a loop",
                "move it above the loop",
            )
        named = c.check_new_name(s.name, s.span, "a declaration")
        if named and s.name in RESERVED:
            r.error(
                s.span,
                f"'{s.name}' is reserved for the arrays a kan layer adds",
                "rename it; reserved names: " + ", ".join(RESERVED),
            )
        elif named and s.name in scope:
            other = scope[s.name]
            where = (
                f"on line {other.span.line}"
                if isinstance(other, ast.ParamDecl) and other.span is not None
                else "as an argument"
            )
            r.error(s.span, f"duplicate name '{s.name}': already declared {where}")
        for dim in s.shape:
            if c.const_expr(dim, scope, "a shape", env, integer=True):
                value = c.evaluate(dim, env, True, "a shape")
                if value is not None and value < 0:
                    r.error(dim.span, f"shape of '{s.name}' has a negative size {value}")
        if s.random:
            init = s.init
            if init.func not in INITIALISERS:
                r.error(
                    init.span,
                    f"unknown initialiser '{init.func}'" + did_you_mean(init.func, INITIALISERS),
                    "initialisers: normal(mu, sigma), uniform(a, b), xavier()",
                )
            elif len(init.args) != INITIALISERS[init.func]:
                want = {"normal": "2 arguments (mu, sigma)", "uniform": "2 arguments (a, b)",
                        "xavier": "no arguments"}[init.func]
                r.error(
                    init.span,
                    f"initialiser '{init.func}' takes {want}, got {len(init.args)}",
                )
            else:
                values = []
                for arg in init.args:
                    if c.const_expr(arg, scope, "an initialiser", env):
                        values.append(c.evaluate(arg, env, False, "an initialiser"))
                    else:
                        values.append(None)
                if init.func == "normal" and values[1] is not None and values[1] < 0:
                    r.error(init.args[1].span, f"normal(mu, sigma) needs sigma >= 0, got {values[1]}")
                if init.func == "uniform" and None not in values and values[0] > values[1]:
                    r.error(
                        init.span,
                        f"uniform(a, b) needs a <= b, got a = {values[0]} and b = {values[1]}",
                    )
        elif isinstance(s.init, ast.Call) and s.init.func in INITIALISERS:
            r.error(
                s.init.span,
                f"'{s.init.func}(...)' is a random initialiser",
                f"write '~ {s.init.func}(...)' instead of '= {s.init.func}(...)'",
            )
        else:
            if c.const_expr(s.init, scope, "an initial value", env):
                c.evaluate(s.init, env, False, "an initial value")
        if s.grow is not None:
            if not s.trainable and not s.random:
                r.error(
                    s.grow.span,
                    f"'{s.name}' is a compile-time constant (a const with a literal value) "
                    "and cannot grow",
                    f"declare it 'param {s.name}' to train and grow it, or remove 'grow'",
                )
            elif c.const_expr(s.grow, scope, "a grow value", env):
                c.evaluate(s.grow, env, False, "a grow value")
        if named and s.name not in scope:
            scope[s.name] = s
            decls[s.name] = s
        c.pending.pop(s.name, None)

    def walk(stmts, scope, in_loop):
        for s in stmts:
            if isinstance(s, ast.ParamDecl):
                declaration(s, scope, in_loop)
            elif isinstance(s, ast.Gate):
                if s.name not in GATES:
                    hint = None if did_you_mean(s.name, GATES) else (
                        "gates: " + " ".join(GATES) + "; data encoding: encode(angle, axis)"
                    )
                    r.error(
                        s.span, f"unknown gate '{s.name}'" + did_you_mean(s.name, GATES), hint
                    )
                elif len(s.args) != GATES[s.name]:
                    want = GATES[s.name]
                    takes = "no angle" if want == 0 else _plural(want, "angle")
                    r.error(s.span, f"gate '{s.name}' takes {takes}, got {len(s.args)}")
                for arg in s.args:
                    angle(arg, scope)
            elif isinstance(s, ast.Encode):
                angle(s.angle, scope)
                if s.axis not in AXES and scope.get(s.axis) != "axis":
                    r.error(
                        s.span,
                        f"encode() axis must be x, y, z or an axis argument, got '{s.axis}'",
                    )
            elif isinstance(s, ast.For):
                for bound in (s.start, s.stop):
                    if c.const_expr(bound, scope, "a loop bound", env, integer=True):
                        c.evaluate(bound, env, True, "a loop bound")
                inner = dict(scope)
                if c.check_new_name(s.var, s.span, "a loop variable"):
                    if s.var in scope:
                        r.error(s.span, f"loop variable '{s.var}' shadows an existing name")
                    inner[s.var] = "loop"
                walk(_stmts(s.body), inner, True)
            elif isinstance(s, ast.Measure):
                state["measures"].append(s)
                if in_loop:
                    r.error(s.span, "'measure' cannot be inside a loop", "move it to the end")
                if s.observable not in OBSERVABLES:
                    r.error(
                        s.span,
                        f"unknown observable '{s.observable}'"
                        + did_you_mean(s.observable, OBSERVABLES),
                        "measure z, x, y or inspired (simulator only)",
                    )

    walk(top, dict(scope), False)
    c.pending = {}

    measures = state["measures"]
    if not measures:
        r.error(
            _keyword_span(a, "ansatz"),
            f"ansatz '{a.name}' has no 'measure'",
            "end the body with 'measure z'",
        )
    else:
        for extra in measures[1:]:
            r.error(extra.span, f"more than one 'measure' in ansatz '{a.name}'")
        if top and isinstance(top[-1], ast.Measure) is False and measures[0] in top:
            r.error(
                measures[0].span,
                "'measure' must be the last statement of the ansatz",
                "move it after the last gate",
            )
    for name, decl in decls.items():
        if name not in used:
            r.warning(
                decl.span,
                f"'{name}' is declared but never used",
                "use it in a gate angle or remove the declaration",
            )
    if not state["x"]:
        r.warning(
            _keyword_span(a, "ansatz"),
            f"ansatz '{a.name}' never uses the edge input 'x'",
            "its value does not depend on the data; re-upload x with a gate angle or encode()",
        )
    errors_after = sum(d.severity == "error" for d in r.diagnostics)
    if errors_after == errors_before and all(arg.name in env for arg in a.args):
        for span, message in instantiate(a, env):
            r.error(span, message)


def instantiate(a: ast.Ansatz, env: dict) -> list[tuple[ast.Span | None, str]]:
    """Evaluate shapes, loop bounds and indices of a checked ansatz for concrete arguments.

    Returns:
        ``(span, message)`` for each problem: a negative or non-integer shape or loop bound,
        an index outside its declared shape (reported once per index expression). Loops are
        enumerated up to :data:`MAX_ENUMERATION` iterations in total.
    """
    problems: list[tuple[ast.Span | None, str]] = []
    shapes: dict[str, list[int]] = {}
    reported: set[int] = set()
    budget = [MAX_ENUMERATION]

    def once(node, message):
        if id(node) not in reported:
            reported.add(id(node))
            problems.append((node.span, message))

    for s in _stmts(a.body):
        if isinstance(s, ast.ParamDecl):
            dims = []
            for dim in s.shape:
                try:
                    dims.append(eval_int(dim, env))
                except ConstError as exc:
                    once(dim, f"shape of '{s.name}': {exc.message}")
                    dims = None
                    break
            if dims is not None:
                bad = [d for d in dims if d < 0]
                if bad:
                    once(s, f"shape of '{s.name}' has a negative size {bad[0]}")
                else:
                    shapes[s.name] = dims

    def indices(expr, env):
        for node in ast.iter_expr(expr):
            if isinstance(node, ast.Index):
                dims = shapes.get(node.base.id)
                for axis, index in enumerate(node.indices):
                    try:
                        value = eval_int(index, env)
                    except ConstError as exc:
                        once(index, exc.message)
                        continue
                    if dims is not None and axis < len(dims) and not 0 <= value < dims[axis]:
                        loops = ", ".join(f"{k} = {v}" for k, v in env.items() if k in loop_vars)
                        where = f" (at {loops})" if loops else ""
                        once(
                            node,
                            f"index {value} is out of range for axis {axis} of "
                            f"'{node.base.id}' with size {dims[axis]}{where}",
                        )

    loop_vars: set[str] = set()

    def run(stmts, env) -> bool:
        for s in stmts:
            if budget[0] <= 0:
                return False
            if isinstance(s, ast.Gate):
                for arg in s.args:
                    indices(arg, env)
            elif isinstance(s, ast.Encode):
                indices(s.angle, env)
            elif isinstance(s, ast.For):
                try:
                    start = eval_int(s.start, env)
                    stop = eval_int(s.stop, env)
                except ConstError as exc:
                    once(s, f"loop bound: {exc.message}")
                    continue
                loop_vars.add(s.var)
                for value in range(start, stop):
                    budget[0] -= 1
                    if budget[0] <= 0 or not run(_stmts(s.body), {**env, s.var: value}):
                        return False
        return True

    run(_stmts(a.body), dict(env))
    return problems
