"""Errors raised by the compiler stage (all :class:`~qvaf.dsl.errors.QvafError` subclasses)."""

from __future__ import annotations

from qvaf.dsl.ast import Span
from qvaf.dsl.errors import Diagnostic, QvafError


class CompileError(QvafError):
    """A spec cannot be lowered: an unknown model or ansatz, a bad argument or override, a
    value that is not a compile-time constant.

    Attributes:
        message: what is wrong.
        span: where in the spec (None for values passed from Python).
        diagnostic: the same as a :class:`~qvaf.dsl.errors.Diagnostic` (``render()`` shows
            the source line with a caret when it is known).
    """

    def __init__(self, message: str, span: Span | None = None, source_line: str | None = None,
                 hint: str | None = None):
        self.message = message
        self.span = span
        self.diagnostic = Diagnostic("error", message, span, source_line, hint)
        super().__init__(self.diagnostic.render())


class IRError(QvafError):
    """An IR graph breaks an invariant that :func:`qvaf.compiler.verify.verify` checks.

    Seen by users only when they build or edit IR by hand or lower a program that bypassed
    the checker; from a checked spec it means a compiler bug. ``span`` is the spec position of
    the gate concerned, when the IR carries one.
    """

    def __init__(self, message: str, span: Span | None = None):
        self.span = span
        super().__init__(message)
