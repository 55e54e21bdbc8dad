"""The specs library: each file loads clean and its circuit is the one DESIGN.md section 3 names."""

from __future__ import annotations

import math
import os

import pytest

from qvaf.dsl import ast, bind_args, eval_const, eval_int, load_program
from qvaf.dsl.consteval import ConstError

SPEC_DIR = os.path.join(os.path.dirname(__file__), "..", "specs")


def spec(*parts):
    return os.path.join(SPEC_DIR, *parts)


def unroll(ansatz: ast.Ansatz, **args):
    """An independent little interpreter: the gate sequence with loop variables substituted.

    Returns a list of (gate name, [angle description]) where an angle is described by the
    names it reads (after substituting loop variables into indices).
    """
    env = bind_args(ansatz.args, args, None)
    out = []

    def describe(expr, env):
        if isinstance(expr, ast.Index):
            return f"{expr.base.id}[{','.join(str(eval_int(i, env)) for i in expr.indices)}]"
        if isinstance(expr, ast.Name):
            return expr.id
        if isinstance(expr, ast.Num):
            return repr(expr.value)
        if isinstance(expr, ast.BinOp):
            return f"({describe(expr.left, env)}{expr.op}{describe(expr.right, env)})"
        if isinstance(expr, ast.Call):
            return f"{expr.func}({','.join(describe(a, env) for a in expr.args)})"
        if isinstance(expr, ast.UnaryOp):
            return f"{expr.op}{describe(expr.operand, env)}"
        raise AssertionError(expr)

    def run(stmts, env):
        for s in stmts:
            if isinstance(s, ast.Gate):
                out.append((s.name, [describe(a, env) for a in s.args]))
            elif isinstance(s, ast.Encode):
                axis = env.get(s.axis, s.axis)
                out.append((f"encode_{axis}", [describe(s.angle, env)]))
            elif isinstance(s, ast.For):
                for v in range(eval_int(s.start, env), eval_int(s.stop, env)):
                    run(s.body, {**env, s.var: v})
            elif isinstance(s, ast.Measure):
                out.append(("measure", [s.observable]))

    run(ansatz.body, env)
    return out


def decls(ansatz, **args):
    env = bind_args(ansatz.args, args, None)
    return {
        s.name: (tuple(eval_int(d, env) for d in s.shape), s.trainable, s.random, s.grow)
        for s in ansatz.body
        if isinstance(s, ast.ParamDecl)
    }


def data(l):
    return f"((w[{l}]*x)+b[{l}])"


@pytest.mark.parametrize("name", ["pz", "rpz", "px", "real", "mix", "daruan"])
def test_every_ansatz_spec_loads_clean(name):
    program = load_program(spec("ansatz", f"{name}.qvaf"))
    assert list(program.ansatze) == [name] and program.warnings == ()
    text = program.sources[spec("ansatz", f"{name}.qvaf")]
    assert text.startswith("# "), "each spec opens with a comment saying what it is"


def test_pz_circuit_and_shapes():
    a = load_program(spec("ansatz", "pz.qvaf")).ansatze["pz"]
    assert unroll(a, reps=2) == [
        ("h", []),
        ("rz", ["theta[0,0]"]), ("ry", ["theta[0,1]"]), ("rz", [data(0)]),
        ("rz", ["theta[1,0]"]), ("ry", ["theta[1,1]"]), ("rz", [data(1)]),
        ("rz", ["theta[2,0]"]), ("ry", ["theta[2,1]"]),
        ("measure", ["z"]),
    ]
    d = decls(a, reps=3)
    assert d["theta"][:3] == ((4, 2), True, True)  # qkan: theta (out, in, reps + 1, 2)
    assert d["w"][:3] == ((3,), False, False) and d["b"][:3] == ((3,), False, False)


def test_rpz_circuit_and_shapes():
    a = load_program(spec("ansatz", "rpz.qvaf")).ansatze["rpz"]
    assert unroll(a, reps=2) == [
        ("h", []),
        ("ry", ["theta[0]"]), ("rz", [data(0)]),
        ("ry", ["theta[1]"]), ("rz", [data(1)]),
        ("ry", ["theta[2]"]),
        ("measure", ["z"]),
    ]
    d = decls(a, reps=3)
    assert d["theta"][:3] == ((4,), True, True)  # qkan: theta (out, in, reps + 1, 1)
    assert d["w"][:3] == ((3,), False, False)
    assert d["b"][:3] == ((3,), True, False)  # the reference trains the pre-activation bias


def test_px_circuit():
    a = load_program(spec("ansatz", "px.qvaf")).ansatze["px"]
    assert unroll(a, reps=1) == [
        ("h", []), ("rz", ["theta[0]"]), ("rx", [f"acos({data(0)})"]), ("rz", ["theta[1]"]),
        ("measure", ["z"]),
    ]
    assert decls(a, reps=3)["theta"][0] == (4,)


def test_real_circuit():
    a = load_program(spec("ansatz", "real.qvaf")).ansatze["real"]
    assert unroll(a, reps=2) == [
        ("h", []),
        ("x", []), ("ry", ["theta[0]"]), ("z", []), ("ry", [data(0)]),
        ("x", []), ("ry", ["theta[1]"]), ("z", []), ("ry", [data(1)]),
        ("measure", ["z"]),
    ]
    assert decls(a, reps=3)["theta"][0] == (3,)  # qkan: theta (out, in, reps, 1)


def test_mix_circuit():
    a = load_program(spec("ansatz", "mix.qvaf")).ansatze["mix"]
    assert unroll(a, reps=1) == [
        ("h", []), ("rz", ["theta[0,0]"]), ("rx", ["theta[0,1]"]), ("ry", [data(0)]),
        ("rz", ["theta[1,0]"]), ("rx", ["theta[1,1]"]), ("measure", ["z"]),
    ]


def test_daruan_is_pz_with_trainable_preprocessing_and_exact_growth():
    a = load_program(spec("ansatz", "daruan.qvaf")).ansatze["daruan"]
    pz = load_program(spec("ansatz", "pz.qvaf")).ansatze["pz"]
    as_pz = [(g.replace("encode_z", "rz"), args) for g, args in unroll(a, reps=3)]
    assert as_pz == unroll(pz, reps=3)
    assert unroll(a, reps=1, axis="y")[3] == ("encode_y", [data(0)])
    d = decls(a)
    assert d["w"][:3] == ((3,), True, False) and d["b"][:3] == ((3,), True, False)
    # new slots get theta = 0, w = 0, b = 0: the new layer is RZ(0) RY(0) S(0) = identity
    assert all(eval_const(d[n][3]) == 0 for n in ("theta", "w", "b"))


def _widths(model, **args):
    env = bind_args(model.args, args, None)
    return [eval_int(layer.width, env) for layer in model.body if not isinstance(layer, ast.Comment)]


def test_example_models():
    p = load_program(spec("models", "regression.qvaf"))
    assert _widths(p.models["regression"]) == [2, 5, 1]
    assert [l.ansatz for l in p.models["regression"].body[1:]] == ["pz", "pz"]
    p = load_program(spec("models", "digits.qvaf"))
    assert _widths(p.models["digits"]) == [64, 8, 10]
    p = load_program(spec("models", "hqkan.qvaf"))
    m = p.models["hqkan_ffn"]
    assert _widths(m) == [64, 12, 12, 64]
    d = 64
    assert _widths(m)[1] == math.ceil(math.log2(d)) * 2  # Linear(d -> ceil(log2 d) * k)
    kan = m.body[2]
    assert kan.options == (
        ast.Option("group", (ast.Name("group"),)),  # the argument group, 3 by default
        ast.Option("base", ("silu",)),
        ast.Option("postact", ("weight", "bias")),
    )


# ----------------------------------------------------------------------------- consteval


def _e(text):
    from qvaf.dsl import parse

    return parse(f"ansatz a {{ rz({text}) }}").items[0].body[0].args[0]


@pytest.mark.parametrize(
    "text, value",
    [
        ("reps + 1", 4), ("2 ** 10", 1024), ("7 / 2", 3.5), ("-2 ** 2", -4), ("2 ** -1", 0.5),
        ("pi / 2", math.pi / 2), ("acos(0)", math.pi / 2), ("sqrt(16)", 4.0), ("1e-3 * 2", 0.002),
    ],
)
def test_eval_const(text, value):
    result = eval_const(_e(text), {"reps": 3})
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("x + 1", "the edge input 'x' is not a compile-time constant"),
        ("theta[0]", "'theta[...]' is not a compile-time constant"),
        ("q", "'q' is not a compile-time constant"),
        ("1 / 0", "division by zero in a constant expression"),
        ("log(0)", "log(0.0) is outside the function's domain"),
        ("exp(1000)", "exp(1000.0) is outside the function's domain"),
        ("foo(1)", "unknown function 'foo'"),
        ("(-8) ** 0.5", "negative number raised to a fractional power"),
        ("ax + 1", "axis value 'z' used as a number"),
    ],
)
def test_eval_const_errors(text, message):
    with pytest.raises(ConstError) as info:
        eval_const(_e(text), {"ax": "z"})
    assert info.value.message == message and info.value.span is not None


def test_eval_int():
    assert eval_int(_e("reps * 2"), {"reps": 3}) == 6
    with pytest.raises(ConstError, match="expected a compile-time integer, got 3.0"):
        eval_int(_e("6 / 2"))


def test_bind_args():
    a = load_program(spec("ansatz", "daruan.qvaf")).ansatze["daruan"]
    assert bind_args(a.args, {}, None) == {"reps": 3, "axis": "z"}
    assert bind_args(a.args, {"reps": 5, "axis": "x"}, None) == {"reps": 5, "axis": "x"}
    kw = (ast.KwArg(None, ast.Name("d")), ast.KwArg("axis", ast.Name("y")))
    assert bind_args(a.args, kw, None, env={"d": 2}) == {"reps": 2, "axis": "y"}
    import numpy as np

    assert bind_args(a.args, {"reps": np.int64(4)}, None)["reps"] == 4
    with pytest.raises(ConstError, match="argument 'reps' is an int, got 2.5"):
        bind_args(a.args, {"reps": 2.5}, None)
    with pytest.raises(ConstError, match="argument 'reps' is an int, got True"):
        bind_args(a.args, {"reps": True}, None)
    with pytest.raises(ConstError, match="argument 'axis' is an axis"):
        bind_args(a.args, {"axis": "w"}, None)
    with pytest.raises(ConstError, match="unknown argument 'rep'; expected one of: reps, axis"):
        bind_args(a.args, {"rep": 2}, None)
    with pytest.raises(ConstError, match="argument 'reps' given twice"):
        bind_args(a.args, (ast.KwArg(None, ast.Num(1, True)), ast.KwArg("reps", ast.Num(2, True))), None)
    with pytest.raises(ConstError, match="positional argument after a keyword argument"):
        bind_args(a.args, (ast.KwArg("axis", ast.Name("x")), ast.KwArg(None, ast.Num(2, True))), None)
    f = (ast.Arg("s", "float", None),)
    assert bind_args(f, {"s": 2}, None) == {"s": 2.0}
    with pytest.raises(ConstError, match="missing argument 's' \\(float\\)"):
        bind_args(f, {}, None)


def test_public_names_stay_functions_after_use():
    import qvaf.dsl as dsl

    load_program(spec("models", "regression.qvaf"))  # imports every dsl submodule lazily used
    for name in dsl.__all__:
        assert getattr(dsl, name) is not None
    for name in ("parse", "check", "load_program", "program_from_text", "format_module",
                 "bind_args", "eval_const", "eval_int"):
        assert callable(getattr(dsl, name)) and not isinstance(getattr(dsl, name), type(dsl))
