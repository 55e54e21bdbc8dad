"""Golden diagnostics: each mistake gives exactly this message at exactly this line and column."""

from __future__ import annotations

import os

import pytest

from qvaf.dsl import SpecError, check, load_program, program_from_text

#: an ansatz the model cases use; model snippets are appended after it (9 lines)
PZ = """ansatz pz(reps: int = 2) {
    param theta[reps + 1] ~ normal(0, 1)
    for l in 0..reps {
        ry(theta[l])
        rz(x)
    }
    ry(theta[reps])
    measure z
}
"""
OFFSET = PZ.count("\n")

E, W = "error", "warning"

# name -> (source, uses the PZ prelude, [(severity, line, col, message), ...] in order)
# lines of model cases are counted from the first line after the prelude.
CASES = {
    "unknown gate with did-you-mean": (
        "ansatz a {\n    rzz(x)\n    measure z\n}\n", False,
        [(E, 2, 5, "unknown gate 'rzz'; did you mean 'rz'?")],
    ),
    "unknown gate, list of gates": (
        "ansatz a {\n    rz(x)\n    foo\n    measure z\n}\n", False,
        [(E, 3, 5, "unknown gate 'foo'")],
    ),
    "gate arity": (
        "ansatz a {\n    rz(x, 1)\n    measure z\n}\n", False,
        [(E, 2, 5, "gate 'rz' takes 1 angle, got 2")],
    ),
    "gate without angles given one": (
        "ansatz a {\n    h(x)\n    measure z\n}\n", False,
        [(E, 2, 5, "gate 'h' takes no angle, got 1")],
    ),
    "unknown name with did-you-mean": (
        "ansatz a {\n    param theta[2] ~ normal(0, 1)\n    rz(thetaa[0] * x)\n    measure z\n}\n",
        False,
        [(W, 2, 5, "'theta' is declared but never used"),
         (E, 3, 8, "unknown name 'thetaa'; did you mean 'theta'?")],
    ),
    "duplicate definition": (
        "ansatz a {\n    rz(x)\n    measure z\n}\nansatz a {\n    rx(x)\n    measure z\n}\n", False,
        [(E, 5, 1, "duplicate name 'a': already defined at t.qvaf:1:1")],
    ),
    "duplicate declaration": (
        "ansatz a {\n    param t = 0.0\n    param t = 1.0\n    rz(t * x)\n    measure z\n}\n", False,
        [(E, 3, 5, "duplicate name 't': already declared on line 2")],
    ),
    "duplicate argument": (
        "ansatz a(n: int = 1, n: int = 2) {\n    rz(x)\n    measure z\n}\n", False,
        [(E, 1, 22, "duplicate argument 'n'")],
    ),
    "index out of range in a loop": (
        "ansatz a(reps: int = 2) {\n    param theta[reps] ~ normal(0, 1)\n"
        "    for l in 0..reps + 1 {\n        rz(theta[l] * x)\n    }\n    measure z\n}\n", False,
        [(E, 4, 12, "index 2 is out of range for axis 0 of 'theta' with size 2 (at l = 2)")],
    ),
    "index out of range, constant": (
        "ansatz a {\n    param theta[2, 2] ~ normal(0, 1)\n    rz(theta[0, 2] * x)\n    measure z\n}\n",
        False,
        [(E, 3, 8, "index 2 is out of range for axis 1 of 'theta' with size 2")],
    ),
    "loop bound not an integer": (
        "ansatz a {\n    for l in 0..2.5 {\n        rz(x)\n    }\n    measure z\n}\n", False,
        [(E, 2, 17, "a loop bound must be a compile-time integer, got 2.5")],
    ),
    "shape uses a float argument": (
        "ansatz a(s: float = 1.0) {\n    param t[s] = 0.0\n    rz(t[0] * x)\n    measure z\n}\n", False,
        [(E, 2, 13, "float argument 's' used in a shape, which must be an integer")],
    ),
    "shape is a float expression": (
        "ansatz a(reps: int = 4) {\n    param t[reps / 2] = 0.0\n    rz(t[0] * x)\n    measure z\n}\n",
        False,
        [(E, 2, 13, "a shape must be a compile-time integer, got 2.0")],
    ),
    "x in a shape": (
        "ansatz a {\n    param t[x] = 0.0\n    rz(t[0] * x)\n    measure z\n}\n", False,
        [(E, 2, 13, "the edge input 'x' cannot be used in a shape")],
    ),
    "x in a loop bound": (
        "ansatz a {\n    for l in 0..x {\n        rz(x)\n    }\n    measure z\n}\n", False,
        [(E, 2, 17, "the edge input 'x' cannot be used in a loop bound")],
    ),
    "x in an initialiser": (
        "ansatz a {\n    param t = x\n    rz(t * x)\n    measure z\n}\n", False,
        [(E, 2, 15, "the edge input 'x' cannot be used in an initial value")],
    ),
    "x in a model": (
        "model m {\n    input 2\n    kan x using pz\n}\n", True,
        [(E, 3, 9, "the edge input 'x' cannot be used in a layer width")],
    ),
    "param in a shape": (
        "ansatz a {\n    param n = 2.0\n    param t[n] = 0.0\n    rz(t[0] * n * x)\n    measure z\n}\n",
        False,
        [(E, 3, 13, "'n' is a per-edge param and cannot be used in a shape")],
    ),
    "declared param never used": (
        "ansatz a {\n    param theta[2] ~ normal(0, 1)\n    rz(x)\n    measure z\n}\n", False,
        [(W, 2, 5, "'theta' is declared but never used")],
    ),
    "ansatz that ignores x": (
        "ansatz a {\n    h\n    measure z\n}\n", False,
        [(W, 1, 1, "ansatz 'a' never uses the edge input 'x'")],
    ),
    "measure missing": (
        "ansatz a {\n    rz(x)\n}\n", False,
        [(E, 1, 1, "ansatz 'a' has no 'measure'")],
    ),
    "measure not last": (
        "ansatz a {\n    measure z\n    rz(x)\n}\n", False,
        [(E, 2, 5, "'measure' must be the last statement of the ansatz")],
    ),
    "two measures": (
        "ansatz a {\n    rz(x)\n    measure z\n    measure x\n}\n", False,
        [(E, 4, 5, "more than one 'measure' in ansatz 'a'")],
    ),
    "measure inside a loop": (
        "ansatz a {\n    for l in 0..2 {\n        rz(x)\n        measure z\n    }\n}\n", False,
        [(E, 4, 9, "'measure' cannot be inside a loop")],
    ),
    "unknown observable": (
        "ansatz a {\n    rz(x)\n    measure zz\n}\n", False,
        [(E, 3, 5, "unknown observable 'zz'; did you mean 'z'?")],
    ),
    "reserved name": (
        "ansatz a {\n    param weight = 1.0\n    rz(weight * x)\n    measure z\n}\n", False,
        [(E, 2, 5, "'weight' is reserved for the arrays a kan layer adds")],
    ),
    "grow on a literal const": (
        "ansatz a(reps: int = 2) {\n    const w[reps] = 1.0 grow 0.0\n    for l in 0..reps {\n"
        "        rz(w[l] * x)\n    }\n    measure z\n}\n", False,
        [(E, 2, 30, "'w' is a compile-time constant (a const with a literal value) and cannot grow")],
    ),
    "unknown initialiser": (
        "ansatz a {\n    param t ~ norml(0, 1)\n    rz(t * x)\n    measure z\n}\n", False,
        [(E, 2, 13, "unknown initialiser 'norml'; did you mean 'normal'?")],
    ),
    "initialiser arity": (
        "ansatz a {\n    param t ~ normal(0)\n    rz(t * x)\n    measure z\n}\n", False,
        [(E, 2, 13, "initialiser 'normal' takes 2 arguments (mu, sigma), got 1")],
    ),
    "random initialiser after '='": (
        "ansatz a {\n    param t = normal(0, 1)\n    rz(t * x)\n    measure z\n}\n", False,
        [(E, 2, 15, "'normal(...)' is a random initialiser")],
    ),
    "uniform bounds reversed": (
        "ansatz a {\n    param t ~ uniform(1, 0)\n    rz(t * x)\n    measure z\n}\n", False,
        [(E, 2, 13, "uniform(a, b) needs a <= b, got a = 1 and b = 0")],
    ),
    "negative sigma": (
        "ansatz a {\n    param t ~ normal(0, -1)\n    rz(t * x)\n    measure z\n}\n", False,
        [(E, 2, 25, "normal(mu, sigma) needs sigma >= 0, got -1")],
    ),
    "unknown function": (
        "ansatz a {\n    rz(sinh(x))\n    measure z\n}\n", False,
        [(E, 2, 8, "unknown function 'sinh'; did you mean 'sin'?")],
    ),
    "function arity": (
        "ansatz a {\n    rz(sin(x, 1))\n    measure z\n}\n", False,
        [(E, 2, 8, "function 'sin' takes 1 argument, got 2")],
    ),
    "initialiser used as a function": (
        "ansatz a {\n    rz(normal(0, 1) * x)\n    measure z\n}\n", False,
        [(E, 2, 8, "'normal(...)' is an initialiser, not a function")],
    ),
    "array used without index": (
        "ansatz a {\n    param t[2] = 0.0\n    rz(t * x)\n    measure z\n}\n", False,
        [(E, 3, 8, "'t' is an array with 1 axis; index it")],
    ),
    "wrong number of indices": (
        "ansatz a {\n    param t[2, 2] = 0.0\n    rz(t[0] * x)\n    measure z\n}\n", False,
        [(E, 3, 8, "'t' has 2 axes but 1 index given")],
    ),
    "scalar indexed": (
        "ansatz a {\n    param t = 0.0\n    rz(t[0] * x)\n    measure z\n}\n", False,
        [(E, 3, 8, "'t' is a scalar and cannot be indexed")],
    ),
    "param as an index": (
        "ansatz a {\n    param t[2] = 0.0\n    param u[2] = 0.0\n    rz(t[u[0]] * x)\n    measure z\n}\n",
        False,
        [(W, 3, 5, "'u' is declared but never used"),
         (E, 4, 10, "'u' is a per-edge param and cannot be used in an index")],
    ),
    "declaration inside a loop": (
        "ansatz a {\n    for l in 0..2 {\n        param t = 0.0\n        rz(t * x)\n    }\n    measure z\n}\n",
        False,
        [(E, 3, 9, "declarations must be at the top level of the ansatz body, not inside a loop")],
    ),
    "use before declaration": (
        "ansatz a {\n    rz(t * x)\n    param t = 0.0\n    measure z\n}\n", False,
        [(E, 2, 8, "'t' is used before its declaration on line 3"),
         (W, 3, 5, "'t' is declared but never used")],
    ),
    "unknown argument type": (
        "ansatz a(n: integer = 2) {\n    rz(x)\n    measure z\n}\n", False,
        [(E, 1, 10, "unknown argument type 'integer'; did you mean 'int'?")],
    ),
    "default of the wrong type": (
        "ansatz a(n: int = 2.5) {\n    rz(x)\n    measure z\n}\n", False,
        [(E, 1, 19, "argument 'n' is an int, got 2.5")],
    ),
    "encode on a non-axis": (
        "ansatz a {\n    encode(x, w)\n    measure z\n}\n", False,
        [(E, 2, 5, "encode() axis must be x, y, z or an axis argument, got 'w'")],
    ),
    "axis argument used as a number": (
        "ansatz a(ax: axis = z) {\n    rz(ax * x)\n    measure z\n}\n", False,
        [(E, 2, 8, "axis argument 'ax' used as a number")],
    ),
    "keyword as a name": (
        "ansatz a(for: int = 2) {\n    rz(x)\n    measure z\n}\n", False,
        [(E, 1, 10, "'for' is a keyword and cannot name an argument")],
    ),
    "x as an argument name": (
        "ansatz a(x: int = 2) {\n    rz(x)\n    measure z\n}\n", False,
        [(E, 1, 10, "'x' is the edge input and cannot name an argument")],
    ),
    "loop variable shadows an argument": (
        "ansatz a(l: int = 2) {\n    for l in 0..2 {\n        rz(x)\n    }\n    measure z\n}\n", False,
        [(E, 2, 5, "loop variable 'l' shadows an existing name")],
    ),
    "division by zero": (
        "ansatz a {\n    param t[2 / 0] = 0.0\n    rz(t[0] * x)\n    measure z\n}\n", False,
        [(E, 2, 13, "division by zero in a constant expression")],
    ),
    "model without input": (
        "model m {\n    kan 2 using pz\n}\n", True,
        [(E, 2, 5, "model 'm' must start with 'input N'")],
    ),
    "layer width zero": (
        "model m {\n    input 2\n    kan 0 using pz\n}\n", True,
        [(E, 3, 9, "layer width must be a positive integer, got 0")],
    ),
    "unknown ansatz": (
        "model m {\n    input 2\n    kan 2 using pzz\n}\n", True,
        [(E, 3, 5, "unknown ansatz 'pzz'; did you mean 'pz'?")],
    ),
    "unknown keyword argument": (
        "model m {\n    input 2\n    kan 2 using pz(rep = 2)\n}\n", True,
        [(E, 3, 20, "in pz(...): unknown argument 'rep'; expected one of: reps")],
    ),
    "too many arguments": (
        "model m {\n    input 2\n    kan 2 using pz(2, 3)\n}\n", True,
        [(E, 3, 23, "in pz(...): too many arguments: takes 1, got 2")],
    ),
    "argument of the wrong type": (
        "model m {\n    input 2\n    kan 2 using pz(reps = 1.5)\n}\n", True,
        [(E, 3, 20, "in pz(...): argument 'reps' is an int, got 1.5")],
    ),
    "instantiation makes a negative shape": (
        "model m {\n    input 2\n    kan 2 using pz(reps = -2)\n}\n", True,
        [(E, 3, 20, "ansatz 'pz' with reps = -2: shape of 'theta' has size -1 on axis 0; every size must be "
                    "at least 1 (t.qvaf:2:17)")],
    ),
    "instantiation makes an empty shape, reported at the argument": (
        "ansatz w0(reps: int = 2) {\n    const w[reps] = 1.0\n    for l in 0..reps {\n        rz(w[l] * x)\n"
        "    }\n    measure z\n}\nmodel m {\n    input 2\n    kan 2 using w0(3)\n    kan 1 using w0(reps = 0)\n}\n",
        False,
        [(E, 11, 20, "ansatz 'w0' with reps = 0: shape of 'w' has size 0 on axis 0; every size must be "
                     "at least 1 (t.qvaf:2:13)")],
    ),
    "an empty shape with the default arguments": (
        "ansatz a(n: int = 0) {\n    param t[n + 1, n] ~ normal(0, 1)\n    rz(x)\n    measure z\n}\n", False,
        [(W, 2, 5, "'t' is declared but never used"),
         (E, 2, 20, "shape of 't' has size 0 on axis 1; every size must be at least 1")],
    ),
    "unknown option": (
        "model m {\n    input 2\n    kan 2 using pz { bse silu }\n}\n", True,
        [(E, 3, 22, "unknown option 'bse'; did you mean 'base'?")],
    ),
    "bad base function": (
        "model m {\n    input 2\n    kan 2 using pz { base swish }\n}\n", True,
        [(E, 3, 22, "option 'base' takes one of silu, gelu, tanh, relu, identity, none; got swish")],
    ),
    "bad postact": (
        "model m {\n    input 2\n    kan 2 using pz { postact scale }\n}\n", True,
        [(E, 3, 22, "option 'postact' takes 'weight', 'bias' or both; got scale")],
    ),
    "group zero": (
        "model m {\n    input 2\n    kan 2 using pz { group 0 }\n}\n", True,
        [(E, 3, 28, "group count must be a positive integer, got 0")],
    ),
    "group larger than the input width": (
        "model m {\n    input 2\n    kan 2 using pz { group 4 }\n}\n", True,
        [(W, 3, 22, "group 4 exceeds the layer's input width 2; groups 2..3 are never used")],
    ),
    "option twice": (
        "model m {\n    input 2\n    kan 2 using pz { base silu; base gelu }\n}\n", True,
        [(E, 3, 33, "option 'base' given twice")],
    ),
    "input twice": (
        "model m {\n    input 2\n    linear 3\n    input 3\n}\n", False,
        [(E, 4, 5, "'input' may appear only once, as the first layer")],
    ),
    "model with no layers": (
        "model m {\n    input 2\n}\n", False,
        [(E, 1, 1, "model 'm' has no layers after 'input'")],
    ),
    "empty model": (
        "model m {\n}\n", False,
        [(E, 1, 1, "model 'm' is empty")],
    ),
    "model used as an ansatz": (
        "model m {\n    input 2\n    kan 2 using m\n}\n", False,
        [(E, 3, 5, "'m' is a model, not an ansatz")],
    ),
    "missing required argument": (
        "model m {\n    input 2\n    kan 2 using b\n}\nansatz b(n: int) {\n    rz(x)\n    measure z\n}\n",
        False,
        [(E, 3, 5, "in b(...): missing argument 'n' (int)")],
    ),
    "index range checked at instantiation": (
        "ansatz b(n: int) {\n    param t[n] = 0.0\n    for l in 0..n + 1 {\n        rz(t[l] * x)\n"
        "    }\n    measure z\n}\nmodel m(k: int = 3) {\n    input 2\n    kan 2 using b(n = k)\n}\n",
        False,
        [(E, 10, 5, "ansatz 'b' with n = 3: index 3 is out of range for axis 0 of 't' "
                    "with size 3 (at l = 3) (t.qvaf:4:12)")],
    ),
    "axis argument of the wrong kind": (
        "model m {\n    input 2\n    kan 2 using d(axis = 3)\n}\n"
        "ansatz d(axis: axis = z) {\n    encode(x, axis)\n    measure z\n}\n", False,
        [(E, 3, 19, "in d(...): argument 'axis' is an axis (x, y or z), got 3")],
    ),
    "syntax error, unexpected token": (
        "ansatz a {\n    rz(x +)\n    measure z\n}\n", False,
        [(E, 2, 11, "unexpected ')'; expected '(', '+', '-', a name, a number or an integer")],
    ),
    "syntax error, two statements on a line": (
        "ansatz a {\n    rz(x) ry(x)\n    measure z\n}\n", False,
        [(E, 2, 11, "unexpected 'ry'; expected ';', '}' or a newline")],
    ),
    "syntax error, bad character": (
        "ansatz a {\n    rz(x $ 2)\n    measure z\n}\n", False,
        [(E, 2, 10, "unexpected character '$'")],
    ),
    "syntax error, unclosed block": (
        "ansatz a {\n    rz(x)\n", False,
        [(E, 1, 10, "unexpected end of file: this '{' is never closed")],
    ),
    "syntax error, unclosed parenthesis": (
        "ansatz a {\n    rz(x\n    h\n    measure z\n}\n", False,
        [(E, 2, 7, "this '(' is not closed before line 3 ('h' there is unexpected)")],
    ),
    "syntax error, unclosed bracket before the block's end": (
        "ansatz a {\n    rz(x)\n    param t[2\n}\n", False,
        [(E, 3, 12, "this '[' is not closed before line 4 ('}' there is unexpected)")],
    ),
    "number too large": (
        "ansatz a {\n    rz(1e999 * x)\n    measure z\n}\n", False,
        [(E, 2, 8, "number 1e999 is too large for a 64-bit float")],
    ),
}


def _found(source: str):
    return [(d.severity, d.span.line, d.span.col, d.message) for d in check("t.qvaf", source)]


@pytest.mark.parametrize("name", list(CASES))
def test_golden_diagnostic(name):
    source, prelude, expected = CASES[name]
    if prelude:
        source = PZ + source
        expected = [(sev, line + OFFSET, col, msg) for sev, line, col, msg in expected]
    assert _found(source) == expected


def test_there_are_at_least_25_distinct_errors():
    messages = {m for _, _, exp in CASES.values() for sev, _, _, m in exp if sev == "error"}
    assert len(messages) >= 25


def test_rendered_diagnostic_has_caret_and_help():
    (d,) = check("t.qvaf", "ansatz a {\n    rzz(theta[0])\n    rz(x)\n    measure z\n}\n")[:1]
    assert d.render().splitlines() == [
        "t.qvaf:2:5: error: unknown gate 'rzz'; did you mean 'rz'?",
        "        rzz(theta[0])",
        "        ^~~~~~~~~~~~~",
    ]
    (d,) = check("t.qvaf", "ansatz a {\n    rz(x)\n}\n")
    assert d.render().splitlines()[-1] == "    help: end the body with 'measure z'"


def test_every_error_in_a_file_is_reported():
    source = (
        "ansatz a {\n    rzz(x)\n    rz(y * x, 2)\n    measure q\n}\n"
        "model m {\n    input 0\n    kan 3 using nope { base swish }\n}\n"
    )
    with pytest.raises(SpecError) as info:
        program_from_text(source, "t.qvaf")
    found = [(d.span.line, d.span.col, d.message) for d in info.value.diagnostics]
    assert found == [
        (2, 5, "unknown gate 'rzz'; did you mean 'rz'?"),
        (3, 5, "gate 'rz' takes 1 angle, got 2"),
        (3, 8, "unknown name 'y'"),
        (4, 5, "unknown observable 'q'"),
        (7, 11, "layer width must be a positive integer, got 0"),
        (8, 5, "unknown ansatz 'nope'"),
        (8, 24, "option 'base' takes one of silu, gelu, tanh, relu, identity, none; got swish"),
    ]
    assert str(info.value).endswith("7 errors")


def test_warnings_do_not_fail_loading():
    program = program_from_text("ansatz a {\n    param t = 1.0\n    rz(x)\n    measure z\n}\n")
    assert [w.message for w in program.warnings] == ["'t' is declared but never used"]


# ----------------------------------------------------------------------------- imports


def _write(folder, name, text):
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def test_import_cycle_is_reported_at_the_import(tmp_path):
    a = _write(tmp_path, "a.qvaf", 'import "b.qvaf"\nansatz ca {\n    rz(x)\n    measure z\n}\n')
    _write(tmp_path, "b.qvaf", 'import "a.qvaf"\nansatz cb {\n    rz(x)\n    measure z\n}\n')
    (d,) = check(a)
    assert (d.span.file, d.span.line, d.span.col) == (os.path.join(tmp_path, "b.qvaf"), 1, 1)
    assert d.message == f"import cycle: {a} -> {os.path.join(tmp_path, 'b.qvaf')} -> {a}"


def test_self_import_is_a_cycle(tmp_path):
    a = _write(tmp_path, "a.qvaf", 'import "a.qvaf"\n')
    (d,) = check(a)
    assert d.message == f"import cycle: {a} -> {a}"


def test_missing_import(tmp_path):
    a = _write(tmp_path, "m/a.qvaf", 'import "../nope.qvaf"\n')
    (d,) = check(a)
    assert (d.span.line, d.span.col) == (1, 1)
    assert d.message == f"cannot import '../nope.qvaf': no file '{os.path.join(tmp_path, 'nope.qvaf')}'"
    assert d.hint == "import paths are relative to the importing file"


def test_import_of_a_directory(tmp_path):
    os.makedirs(tmp_path / "dir.qvaf")
    a = _write(tmp_path, "a.qvaf", 'import "dir.qvaf"\n')
    (d,) = check(a)
    assert d.message == "imported file 'dir.qvaf' is a directory, not a .qvaf file"


def test_diamond_imports_load_once_and_errors_in_imports_are_reported(tmp_path):
    _write(tmp_path, "lib/base.qvaf", "ansatz base {\n    rz(x)\n    measure z\n}\n")
    _write(tmp_path, "lib/l.qvaf", 'import "base.qvaf"\n')
    _write(tmp_path, "lib/r.qvaf", 'import "base.qvaf"\n')
    top = _write(tmp_path, "top.qvaf", 'import "lib/l.qvaf"\nimport "lib/r.qvaf"\n'
                 "model m {\n    input 1\n    kan 1 using base\n}\n")
    program = load_program(top)
    assert list(program.ansatze) == ["base"] and list(program.models) == ["m"]
    assert len(program.sources) == 4
    _write(tmp_path, "lib/base.qvaf", "ansatz base {\n    rzz(x)\n    measure z\n}\n")
    (d,) = check(top)
    assert d.span.file == os.path.join(tmp_path, "lib", "base.qvaf")
    assert d.message == "unknown gate 'rzz'; did you mean 'rz'?"


def test_name_defined_in_two_files(tmp_path):
    _write(tmp_path, "one.qvaf", "ansatz a {\n    rz(x)\n    measure z\n}\n")
    top = _write(tmp_path, "top.qvaf", 'import "one.qvaf"\nansatz a {\n    rx(x)\n    measure z\n}\n')
    (d,) = check(top)
    assert (d.span.file, d.span.line) == (top, 2)
    assert d.message == f"duplicate name 'a': already defined at {os.path.join(tmp_path, 'one.qvaf')}:1:1"


def test_import_after_definition(tmp_path):
    _write(tmp_path, "one.qvaf", "ansatz b {\n    rz(x)\n    measure z\n}\n")
    top = _write(tmp_path, "top.qvaf", 'ansatz a {\n    rx(x)\n    measure z\n}\nimport "one.qvaf"\n')
    (d,) = check(top)
    assert (d.span.line, d.message) == (5, "imports must come before ansatz and model definitions")


def test_unreadable_top_file(tmp_path):
    (d,) = check(tmp_path / "nope.qvaf")
    assert d.span is None and d.message == f"cannot read '{tmp_path / 'nope.qvaf'}': no such file"
    with pytest.raises(SpecError, match="no such file"):
        load_program(tmp_path / "nope.qvaf")
    bad = tmp_path / "bad.qvaf"
    bad.write_bytes(b"ansatz a {\n  rz(\xff)\n}\n")
    (d,) = check(bad)
    assert (d.span.line, d.span.col) == (2, 6)
    assert d.message == f"'{bad}' is not valid UTF-8 (byte 0xff at offset 16)"


# ----------------------------------------------------------------------------- syntax recovery


def test_several_syntax_errors_are_reported_together():
    source = (
        "ansatz a {\n    rz(x +)\n    ry(x)\n    rx(x) h\n    param t = \n    measure z\n}\n"
    )
    with pytest.raises(SpecError) as info:
        program_from_text(source, "t.qvaf")
    found = [(d.span.line, d.span.col, d.message) for d in info.value.diagnostics]
    assert found == [
        (2, 11, "unexpected ')'; expected '(', '+', '-', a name, a number or an integer"),
        (4, 11, "unexpected 'h'; expected ';', '}' or a newline"),
        (5, 15, "unexpected end of line; expected '(', '+', '-', a name, a number or an integer"),
    ]
    assert str(info.value).endswith("3 errors")
    assert _found(source) == [(E, line, col, msg) for line, col, msg in found]


def test_syntax_recovery_stops_at_the_cap():
    from qvaf.dsl.parser import MAX_SYNTAX_ERRORS

    source = "ansatz a {\n" + "".join(f"    rz(x {i} +)\n" for i in range(50)) + "    measure z\n}\n"
    found = _found(source)
    assert len(found) == MAX_SYNTAX_ERRORS + 1
    assert found[0] == (E, 2, 10, "unexpected '0'; expected ')', '*', '**', '+', ',', '-' or '/'")
    assert [line for _, line, _, _ in found[:-1]] == list(range(2, 2 + MAX_SYNTAX_ERRORS))
    assert found[-1] == (
        E, 2 + MAX_SYNTAX_ERRORS, 10,
        f"too many syntax errors; stopped after the first {MAX_SYNTAX_ERRORS}",
    )


def test_syntax_recovery_skips_a_broken_block_and_a_bad_character():
    source = (
        "}\nansatz a {\n    for l in 0.. {\n        rz(x)\n    }\n    rz(x $ 2)\n    measure z\n}\n"
    )
    assert _found(source) == [
        (E, 1, 1, "unexpected '}'; expected ';', 'ansatz', 'import', 'model', a newline or end of file"),
        (E, 3, 18, "unexpected '{'; expected '(', '+', '-', a name, a number or an integer"),
        (E, 6, 10, "unexpected character '$'"),
    ]


def test_unclosed_parenthesis_points_at_it_and_recovery_goes_on():
    source = "ansatz a {\n    rz(x\n    h\n    measure z\n}\nansatz b {\n    ry(x\n    measure z\n}\n"
    with pytest.raises(SpecError) as info:
        program_from_text(source, "t.qvaf")
    first, second = info.value.diagnostics
    assert first.render().splitlines() == [
        "t.qvaf:2:7: error: this '(' is not closed before line 3 ('h' there is unexpected)",
        "        rz(x",
        "          ^",
        "    help: add the missing ')'; a newline inside brackets does not end a statement",
    ]
    assert (second.span.line, second.span.col) == (7, 7) and "not closed before line 8" in second.message
    # a wrapped argument list that is closed is fine, and an error on its continuation line is the token's
    (d,) = check("t.qvaf", "ansatz a {\n    rz(x +\n    )\n    measure z\n}\n")
    assert (d.span.line, d.span.col, d.message.split(";")[0]) == (3, 5, "unexpected ')'")
