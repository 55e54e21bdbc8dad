"""Every grammar construct parses into the expected AST; spans and comments land where they should."""

from __future__ import annotations

import math

import pytest

from qvaf.dsl import SpecError, parse
from qvaf.dsl.ast import (
    Ansatz,
    Arg,
    BinOp,
    Call,
    Comment,
    Encode,
    For,
    Gate,
    Import,
    Index,
    InputLayer,
    KanLayer,
    KwArg,
    LinearLayer,
    Measure,
    Model,
    Module,
    Name,
    Num,
    Option,
    ParamDecl,
    Span,
    UnaryOp,
)


def N(v):
    return Num(v, isinstance(v, int))


def V(name):
    return Name(name)


def body(text: str):
    """Parse ``text`` as the body of an ansatz and return its statements."""
    return parse("ansatz a {\n" + text + "\n}").items[0].body


def expr(text: str):
    return body(f"rz({text})")[0].args[0]


# ----------------------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    "text, tree",
    [
        ("3", N(3)),
        ("3.0", N(3.0)),
        ("1e-3", N(0.001)),
        ("2E+2", N(200.0)),
        (".5", N(0.5)),
        ("pi", V("pi")),
        ("x", V("x")),
        ("a + b * c", BinOp("+", V("a"), BinOp("*", V("b"), V("c")))),
        ("a - b - c", BinOp("-", BinOp("-", V("a"), V("b")), V("c"))),
        ("a / b * c", BinOp("*", BinOp("/", V("a"), V("b")), V("c"))),
        ("(a + b) * c", BinOp("*", BinOp("+", V("a"), V("b")), V("c"))),
        ("-a", UnaryOp("-", V("a"))),
        ("+a", UnaryOp("+", V("a"))),
        ("--a", UnaryOp("-", UnaryOp("-", V("a")))),
        ("a ** b ** c", BinOp("**", V("a"), BinOp("**", V("b"), V("c")))),
        ("-a ** 2", UnaryOp("-", BinOp("**", V("a"), N(2)))),
        ("a ** -b", BinOp("**", V("a"), UnaryOp("-", V("b")))),
        ("2 * -x", BinOp("*", N(2), UnaryOp("-", V("x")))),
        ("sin(x)", Call("sin", (V("x"),))),
        ("acos(w[l] * x + b[l])",
         Call("acos", (BinOp("+", BinOp("*", Index(V("w"), (V("l"),)), V("x")),
                             Index(V("b"), (V("l"),))),))),
        ("theta[l, 0]", Index(V("theta"), (V("l"), N(0)))),
        ("theta[reps - 1, 1]", Index(V("theta"), (BinOp("-", V("reps"), N(1)), N(1)))),
        ("f()", Call("f", ())),
    ],
)
def test_expressions(text, tree):
    assert expr(text) == tree


def test_int_and_float_literals_differ():
    assert expr("3") != expr("3.0")
    assert expr("3").is_int and not expr("3.0").is_int
    assert isinstance(expr("10").value, int)


def test_expression_may_wrap_inside_parentheses():
    assert expr("a +\n    b") == BinOp("+", V("a"), V("b"))


# ----------------------------------------------------------------------------- ansatz body


def test_declarations():
    stmts = body(
        "param theta[reps + 1, 2] ~ normal(0, 1) grow 0\n"
        "const w[reps] = 1.0\n"
        "param s = 0.5 grow 0.0\n"
        "const r[2] ~ uniform(-1, 1)\n"
        "param q[3] ~ xavier()"
    )
    assert stmts == (
        ParamDecl("theta", (BinOp("+", V("reps"), N(1)), N(2)), Call("normal", (N(0), N(1))),
                  True, True, N(0)),
        ParamDecl("w", (V("reps"),), N(1.0), False, False),
        ParamDecl("s", (), N(0.5), False, True, N(0.0)),
        ParamDecl("r", (N(2),), Call("uniform", (UnaryOp("-", N(1)), N(1))), True, False),
        ParamDecl("q", (N(3),), Call("xavier", ()), True, True),
    )


def test_gates_and_x_as_gate_or_input():
    stmts = body("h\nx\nrx(x)\nu3(a, b, c)\nsdg; phase(pi / 2)\nh()")
    assert stmts == (
        Gate("h", ()),
        Gate("x", ()),
        Gate("rx", (V("x"),)),
        Gate("u3", (V("a"), V("b"), V("c"))),
        Gate("sdg", ()),
        Gate("phase", (BinOp("/", V("pi"), N(2)),)),
        Gate("h", ()),
    )


def test_encode_for_measure():
    stmts = body("encode(w * x, axis)\nfor l in 0..reps {\n  rz(x)\n  for k in l..3 { h }\n}\nmeasure inspired")
    assert stmts == (
        Encode(BinOp("*", V("w"), V("x")), "axis"),
        For("l", N(0), V("reps"), (Gate("rz", (V("x"),)), For("k", V("l"), N(3), (Gate("h", ()),)))),
        Measure("inspired"),
    )


def test_ansatz_header_forms():
    m = parse("ansatz a { measure z }\nansatz b() { measure z }\n"
              "ansatz c(reps: int = 3, axis: axis = z, s: float) { measure z }")
    a, b, c = m.items
    assert a == Ansatz("a", (), (Measure("z"),))
    assert b == Ansatz("b", (), (Measure("z"),))
    assert c.args == (Arg("reps", "int", N(3)), Arg("axis", "axis", V("z")), Arg("s", "float", None))


# ----------------------------------------------------------------------------- models and files


def test_model():
    m = parse(
        'import "a/b.qvaf"\n'
        "model net(d: int = 64) {\n"
        "    input d\n"
        "    linear 12; kan 12 using pz(reps = 1) { group 3; base silu; postact weight bias }\n"
        "    kan 2 using daruan(2, z)\n"
        "    kan 1 using pz {\n        postact bias\n        group (d / 2)\n    }\n"
        "    linear d\n"
        "}\n"
    )
    assert m == Module((
        Import("a/b.qvaf"),
        Model("net", (Arg("d", "int", N(64)),), (
            InputLayer(V("d")),
            LinearLayer(N(12)),
            KanLayer(N(12), "pz", (KwArg("reps", N(1)),), (
                Option("group", (N(3),)), Option("base", ("silu",)),
                Option("postact", ("weight", "bias")))),
            KanLayer(N(2), "daruan", (KwArg(None, N(2)), KwArg(None, V("z"))), ()),
            KanLayer(N(1), "pz", (), (Option("postact", ("bias",)),
                                      Option("group", (BinOp("/", V("d"), N(2)),)))),
            LinearLayer(V("d")),
        )),
    ))


def test_separators_blank_lines_and_semicolons_are_equivalent():
    a = parse("ansatz a {\n\n  h\n\n  rz(x)\n  measure z\n}\n\n\n")
    b = parse("ansatz a { h; rz(x); measure z }")
    c = parse("ansatz a {;; h;;\n rz(x) ; measure z ; }")
    assert a == b == c


def test_empty_file_and_comment_only_file():
    assert parse("") == Module(())
    assert parse("# only\n") == Module((Comment("only"),))


# ----------------------------------------------------------------------------- comments


def test_comments_are_attached_in_order():
    m = parse(
        "# head\n"
        'import "p.qvaf"  # why\n'
        "ansatz a {  # header\n"
        "    #   indented text\n"
        "    h\n"
        "    for l in 0..2 {\n"
        "        rz(x)  # inner\n"
        "    }  # after loop\n"
        "    measure z\n"
        "}\n"
        "model m {\n"
        "    input 1\n"
        "    kan 1 using a {\n"
        "        # opt\n"
        "        base none  # t\n"
        "    }\n"
        "}\n"
    )
    head, imp, why, ansatz, model = m.items
    assert head == Comment("head") and why == Comment("why", trailing=True)
    assert ansatz.body[0] == Comment("header", trailing=True)
    assert ansatz.body[1] == Comment("  indented text")
    loop = ansatz.body[3]
    assert loop.body == (Gate("rz", (V("x"),)), Comment("inner", trailing=True))
    assert ansatz.body[4] == Comment("after loop", trailing=True)
    assert model.body[1].options == (Comment("opt"), Option("base", ("none",)),
                                     Comment("t", trailing=True))


def test_comment_inside_wrapped_expression_moves_after_the_statement():
    stmts = body("rz(x +  # half\n   1)\nmeasure z")
    assert stmts[:2] == (Gate("rz", (BinOp("+", V("x"), N(1)),)), Comment("half", trailing=True))


# ----------------------------------------------------------------------------- spans


def test_spans_point_at_the_source():
    text = "ansatz pz(reps: int = 3) {\n    param theta[reps + 1] ~ normal(0, 1)\n    rz(theta[0] * x)\n    measure z\n}\n"
    m = parse(text, "f.qvaf")
    a = m.items[0]
    assert a.span == Span("f.qvaf", 1, 1, 5, 1)
    assert a.args[0].span == Span("f.qvaf", 1, 11, 1, 23)
    decl = a.body[0]
    assert decl.span == Span("f.qvaf", 2, 5, 2, 40)
    assert decl.shape[0].span == Span("f.qvaf", 2, 17, 2, 24)
    gate = a.body[1]
    assert gate.span == Span("f.qvaf", 3, 5, 3, 20)
    prod = gate.args[0]
    assert prod.span == Span("f.qvaf", 3, 8, 3, 19)
    assert prod.left.span == Span("f.qvaf", 3, 8, 3, 15)
    assert prod.left.base.span == Span("f.qvaf", 3, 8, 3, 12)
    assert prod.right.span == Span("f.qvaf", 3, 19, 3, 19)
    assert a.body[2].span == Span("f.qvaf", 4, 5, 4, 13)
    assert str(decl.span) == "f.qvaf:2:5"


def test_spans_do_not_affect_equality():
    assert parse("ansatz a { h; measure z }") == parse("ansatz   a {\n  h\n  measure    z\n}")


# ----------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    "text, line, col, message",
    [
        ("ansatz a {\n  rz(x +)\n}", 2, 9, "unexpected ')'; expected '(', '+', '-', a name, a number or an integer"),
        ("ansatz a {\n  rz(x $ 2)\n}", 2, 8, "unexpected character '$'"),
        ("ansatz a {\n  rz(x) ry(x)\n}", 2, 9, "unexpected 'ry'; expected ';', '}' or a newline"),
        ("ansatz a {\n  rz(x)\n", 1, 10, "unexpected end of file: this '{' is never closed"),
        ("model m {\n  input\n}", 2, 8, "unexpected end of line; expected '(', '+', '-', a name, a number or an integer"),
        ('import "a.qvaf\nansatz a { }', 1, 8, "unexpected character '\"'"),
        ("ansatz a\n{ }", 1, 9, "unexpected end of line; expected '(' or '{'"),
    ],
)
def test_syntax_errors(text, line, col, message):
    with pytest.raises(SpecError) as info:
        parse(text, "s.qvaf")
    (d,) = info.value.diagnostics
    assert (d.message, d.span.line, d.span.col) == (message, line, col)
    assert d.render().startswith(f"s.qvaf:{line}:{col}: error: ")


def test_huge_float_literal_is_rejected():
    with pytest.raises(SpecError, match="too large for a 64-bit float"):
        parse("ansatz a { rz(1e400 * x); measure z }")


def test_limits():
    with pytest.raises(SpecError, match="nesting deeper than 100"):
        parse("ansatz a { rz(" + "(" * 150 + "x" + ")" * 150 + ") }")
    with pytest.raises(SpecError, match="expression nested deeper than 200"):
        parse("ansatz a { rz(" + "-" * 300 + "x) }")
    with pytest.raises(SpecError, match="numeric literal longer than"):
        parse("ansatz a { rz(" + "1" * 500 + ") }")
    with pytest.raises(SpecError, match="the limit for a spec is"):
        parse("#" * 1_000_001)


def test_float_values_are_exact():
    assert expr("0.1").value == 0.1
    assert expr("3.141592653589793").value == math.pi
