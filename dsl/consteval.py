"""Compile-time evaluation: argument binding and constant expressions.

Shapes, loop bounds, layer widths, option values and argument defaults are *compile-time*
expressions: numbers, ``pi``, the arithmetic operators, the scalar functions, and names bound
in an environment (ansatz/model arguments, loop variables). Integer arithmetic stays integer
(``reps + 1`` is an int); ``/`` always gives a float, as in Python.

Example::

    >>> from qvaf.dsl import parse
    >>> from qvaf.dsl.consteval import bind_args, eval_int
    >>> ansatz = parse("ansatz a(reps: int = 3) { measure z }").items[0]
    >>> env = bind_args(ansatz.args, {}, None)
    >>> env
    {'reps': 3}
"""

from __future__ import annotations

import math
import numbers
from typing import Mapping

from . import ast, rules
from .errors import Diagnostic, SpecError

#: scalar functions usable in expressions (the language's list), with their implementation
FUNCTIONS = {name: getattr(math, name) for name in rules.FUNCTIONS}
ARG_TYPES = rules.ARG_TYPES
AXES = rules.AXES
#: the largest magnitude an integer constant may reach
MAX_INT = 2**62

Value = int | float | str


class ConstError(SpecError):
    """A compile-time evaluation or argument-binding error at one span.

    Attributes:
        message: What is wrong.
        span: Where (may be None for values passed from Python).
        hint: A suggested fix, or None.
    """

    def __init__(self, message: str, span: ast.Span | None, hint: str | None = None):
        self.message = message
        self.span = span
        self.hint = hint
        super().__init__([Diagnostic("error", message, span, None, hint)])


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(value: Value) -> str:
    if isinstance(value, str):
        return f"axis {value}" if value in AXES else f"the text {value!r}"
    return repr(value)


def _check_int(value: int, span) -> int:
    if abs(value) > MAX_INT:
        raise ConstError(f"integer constant {value} is too large (limit 2**62)", span)
    return value


def _check_float(value: float, span) -> float:
    if not math.isfinite(value):
        raise ConstError("constant expression overflows a 64-bit float", span)
    return value


def eval_const(expr: ast.Expr, env: Mapping[str, Value] | None = None) -> Value:
    """Evaluate a compile-time expression.

    Args:
        expr: The expression.
        env: Values of the names in scope (arguments, loop variables); ``pi`` is built in.
            A name bound to an axis string evaluates to that string when used alone.

    Returns:
        An int (integer arithmetic only), a float, or an axis string.

    Raises:
        ConstError: If the expression uses the edge input ``x``, a parameter, an unknown name
            or function, divides by zero, leaves a function's domain or overflows.
    """
    env = env or {}
    if isinstance(expr, ast.Name):
        if expr.id in env:
            return env[expr.id]
        if expr.id == "pi":
            return math.pi
        if expr.id == "x":
            raise ConstError(
                "the edge input 'x' is not a compile-time constant",
                expr.span,
                "'x' may only appear in gate angles and encode() inside an ansatz",
            )
        raise ConstError(f"'{expr.id}' is not a compile-time constant", expr.span)
    value = _eval_number(expr, env)
    return value


def _number(expr: ast.Expr, env) -> int | float:
    value = eval_const(expr, env)
    if isinstance(value, str):
        raise ConstError(f"axis value '{value}' used as a number", expr.span)
    return value


def _eval_number(expr: ast.Expr, env) -> int | float:
    if isinstance(expr, ast.Num):
        if expr.is_int:
            return _check_int(int(expr.value), expr.span)
        return float(expr.value)
    if isinstance(expr, ast.UnaryOp):
        value = _number(expr.operand, env)
        return -value if expr.op == "-" else value
    if isinstance(expr, ast.BinOp):
        left = _number(expr.left, env)
        right = _number(expr.right, env)
        both_int = _is_int(left) and _is_int(right)
        try:
            if expr.op == "+":
                result = left + right
            elif expr.op == "-":
                result = left - right
            elif expr.op == "*":
                result = left * right
            elif expr.op == "/":
                if right == 0:
                    raise ConstError("division by zero in a constant expression", expr.span)
                result = left / right
            elif expr.op == "**":
                if both_int and right >= 0:
                    if right > 62 and abs(left) > 1:
                        raise ConstError(
                            f"integer constant {left} ** {right} is too large (limit 2**62)",
                            expr.span,
                        )
                    result = left**right
                else:
                    if left == 0 and right < 0:
                        raise ConstError("zero raised to a negative power", expr.span)
                    result = float(left) ** float(right)
                    if isinstance(result, complex):
                        raise ConstError(
                            "negative number raised to a fractional power", expr.span
                        )
            else:  # pragma: no cover - the parser only builds the five operators
                raise ConstError(f"unknown operator '{expr.op}'", expr.span)
        except OverflowError:
            raise ConstError("constant expression overflows a 64-bit float", expr.span) from None
        if _is_int(result):
            return _check_int(result, expr.span)
        return _check_float(float(result), expr.span)
    if isinstance(expr, ast.Call):
        if expr.func not in FUNCTIONS:
            raise ConstError(f"unknown function '{expr.func}'", expr.span)
        if len(expr.args) != 1:
            raise ConstError(
                f"function '{expr.func}' takes 1 argument, got {len(expr.args)}", expr.span
            )
        arg = float(_number(expr.args[0], env))
        try:
            return _check_float(FUNCTIONS[expr.func](arg), expr.span)
        except (ValueError, OverflowError):
            raise ConstError(f"{expr.func}({arg!r}) is outside the function's domain", expr.span) from None
    if isinstance(expr, ast.Index):
        raise ConstError(
            f"'{expr.base.id}[...]' is not a compile-time constant", expr.span,
            "shapes, loop bounds, widths and initial values may use only numbers, pi and arguments",
        )
    if isinstance(expr, ast.Name):
        value = eval_const(expr, env)
        if isinstance(value, str):
            raise ConstError(f"axis value '{value}' used as a number", expr.span)
        return value
    raise ConstError("not a compile-time constant expression", getattr(expr, "span", None))


def eval_int(expr: ast.Expr, env: Mapping[str, Value] | None = None) -> int:
    """Evaluate a compile-time expression that must be an integer.

    Raises:
        ConstError: As :func:`eval_const`, or if the value is a float or an axis.
    """
    value = eval_const(expr, env)
    if not _is_int(value):
        raise ConstError(
            f"expected a compile-time integer, got {_describe(value)}",
            expr.span,
            "use integer literals and integer arguments ('/' always gives a float)",
        )
    return value


def coerce_arg(arg: ast.Arg, value, span) -> Value:
    """Check ``value`` against the declared type of ``arg`` and convert int -> float."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
    if arg.type == "int":
        if _is_int(value):
            return value
        raise ConstError(
            f"argument '{arg.name}' is an int, got {_describe(value)}", span
        )
    if arg.type == "float":
        if _is_int(value):
            return float(value)
        if isinstance(value, float):
            return value
        raise ConstError(f"argument '{arg.name}' is a float, got {_describe(value)}", span)
    if arg.type == "axis":
        if isinstance(value, str) and value in AXES:
            return value
        raise ConstError(
            f"argument '{arg.name}' is an axis (x, y or z), got {_describe(value)}", span
        )
    raise ConstError(f"unknown argument type '{arg.type}'", arg.span, "use int, float or axis")


def _eval_actual(arg: ast.Arg, expr: ast.Expr, env) -> Value:
    if arg.type == "axis" and isinstance(expr, ast.Name) and expr.id in AXES and expr.id not in env:
        return expr.id
    return eval_const(expr, env)


def bind_args(
    formals: tuple[ast.Arg, ...],
    actuals: tuple[ast.KwArg, ...] | Mapping[str, object],
    where: ast.Span | None,
    env: Mapping[str, Value] | None = None,
) -> dict[str, Value]:
    """Bind actual arguments to formal ones, filling defaults and checking types.

    Args:
        formals: The declared arguments (``reps: int = 3``).
        actuals: Either the call's arguments as written (positional then keyword
            :class:`~qvaf.dsl.ast.KwArg`), or a mapping name -> Python value (int, float, or
            ``"x"``/``"y"``/``"z"`` for axes).
        where: Span of the call, used for errors that concern the call as a whole.
        env: Names visible to the actual argument expressions (e.g. the model's arguments).

    Returns:
        name -> value for every formal, in declaration order; ints for ``int``, floats for
        ``float`` (ints are converted), axis strings for ``axis``.

    Raises:
        ConstError: On an unknown or repeated name, too many positional arguments, a
            positional after a keyword, a missing argument, or a value of the wrong type.
    """
    env = dict(env or {})
    names = [a.name for a in formals]
    by_name = {a.name: a for a in formals}
    given: dict[str, tuple[object, ast.Span | None, bool]] = {}  # name -> (value/expr, span, is_expr)
    if isinstance(actuals, Mapping):
        for key, value in actuals.items():
            if key not in by_name:
                raise ConstError(_unknown_arg(key, names), where)
            given[key] = (value, where, False)
    else:
        seen_keyword = False
        for position, actual in enumerate(actuals):
            if actual.name is None:
                if seen_keyword:
                    raise ConstError(
                        "positional argument after a keyword argument", actual.span,
                        "write positional arguments first",
                    )
                if position >= len(formals):
                    raise ConstError(
                        f"too many arguments: takes {len(formals)}, got {len(actuals)}",
                        actual.span,
                    )
                key = names[position]
            else:
                seen_keyword = True
                key = actual.name
                if key not in by_name:
                    raise ConstError(_unknown_arg(key, names), actual.span)
            if key in given:
                raise ConstError(f"argument '{key}' given twice", actual.span)
            given[key] = (actual.value, actual.span, True)
    bound: dict[str, Value] = {}
    for arg in formals:
        if arg.name in given:
            value, span, is_expr = given[arg.name]
            if is_expr:
                value = _eval_actual(arg, value, env)
            bound[arg.name] = coerce_arg(arg, value, span)
        elif arg.default is not None:
            value = _eval_actual(arg, arg.default, bound)
            bound[arg.name] = coerce_arg(arg, value, arg.default.span)
        else:
            raise ConstError(
                f"missing argument '{arg.name}' ({arg.type})", where,
                f"pass it as {arg.name} = ...",
            )
    return bound


def _unknown_arg(key: str, names: list[str]) -> str:
    if names:
        return f"unknown argument '{key}'; expected one of: {', '.join(names)}"
    return f"unknown argument '{key}'; this takes no arguments"
