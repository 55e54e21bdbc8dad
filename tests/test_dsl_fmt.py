"""The formatter: canonical text that parses back to the same AST, and ``qvaf fmt``."""

from __future__ import annotations

import glob
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qvaf.dsl import ast, parse
from qvaf.dsl.fmt import format_expr, format_module
from qvaf.dsl.rules import KEYWORDS
from qvaf.runtime.cli import main

SPECS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "specs", "**", "*.qvaf"),
                         recursive=True))


def test_there_are_specs():
    assert len(SPECS) >= 9


@pytest.mark.parametrize("path", SPECS, ids=os.path.basename)
def test_specs_round_trip_and_are_canonical(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    module = parse(text, path)
    formatted = format_module(module)
    assert parse(formatted) == module
    assert formatted == text  # the checked-in specs are already in canonical layout


@pytest.mark.parametrize(
    "source, canonical",
    [
        ("rz((x)*(2))", "rz(x * 2)"),
        ("rz(a-(b-c))", "rz(a - (b - c))"),
        ("rz((a-b)-c)", "rz(a - b - c)"),
        ("rz((a*b)/c)", "rz(a * b / c)"),
        ("rz(a/(b*c))", "rz(a / (b * c))"),
        ("rz(-(a+b))", "rz(-(a + b))"),
        ("rz(-(a**b))", "rz(-a ** b)"),
        ("rz((-a)**b)", "rz((-a) ** b)"),
        ("rz((a**b)**c)", "rz((a ** b) ** c)"),
        ("rz(a**(b**c))", "rz(a ** b ** c)"),
        ("rz(a**(-b))", "rz(a ** -b)"),
        ("rz(-(-a))", "rz(- -a)"),
        ("rz(1E3+.5+1e-07)", "rz(1000.0 + 0.5 + 1e-07)"),
        ("rz(sin((x)))", "rz(sin(x))"),
    ],
)
def test_minimal_parentheses(source, canonical):
    module = parse("ansatz a {\n" + source + "\n}")
    assert format_module(module).splitlines()[1].strip() == canonical


def test_layout():
    text = (
        '#c\nimport "a.qvaf"\nimport "b.qvaf"  #t\nansatz a(n:int=2){#h\nh;rz(x)\n'
        "for l in 0..n{ry(x)}#after\nmeasure z}\nmodel m{input 2\n"
        "kan 1 using a(n=1){group 2;base none}\nkan 1 using a{#c\npostact weight}}"
    )
    assert format_module(parse(text)) == (
        "# c\n"
        'import "a.qvaf"\n'
        'import "b.qvaf"  # t\n'
        "\n"
        "ansatz a(n: int = 2) {  # h\n"
        "    h\n"
        "    rz(x)\n"
        "    for l in 0..n {\n"
        "        ry(x)\n"
        "    }  # after\n"
        "    measure z\n"
        "}\n"
        "\n"
        "model m {\n"
        "    input 2\n"
        "    kan 1 using a(n = 1) { group 2; base none }\n"
        "    kan 1 using a {  # c\n"
        "        postact weight\n"
        "    }\n"
        "}\n"
    )


def test_option_value_that_could_read_as_a_call_is_parenthesised():
    option = ast.Option("group", (ast.Name("a"), ast.BinOp("+", ast.Name("b"), ast.Num(1, True))))
    module = ast.Module((ast.Model("m", (), (ast.KanLayer(ast.Num(1, True), "p", (), (option,)),)),))
    text = format_module(module)
    assert "group (a) (b + 1)" in text
    assert parse(text) == module


# ----------------------------------------------------------------------------- hypothesis

_IDENT = st.from_regex(r"\A[a-z_][a-z0-9_]{0,5}\Z", fullmatch=True).filter(
    lambda s: s not in KEYWORDS
)
_AXIS = st.sampled_from(["x", "y", "z", "axis"])
_COMMENT_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=20
).map(str.rstrip)

_leaf = st.one_of(
    st.integers(min_value=0, max_value=10**30).map(lambda v: ast.Num(v, True)),
    st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False).map(
        lambda v: ast.Num(abs(v), False)
    ),
    _IDENT.map(ast.Name),
)


def _extend(children):
    return st.one_of(
        st.tuples(st.sampled_from("-+"), children).map(lambda t: ast.UnaryOp(*t)),
        st.tuples(st.sampled_from(["+", "-", "*", "/", "**"]), children, children).map(
            lambda t: ast.BinOp(*t)
        ),
        st.tuples(_IDENT, st.lists(children, max_size=3).map(tuple)).map(lambda t: ast.Call(*t)),
        st.tuples(_IDENT.map(ast.Name), st.lists(children, min_size=1, max_size=3).map(tuple)).map(
            lambda t: ast.Index(*t)
        ),
    )


EXPR = st.recursive(_leaf, _extend, max_leaves=12)
_exprs = st.lists(EXPR, max_size=3).map(tuple)
_comment = st.builds(ast.Comment, _COMMENT_TEXT, st.booleans())


def _decl(draw):
    random = draw(st.booleans())
    init = (
        draw(st.builds(ast.Call, _IDENT, _exprs)) if random else draw(EXPR)
    )
    return ast.ParamDecl(
        draw(_IDENT), draw(_exprs), init, random, draw(st.booleans()),
        draw(st.one_of(st.none(), EXPR)),
    )


def _tidy(items, first_may_trail: bool):
    """A trailing comment needs code before it on its line: turn the impossible ones standalone."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, ast.Comment) and item.trailing:
            prev = out[-1] if out else None
            if (prev is None and not first_may_trail) or isinstance(prev, ast.Comment):
                item = ast.Comment(item.text, False)
        out.append(item)
    return tuple(out)


@st.composite
def _stmt(draw, depth=0):
    kinds = ["decl", "gate", "encode", "measure", "noise", "comment"] + (["for"] if depth < 2 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "decl":
        return _decl(draw)
    if kind == "gate":
        return ast.Gate(draw(_IDENT), draw(_exprs))
    if kind == "encode":
        return ast.Encode(draw(EXPR), draw(_AXIS))
    if kind == "measure":
        return ast.Measure(draw(_IDENT))
    if kind == "noise":
        return ast.Noise()
    if kind == "comment":
        return draw(_comment)
    body = draw(st.lists(_stmt(depth + 1), max_size=4))
    return ast.For(draw(_IDENT), draw(EXPR), draw(EXPR), _tidy(body, True))


_arg = st.builds(
    ast.Arg, _IDENT, st.sampled_from(["int", "float", "axis", "real"]), st.one_of(st.none(), EXPR)
)
_args = st.lists(_arg, max_size=3).map(tuple)


@st.composite
def _option(draw):
    name = draw(st.sampled_from(["base", "postact", "group", "other"]))
    if name in ("base", "postact"):
        values = tuple(draw(st.lists(_IDENT, max_size=2)))
    else:
        values = tuple(draw(st.lists(EXPR, max_size=3)))
    return ast.Option(name, values)


@st.composite
def _layer(draw):
    kind = draw(st.sampled_from(["input", "linear", "kan", "comment"]))
    if kind == "input":
        return ast.InputLayer(draw(EXPR))
    if kind == "linear":
        return ast.LinearLayer(draw(EXPR))
    if kind == "comment":
        return draw(_comment)
    kwargs = draw(st.lists(st.builds(ast.KwArg, st.one_of(st.none(), _IDENT), EXPR), max_size=3))
    options = draw(st.lists(st.one_of(_option(), _comment), max_size=4))
    return ast.KanLayer(draw(EXPR), draw(_IDENT), tuple(kwargs), _tidy(options, True))


@st.composite
def MODULES(draw):
    items = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["import", "ansatz", "model", "comment"]))
        if kind == "import":
            items.append(ast.Import(draw(st.text(alphabet="abc/._-", min_size=1, max_size=12))))
        elif kind == "comment":
            items.append(draw(_comment))
        elif kind == "ansatz":
            body = draw(st.lists(_stmt(), max_size=6))
            items.append(ast.Ansatz(draw(_IDENT), draw(_args), _tidy(body, True)))
        else:
            body = draw(st.lists(_layer(), max_size=5))
            items.append(ast.Model(draw(_IDENT), draw(_args), _tidy(body, True)))
    return ast.Module(_tidy(items, False))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MODULES())
def test_round_trip_of_generated_modules(module):
    text = format_module(module)
    assert parse(text) == module
    assert format_module(parse(text)) == text  # idempotent


@settings(max_examples=200, deadline=None)
@given(EXPR)
def test_round_trip_of_generated_expressions(expr):
    module = parse(f"ansatz a {{\n    rz({format_expr(expr)})\n}}\n")
    assert module.items[0].body[0].args[0] == expr


# ----------------------------------------------------------------------------- qvaf fmt


UGLY = "ansatz a{h;rz(x)  # why\nmeasure z}\n"
PRETTY = "ansatz a {\n    h\n    rz(x)  # why\n    measure z\n}\n"


def test_fmt_prints_canonical_text(tmp_path, capsys):
    path = tmp_path / "a.qvaf"
    path.write_text(UGLY)
    assert main(["fmt", str(path)]) == 0
    assert capsys.readouterr().out == PRETTY
    assert path.read_text() == UGLY  # printing leaves the file alone


def test_fmt_check(tmp_path, capsys):
    ugly, pretty = tmp_path / "u.qvaf", tmp_path / "p.qvaf"
    ugly.write_text(UGLY)
    pretty.write_text(PRETTY)
    assert main(["fmt", "--check", str(pretty)]) == 0
    assert main(["fmt", "--check", str(ugly), str(pretty)]) == 1
    out = capsys.readouterr().out
    assert f"would reformat {ugly}" in out and f"would reformat {pretty}" not in out
    assert "1 of 2 files would be reformatted" in out
    assert ugly.read_text() == UGLY


def test_fmt_write_is_atomic_and_keeps_mode(tmp_path, capsys):
    path = tmp_path / "a.qvaf"
    path.write_text(UGLY)
    os.chmod(path, 0o640)
    assert main(["fmt", "--write", str(path)]) == 0
    assert path.read_text() == PRETTY
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert sorted(os.listdir(tmp_path)) == ["a.qvaf"]  # no temporary file left behind
    assert main(["fmt", "--check", str(path)]) == 0


def test_fmt_write_does_not_touch_a_file_with_errors(tmp_path, capsys):
    path = tmp_path / "a.qvaf"
    path.write_text("ansatz a {\n    rz(x +)\n}\n")
    assert main(["fmt", "--write", str(path)]) == 1
    assert "a.qvaf:2:11: error: unexpected ')'" in capsys.readouterr().err
    assert path.read_text() == "ansatz a {\n    rz(x +)\n}\n"


def test_fmt_missing_file_and_directory(tmp_path, capsys):
    assert main(["fmt", str(tmp_path / "nope.qvaf")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["fmt", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err


def test_fmt_check_and_write_are_exclusive(capsys):
    assert main(["fmt", "--check", "--write", "a.qvaf"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
