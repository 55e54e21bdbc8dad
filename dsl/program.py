"""Loading a spec and its imports into a checked :class:`Program`.

A program is one file plus everything it imports, transitively. Imports are resolved relative
to the importing file; a file reached twice (a diamond) is loaded once; an import cycle or a
missing file is an error at the ``import`` statement. All ansätze and models of the loaded
files share one namespace, so a name may be defined only once across them.

Example::

    >>> import qvaf.dsl as dsl
    >>> program = dsl.load_program("specs/models/regression.qvaf")
    >>> sorted(program.models)
    ['regression']
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from . import ast
from .errors import Diagnostic, QvafError, SpecError
from .parser import MAX_SOURCE_BYTES, parse, source_line


@dataclass(frozen=True)
class Program:
    """A checked spec: every ansatz and model visible from one file.

    Attributes:
        path: The file it was loaded from (``"<string>"`` for :func:`program_from_text`).
        ansatze: name -> ansatz, over the file and its imports.
        models: name -> model, over the file and its imports.
        sources: file name (as used in spans) -> source text.
        warnings: The warnings the checker found (errors raise instead).
    """

    path: str
    ansatze: dict[str, ast.Ansatz]
    models: dict[str, ast.Model]
    sources: dict[str, str] = field(default_factory=dict)
    warnings: tuple[Diagnostic, ...] = ()

    __hash__ = None  # dict fields: compare by value, never hash


class SourceError(SpecError):
    """A spec file cannot be read: missing, a directory, too large, or not UTF-8."""

    def __init__(self, message: str, span: ast.Span | None = None, line: str | None = None, hint=None):
        self.message = message
        super().__init__([Diagnostic("error", message, span, line, hint)])


def read_source(path: str | os.PathLike) -> str:
    """Read a spec file as UTF-8 text, refusing directories, huge files and bad encodings.

    Raises:
        SourceError: Naming the path and what is wrong with it.
    """
    name = os.fspath(path)
    try:
        if os.path.isdir(name):
            raise SourceError(f"'{name}' is a directory, not a .qvaf file")
        info = os.stat(name)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(f"'{name}' is not a regular file")
        size = info.st_size
        if size > MAX_SOURCE_BYTES:
            raise SourceError(
                f"'{name}' is {size} bytes; the limit for a spec is {MAX_SOURCE_BYTES} bytes",
                hint="split it into several files joined with import",
            )
        with open(name, "rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except FileNotFoundError:
        raise SourceError(f"cannot read '{name}': no such file") from None
    except PermissionError:
        raise SourceError(f"cannot read '{name}': permission denied") from None
    except OSError as exc:
        raise SourceError(f"cannot read '{name}': {exc.strerror or exc}") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise SourceError(f"'{name}' is larger than the limit of {MAX_SOURCE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        span = ast.Span(name, line, col, line, col)
        raise SourceError(
            f"'{name}' is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            span,
            hint="save the file as UTF-8 text",
        ) from None


class _Loader:
    """Reads a file and its imports depth first; collects diagnostics instead of stopping."""

    def __init__(self):
        self.sources: dict[str, str] = {}
        self.modules: list[tuple[str, ast.Module]] = []  # post-order: imports first
        self.loaded: set[str] = set()  # real paths done or in progress
        self.diagnostics: list[Diagnostic] = []

    def diag(self, span, message, hint=None, severity="error"):
        text = self.sources.get(span.file) if span is not None else None
        line = source_line(text, span.line) if text is not None else None
        self.diagnostics.append(Diagnostic(severity, message, span, line, hint))

    def load_text(self, text: str, filename: str, base_dir: str, real: str | None, stack: tuple):
        self.sources[filename] = text
        try:
            module = parse(text, filename)
        except SpecError as exc:
            self.diagnostics.extend(exc.diagnostics)
            return
        for item in module.items:
            if isinstance(item, ast.Import):
                self.load_import(item, base_dir, stack + ((real, filename),) if real else stack)
        self.modules.append((filename, module))

    def load_import(self, item: ast.Import, base_dir: str, stack: tuple):
        target = os.path.normpath(os.path.join(base_dir, item.path))
        real = os.path.realpath(target)
        chain = [real_path for real_path, _ in stack]
        if real in chain:
            names = [display for _, display in stack[chain.index(real) :]] + [target]
            self.diag(
                item.span,
                "import cycle: " + " -> ".join(names),
                "remove one of these imports",
            )
            return
        if real in self.loaded:
            return
        try:
            text = read_source(target)
        except SourceError as exc:
            message = exc.message.replace(f"'{target}'", f"imported file '{item.path}'")
            if "no such file" in exc.message:
                message = f"cannot import '{item.path}': no file '{target}'"
            self.diag(item.span, message, "import paths are relative to the importing file")
            return
        self.loaded.add(real)
        self.load_text(text, target, os.path.dirname(target), real, stack)


def _load(text: str | None, path: str) -> tuple[_Loader, str]:
    loader = _Loader()
    if text is None:
        try:
            text = read_source(path)
        except SourceError as exc:
            loader.diagnostics.extend(exc.diagnostics)
            return loader, path
        real = os.path.realpath(path)
        base_dir = os.path.dirname(path)
    else:
        real = None
        base_dir = ""
    if real is not None:
        loader.loaded.add(real)
    loader.load_text(text, path, base_dir, real, ())
    return loader, path


def _analyse(loader: _Loader) -> tuple[dict, dict, list[Diagnostic]]:
    from .checker import check_modules

    ansatze, models, diagnostics = check_modules(loader.modules, loader.sources)
    return ansatze, models, loader.diagnostics + diagnostics


def _sort_key(d: Diagnostic):
    if d.span is None:
        return ("", 0, 0)
    return (d.span.file, d.span.line, d.span.col)


def _finish(text: str | None, path: str) -> tuple[Program | None, tuple[Diagnostic, ...]]:
    loader, path = _load(text, path)
    try:
        ansatze, models, diagnostics = _analyse(loader)
    except RecursionError:
        diagnostics = loader.diagnostics + [
            Diagnostic("error", f"'{path}' is nested too deeply to check", None)
        ]
        return None, tuple(diagnostics)
    diagnostics = sorted(diagnostics, key=_sort_key)
    if any(d.severity == "error" for d in diagnostics):
        return None, tuple(diagnostics)
    program = Program(path, ansatze, models, dict(loader.sources), tuple(diagnostics))
    return program, tuple(diagnostics)


def load_program(path: str | os.PathLike) -> Program:
    """Parse and check a spec file and its imports.

    Args:
        path: The ``.qvaf`` file.

    Returns:
        The checked program; its ``warnings`` hold any warnings.

    Raises:
        SpecError: With every diagnostic (errors and warnings) if there is any error,
            including an unreadable file.
    """
    program, diagnostics = _finish(None, os.fspath(path))
    if program is None:
        raise SpecError(diagnostics)
    return program


def program_from_text(text: str, filename: str = "<string>") -> Program:
    """Like :func:`load_program` for source text; imports resolve relative to the cwd."""
    if not isinstance(text, str):
        raise QvafError("program_from_text() takes the source as str")
    program, diagnostics = _finish(text, filename)
    if program is None:
        raise SpecError(diagnostics)
    return program


def check(path: str | os.PathLike, text: str | None = None) -> tuple[Diagnostic, ...]:
    """Check a spec and its imports; return every diagnostic (errors and warnings) sorted.

    Never raises for a problem in the input: unreadable files, syntax errors and semantic
    errors all come back as diagnostics.

    Args:
        path: The file (or the name to report when ``text`` is given).
        text: The source, if already read; imports then resolve relative to the cwd.
    """
    _, diagnostics = _finish(text, os.fspath(path))
    return diagnostics
