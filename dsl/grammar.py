"""The Lark front end of the parser: the LALR parser, built once from ``grammar.lark``, and
the post-lexer that applies the layout rule (a newline inside ``()``/``[]`` is dropped, a
``}`` closes whatever it encloses) and refuses nesting deeper than :data:`MAX_NESTING`.

Comments are lexed as ignored tokens and handed to the current parse's sink
(``_local.comments``, thread-local): :mod:`qvaf.dsl.parser` sets it, builds the AST from the
tree and re-attaches them; :mod:`qvaf.dsl.syntax` reads the bracket state
(``_local.brackets``) for its error messages.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from importlib import resources

from lark import Lark, Token
from lark.exceptions import LarkError

#: deepest nesting of (), [] and {} accepted
MAX_NESTING = 100

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {"RPAR", "RSQB", "RBRACE"}


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
