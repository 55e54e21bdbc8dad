"""Errors raised by the compiler stage (all :class:`~qvaf.dsl.errors.QvafError` subclasses)."""

from __future__ import annotations

from qvaf.dsl.ast import Span
from qvaf.dsl.errors import QvafError


class CompileError(QvafError):
    """A spec cannot be lowered: an unknown model or ansatz, a bad argument or override, a
    value that is not a compile-time constant. ``span`` points at the offending source."""

    def __init__(self, message: str, span: Span | None = None):
        self.span = span
        self.message = message
        super().__init__(f"{span}: error: {message}" if span is not None else message)


class IRError(QvafError):
    """An IR graph breaks an invariant that :func:`qvaf.compiler.verify.verify` checks.

    Seen by users only when they build or edit IR by hand; from a spec it means a compiler bug.
    """
