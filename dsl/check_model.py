"""Semantic checks of a model body (see :mod:`qvaf.dsl.checker` for the rules)."""

from __future__ import annotations

from . import ast
from .consteval import ConstError, bind_args
from .rules import AXES, BASES, OPTIONS, POSTACTS, option_hint


def _layer_word(layer) -> str:
    return {ast.InputLayer: "input", ast.KanLayer: "kan", ast.LinearLayer: "linear"}[type(layer)]


def _format_args(bound: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in bound.items())


def check_model(c, m: ast.Model) -> None:
    """Report every problem of one model through the checker ``c``."""
    from .checker import _keyword_span, did_you_mean
    from .check_ansatz import instantiate

    r = c.r
    scope, env = c.formals(m.args, "an argument")
    layers = [s for s in m.body if not isinstance(s, ast.Comment)]
    if not layers:
        r.error(
            _keyword_span(m, "model"),
            f"model '{m.name}' is empty",
            "start it with 'input N' followed by kan or linear layers",
        )
        return
    if not isinstance(layers[0], ast.InputLayer):
        r.error(
            _keyword_span(layers[0], _layer_word(layers[0])),
            f"model '{m.name}' must start with 'input N'",
            "add 'input N' (the input width) as its first line",
        )
    elif len(layers) == 1:
        r.error(
            _keyword_span(m, "model"),
            f"model '{m.name}' has no layers after 'input'",
            "add a kan or linear layer",
        )
    width = None  # the current width, when known
    for position, layer in enumerate(layers):
        if isinstance(layer, ast.InputLayer) and position > 0:
            r.error(
                _keyword_span(layer, "input"),
                "'input' may appear only once, as the first layer",
            )
        new_width = _width(c, layer, scope, env)
        if isinstance(layer, ast.KanLayer):
            _kan(c, layer, scope, env, width, did_you_mean, instantiate)
        if position == 0 or not isinstance(layer, ast.InputLayer):
            width = new_width


def _width(c, layer, scope, env):
    what = "a layer width"
    if not c.const_expr(layer.width, scope, what, env, integer=True):
        return None
    value = c.evaluate(layer.width, env, True, what)
    if value is not None and value <= 0:
        c.r.error(layer.width.span, f"layer width must be a positive integer, got {value}")
        return None
    return value


def _kan(c, layer: ast.KanLayer, scope, env, in_width, did_you_mean, instantiate):
    r = c.r
    ansatze = c.namespace["ansatze"]
    models = c.namespace["models"]
    ansatz = ansatze.get(layer.ansatz)
    if ansatz is None:
        if layer.ansatz in models:
            r.error(layer.span, f"'{layer.ansatz}' is a model, not an ansatz")
        else:
            from .library import missing_ansatz_hint

            suffix, hint = missing_ansatz_hint(layer.ansatz, ansatze, layer.span.file if layer.span else None)
            r.error(layer.span, f"unknown ansatz '{layer.ansatz}'" + suffix, hint)
    evaluable = True
    formals = ansatz.args if ansatz is not None else ()
    for position, actual in enumerate(layer.args):
        if actual.name is None:
            formal = formals[position] if position < len(formals) else None
        else:
            formal = next((a for a in formals if a.name == actual.name), None)
        if formal is not None and formal.type == "axis" and _is_axis_word(actual.value):
            continue
        if not c.const_expr(actual.value, scope, "an ansatz argument", env):
            evaluable = False
    _options(c, layer, scope, env, in_width, did_you_mean)
    if ansatz is None or not evaluable:
        return
    try:
        bound = bind_args(ansatz.args, layer.args, layer.span, env)
    except ConstError as exc:
        r.error(exc.span or layer.span, f"in {layer.ansatz}(...): {exc.message}", exc.hint)
        return
    defaults = {}
    try:
        defaults = bind_args(ansatz.args, (), None)
    except ConstError:
        defaults = None
    if bound == defaults:
        return  # already checked with these values where the ansatz is defined
    for problem in instantiate(ansatz, bound):
        where = f" ({problem.span})" if problem.span is not None else ""
        r.error(
            _call_site(layer, ansatz, problem.names),
            f"ansatz '{ansatz.name}' with {_format_args(bound)}: {problem.message}{where}",
        )


def _call_site(layer: ast.KanLayer, ansatz: ast.Ansatz, names) -> ast.Span | None:
    """Where a problem of an instantiation is the caller's: the first argument the layer
    passes to one of the ``names`` the offending expression reads, else the whole layer."""
    formals = [a.name for a in ansatz.args]
    for position, actual in enumerate(layer.args):
        formal = actual.name if actual.name is not None else (
            formals[position] if position < len(formals) else None)
        if formal in names and actual.span is not None:
            return actual.span
    return layer.span


def _is_axis_word(expr) -> bool:
    return isinstance(expr, ast.Name) and expr.id in AXES


def _options(c, layer: ast.KanLayer, scope, env, in_width, did_you_mean):
    r = c.r
    seen: dict[str, ast.Option] = {}
    for option in layer.options:
        if isinstance(option, ast.Comment):
            continue
        name = option.name
        if name not in OPTIONS:
            r.error(
                option.span,
                f"unknown option '{name}'" + did_you_mean(name, OPTIONS),
                option_hint(),
            )
            continue
        if name in seen:
            r.error(option.span, f"option '{name}' given twice")
            continue
        seen[name] = option
        values = option.values
        if name == "base":
            if len(values) != 1 or not isinstance(values[0], str) or values[0] not in BASES:
                got = " ".join(v if isinstance(v, str) else "<expr>" for v in values) or "nothing"
                r.error(
                    option.span,
                    f"option 'base' takes one of {', '.join(BASES)}; got {got}",
                )
        elif name == "postact":
            words = [v for v in values if isinstance(v, str)]
            bad = [v for v in words if v not in POSTACTS]
            if not values or len(words) != len(values) or bad or len(set(words)) != len(words):
                got = " ".join(v if isinstance(v, str) else "<expr>" for v in values) or "nothing"
                r.error(
                    option.span,
                    f"option 'postact' takes 'weight', 'bias' or both; got {got}",
                )
        elif name == "group":
            if len(values) != 1 or isinstance(values[0], str):
                r.error(option.span, f"option 'group' takes one integer, got {len(values)} values")
                continue
            what = "a group count"
            if c.const_expr(values[0], scope, what, env, integer=True):
                value = c.evaluate(values[0], env, True, what)
                if value is not None and value <= 0:
                    r.error(values[0].span, f"group count must be a positive integer, got {value}")
                elif value is not None and in_width is not None and value > in_width:
                    r.warning(
                        option.span,
                        f"group {value} exceeds the layer's input width {in_width}; "
                        f"groups {in_width}..{value - 1} are never used",
                        f"use group {in_width} or fewer",
                    )
