"""The QVAF abstract syntax tree: one file of frozen dataclasses.

Every node carries a :class:`Span` (file, line, column) that is excluded from equality, so two
trees that differ only in layout compare equal. Each node's docstring shows the DSL text it
stands for. The tree is built by :mod:`qvaf.dsl.parser` and nothing else builds it from text;
:mod:`qvaf.dsl.checker` validates it and :mod:`qvaf.dsl.fmt` prints it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Span:
    """A source position: 1-based line and column of the first and last character."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def _span():
    return field(default=None, compare=False, repr=False, kw_only=True)


# ----------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Num:
    """A numeric literal: ``3``, ``0.5``, ``1e-3``. ``is_int`` keeps ``3`` apart from ``3.0``."""

    value: float | int
    is_int: bool
    span: Span | None = _span()


@dataclass(frozen=True)
class Name:
    """An identifier: an argument, a loop variable, a param/const, the edge input ``x``, ``pi``."""

    id: str
    span: Span | None = _span()


@dataclass(frozen=True)
class Index:
    """An indexed name: ``theta[l, 0]``."""

    base: Name
    indices: tuple["Expr", ...]
    span: Span | None = _span()


@dataclass(frozen=True)
class UnaryOp:
    """``-a`` (op ``"-"``) or ``+a`` (op ``"+"``)."""

    op: str
    operand: "Expr"
    span: Span | None = _span()


@dataclass(frozen=True)
class BinOp:
    """``a + b``, ``a - b``, ``a * b``, ``a / b``, ``a ** b``."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span | None = _span()


@dataclass(frozen=True)
class Call:
    """A function call: ``sin(a)``, ``acos(w[l] * x + b[l])``; also initialisers ``normal(0, 1)``."""

    func: str
    args: tuple["Expr", ...]
    span: Span | None = _span()


Expr = Union[Num, Name, Index, UnaryOp, BinOp, Call]


def iter_expr(expr: "Expr"):
    """Yield ``expr`` and every sub-expression (an Index yields its base Name and indices).

    Iterative, so the deepest expressions the parser admits cannot exhaust the Python stack.
    """
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Index):
            stack.append(node.base)
            stack.extend(node.indices)
        elif isinstance(node, UnaryOp):
            stack.append(node.operand)
        elif isinstance(node, BinOp):
            stack.extend((node.left, node.right))
        elif isinstance(node, Call):
            stack.extend(node.args)


# ----------------------------------------------------------------------------- shared pieces


@dataclass(frozen=True)
class Comment:
    """``# text`` on a line of its own, or after code on the same line when ``trailing``.

    ``text`` excludes the leading ``#``, one space after it and trailing whitespace, so an
    indented comment (``#   H . RZ``) keeps its inner indentation.
    """

    text: str
    trailing: bool = False
    span: Span | None = _span()


@dataclass(frozen=True)
class Arg:
    """A formal argument of an ansatz or model: ``reps: int = 3``, ``axis: axis = z``.

    ``type`` is one of ``"int"``, ``"float"``, ``"axis"`` (a Pauli axis ``x``, ``y`` or ``z``).
    """

    name: str
    type: str
    default: Expr | None = None
    span: Span | None = _span()


@dataclass(frozen=True)
class KwArg:
    """An actual argument in ``pz(3)`` or ``pz(reps = 3)``; ``name`` is None when positional."""

    name: str | None
    value: Expr
    span: Span | None = _span()


# ----------------------------------------------------------------------------- ansatz body


@dataclass(frozen=True)
class ParamDecl:
    """A per-edge tensor declaration.

    ``param theta[reps + 1, 2] ~ normal(0, 1)`` (trainable) or ``const w[reps] = 1.0`` (fixed).
    ``shape`` is empty for a scalar. ``init`` is either an expression (``= 1.0``: every entry
    takes that value) or a :class:`Call` to ``normal(mu, sigma)``, ``uniform(a, b)`` or
    ``xavier()`` (``~ ...``); ``random`` tells which form was written.

    ``grow`` (``... grow 0``) is the value new slots take when the ansatz's ``reps`` argument
    is increased by layer extension; None when the declaration cannot grow. A ``const`` with a
    literal value is a compile-time constant and cannot grow.
    """

    name: str
    shape: tuple[Expr, ...]
    init: Expr
    random: bool
    trainable: bool
    grow: Expr | None = None
    span: Span | None = _span()


@dataclass(frozen=True)
class Gate:
    """A named single-qubit gate: ``h``, ``rx(theta[0])``, ``u3(a, b, c)``."""

    name: str
    args: tuple[Expr, ...]
    span: Span | None = _span()


@dataclass(frozen=True)
class Encode:
    """The paper's data encoding ``encode(angle, axis)`` = exp(-i * angle * sigma_axis / 2).

    ``axis`` is ``"x"``, ``"y"``, ``"z"`` or the name of an ``axis``-typed argument.
    """

    angle: Expr
    axis: str
    span: Span | None = _span()


@dataclass(frozen=True)
class For:
    """``for l in start..stop { body }``: ``l`` runs over start, ..., stop - 1."""

    var: str
    start: Expr
    stop: Expr
    body: tuple["Stmt", ...]
    span: Span | None = _span()


@dataclass(frozen=True)
class Measure:
    """``measure z`` (also ``x``, ``y``, or ``inspired``: the simulator-only |alpha| - |beta|)."""

    observable: str
    span: Span | None = _span()


@dataclass(frozen=True)
class Noise:
    """``noise``: a point in the circuit where a noise model placed ``where="spec"`` applies
    one noise step; no gate, and without such a model it does nothing."""

    span: Span | None = _span()


Stmt = Union[ParamDecl, Gate, Encode, For, Measure, Noise, Comment]


@dataclass(frozen=True)
class Ansatz:
    """``ansatz NAME(args) { statements }``: one data re-uploading circuit on one qubit."""

    name: str
    args: tuple[Arg, ...]
    body: tuple[Stmt, ...]
    span: Span | None = _span()


# ----------------------------------------------------------------------------- model body


@dataclass(frozen=True)
class Option:
    """A KAN layer option inside ``{ ... }``.

    ``base silu`` -> ``Option("base", ("silu",))``; ``postact weight bias`` ->
    ``Option("postact", ("weight", "bias"))``; ``group 3`` -> ``Option("group", (Num(3),))``.
    Values are words (str) or expressions.
    """

    name: str
    values: tuple[Union[str, Expr], ...]
    span: Span | None = _span()


@dataclass(frozen=True)
class InputLayer:
    """``input N``: the network's input width."""

    width: Expr
    span: Span | None = _span()


@dataclass(frozen=True)
class KanLayer:
    """``kan W using ANSATZ(args) { options }``: a KAN layer of width W."""

    width: Expr
    ansatz: str
    args: tuple[KwArg, ...]
    options: tuple[Union[Option, Comment], ...]
    span: Span | None = _span()


@dataclass(frozen=True)
class LinearLayer:
    """``linear N``: a dense affine layer to width N."""

    width: Expr
    span: Span | None = _span()


LayerStmt = Union[InputLayer, KanLayer, LinearLayer, Comment]


@dataclass(frozen=True)
class Model:
    """``model NAME(args) { input N; kan ...; linear ...; }``: a network topology."""

    name: str
    args: tuple[Arg, ...]
    body: tuple[LayerStmt, ...]
    span: Span | None = _span()


# ----------------------------------------------------------------------------- file


@dataclass(frozen=True)
class Import:
    """``import "relative/path.qvaf"``: makes that file's ansätze and models visible."""

    path: str
    span: Span | None = _span()


Item = Union[Import, Ansatz, Model, Comment]


@dataclass(frozen=True)
class Module:
    """A whole ``.qvaf`` file: imports, ansätze, models and comments in source order."""

    items: tuple[Item, ...]
    span: Span | None = _span()
