"""Text -> AST: the Transformer that builds :mod:`qvaf.dsl.ast` nodes from the Lark tree.

The grammar lives in ``grammar.lark`` next to this file; the Lark parser built from it and the
layout post-lexer are in :mod:`qvaf.dsl.grammar`. Parsing is guarded against pathological
input: files larger than :data:`MAX_SOURCE_BYTES`, bracket or block nesting deeper than
:data:`~qvaf.dsl.grammar.MAX_NESTING`, and expression trees deeper than
:data:`MAX_EXPR_DEPTH` are refused with a diagnostic instead of exhausting memory or the
Python stack.

Comments are lexed as ignored tokens, collected on the side and re-attached to the innermost
statement list (file, ansatz body, loop body, model body, kan option block) that contains them,
in source order; a comment that follows code on its line is ``trailing``.

Example::

    >>> from qvaf.dsl import parse
    >>> module = parse("ansatz a { h\\n measure z }")
    >>> module.items[0].body[0].name
    'h'
"""

from __future__ import annotations

import bisect
import math

from lark import Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedInput, VisitError

from . import ast, rules
from .errors import Diagnostic, SpecError
from .grammar import _lark, _LimitError, _local

#: the largest spec file accepted, in bytes (UTF-8)
MAX_SOURCE_BYTES = 1_000_000
#: deepest expression tree accepted (counts operators such as chains of unary minus)
MAX_EXPR_DEPTH = 200
#: longest numeric literal accepted, in characters
MAX_NUMBER_CHARS = 100
#: most syntax errors reported for one file; recovery stops (with a final note) after this many
MAX_SYNTAX_ERRORS = 20


def source_line(text: str, line: int) -> str | None:
    """Return line ``line`` (1-based) of ``text`` without its newline, or None if out of range."""
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return None


# ----------------------------------------------------------------------------- spans


def _tok_span(file: str, tok: Token) -> ast.Span:
    return ast.Span(file, tok.line, tok.column, tok.end_line, max(tok.end_column - 1, 1))


def _meta_span(file: str, meta) -> ast.Span | None:
    if getattr(meta, "empty", True):
        return None
    return ast.Span(file, meta.line, meta.column, meta.end_line, max(meta.end_column - 1, 1))


def _join(file: str, first: ast.Span | None, last: ast.Span | None) -> ast.Span | None:
    if first is None or last is None:
        return first or last
    return ast.Span(file, first.line, first.col, last.end_line, last.end_col)


def _pos(node) -> tuple[int, int]:
    span = node.span
    return (span.line, span.col) if span is not None else (0, 0)


# ----------------------------------------------------------------------------- transformer


class _Builder(Transformer_NonRecursive):
    """Builds AST nodes from the Lark tree (nothing else) and places the collected comments."""

    #: options whose values are words (``base silu``) rather than expressions (``group 3``)
    WORD_OPTIONS = frozenset(rules.WORD_OPTIONS)

    def __init__(self, file: str, text: str, comments: list[Token]):
        super().__init__(visit_tokens=False)
        self.file = file
        self.text = text
        self.comments = sorted(comments, key=lambda t: t.start_pos)
        self.comment_starts = [t.start_pos for t in self.comments]
        self.claimed = [False] * len(self.comments)

    # -- helpers
    def _span(self, meta):
        return _meta_span(self.file, meta)

    def _claim(self, start: int, end: int) -> list[ast.Comment]:
        """Take the unclaimed comments with start <= pos < end as Comment nodes."""
        out = []
        i = bisect.bisect_left(self.comment_starts, start)
        while i < len(self.comments) and self.comment_starts[i] < end:
            if not self.claimed[i]:
                self.claimed[i] = True
                tok = self.comments[i]
                line_start = self.text.rfind("\n", 0, tok.start_pos) + 1
                trailing = self.text[line_start : tok.start_pos].strip() != ""
                text = str(tok)[1:]
                text = (text[1:] if text.startswith(" ") else text).rstrip()
                out.append(ast.Comment(text, trailing=trailing, span=_tok_span(self.file, tok)))
            i += 1
        return out

    def _merge(self, stmts: list, start: int, end: int) -> tuple:
        comments = self._claim(start, end)
        if not comments:
            return tuple(stmts)
        merged = sorted(list(stmts) + comments, key=_pos)
        return tuple(merged)

    def _block(self, children) -> tuple:
        lbrace, *stmts, rbrace = children
        return self._merge(stmts, lbrace.start_pos, rbrace.end_pos)

    # -- file
    @v_args(meta=True)
    def start(self, meta, children):
        items = self._merge(children, 0, len(self.text) + 1)
        return ast.Module(items, span=self._span(meta) or ast.Span(self.file, 1, 1, 1, 1))

    @v_args(meta=True)
    def import_stmt(self, meta, children):
        return ast.Import(str(children[0])[1:-1], span=self._span(meta))

    # -- ansatz
    @v_args(meta=True)
    def ansatz(self, meta, children):
        name, formals, body = children
        return ast.Ansatz(str(name), formals or (), body, span=self._span(meta))

    def formals(self, children):
        return tuple(c for c in children if c is not None)

    @v_args(meta=True)
    def formal(self, meta, children):
        name, typ, default = children
        return ast.Arg(str(name), str(typ), default, span=self._span(meta))

    def body(self, children):
        return self._block(children)

    @v_args(meta=True)
    def decl(self, meta, children):
        kind, name, shape, (init, random), grow = children
        return ast.ParamDecl(
            str(name),
            shape or (),
            init,
            random,
            str(kind) == "param",
            grow,
            span=self._span(meta),
        )

    def shape(self, children):
        return tuple(children)

    def init_value(self, children):
        return children[0], False

    @v_args(meta=True)
    def init_random(self, meta, children):
        name, *args = children
        args = tuple(a for a in args if a is not None)
        return ast.Call(str(name), args, span=self._span(meta)), True

    def grow(self, children):
        return children[0]

    @v_args(meta=True)
    def gate(self, meta, children):
        name, *args = children
        return ast.Gate(str(name), tuple(a for a in args if a is not None), span=self._span(meta))

    @v_args(meta=True)
    def encode(self, meta, children):
        angle, axis = children
        return ast.Encode(angle, str(axis), span=self._span(meta))

    @v_args(meta=True)
    def for_stmt(self, meta, children):
        var, start, stop, body = children
        return ast.For(str(var), start, stop, body, span=self._span(meta))

    @v_args(meta=True)
    def measure(self, meta, children):
        return ast.Measure(str(children[0]), span=self._span(meta))

    @v_args(meta=True)
    def noise_stmt(self, meta, children):
        return ast.Noise(span=self._span(meta))

    # -- model
    @v_args(meta=True)
    def model(self, meta, children):
        name, formals, body = children
        return ast.Model(str(name), formals or (), body, span=self._span(meta))

    def model_body(self, children):
        return self._block(children)

    @v_args(meta=True)
    def input_layer(self, meta, children):
        return ast.InputLayer(children[0], span=self._span(meta))

    @v_args(meta=True)
    def linear_layer(self, meta, children):
        return ast.LinearLayer(children[0], span=self._span(meta))

    @v_args(meta=True)
    def kan_layer(self, meta, children):
        width, name, actuals, options = children
        return ast.KanLayer(width, str(name), actuals or (), options or (), span=self._span(meta))

    def actuals(self, children):
        return tuple(c for c in children if c is not None)

    @v_args(meta=True)
    def kwarg(self, meta, children):
        return ast.KwArg(str(children[0]), children[1], span=self._span(meta))

    @v_args(meta=True)
    def posarg(self, meta, children):
        return ast.KwArg(None, children[0], span=self._span(meta))

    def options(self, children):
        return self._block(children)

    @v_args(meta=True)
    def option(self, meta, children):
        name, *values = children
        name = str(name)
        if name in self.WORD_OPTIONS:
            values = [v.id if isinstance(v, ast.Name) else v for v in values]
        return ast.Option(name, tuple(values), span=self._span(meta))

    # -- expressions
    def _bin(op):  # noqa: N805 - a factory used in the class body
        @v_args(meta=True)
        def build(self, meta, children):
            return ast.BinOp(op, children[0], children[1], span=self._span(meta))

        return build

    add, sub, mul, div, pow = _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("**")

    @v_args(meta=True)
    def neg(self, meta, children):
        return ast.UnaryOp("-", children[0], span=self._span(meta))

    @v_args(meta=True)
    def pos(self, meta, children):
        return ast.UnaryOp("+", children[0], span=self._span(meta))

    @v_args(meta=True)
    def int_lit(self, meta, children):
        tok = children[0]
        _check_number_length(self.file, self.text, tok)
        return ast.Num(int(str(tok)), True, span=self._span(meta))

    @v_args(meta=True)
    def float_lit(self, meta, children):
        tok = children[0]
        _check_number_length(self.file, self.text, tok)
        value = float(str(tok))
        if not math.isfinite(value):
            span = _tok_span(self.file, tok)
            raise SpecError(
                [
                    Diagnostic(
                        "error",
                        f"number {tok} is too large for a 64-bit float",
                        span,
                        source_line(self.text, span.line),
                    )
                ]
            )
        return ast.Num(value, False, span=self._span(meta))

    @v_args(meta=True)
    def name(self, meta, children):
        return ast.Name(str(children[0]), span=self._span(meta))

    @v_args(meta=True)
    def call(self, meta, children):
        name, *args = children
        return ast.Call(str(name), tuple(a for a in args if a is not None), span=self._span(meta))

    @v_args(meta=True)
    def index(self, meta, children):
        name, *indices = children
        base = ast.Name(str(name), span=_tok_span(self.file, name))
        return ast.Index(base, tuple(indices), span=self._span(meta))


def _check_number_length(file: str, text: str, tok: Token) -> None:
    if len(tok) > MAX_NUMBER_CHARS:
        span = _tok_span(file, tok)
        raise SpecError(
            [
                Diagnostic(
                    "error",
                    f"numeric literal longer than {MAX_NUMBER_CHARS} characters",
                    span,
                    source_line(text, span.line),
                )
            ]
        )


def _too_deep(module: ast.Module) -> ast.Span | None:
    """Return the span of a node nested deeper than MAX_EXPR_DEPTH (iteratively), else None."""
    stack = [(module, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPR_DEPTH:
            return getattr(node, "span", None)
        if isinstance(node, tuple):
            stack.extend((child, depth) for child in node)
        elif hasattr(node, "__dataclass_fields__"):
            for field in node.__dataclass_fields__:
                if field == "span":
                    continue
                value = getattr(node, field)
                if isinstance(value, (tuple,)) or hasattr(value, "__dataclass_fields__"):
                    stack.append((value, depth + 1))
    return None


# ----------------------------------------------------------------------------- public


def parse(text: str, filename: str = "<string>") -> ast.Module:
    """Parse QVAF source text into an :class:`~qvaf.dsl.ast.Module`.

    Args:
        text: The source.
        filename: The name used in spans and diagnostics.

    Returns:
        The module, with comments attached to their statement lists.

    Raises:
        SpecError: On syntax errors, with one diagnostic per error (the parser recovers at
            the next statement and goes on, up to :data:`MAX_SYNTAX_ERRORS`), or on a size /
            nesting limit, with one diagnostic that points at the offending token.
    """
    if not isinstance(text, str):
        raise TypeError("parse() takes the source text as str")
    _check_size(text, filename)
    tree, comments = _parse_tree(text, filename)
    module = _build(tree, comments, text, filename)
    deep = _too_deep(module)
    if deep is not None:
        raise SpecError([Diagnostic("error", f"expression nested deeper than {MAX_EXPR_DEPTH} levels", deep,
                                    source_line(text, deep.line), "split it into smaller expressions")])
    return module


def _too_deeply(filename: str) -> SpecError:
    return SpecError([Diagnostic("error", "input nested too deeply to parse", ast.Span(filename, 1, 1, 1, 1))])


def _check_size(text: str, filename: str) -> None:
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        raise SpecError([Diagnostic("error", f"file is {size} bytes; the limit for a spec is {MAX_SOURCE_BYTES} bytes",
                                    ast.Span(filename, 1, 1, 1, 1), None,
                                    "split it into several files joined with import")])


def _parse_tree(text: str, filename: str):
    """The Lark tree and the comments lexed on the side; every syntax error as a SpecError."""
    comments: list[Token] = []
    _local.comments = comments
    _local.brackets = None
    try:
        return _lark().parse(text), comments
    except (UnexpectedInput, _LimitError) as exc:
        from .syntax import all_syntax_errors

        found = all_syntax_errors(exc, text, filename, _local.brackets)
        raise SpecError(found) from None
    except RecursionError:
        raise _too_deeply(filename) from None
    finally:
        _local.comments = None
        _local.brackets = None


def _build(tree, comments, text: str, filename: str) -> ast.Module:
    try:
        return _Builder(filename, text, comments).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SpecError):
            raise exc.orig_exc from None
        raise
    except RecursionError:
        raise _too_deeply(filename) from None
