"""Syntax errors: the diagnostic of each, and the recovery that finds them all.

A syntax error names what was found and what the grammar expected there, except where a
bracket is the better culprit: the end of the file inside an unclosed ``{``, ``(`` or ``[``,
and a statement that ran on past a newline because a ``(`` or ``[`` before it was never
closed (the layout rule drops newlines inside brackets), which is reported at that bracket.
After the first error the parser recovers at the next statement (:class:`_Recovery`) and
reports up to :data:`~qvaf.dsl.parser.MAX_SYNTAX_ERRORS` errors per file.
"""

from __future__ import annotations

import re

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
from lark.parsers.lalr_interactive_parser import InteractiveParser

from . import ast
from .errors import Diagnostic
from .grammar import _OPENERS, _Brackets, _lark, _LimitError
from .parser import MAX_SYNTAX_ERRORS, _tok_span, source_line

#: terminal name -> how a syntax error message spells it
_TOKEN_WORDS = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": 'a quoted path ("...")',
    "_NL": "a newline",
    "_SEMI": "';'",
    "$END": "end of file",
}



def all_syntax_errors(exc: Exception, text: str, file: str, brackets: _Brackets | None) -> list[Diagnostic]:
    """The diagnostic of the parse's error ``exc`` and of every further syntax error the
    recovery finds (capped at :data:`MAX_SYNTAX_ERRORS`, with a final note)."""
    found = [syntax_diagnostic(exc, file, text, brackets)]
    if not isinstance(exc, _LimitError):
        # the further syntax errors; the first one stays exactly as found above
        where = (found[0].span.line, found[0].span.col)
        try:
            found += [d for d in _recover(text, file) if (d.span.line, d.span.col) > where]
        except Exception:  # noqa: BLE001 - recovery is best effort; the first error stands
            pass
    if len(found) > MAX_SYNTAX_ERRORS:
        cut = found[MAX_SYNTAX_ERRORS]
        found = found[:MAX_SYNTAX_ERRORS] + [
            Diagnostic("error", f"too many syntax errors; stopped after the first {MAX_SYNTAX_ERRORS}", cut.span,
                       cut.source_line, "fix these and check the file again")]
    return found


def _describe_terminal(name: str) -> str:
    if name in _TOKEN_WORDS:
        return _TOKEN_WORDS[name]
    try:
        pattern = _lark().get_terminal(name).pattern
    except (KeyError, AttributeError):
        return name.lower()
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return name.lower()


def _expected_words(expected) -> str:
    words = sorted({_describe_terminal(e) for e in expected})
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    if len(words) > 8:
        return ", ".join(words[:8]) + ", ..."
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe_token(tok: Token) -> str:
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


_CLOSER_OF = {"LBRACE": "}", "LPAR": ")", "LSQB": "]"}


def _end_span(file: str, text: str) -> ast.Span:
    lines = text.splitlines() or [""]
    return ast.Span(file, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 1)


def syntax_diagnostic(exc: Exception, file: str, text: str, brackets: _Brackets | None) -> Diagnostic:
    """The diagnostic of one syntax error; ``brackets`` is the layout state at the error."""
    if isinstance(exc, _LimitError):
        span = _tok_span(file, exc.token)
        return Diagnostic("error", exc.message, span, source_line(text, span.line),
                          "split the expression or block into smaller pieces")
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        span = ast.Span(file, exc.line, exc.column, exc.line, exc.column)
        hint = 'import paths are written on one line in double quotes: import "file.qvaf"' if char == '"' else None
        return Diagnostic("error", f"unexpected character {char!r}", span, source_line(text, exc.line), hint)
    if isinstance(exc, UnexpectedToken):
        return _token_diagnostic(exc, file, text, brackets)
    if isinstance(exc, UnexpectedEOF):
        span = _end_span(file, text)
        expected = _expected_words(exc.expected)
        message = "unexpected end of file" + (f"; expected {expected}" if expected else "")
        return Diagnostic("error", message, span, source_line(text, span.line))
    return Diagnostic("error", f"syntax error: {exc}", ast.Span(file, 1, 1, 1, 1), None)


def _token_diagnostic(exc: UnexpectedToken, file: str, text: str, brackets: _Brackets | None) -> Diagnostic:
    """An unexpected token. Two cases name the bracket at fault instead: the end of the file
    inside an open block or bracket, and a statement that ran on past a newline because a
    ``(`` or ``[`` before it was never closed (the newline was dropped by the layout rule)."""
    tok = exc.token
    opener = brackets.stack[-1] if brackets is not None and brackets.stack else None
    if tok.type == "$END" and opener is not None:
        return _unclosed(file, text, opener, f"unexpected end of file: this '{opener}' is never closed")
    continued = brackets.continued if brackets is not None else None
    if continued is not None and tok.type != "$END" and not _closes(continued, tok):
        return _unclosed(file, text, continued,
                         f"this '{continued}' is not closed before line {tok.line} "
                         f"({_describe_token(tok)} there is unexpected)",
                         "; a newline inside brackets does not end a statement")
    if tok.type == "$END":
        span = _end_span(file, text)
        message = "unexpected end of file"
    else:
        span = _tok_span(file, tok)
        message = f"unexpected {_describe_token(tok)}"
    expected = _expected_words(exc.accepts or exc.expected)
    if expected:
        message += f"; expected {expected}"
    hint = None
    if tok.type != "$END" and _after_noise(text, tok):
        hint = ("'noise' takes no arguments: it marks where a noise model given with where=spec "
                "(e.g. --noise depolarizing=0.01,where=spec) applies its channels")
    elif tok.type in ("FLOAT", "INT", "NAME") and "_NL" in (exc.accepts or exc.expected):
        hint = "put each statement on its own line or separate statements with ';'"
    return Diagnostic("error", message, span, source_line(text, span.line), hint)


def _after_noise(text: str, tok: Token) -> bool:
    """Whether ``tok`` follows the ``noise`` keyword on its line (``noise(0.1)``, ``noise 0.1``)."""
    start = getattr(tok, "start_pos", None)
    if start is None:
        return False
    before = text[text.rfind("\n", 0, start) + 1:start]
    return re.search(r"(^|[;{\s])noise\s*$", before) is not None


def _closes(opener: Token, tok: Token) -> bool:
    return tok.type == _OPENERS[opener.type]


def _unclosed(file: str, text: str, opener: Token, message: str, more: str = "") -> Diagnostic:
    span = _tok_span(file, opener)
    return Diagnostic("error", message, span, source_line(text, span.line),
                      f"add the missing '{_CLOSER_OF[opener.type]}'{more}")


def _recover(text: str, file: str) -> list[Diagnostic]:
    """Parse ``text`` again with panic-mode error recovery and return every syntax diagnostic
    (see :class:`_Recovery`)."""
    return _Recovery(text, file).run()


class _Recovery:
    """Panic-mode error recovery over the LALR parser, driven token by token.

    The lexing is the parser's own (contextual, with the same :class:`_Brackets` layout
    rule). The parser state is saved after each statement separator and each '{'. On an
    unexpected token the error is recorded, the state goes back to the last save point, and
    tokens are skipped (a '{' opened while skipping is skipped up to its '}') until a
    separator or a '}' the saved state accepts; parsing resumes there. A character no
    terminal matches is recorded and skipped. Every token of the input is consumed exactly
    once, so this always terminates; it stops once it has found one error more than
    :data:`MAX_SYNTAX_ERRORS`.
    """

    def __init__(self, text: str, file: str):
        self.text, self.file = text, file
        lark = _lark()
        self.interactive = lark.parse_interactive(text)
        self.state = self.interactive.parser_state
        self.lexer_state = self.interactive.lexer_thread.state
        self.contextual = lark.parser.lexer.lexer
        self.brackets = _Brackets()
        self.diagnostics: list[Diagnostic] = []
        self.seen: set[tuple[int, int, str]] = set()
        self.stopped = False
        self.skipping = False  # inside panic mode
        self.lex_error = False  # a bad character was just skipped

    def run(self) -> list[Diagnostic]:
        point = self.save()
        stream = self.tokens()
        last = None
        glued = False  # the error was an early end of line: a '{' block right after belongs to it
        for tok in stream:
            last = tok
            if not self.lex_error and not (glued and tok.type == "LBRACE"):
                glued = False
                if self.feed(tok):
                    if tok.type in ("_NL", "_SEMI", "LBRACE"):
                        point = self.save()
                    continue
            skipped, point, last = self.skip_statement(tok, stream, point, last)
            glued = tok.type == "_NL" and skipped is tok
        if not self.stopped:
            self.feed(Token.new_borrow_pos("$END", "", last) if last is not None else Token("$END", ""))
        return self.diagnostics

    def record(self, diagnostic: Diagnostic) -> None:
        key = (diagnostic.span.line, diagnostic.span.col, diagnostic.message)
        if key not in self.seen:
            self.seen.add(key)
            self.diagnostics.append(diagnostic)
        if len(self.diagnostics) > MAX_SYNTAX_ERRORS:  # one past the cap tells parse() to stop
            self.stopped = True

    def tokens(self):
        """The token stream after the layout rule; lexer errors are recorded and skipped."""
        while not self.stopped:
            try:
                tok = self.next_token()
            except EOFError:
                return
            except UnexpectedCharacters as exc:
                if not self.skipping:  # a bad character inside skipped text is not reported
                    self.record(syntax_diagnostic(exc, self.file, self.text, self.brackets))
                    self.lex_error = True  # the statement is broken: skip the rest of it
                pos = self.lexer_state.line_ctr.char_pos
                if pos >= len(self.text):
                    return
                self.lexer_state.line_ctr.feed(self.text[pos : pos + 1])
                continue
            try:
                keep = self.brackets.keep(tok)
            except _LimitError as exc:
                self.record(syntax_diagnostic(exc, self.file, self.text, self.brackets))
                return
            if keep:
                yield tok

    def next_token(self) -> Token:
        lexer = self.contextual.lexers[self.state.position]
        try:
            return lexer.next_token(self.lexer_state, self.state)
        except UnexpectedCharacters:
            return self.contextual.root_lexer.next_token(self.lexer_state, self.state)

    def save(self):
        return list(self.state.state_stack), list(self.state.value_stack), len(self.brackets.stack)

    def restore(self, point) -> None:
        self.state.state_stack[:] = point[0]
        self.state.value_stack[:] = point[1]
        del self.brackets.stack[point[2] :]

    def feed(self, tok: Token) -> bool:
        try:
            self.state.feed_token(tok, tok.type == "$END")
        except UnexpectedToken as exc:
            exc.interactive_parser = InteractiveParser(self.interactive.parser, self.state.copy(False),
                                                       self.interactive.lexer_thread)
            self.record(syntax_diagnostic(exc, self.file, self.text, self.brackets))
            return False
        return True

    def accepts(self, tok: Token) -> bool:
        # a trial run on a copy: the table may list a token whose reductions then lead nowhere
        trial = self.state.copy(False)
        try:
            trial.feed_token(tok, False)
        except UnexpectedToken:
            return False
        return True

    def skip_statement(self, tok: Token, stream, point, last):
        """Panic mode: back to the save point ``point``, then skip from ``tok`` to the end of
        the broken statement. Returns ``(the token it stopped at or None, the new save point,
        the last token read)``."""
        self.restore(point)
        self.skipping = True
        depth = 0
        skipped = tok
        while skipped is not None and not self.stopped:
            kind = skipped.type
            if kind == "LBRACE":
                depth += 1
                del self.brackets.stack[point[2] :]  # the skipped block's '{' is not open any more
            elif kind == "RBRACE" and depth > 0:
                depth -= 1
            elif depth == 0 and kind in ("_NL", "_SEMI", "RBRACE") and self.accepts(skipped):
                self.state.feed_token(skipped, False)
                point = self.save()
                break
            skipped = next(stream, None)
            if skipped is not None:
                last = skipped
        self.skipping = False
        self.lex_error = False
        return skipped, point, last
