"""AST -> canonical QVAF text (the formatter behind ``qvaf fmt``).

The canonical layout: one statement per line, blocks indented by four spaces, ``{`` on the
header line, one blank line between top-level definitions, comments kept (standalone comments
on their own line, trailing comments after two spaces), the fewest parentheses the operator
precedence allows, numbers printed so they read back as the same value and kind (``3`` stays an
int, ``3.0`` a float). ``parse(format_module(m)) == m`` for every module the parser produces.

Example::

    >>> from qvaf.dsl import parse
    >>> from qvaf.dsl.fmt import format_module
    >>> print(format_module(parse("ansatz a{h;rz((x)*(2));measure z}")), end="")
    ansatz a {
        h
        rz(x * 2)
        measure z
    }
"""

from __future__ import annotations

from . import ast

INDENT = "    "

# binding strength: higher binds tighter
_SUM, _PRODUCT, _UNARY, _POWER, _ATOM = 1, 2, 3, 4, 5
_BINARY = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "**": _POWER}


def _precedence(expr) -> int:
    if isinstance(expr, ast.BinOp):
        return _BINARY[expr.op]
    if isinstance(expr, ast.UnaryOp):
        return _UNARY
    if isinstance(expr, ast.Num) and expr.value < 0:
        return _UNARY  # only built by hand, never by the parser
    return _ATOM


def format_number(num: ast.Num) -> str:
    """Print a literal so that it parses back to the same value and int/float kind."""
    if num.is_int:
        return str(int(num.value))
    return repr(float(num.value))


def format_expr(expr, min_prec: int = 0) -> str:
    """Print an expression, parenthesised if it binds looser than ``min_prec``."""
    # iterative over deep left/right spines would be overkill: the parser caps depth at 200
    prec = _precedence(expr)
    if isinstance(expr, ast.Num):
        text = format_number(expr)
    elif isinstance(expr, ast.Name):
        text = expr.id
    elif isinstance(expr, ast.Index):
        text = f"{expr.base.id}[{', '.join(format_expr(i) for i in expr.indices)}]"
    elif isinstance(expr, ast.Call):
        text = f"{expr.func}({', '.join(format_expr(a) for a in expr.args)})"
    elif isinstance(expr, ast.UnaryOp):
        operand = format_expr(expr.operand, _UNARY)
        sep = " " if operand[:1] in "+-" else ""
        text = f"{expr.op}{sep}{operand}"
    elif isinstance(expr, ast.BinOp):
        if expr.op == "**":
            left = format_expr(expr.left, _ATOM)
            right = format_expr(expr.right, _UNARY)
        else:
            left = format_expr(expr.left, prec)
            right = format_expr(expr.right, prec + 1)
        text = f"{left} {expr.op} {right}"
    else:
        raise TypeError(f"not an expression: {expr!r}")
    return f"({text})" if prec < min_prec else text


def _arg(arg: ast.Arg) -> str:
    text = f"{arg.name}: {arg.type}"
    return text + (f" = {format_expr(arg.default)}" if arg.default is not None else "")


def _formals(args) -> str:
    return f"({', '.join(_arg(a) for a in args)})" if args else ""


def _actual(kw: ast.KwArg) -> str:
    value = format_expr(kw.value)
    return f"{kw.name} = {value}" if kw.name is not None else value


def _decl(d: ast.ParamDecl) -> str:
    text = ("param " if d.trainable else "const ") + d.name
    if d.shape:
        text += f"[{', '.join(format_expr(s) for s in d.shape)}]"
    text += (" ~ " if d.random else " = ") + format_expr(d.init)
    if d.grow is not None:
        text += f" grow {format_expr(d.grow)}"
    return text


def _option(o: ast.Option) -> str:
    parts = [o.name]
    for i, value in enumerate(o.values):
        if isinstance(value, str):
            parts.append(value)
            continue
        text = format_expr(value, _ATOM)
        following = o.values[i + 1] if i + 1 < len(o.values) else None
        if isinstance(value, ast.Name) and following is not None and not isinstance(following, str):
            if format_expr(following, _ATOM).startswith("("):
                text = f"({text})"  # `group a (b + c)` would read back as the call a(b + c)
        parts.append(text)
    return " ".join(parts)


class _Printer:
    def __init__(self):
        self.lines: list[str] = []

    def emit(self, depth: int, text: str) -> None:
        self.lines.append(INDENT * depth + text)

    def trail(self, comment: ast.Comment) -> None:
        suffix = f"  # {comment.text}" if comment.text else "  #"
        if self.lines:
            self.lines[-1] += suffix
        else:
            self.lines.append(suffix.lstrip())

    def comment(self, depth: int, comment: ast.Comment) -> None:
        self.emit(depth, f"# {comment.text}" if comment.text else "#")

    def block(self, depth: int, header: str, stmts, stmt_fn) -> None:
        """Print ``header {``, the statements one level deeper, and ``}``."""
        self.emit(depth, header + " {")
        prev = None
        for s in stmts:
            if isinstance(s, ast.Comment):
                if s.trailing and (prev is None or not isinstance(prev, ast.Comment)):
                    self.trail(s)
                else:
                    self.comment(depth + 1, s)
            else:
                stmt_fn(depth + 1, s)
            prev = s
        self.emit(depth, "}")

    # -- ansatz
    def stmt(self, depth: int, s) -> None:
        if isinstance(s, ast.ParamDecl):
            self.emit(depth, _decl(s))
        elif isinstance(s, ast.Gate):
            args = f"({', '.join(format_expr(a) for a in s.args)})" if s.args else ""
            self.emit(depth, s.name + args)
        elif isinstance(s, ast.Encode):
            self.emit(depth, f"encode({format_expr(s.angle)}, {s.axis})")
        elif isinstance(s, ast.For):
            header = f"for {s.var} in {format_expr(s.start)}..{format_expr(s.stop)}"
            self.block(depth, header, s.body, self.stmt)
        elif isinstance(s, ast.Measure):
            self.emit(depth, f"measure {s.observable}")
        elif isinstance(s, ast.Noise):
            self.emit(depth, "noise")
        else:
            raise TypeError(f"not an ansatz statement: {s!r}")

    # -- model
    def layer(self, depth: int, s) -> None:
        if isinstance(s, ast.InputLayer):
            self.emit(depth, f"input {format_expr(s.width)}")
        elif isinstance(s, ast.LinearLayer):
            self.emit(depth, f"linear {format_expr(s.width)}")
        elif isinstance(s, ast.KanLayer):
            header = f"kan {format_expr(s.width)} using {s.ansatz}"
            if s.args:
                header += f"({', '.join(_actual(a) for a in s.args)})"
            if not s.options:
                self.emit(depth, header)
            elif not any(isinstance(o, ast.Comment) for o in s.options):
                self.emit(depth, header + " { " + "; ".join(_option(o) for o in s.options) + " }")
            else:
                self.block(depth, header, s.options, lambda d, o: self.emit(d, _option(o)))
        else:
            raise TypeError(f"not a model statement: {s!r}")

    # -- file
    def module(self, module: ast.Module) -> None:
        prev = None
        for item in module.items:
            if isinstance(item, ast.Comment) and item.trailing and prev is not None and not (
                isinstance(prev, ast.Comment)
            ):
                self.trail(item)
                continue  # the blank-line rule looks at the item the comment trails
            if prev is not None and _blank_between(prev, item):
                self.lines.append("")
            if isinstance(item, ast.Comment):
                self.comment(0, item)
            elif isinstance(item, ast.Import):
                self.emit(0, f'import "{item.path}"')
            elif isinstance(item, ast.Ansatz):
                self.block(0, f"ansatz {item.name}{_formals(item.args)}", item.body, self.stmt)
            elif isinstance(item, ast.Model):
                self.block(0, f"model {item.name}{_formals(item.args)}", item.body, self.layer)
            else:
                raise TypeError(f"not a top-level item: {item!r}")
            prev = item


def _blank_between(prev, item) -> bool:
    """One blank line before a definition or a comment block, except right after a comment."""
    if isinstance(prev, ast.Comment):
        return False
    if isinstance(prev, ast.Import) and isinstance(item, ast.Import):
        return False
    return True


def format_module(module: ast.Module) -> str:
    """Return the canonical text of a module (ends with one newline; empty module -> "")."""
    printer = _Printer()
    printer.module(module)
    if not printer.lines:
        return ""
    return "\n".join(printer.lines) + "\n"


def format_source(text: str, filename: str = "<string>") -> str:
    """Parse and re-print source text (raises SpecError on a syntax error)."""
    from .parser import parse

    return format_module(parse(text, filename))
