"""Angle expressions as program text, as classical pre-computations, and as JSON.

**Text.** :func:`render` writes an expression with the arithmetic every OpenQASM consumer
reads (``+ - * /``, unary minus, numbers, ``pi``, identifiers). Measured on the consumers:
qiskit's ``qasm3.loads`` (qiskit-qasm3-import 0.6) resolves only that arithmetic on inputs
and rejects every function call (``sin(0.5)`` included) and the ``**`` and ``^`` operators;
``openqasm3.parse`` and Amazon Braket's simulator read QASM 3's built-ins ``arccos arcsin
arctan sqrt exp log sin cos tan``. With ``functions=True`` :func:`render` writes those
built-ins, for the consumers that take them, with two rewrites QASM 3 needs::

    tanh(u)  ->  1 - 2 / (exp(2 * u) + 1)          (no tanh built-in; finite for large |u|)
    a ** n   ->  a * a * ... * a,  1 / (a * ... * a)    integer n, |n| <= 16 (no ``**``)
    a ** b   ->  exp(b * log(a))                    otherwise (equal for a > 0)

**Hoisting.** :func:`hoist` replaces each maximal sub-expression that is not plain
arithmetic (a function call, a power that is not a small integer) and reads ``x`` or a
parameter by a new input name; the caller records ``name = sub-expression`` and computes it
classically before each run. That keeps every program loadable by qiskit and IBM's stack.

**JSON** (manifests): a number, ``"x"`` (the edge input), ``{"ref": NAME}`` (another input),
``{"fn": F, "arg": E}``, ``{"op": O, "left": E, "right": E}``; :func:`from_json` validates
every node and builds no code.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

from ..expr import BINARY_OPS, FUNCTIONS, Binary, Const, Expr, Input, ParamRef, Unary, walk
from .errors import EmitError

PI = math.pi

#: IR function -> QASM 3 built-in (tanh is rewritten)
QASM3_FUNCTIONS = {"sin": "sin", "cos": "cos", "tan": "tan", "asin": "arcsin", "acos": "arccos",
                   "atan": "arctan", "exp": "exp", "log": "log", "sqrt": "sqrt"}
_MAX_POWER = 16
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


# ----------------------------------------------------------------------------- numbers


def format_number(v: float) -> tuple[str, int]:
    """Text of a finite number and its precedence: ``pi``-multiples by k/4 as ``3*pi/4``,
    everything else by ``repr`` (shortest text that reads back to the same float)."""
    v = float(v)
    if not math.isfinite(v):
        raise EmitError(f"angle {v} is not a real number")
    k = round(v / (PI / 4))
    if k != 0 and abs(k) <= 32 and abs(v - k * PI / 4) <= 2 * math.ulp(v):
        g = math.gcd(abs(k), 4)
        num, den = k // g, 4 // g
        text = ("-" if num < 0 else "") + ("" if abs(num) == 1 else f"{abs(num)}*") + "pi"
        if den != 1:
            return f"{text}/{den}", 2
        return text, (3 if num < 0 else 4) if abs(num) == 1 else 2
    text = repr(v)
    return text, 3 if v < 0 else 4


# ----------------------------------------------------------------------------- rendering


def _default_name(e: Expr) -> str:
    if isinstance(e, Input):
        return "x"
    return e.name


def _int_power(e: Binary) -> int | None:
    b = e.right
    if isinstance(b, Const) and float(b.value).is_integer() and abs(b.value) <= _MAX_POWER:
        return int(b.value)
    return None


def render(e: Expr, names: Callable[[Expr], str] | None = None, *, functions: bool = False) -> str:
    """Program text of ``e``; ``names`` maps ``Input()`` and ``ParamRef(name)`` to identifiers.

    Raises:
        EmitError: a function call or power without ``functions=True`` (hoist it first), an
            unknown function, or a non-finite number.
    """
    names = names or _default_name
    return _render(e, names, functions, 0)


def _wrap(text: str, p: int, prec: int) -> str:
    return f"({text})" if p < prec else text


def _render(e: Expr, names, functions: bool, prec: int) -> str:
    if isinstance(e, Const):
        text, p = format_number(e.value)
        return _wrap(text, p, prec)
    if isinstance(e, (Input, ParamRef)):
        if isinstance(e, ParamRef) and e.indices:
            raise EmitError(f"internal: indexed reference {e.name} reached the printer")
        return names(e)
    if isinstance(e, Unary):
        if e.fn == "neg":
            return _wrap("-" + _render(e.arg, names, functions, 3), 3, prec)
        if not functions:
            raise EmitError(f"function {e.fn}() cannot be written for this target; hoist it into an input")
        if e.fn == "tanh":  # tanh(u) = 1 - 2 / (exp(2 u) + 1)
            u = _render(e.arg, names, functions, 2)
            return _wrap(f"1 - 2 / (exp(2 * {u}) + 1)", 1, prec)
        if e.fn not in QASM3_FUNCTIONS:
            raise EmitError(f"function {e.fn}() has no OpenQASM 3 built-in")
        return f"{QASM3_FUNCTIONS[e.fn]}({_render(e.arg, names, functions, 0)})"
    if isinstance(e, Binary):
        if e.op == "**":
            return _render_power(e, names, functions, prec)
        p = _PREC[e.op]
        left = _render(e.left, names, functions, p)
        if e.op == "+" and isinstance(e.right, Const) and e.right.value < 0:
            return _wrap(f"{left} - {_render(Const(-e.right.value), names, functions, p + 1)}", p, prec)
        return _wrap(f"{left} {e.op} {_render(e.right, names, functions, p + 1)}", p, prec)
    raise EmitError(f"internal: not an expression: {e!r}")


def _render_power(e: Binary, names, functions: bool, prec: int) -> str:
    n = _int_power(e)
    if n is not None:
        if n == 0:
            return "1"
        base = _render(e.left, names, functions, 3)
        product = " * ".join([base] * abs(n))
        if n > 0:
            return _wrap(product, 2 if abs(n) > 1 else 4, prec)
        return _wrap(f"1 / ({product})" if abs(n) > 1 else f"1 / {base}", 2, prec)
    if not functions:
        raise EmitError("a power with a non-integer exponent cannot be written for this target; hoist it into an input")
    a = _render(e.left, names, functions, 0)
    b = _render(e.right, names, functions, 2)
    return f"exp({b} * log({a}))"


# ----------------------------------------------------------------------------- hoisting


def has_symbol(e: Expr) -> bool:
    """True when ``e`` reads the edge input or an input name (anything but numbers)."""
    return any(isinstance(n, (Input, ParamRef)) for n in walk(e))


def is_arithmetic(e: Expr) -> bool:
    """True when :func:`render` can write ``e`` without ``functions``."""
    for n in walk(e):
        if isinstance(n, Unary) and n.fn != "neg":
            return False
        if isinstance(n, Binary) and n.op == "**" and _int_power(n) is None:
            return False
    return True


def hoist(e: Expr, table: dict[Expr, str], new_name: Callable[[int], str], *, everything: bool = False) -> Expr:
    """Replace non-arithmetic sub-expressions that read a symbol by input names.

    ``table`` maps each hoisted sub-expression to its name (shared by repeats; the caller
    reads it afterwards); ``new_name(j)`` names the j-th. With ``everything`` the whole
    expression is hoisted as soon as it reads a symbol (QASM 2, which has no inputs).

    Raises:
        EmitError: a non-arithmetic sub-expression of numbers only (``acos(2)``, which
            constant folding left alone because it is not a real number).
    """
    def visit(n: Expr) -> Expr:
        if everything or not is_arithmetic_node(n):
            if not has_symbol(n):
                raise EmitError(f"angle {render(n, functions=True)} is not a real number")
            if n not in table:
                table[n] = new_name(len(table))
            return ParamRef(table[n])
        if isinstance(n, Unary):
            return Unary(n.fn, visit(n.arg))
        if isinstance(n, Binary):
            return Binary(n.op, visit(n.left), n.right if n.op == "**" else visit(n.right))
        return n

    if everything and not has_symbol(e):
        return e
    return visit(e)


def is_arithmetic_node(n: Expr) -> bool:
    """Whether the top of ``n`` is arithmetic (its children may still need hoisting)."""
    if isinstance(n, Unary):
        return n.fn == "neg"
    if isinstance(n, Binary) and n.op == "**":
        return _int_power(n) is not None
    return True


def substitute_names(e: Expr, rename: Callable[[Expr], Expr | None]) -> Expr:
    """Rebuild ``e`` with ``Input``/``ParamRef`` leaves replaced by ``rename(leaf)`` (None keeps)."""
    if isinstance(e, (Input, ParamRef)):
        r = rename(e)
        return e if r is None else r
    if isinstance(e, Unary):
        return Unary(e.fn, substitute_names(e.arg, rename))
    if isinstance(e, Binary):
        return Binary(e.op, substitute_names(e.left, rename), substitute_names(e.right, rename))
    return e


# ----------------------------------------------------------------------------- angle sums


def _terms(e: Expr) -> tuple[list[Expr], float]:
    if isinstance(e, Const):
        return [], float(e.value)
    if isinstance(e, Binary) and e.op == "+":
        a, ca = _terms(e.left)
        b, cb = _terms(e.right)
        return a + b, ca + cb
    if isinstance(e, Binary) and e.op == "-" and isinstance(e.right, Const):
        a, ca = _terms(e.left)
        return a, ca - float(e.right.value)
    return [e], 0.0


def angle_sum(*angles: Expr) -> Expr:
    """The sum of rotation angles about one axis: symbolic terms in order, plus one constant
    reduced to (-pi, pi] (a full turn is a global phase)."""
    terms: list[Expr] = []
    const = 0.0
    for a in angles:
        t, c = _terms(a)
        terms += t
        const += c
    const = math.remainder(const, 2 * PI) if math.isfinite(const) else const
    if abs(const) < 1e-15:
        const = 0.0
    if not terms:
        return Const(const)
    out = terms[0]
    for t in terms[1:]:
        out = Binary("+", out, t)
    return Binary("+", out, Const(const)) if const else out


def is_zero_angle(e: Expr) -> bool:
    return isinstance(e, Const) and abs(math.remainder(float(e.value), 2 * PI)) < 1e-15


# ----------------------------------------------------------------------------- JSON


def to_json(e: Expr):
    """The JSON form of an expression (see the module docstring)."""
    if isinstance(e, Const):
        v = float(e.value)
        if not math.isfinite(v):
            raise EmitError(f"angle {v} is not a real number")
        return v
    if isinstance(e, Input):
        return "x"
    if isinstance(e, ParamRef) and not e.indices:
        return {"ref": e.name}
    if isinstance(e, Unary):
        return {"fn": e.fn, "arg": to_json(e.arg)}
    if isinstance(e, Binary):
        return {"op": e.op, "left": to_json(e.left), "right": to_json(e.right)}
    raise EmitError(f"internal: cannot serialise {e!r}")


def from_json(obj, where: str = "expression", depth: int = 0) -> Expr:
    """Inverse of :func:`to_json`; raises ``ValueError`` naming ``where`` on anything else."""
    if depth > 200:
        raise ValueError(f"{where}: nested too deeply")
    if isinstance(obj, bool):
        raise ValueError(f"{where}: {obj!r} is not an expression")
    if isinstance(obj, (int, float)):
        if not math.isfinite(obj):
            raise ValueError(f"{where}: {obj!r} is not a finite number")
        return Const(float(obj))
    if obj == "x":
        return Input()
    if isinstance(obj, Mapping):
        keys = set(obj)
        if keys == {"ref"} and isinstance(obj["ref"], str) and obj["ref"].isidentifier():
            return ParamRef(obj["ref"])
        if keys == {"fn", "arg"} and obj["fn"] in FUNCTIONS + ("neg",):
            return Unary(obj["fn"], from_json(obj["arg"], where, depth + 1))
        if keys == {"op", "left", "right"} and obj["op"] in BINARY_OPS:
            return Binary(obj["op"], from_json(obj["left"], where, depth + 1), from_json(obj["right"], where, depth + 1))
    raise ValueError(f"{where}: {str(obj)[:80]!r} is not an expression node")
