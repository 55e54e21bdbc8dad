"""Symbolic angle expressions of the circuit IR.

An angle is a small tree over constants, the edge input ``x``, loop variables (before
unrolling) and references to per-edge parameters. Backends evaluate it with any array
namespace (numpy, jax.numpy) through :func:`evaluate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Union

from qvaf.dsl import rules


@dataclass(frozen=True)
class Const:
    value: float


@dataclass(frozen=True)
class Input:
    """The edge input ``x``."""


@dataclass(frozen=True)
class LoopVar:
    name: str


@dataclass(frozen=True)
class ParamRef:
    """``name[indices]``: an entry of a per-edge tensor; indices are ints after unrolling."""

    name: str
    indices: tuple["Expr", ...] = ()


@dataclass(frozen=True)
class Unary:
    """``fn(arg)``: fn is ``neg`` or one of :data:`FUNCTIONS`."""

    fn: str
    arg: "Expr"


@dataclass(frozen=True)
class Binary:
    """``left op right`` with op in ``+ - * / **``."""

    op: str
    left: "Expr"
    right: "Expr"


Expr = Union[Const, Input, LoopVar, ParamRef, Unary, Binary]

#: the language's scalar functions and binary operators (dsl/rules.py)
FUNCTIONS = rules.FUNCTIONS
BINARY_OPS = rules.OPERATORS


def children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, Unary):
        return (e.arg,)
    if isinstance(e, Binary):
        return (e.left, e.right)
    if isinstance(e, ParamRef):
        return e.indices
    return ()


def walk(e: Expr):
    """Yield ``e`` and every sub-expression, depth first."""
    yield e
    for c in children(e):
        yield from walk(c)


def depends_on_input(e: Expr) -> bool:
    """True when the expression reads the edge input ``x``."""
    return any(isinstance(n, Input) for n in walk(e))


def param_refs(e: Expr) -> list[ParamRef]:
    return [n for n in walk(e) if isinstance(n, ParamRef)]


def substitute(e: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """Rebuild ``e`` bottom-up, replacing any node for which ``fn`` returns an expression."""
    rep = fn(e)
    if rep is not None:
        return rep
    if isinstance(e, Unary):
        return Unary(e.fn, substitute(e.arg, fn))
    if isinstance(e, Binary):
        return Binary(e.op, substitute(e.left, fn), substitute(e.right, fn))
    if isinstance(e, ParamRef):
        return ParamRef(e.name, tuple(substitute(i, fn) for i in e.indices))
    return e


_PY = {"neg": lambda a: -a, **{name: getattr(math, name) for name in FUNCTIONS}}
_BIN = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "**": lambda a, b: a ** b,
}


def evaluate(e: Expr, x, params: Mapping[str, object], xp, loop_env: Mapping[str, int] | None = None):
    """Evaluate ``e`` with array namespace ``xp``.

    ``x`` is the edge input (any broadcastable array); ``params[name]`` is an array whose
    trailing axes are the per-edge shape, indexed as ``params[name][..., *indices]``.
    """
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Input):
        return x
    if isinstance(e, LoopVar):
        if loop_env is None or e.name not in loop_env:
            raise KeyError(f"loop variable {e.name!r} is not bound")
        return loop_env[e.name]
    if isinstance(e, ParamRef):
        idx = tuple(int(evaluate(i, x, params, xp, loop_env)) for i in e.indices)
        arr = params[e.name]
        return arr[(Ellipsis, *idx)] if idx else arr
    if isinstance(e, Unary):
        a = evaluate(e.arg, x, params, xp, loop_env)
        if e.fn == "neg":
            return -a
        if isinstance(a, (int, float)):
            return _PY[e.fn](a)
        return getattr(xp, {"asin": "arcsin", "acos": "arccos", "atan": "arctan"}.get(e.fn, e.fn))(a)
    if isinstance(e, Binary):
        return _BIN[e.op](evaluate(e.left, x, params, xp, loop_env), evaluate(e.right, x, params, xp, loop_env))
    raise TypeError(f"not an expression: {e!r}")


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}


def to_str(e: Expr, prec: int = 0) -> str:
    """Readable text of an expression (used by ``qvaf inspect --dump-ir``)."""
    if isinstance(e, Const):
        v = e.value
        if v == math.pi:
            return "pi"
        return repr(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(e, Input):
        return "x"
    if isinstance(e, LoopVar):
        return e.name
    if isinstance(e, ParamRef):
        return e.name + ("[" + ", ".join(to_str(i) for i in e.indices) + "]" if e.indices else "")
    if isinstance(e, Unary):
        if e.fn == "neg":
            s = "-" + to_str(e.arg, 3)
            return f"({s})" if prec > 3 else s
        return f"{e.fn}({to_str(e.arg)})"
    if isinstance(e, Binary):
        p = _PREC[e.op]
        right_p = p if e.op == "**" else p + 1
        left_p = p + 1 if e.op == "**" else p
        s = f"{to_str(e.left, left_p)} {e.op} {to_str(e.right, right_p)}"
        return f"({s})" if p < prec else s
    raise TypeError(f"not an expression: {e!r}")
