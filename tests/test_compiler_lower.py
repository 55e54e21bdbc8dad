"""Lowering the specs in specs/: graph shape, parameter table, kernels, errors.

Each reference ansatz, lowered, is also compared numerically with the circuit DESIGN.md
section 3 writes down (built here from textbook 2x2 unitaries, a statevector, <Z>), so the
lowering's gate order and indexing are checked independently of the compiler.
"""

from __future__ import annotations

import glob
import math
import os

import numpy as np
import pytest

from _compiler_so3 import PAULI, measured_component, unitary
from qvaf.compiler.errors import CompileError
from qvaf.compiler.expr import Input
from qvaf.compiler.ir import GateOp, Init, KanNode, LinearNode, LoopOp, Op
from qvaf.compiler.lower import lower_ansatz, lower_model
from qvaf.compiler.passes import PIPELINE, run_pipeline
from qvaf.compiler.verify import verify
from qvaf.dsl import QvafError, load_program, program_from_text

ROOT = os.path.join(os.path.dirname(__file__), "..")
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*", "*.qvaf")))


def spec(rel):
    return load_program(os.path.join(ROOT, "specs", rel))


def table(graph):
    return {p.path: p for p in graph.graph["params"]}


# ----------------------------------------------------------------------------- every spec


def _targets():
    for path in SPECS:
        program = load_program(path)
        name = os.path.relpath(path, ROOT)
        for m in program.models:
            yield pytest.param(path, "model", m, id=f"{name}:{m}")
        for a in program.ansatze:
            yield pytest.param(path, "ansatz", a, id=f"{name}:{a}")


@pytest.mark.parametrize("path, kind, name", list(_targets()))
@pytest.mark.parametrize("reps", [None, 1, 5])
def test_every_spec_lowers_and_verifies_after_every_pass(path, kind, name, reps):
    program = load_program(path)
    if kind == "model":
        graph = lower_model(program, name, ansatz_overrides={"*": {"reps": reps}} if reps else None)
    else:
        graph = lower_ansatz(program, name, {"reps": reps} if reps else None)
    stages = []
    run_pipeline(graph, verify_each=True, dump=lambda n, g: stages.append((n, g)))
    assert [n for n, _ in stages] == [n for n, _ in PIPELINE]
    # every stage computes the same function on every kan layer (SO(3) model, 1e-12)
    rng = np.random.default_rng(0)
    for node in graph.nodes:
        rec = graph.nodes[node]["op"]
        if not isinstance(rec, KanNode):
            continue
        for _ in range(2):
            params = {n: rng.normal(size=s) for n, s in rec.kernel.params}
            x = float(rng.uniform(-1, 1))
            want = measured_component(rec.kernel, x, params)
            for stage, g in stages:
                got = measured_component(g.nodes[node]["op"].kernel, x, params)
                assert got == pytest.approx(want, abs=1e-12), stage
    if reps:
        for node in graph.nodes:
            rec = graph.nodes[node]["op"]
            if isinstance(rec, KanNode):
                assert dict(rec.ansatz_args)["reps"] == reps


def test_specs_exist():
    names = {os.path.basename(p) for p in SPECS}
    assert {"pz.qvaf", "rpz.qvaf", "real.qvaf", "regression.qvaf"} <= names


# ----------------------------------------------------------------------------- models


def test_regression_graph_and_param_table():
    graph = lower_model(spec("models/regression.qvaf"), "regression")
    assert list(graph.nodes) == ["input", "layer0", "layer1", "output"]
    assert list(graph.edges) == [("input", "layer0"), ("layer0", "layer1"), ("layer1", "output")]
    assert graph.graph["name"] == "regression" and graph.graph["model_args"] == {}
    l0 = graph.nodes["layer0"]["op"]
    assert (l0.in_width, l0.out_width, l0.ansatz, l0.ansatz_args, l0.base) == (2, 5, "pz", (("reps", 3),), "silu")
    assert not l0.postact_weight and not l0.postact_bias and l0.group is None
    t = table(graph)
    assert sorted(t) == sorted(["layer0.theta", "layer0.base_weight", "layer0.mask",
                                "layer1.theta", "layer1.base_weight", "layer1.mask"])
    assert t["layer0.theta"].shape == (5, 2, 4, 2) and t["layer1.theta"].shape == (1, 5, 4, 2)
    assert t["layer0.theta"].init == Init("xavier") and t["layer0.theta"].trainable and t["layer0.theta"].grow == 0.0
    assert t["layer0.base_weight"].init == Init("normal", (0.0, 1 / math.sqrt(2)))
    assert t["layer1.base_weight"].init == Init("normal", (0.0, 1 / math.sqrt(5)))
    assert t["layer0.mask"].init == Init("ones") and not t["layer0.mask"].trainable
    # literal consts are compile-time constants of the kernel, not arrays of the network
    k = l0.kernel
    assert k.params == (("theta", (4, 2)),)
    assert k.constants == (("w", (1.0, 1.0, 1.0)), ("b", (0.0, 0.0, 0.0)))
    assert k.observable == "z"
    assert [type(op).__name__ for op in k.ops] == ["GateOp", "LoopOp", "GateOp", "GateOp"]
    loop = k.ops[1]
    assert (loop.var, loop.start, loop.stop, len(loop.body)) == ("l", 0, 3, 3)


def test_digits_model_args_and_postact():
    graph = lower_model(spec("models/digits.qvaf"), "digits", {"hidden": 4})
    assert graph.graph["model_args"] == {"hidden": 4}
    t = table(graph)
    assert t["layer0.theta"].shape == (4, 64, 3, 2)
    assert t["layer1.postact_weight"].shape == (10, 4) and t["layer1.postact_weight"].init == Init("ones")
    assert t["layer1.postact_bias"].init == Init("zeros") and t["layer1.postact_bias"].trainable
    assert "layer0.postact_weight" not in t
    assert graph.nodes["output"]["op"].width == 10


def test_hqkan_linear_layers_and_group():
    graph = lower_model(spec("models/hqkan.qvaf"), "hqkan_ffn", {"d": 16, "k": 1})
    recs = [graph.nodes[n]["op"] for n in ("layer0", "layer1", "layer2")]
    assert isinstance(recs[0], LinearNode) and isinstance(recs[2], LinearNode)
    assert [(r.in_width, r.out_width) for r in recs] == [(16, 6), (6, 6), (6, 16)]
    assert recs[1].group == 3 and recs[1].postact_weight and recs[1].postact_bias
    t = table(graph)
    assert t["layer1.theta"].shape == (3, 2, 2)  # [G, reps + 1, 2]
    assert t["layer1.mask"].shape == (6, 6)
    assert (t["layer0.weight"].shape, t["layer0.weight"].init) == ((6, 16), Init("xavier"))
    assert (t["layer2.bias"].shape, t["layer2.bias"].init) == ((16,), Init("zeros"))


def test_ansatz_overrides_star_and_layer():
    program = spec("models/regression.qvaf")
    t = table(lower_model(program, "regression", ansatz_overrides={"*": {"reps": 5}}))
    assert t["layer0.theta"].shape == (5, 2, 6, 2) and t["layer1.theta"].shape == (1, 5, 6, 2)
    graph = lower_model(program, "regression", ansatz_overrides={"*": {"reps": 2}, "layer1": {"reps": 1}})
    t = table(graph)
    assert t["layer0.theta"].shape == (5, 2, 3, 2) and t["layer1.theta"].shape == (1, 5, 2, 2)
    assert graph.nodes["layer1"]["op"].kernel.constants == (("w", (1.0,)), ("b", (0.0,)))


def test_daruan_trainable_preactivations_and_axis():
    graph = lower_ansatz(spec("ansatz/daruan.qvaf"), "daruan", {"reps": 2, "axis": "x"})
    t = table(graph)
    assert t["layer0.w"].shape == (1, 1, 2) and t["layer0.w"].init == Init("constant", (1.0,))
    assert t["layer0.w"].trainable and t["layer0.w"].grow == 0.0
    assert t["layer0.b"].init == Init("constant", (0.0,))
    assert sorted(t) == ["layer0.b", "layer0.mask", "layer0.theta", "layer0.w"]  # base none, no postact
    loop = graph.nodes["layer0"]["op"].kernel.ops[1]
    assert isinstance(loop, LoopOp) and loop.body[2].op == Op.RX  # encode(..., axis) with axis = x


# ----------------------------------------------------------------------------- semantics vs DESIGN.md


def _state_z(gates, x):
    psi = np.array([1, 0], dtype=complex)
    for op, angle in gates:
        psi = unitary(op, [angle] if angle is not None else []) @ psi
    return float(np.real(psi.conj() @ PAULI[2] @ psi))


def _design_circuit(name, th, x, reps):
    """DESIGN.md section 3, gate list in time order (w = 1, b = 0)."""
    out = [(Op.H, None)]
    for l in range(reps):
        if name == "pz":
            out += [(Op.RZ, th[l, 0]), (Op.RY, th[l, 1]), (Op.RZ, x)]
        elif name == "rpz":
            out += [(Op.RY, th[l]), (Op.RZ, x)]
        elif name == "px":
            out += [(Op.RZ, th[l]), (Op.RX, math.acos(x))]
        elif name == "real":
            out += [(Op.X, None), (Op.RY, th[l]), (Op.Z, None), (Op.RY, x)]
        elif name == "mix":
            out += [(Op.RZ, th[l, 0]), (Op.RX, th[l, 1]), (Op.RY, x)]
    if name in ("pz", "mix"):
        out += [(Op.RZ, th[reps, 0]), (Op.RY if name == "pz" else Op.RX, th[reps, 1])]
    elif name in ("rpz",):
        out += [(Op.RY, th[reps])]
    elif name == "px":
        out += [(Op.RZ, th[reps])]
    return out


@pytest.mark.parametrize("name", ["pz", "rpz", "px", "real", "mix"])
@pytest.mark.parametrize("reps", [1, 3])
def test_lowered_reference_ansatze_match_design(name, reps):
    graph = lower_ansatz(spec(f"ansatz/{name}.qvaf"), name, {"reps": reps})
    kernel = graph.nodes["layer0"]["op"].kernel
    optimized = run_pipeline(graph).nodes["layer0"]["op"].kernel
    rng = np.random.default_rng(reps)
    for _ in range(4):
        params = {n: rng.normal(size=s) for n, s in kernel.params}
        if "b" in params:
            params["b"] = np.zeros_like(params["b"])  # rpz's trainable bias at its initial value
        x = float(rng.uniform(-1, 1))
        want = _state_z(_design_circuit(name, params["theta"], x, reps), x)
        assert measured_component(kernel, x, params) == pytest.approx(want, abs=1e-12)
        assert measured_component(optimized, x, params) == pytest.approx(want, abs=1e-12)


def test_pz_optimized_kernel_structure():
    graph = run_pipeline(lower_model(spec("models/regression.qvaf"), "regression"))
    k = graph.nodes["layer0"]["op"].kernel
    data = [op for op in k.ops if isinstance(op, GateOp)]
    assert [op.angles for op in data] == [(Input(),)] * 3 and all(op.op == Op.RZ for op in data)
    assert k.constants == ()


# ----------------------------------------------------------------------------- errors


def test_unknown_model_and_ansatz():
    program = spec("models/regression.qvaf")
    with pytest.raises(CompileError, match=r"unknown model 'regresion' \(defined: regression\)"):
        lower_model(program, "regresion")
    with pytest.raises(CompileError, match="unknown ansatz 'qz'"):
        lower_ansatz(program, "qz")


@pytest.mark.parametrize("overrides, message", [
    ({"layer5": {"reps": 2}}, "'layer5', not a kan layer of model hqkan_ffn"),
    ({"layer0": {"reps": 2}}, "'layer0', not a kan layer"),                 # a linear layer
    ({"*": {"repz": 2}}, "override for layer1 .pz.: unknown argument 'repz'"),
    ({"*": {"reps": 1.5}}, "argument 'reps' is an int, got 1.5"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(CompileError, match=message):
        lower_model(spec("models/hqkan.qvaf"), "hqkan_ffn", ansatz_overrides=overrides)


def test_bad_model_and_ansatz_arguments():
    with pytest.raises(QvafError, match="unknown argument 'width'"):
        lower_model(spec("models/digits.qvaf"), "digits", {"width": 3})
    with pytest.raises(QvafError, match="'hidden' is an int"):
        lower_model(spec("models/digits.qvaf"), "digits", {"hidden": "z"})
    with pytest.raises(CompileError, match="shape of 'theta' has size 0 on axis 0; every size must be at least 1") as info:
        lower_ansatz(spec("ansatz/pz.qvaf"), "pz", {"reps": -1})
    assert info.value.span is not None and info.value.span.line == 12
    assert "with reps = -1" in str(info.value)


def test_index_out_of_range_for_these_arguments_points_at_the_gate():
    program = program_from_text(
        "ansatz a(n: int = 3) {\n"
        "    param t[n] ~ normal(0, 1)\n"
        "    for l in 0..3 {\n"
        "        rx(t[l] * x)\n"
        "    }\n"
        "    measure z\n"
        "}\n")
    verify(lower_ansatz(program, "a"))
    with pytest.raises(CompileError, match=r"index 2 is out of range for axis 0 of 't' with size 2 \(at l = 2\)") as info:
        lower_ansatz(program, "a", {"n": 2})
    assert info.value.span.line == 4
    assert "rx(t[l] * x)" in str(info.value) and "with n = 2" in str(info.value)


def test_width_must_be_positive():
    program = program_from_text(
        "ansatz a { rx(x)\n measure z }\n"
        "model m(w: int = 2) {\n input 3\n kan w using a\n}\n")
    assert lower_model(program, "m").nodes["output"]["op"].width == 2
    with pytest.raises(CompileError, match="layer width must be at least 1, got 0"):
        lower_model(program, "m", {"w": 0})


def test_lowering_records_the_reps_axes_of_every_per_edge_array():
    rows = table(lower_model(spec("models/regression.qvaf"), "regression"))
    assert rows["layer0.theta"].shape == (5, 2, 4, 2) and rows["layer0.theta"].reps_axes == ((2, 1),)
    assert rows["layer0.base_weight"].reps_axes == () and rows["layer0.mask"].reps_axes == ()
    grouped = table(lower_model(spec("models/hqkan.qvaf"), "hqkan_ffn"))
    assert grouped["layer1.theta"].shape == (3, 2, 2) and grouped["layer1.theta"].reps_axes == ((1, 1),)
    program = program_from_text(
        "ansatz a(reps: int = 2) {\n"
        "    param t[2 * reps, reps, 3] ~ normal(0, 1)\n"
        "    for l in 0..reps {\n"
        "        rx(t[l, l, 0] * x)\n"
        "    }\n"
        "    measure z\n"
        "}\n")
    (row,) = lower_ansatz(program, "a").graph["params"][:1]
    assert row.shape == (1, 1, 4, 2, 3) and row.reps_axes == ((3, 0),)  # 2 * reps is not reps + k


def test_a_program_that_bypassed_the_checker_gets_verify_s_message_at_the_gate():
    from qvaf.dsl import parse
    from qvaf.dsl.program import Program

    text = "ansatz a {\n    rz(x, 1)\n    measure z\n}\n"
    module = parse(text, "raw.qvaf")
    program = Program("raw.qvaf", {"a": module.items[0]}, {}, {"raw.qvaf": text})
    with pytest.raises(CompileError) as info:
        lower_ansatz(program, "a")
    assert "gate rz takes 1 angles, has 2" in info.value.message
    assert info.value.span.line == 2 and "rz(x, 1)" in str(info.value)
