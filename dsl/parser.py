"""Text -> AST: the Lark LALR parser and the Transformer that builds :mod:`qvaf.dsl.ast` nodes.

The grammar lives in ``grammar.lark`` next to this file. Parsing is guarded against
pathological input: files larger than :data:`MAX_SOURCE_BYTES`, bracket or block nesting deeper
than :data:`MAX_NESTING`, and expression trees deeper than :data:`MAX_EXPR_DEPTH` are refused
with a diagnostic instead of exhausting memory or the Python stack.

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
import threading
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import LarkError, UnexpectedInput, VisitError

from . import ast, rules
from .errors import Diagnostic, SpecError

#: the largest spec file accepted, in bytes (UTF-8)
MAX_SOURCE_BYTES = 1_000_000
#: deepest nesting of (), [] and {} accepted
MAX_NESTING = 100
#: deepest expression tree accepted (counts operators such as chains of unary minus)
MAX_EXPR_DEPTH = 200
#: longest numeric literal accepted, in characters
MAX_NUMBER_CHARS = 100
#: most syntax errors reported for one file; recovery stops (with a final note) after this many
MAX_SYNTAX_ERRORS = 20

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {"RPAR", "RSQB", "RBRACE"}

def source_line(text: str, line: int) -> str | None:
    """Return line ``line`` (1-based) of ``text`` without its newline, or None if out of range."""
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return None


class _Brackets:
    """The layout rule, for one parse: a newline inside an unclosed ``(`` or ``[`` is dropped
    (so argument lists may wrap), a ``}`` closes its block and whatever ``(`` or ``[`` is still
    open inside it, and nesting deeper than :data:`MAX_NESTING` is refused.

    Attributes:
        stack: the unclosed openers, innermost last.
        continued: the opener whose dropped newline came right before the last token kept,
            or None: when that token is a syntax error, the statement probably lacks its
            closing bracket (see :mod:`qvaf.dsl.syntax`).
    """

    def __init__(self):
        self.stack: list[Token] = []
        self.continued: Token | None = None
        self._dropped_in: Token | None = None

    def keep(self, tok: Token) -> bool:
        """Account for ``tok``; False when the rule drops it (a newline inside ``()``/``[]``)."""
        kind = tok.type
        if kind == "_NL":
            if self.stack and self.stack[-1].type != "LBRACE":
                self._dropped_in = self.stack[-1]
                return False
            self._dropped_in = self.continued = None
            return True
        self.continued, self._dropped_in = self._dropped_in, None
        if kind in _OPENERS:
            self.stack.append(tok)
            if len(self.stack) > MAX_NESTING:
                raise _LimitError(f"nesting deeper than {MAX_NESTING} levels of brackets or blocks", tok)
        elif kind == "RBRACE":
            while self.stack and self.stack[-1].type != "LBRACE":
                self.stack.pop()
            if self.stack:
                self.stack.pop()
        elif kind in _CLOSERS:
            if self.stack and _OPENERS[self.stack[-1].type] == kind:
                self.stack.pop()
        return True


class _Layout:
    """Lark post-lexer applying :class:`_Brackets`; the state of the current parse is kept
    thread-locally (``_local.brackets``) for the error messages."""

    always_accept = ("_NL",)

    def process(self, stream):
        brackets = _local.brackets = _Brackets()
        for tok in stream:
            if brackets.keep(tok):
                yield tok


class _LimitError(LarkError):
    def __init__(self, message: str, token: Token):
        super().__init__(message)
        self.message = message
        self.token = token


@lru_cache(maxsize=1)
def _grammar_text() -> str:
    return resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")


_local = threading.local()


def _on_comment(token: Token) -> Token:
    sink = getattr(_local, "comments", None)
    if sink is not None:
        sink.append(token)
    return token


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        _grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        postlex=_Layout(),
        lexer_callbacks={"COMMENT": _on_comment},
    )


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
