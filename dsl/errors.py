"""The one error hierarchy of qvaf, rooted at :class:`QvafError`.

The DSL sits at the bottom of the dependency order, so the root lives here and every other
stage (compiler, runtime) derives its errors from it. A user never sees a Python traceback for
a mistake in their own input: the CLI catches :class:`QvafError` and prints its message.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ast import Span


#: longest source line a diagnostic prints in full; longer ones show a window around the caret
_MAX_SHOWN = 120


class QvafError(Exception):
    """Base class of every error qvaf raises for bad input or bad use."""


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a spec: an error or a warning at a source span.

    ``render()`` gives the compiler-style text::

        specs/bad.qvaf:4:5: error: unknown gate 'rzz'; did you mean 'rz'?
            rzz(theta[0])
            ^~~
    """

    severity: str  # "error" | "warning"
    message: str
    span: Span | None
    source_line: str | None = None
    hint: str | None = None

    def render(self) -> str:
        where = f"{self.span}: " if self.span is not None else ""
        out = [f"{where}{self.severity}: {self.message}"]
        if self.span is not None and self.source_line is not None:
            line = self.source_line.rstrip("\n").replace("\t", " ")
            col = self.span.col
            width = 1
            if self.span.end_line == self.span.line and self.span.end_col >= self.span.col:
                width = max(1, self.span.end_col - self.span.col + 1)
            if len(line) > _MAX_SHOWN:  # show a window of a very long line around the caret
                start = max(0, min(col - 1 - _MAX_SHOWN // 2, len(line) - _MAX_SHOWN))
                shown = line[start : start + _MAX_SHOWN]
                prefix = "..." if start > 0 else ""
                suffix = "..." if start + _MAX_SHOWN < len(line) else ""
                line = prefix + shown + suffix
                col = col - start + len(prefix)
                width = max(1, min(width, len(shown) - (col - len(prefix)) + 1))
            out.append("    " + line)
            out.append("    " + " " * (col - 1) + "^" + "~" * (width - 1))
        if self.hint:
            out.append(f"    help: {self.hint}")
        return "\n".join(out)


class SpecError(QvafError):
    """A spec file has one or more errors; ``diagnostics`` holds all of them (and warnings)."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]):
        self.diagnostics = tuple(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        summary = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        super().__init__("\n".join(d.render() for d in self.diagnostics) + f"\n{summary}")
