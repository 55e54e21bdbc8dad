"""Algebra on angle expressions: constant folding and the affine form in ``x``.

Used by the passes (:mod:`qvaf.compiler.passes`) and the analyses
(:mod:`qvaf.compiler.analysis`). Every rewrite here is an identity of real arithmetic, so a
folded angle evaluates to the same number as the original wherever the original is finite.

Example::

    >>> from qvaf.compiler.expr import Binary, Const, Input, to_str
    >>> to_str(fold(Binary("+", Binary("*", Const(1.0), Input()), Const(0.0))))
    'x'
"""

from __future__ import annotations

import math

from .expr import Binary, Const, Expr, Input, LoopVar, ParamRef, Unary, _PY, depends_on_input

__all__ = ["fold", "is_const", "const_value", "affine_in_x", "is_zero_rotation"]


def is_const(e: Expr) -> bool:
    return isinstance(e, Const)


def const_value(e: Expr):
    """The value of a :class:`Const`, else None."""
    return e.value if isinstance(e, Const) else None


def _num(v):
    """Keep integers integral (index arithmetic), everything else a float."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    return float(v)


def _binary_const(op: str, a, b):
    both_int = isinstance(a, int) and isinstance(b, int)
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if both_int and b != 0 and a % b == 0:
                return a // b
            return a / b
        if op == "**":
            if both_int and b >= 0:
                return a ** b
            r = float(a) ** float(b)
            return r if isinstance(r, float) else None  # complex: leave unfolded
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    raise ValueError(f"unknown binary operator {op!r}")


def _is(e: Expr, value) -> bool:
    return isinstance(e, Const) and e.value == value


def fold(e: Expr) -> Expr:
    """Fold constant sub-expressions and drop neutral elements, bottom up.

    Rules: operations on constants are computed (integers stay integers where exact);
    ``a + 0``, ``0 + a``, ``a - 0``, ``a * 1``, ``1 * a``, ``a / 1``, ``a ** 1`` give ``a``;
    ``a * 0`` and ``0 * a`` give ``0``; ``a ** 0`` gives ``1``; ``0 - a`` and ``a * -1`` give
    ``-a``; ``--a`` gives ``a``; ``a + -b`` gives ``a - b`` and ``a - -b`` gives ``a + b``.
    A function outside its domain (``acos(2)``) is left unfolded.
    """
    if isinstance(e, (Const, Input, LoopVar)):
        return e
    if isinstance(e, ParamRef):
        return ParamRef(e.name, tuple(fold(i) for i in e.indices))
    if isinstance(e, Unary):
        a = fold(e.arg)
        if e.fn == "neg":
            if isinstance(a, Const):
                return Const(_num(-a.value))
            if isinstance(a, Unary) and a.fn == "neg":
                return a.arg
            return Unary("neg", a)
        if isinstance(a, Const):
            try:
                return Const(float(_PY[e.fn](a.value)))
            except (ValueError, OverflowError):
                pass
        return Unary(e.fn, a)
    if isinstance(e, Binary):
        a, b = fold(e.left), fold(e.right)
        op = e.op
        if isinstance(a, Const) and isinstance(b, Const):
            v = _binary_const(op, a.value, b.value)
            if v is not None:
                return Const(_num(v))
        if op == "+":
            if _is(b, 0):
                return a
            if _is(a, 0):
                return b
            if isinstance(b, Unary) and b.fn == "neg":
                return fold(Binary("-", a, b.arg))
        elif op == "-":
            if _is(b, 0):
                return a
            if _is(a, 0):
                return fold(Unary("neg", b))
            if isinstance(b, Unary) and b.fn == "neg":
                return fold(Binary("+", a, b.arg))
        elif op == "*":
            if _is(a, 0):
                return a
            if _is(b, 0):
                return b
            if _is(b, 1):
                return a
            if _is(a, 1):
                return b
            if _is(b, -1):
                return fold(Unary("neg", a))
            if _is(a, -1):
                return fold(Unary("neg", b))
        elif op == "/":
            if _is(b, 1):
                return a
        elif op == "**":
            if _is(b, 1):
                return a
            if _is(b, 0):
                return Const(1)
        return Binary(op, a, b)
    raise TypeError(f"not an expression: {e!r}")


def affine_in_x(e: Expr) -> tuple[Expr, Expr] | None:
    """Write ``e`` as ``coef * x + offset`` with ``coef`` and ``offset`` free of ``x``.

    Returns ``(coef, offset)`` (both folded), or None when ``e`` is not affine in ``x``
    (``acos(x)``, ``x * x``, ``sin(x)``). An ``x``-free expression gives ``(Const(0), e)``.
    """
    if not depends_on_input(e):
        return Const(0), fold(e)
    if isinstance(e, Input):
        return Const(1), Const(0)
    if isinstance(e, Unary) and e.fn == "neg":
        inner = affine_in_x(e.arg)
        if inner is None:
            return None
        return fold(Unary("neg", inner[0])), fold(Unary("neg", inner[1]))
    if isinstance(e, Binary):
        if e.op in ("+", "-"):
            left, right = affine_in_x(e.left), affine_in_x(e.right)
            if left is None or right is None:
                return None
            return fold(Binary(e.op, left[0], right[0])), fold(Binary(e.op, left[1], right[1]))
        if e.op == "*":
            if not depends_on_input(e.left):
                inner = affine_in_x(e.right)
                k = e.left
            elif not depends_on_input(e.right):
                inner = affine_in_x(e.left)
                k = e.right
            else:
                return None
            if inner is None:
                return None
            return fold(Binary("*", k, inner[0])), fold(Binary("*", k, inner[1]))
        if e.op == "/" and not depends_on_input(e.right):
            inner = affine_in_x(e.left)
            if inner is None:
                return None
            return fold(Binary("/", inner[0], e.right)), fold(Binary("/", inner[1], e.right))
    return None


def is_zero_rotation(e: Expr) -> bool:
    """True when ``e`` folds to a constant multiple of 2*pi (an identity in SO(3)).

    A rotation by 2*pi*k is +-1 in SU(2): a global phase, invisible to every readout.
    """
    f = fold(e)
    if not isinstance(f, Const):
        return False
    v = float(f.value)
    if v == 0.0:
        return True
    if not math.isfinite(v):
        return False
    return abs(math.remainder(v, 2 * math.pi)) <= 1e-12 * max(1.0, abs(v))
