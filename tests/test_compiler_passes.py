"""Each pass on hand-built circuits: what it rewrites, and that it preserves the function.

The numeric model (``_compiler_so3``) builds every gate from its 2x2 unitary, so it checks
the canonicalisation table and every rewrite independently of the compiler's own code.
Tolerance: 1e-12 (float64; circuits of at most a few dozen gates).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from _compiler_so3 import circuit_matrix, measured_component, random_params
from qvaf.compiler import passes as P
from qvaf.compiler.errors import CompileError, IRError
from qvaf.compiler.expr import Binary, Const, Input, LoopVar, ParamRef, Unary, to_str
from qvaf.compiler.ir import Circuit, FusedOp, GateOp, LoopOp, Op
from qvaf.compiler.lower import kernel_graph
from qvaf.compiler.verify import verify

TOL = 1e-12
L = LoopVar("l")


def g(op, *angles):
    return GateOp(op, tuple(angles))


def ref(name, *idx):
    return ParamRef(name, tuple(i if not isinstance(i, int) else Const(i) for i in idx))


def kernel_of(graph):
    return graph.nodes["layer0"]["op"].kernel


def run(pass_fn, circuit, **kw):
    graph = kernel_graph(circuit, **kw)
    out = pass_fn(graph)
    verify(out)
    assert kernel_of(graph) == circuit, "a pass modified its input"
    return kernel_of(out)


def assert_same_function(before, after, rng, *, matrix=True, trials=5):
    for _ in range(trials):
        params = random_params(before, rng)
        x = float(rng.uniform(-3, 3))
        assert measured_component(after, x, params) == pytest.approx(measured_component(before, x, params), abs=TOL)
        if matrix:
            np.testing.assert_allclose(circuit_matrix(after, x, params), circuit_matrix(before, x, params), atol=TOL)


def pz(reps=3, observable="z"):
    body = (g(Op.RZ, ref("theta", L, 0)), g(Op.RY, ref("theta", L, 1)),
            g(Op.RZ, Binary("+", Binary("*", ref("w", L), Input()), ref("b", L))))
    ops = (g(Op.H), LoopOp("l", 0, reps, body), g(Op.RZ, ref("theta", reps, 0)), g(Op.RY, ref("theta", reps, 1)))
    return Circuit(ops, observable, (("theta", (reps + 1, 2)),),
                   (("w", (1.0,) * reps), ("b", (0.0,) * reps)))


# ----------------------------------------------------------------------------- unroll_loops


def test_unroll_substitutes_and_folds_indices():
    body = (g(Op.RY, ref("t", Binary("+", L, Const(1)))), g(Op.RZ, Binary("*", L, Input())))
    c = Circuit((LoopOp("l", 0, 3, body),), "z", (("t", (4,)),))
    out = run(P.unroll_loops, c)
    assert len(out.ops) == 6 and not any(isinstance(op, LoopOp) for op in out.ops)
    idx = [op.angles[0].indices[0] for op in out.ops[::2]]
    assert idx == [Const(1), Const(2), Const(3)] and all(type(i.value) is int for i in idx)
    assert out.ops[3].angles[0] == Binary("*", Const(1), Input())  # loop var outside an index: a Const
    assert_same_function(c, out, np.random.default_rng(0))


def test_unroll_nested_and_empty_loops():
    inner = LoopOp("k", 0, 2, (g(Op.RX, ref("t", L, LoopVar("k"))),))
    c = Circuit((LoopOp("l", 0, 3, (inner, g(Op.RZ, Input()))), LoopOp("m", 2, 2, (g(Op.X),))), "z", (("t", (3, 2)),))
    out = run(P.unroll_loops, c)
    assert P.count_gates(c.ops) == 9 == len(out.ops)
    assert [to_str(op.angles[0]) for op in out.ops[:3]] == ["t[0, 0]", "t[0, 1]", "x"]
    assert_same_function(c, out, np.random.default_rng(1))


def test_unroll_rejects_fractional_index():
    c = Circuit((LoopOp("l", 0, 2, (g(Op.RX, ref("t", Binary("/", L, Const(2)))),)),), "z", (("t", (2,)),))
    with pytest.raises(IRError, match="not an integer"):
        P.unroll_circuit(c)


# ----------------------------------------------------------------------------- inline_constants


def test_inline_constants_folds_pz_data_angle():
    c = P.unroll_circuit(pz(3))
    out = run(P.inline_constants, c)
    data = [op for op in out.ops if op.angles and op.angles[0] == Input()]
    assert len(data) == 3  # rz(1.0 * x + 0.0) -> rz(x)
    assert out.constants == ()
    assert_same_function(c, out, np.random.default_rng(2))


def test_inline_constants_keeps_symbolic_references_inside_loops():
    c = pz(2)
    out = run(P.inline_constants, c)  # before unrolling: w[l] cannot be inlined
    assert [n for n, _ in out.constants] == ["w", "b"]
    assert_same_function(c, out, np.random.default_rng(3))


def test_inline_constants_folding_rules():
    c = Circuit((
        g(Op.RX, Binary("*", ref("k"), ref("t"))),                       # 0 * t -> 0
        g(Op.RY, Binary("-", Const(0), Unary("neg", ref("t")))),           # 0 - -t -> t
        g(Op.RZ, Binary("+", Binary("*", Const(2), Const(3)), Input())),   # 6 + x
        g(Op.RX, Unary("acos", Const(2.0))),                               # out of domain: kept
    ), "z", (("t", ()),), (("k", 0.0),))
    out = kernel_of(P.inline_constants(kernel_graph(c)))
    assert [to_str(op.angles[0]) for op in out.ops] == ["0", "t", "6 + x", "acos(2)"]


# ----------------------------------------------------------------------------- canonicalize

NAMED = [(Op.H,), (Op.X,), (Op.Y,), (Op.Z,), (Op.S,), (Op.SDG,), (Op.T,), (Op.TDG,), (Op.SX,),
         (Op.PHASE, ref("t", 0)), (Op.U3, ref("t", 0), ref("t", 1), ref("t", 2))]


@pytest.mark.parametrize("gate", NAMED, ids=lambda gt: gt[0].value)
def test_canonicalize_each_gate_matches_its_unitary(gate):
    # sandwiched between random rotations so the full SO(3) matrix is compared
    c = Circuit((g(Op.RY, ref("t", 3)), g(Op.RX, ref("t", 4)), g(*gate), g(Op.RZ, Input())), "x", (("t", (5,)),))
    out = run(P.canonicalize, c)
    assert all(op.op in (Op.RX, Op.RY, Op.RZ) for op in out.ops)
    assert_same_function(c, out, np.random.default_rng(4), trials=8)


def test_canonicalize_h_is_rz_pi_then_ry_half_pi():
    out = kernel_of(P.canonicalize(kernel_graph(Circuit((g(Op.H),)))))
    assert out.ops == (g(Op.RZ, Const(math.pi)), g(Op.RY, Const(math.pi / 2)))


# ----------------------------------------------------------------------------- merge_rotations


def test_merge_adds_angles_and_drops_identities():
    c = Circuit((
        g(Op.RZ, ref("t", 0)), g(Op.RZ, ref("t", 1)),          # -> rz(t0 + t1)
        g(Op.RX, Const(math.pi)), g(Op.RX, Const(math.pi)),     # 2 pi: identity, dropped
        g(Op.RY, Const(0.0)),                                   # dropped
        g(Op.RZ, ref("t", 2)),                                  # now adjacent to rz(t0 + t1)
        g(Op.RY, Input()), g(Op.RY, Input()),                   # -> ry(x + x)
    ), "x", (("t", (3,)),))
    out = run(P.merge_rotations, c)
    assert [(op.op, to_str(op.angles[0])) for op in out.ops] == [
        (Op.RZ, "t[0] + t[1] + t[2]"), (Op.RY, "x + x")]
    assert_same_function(c, out, np.random.default_rng(5))


def test_merge_keeps_data_angle_apart_from_parameter_angles():
    c = Circuit((g(Op.RY, ref("t", 0)), g(Op.RZ, Input()), g(Op.RZ, ref("t", 1)), g(Op.RZ, Const(0.5)),
                 g(Op.RY, ref("t", 2))), "z", (("t", (3,)),))
    out = run(P.merge_rotations, c)
    # rz(x) and rz(t1) stay apart (sincos of x shared across output edges); the constant joins rz(t1)
    assert [to_str(op.angles[0]) for op in out.ops] == ["t[0]", "x", "t[1] + 0.5", "t[2]"]
    c2 = Circuit((g(Op.RY, ref("t", 0)), g(Op.RZ, Const(0.5)), g(Op.RZ, Input()), g(Op.RY, ref("t", 1))), "z", (("t", (2,)),))
    assert [to_str(op.angles[0]) for op in run(P.merge_rotations, c2).ops] == ["t[0]", "0.5 + x", "t[1]"]
    assert_same_function(c, out, np.random.default_rng(6))


# ----------------------------------------------------------------------------- drop_boundary_gates


@pytest.mark.parametrize("observable, trailing, dropped", [
    ("z", Op.RZ, True), ("inspired", Op.RZ, True), ("z", Op.RX, False),
    ("x", Op.RX, True), ("x", Op.RZ, False), ("y", Op.RY, True), ("y", Op.RX, False),
])
def test_drop_trailing_gates_that_commute_with_the_measured_component(observable, trailing, dropped):
    c = Circuit((g(Op.RY, ref("t", 0)), g(Op.H), g(trailing, ref("t", 2))), observable, (("t", (3,)),))
    out = run(P.drop_boundary_gates, c)
    assert len(out.ops) == (2 if dropped else 3)
    assert_same_function(c, out, np.random.default_rng(7), matrix=False)


def test_drop_leading_diagonal_gates_repeatedly():
    c = Circuit((g(Op.RZ, Input()), g(Op.T), g(Op.PHASE, ref("t", 0)), g(Op.RY, ref("t", 1)),
                 g(Op.RZ, ref("t", 0)), g(Op.S), g(Op.RZ, Input())), "z", (("t", (2,)),))
    out = run(P.drop_boundary_gates, c)
    assert out.ops == (g(Op.RY, ref("t", 1)),)
    assert_same_function(c, out, np.random.default_rng(8), matrix=False)


def test_drop_stops_at_loops_and_fused_blocks():
    c = Circuit((FusedOp((g(Op.RZ, ref("t", 0)), g(Op.RZ, ref("t", 0)))), g(Op.RY, Input()),
                 LoopOp("l", 0, 2, (g(Op.RZ, Input()),))), "z", (("t", (1,)),))
    assert run(P.drop_boundary_gates, c) == c


# ----------------------------------------------------------------------------- fuse_static


def test_fuse_static_groups_data_free_runs():
    c = Circuit((g(Op.RY, Const(1.0)), g(Op.RZ, ref("t", 0)), g(Op.RY, ref("t", 1)), g(Op.RZ, Input()),
                 g(Op.RZ, ref("t", 2)), g(Op.RX, Input()), g(Op.RZ, ref("t", 3)), g(Op.RY, ref("t", 4))),
                "z", (("t", (5,)),))
    out = run(P.fuse_static, c)
    kinds = [type(op).__name__ + (str(len(op.gates)) if isinstance(op, FusedOp) else "") for op in out.ops]
    assert kinds == ["FusedOp3", "GateOp", "GateOp", "GateOp", "FusedOp2"]
    assert P.count_gates(out.ops) == 8
    assert run(P.fuse_static, out) == out  # idempotent
    assert_same_function(c, out, np.random.default_rng(9))


# ----------------------------------------------------------------------------- pipeline


def test_pipeline_on_pz_counts_and_function():
    c = pz(3)
    names = []
    graph = kernel_graph(c)
    out = P.run_pipeline(graph, dump=lambda name, gr: names.append(name), verify_each=True)
    assert names == [n for n, _ in P.PIPELINE]
    k = kernel_of(out)
    # h -> rz(pi) ry(pi/2), then the leading rz(pi) is dropped: 12 gates in, 12 out
    assert P.count_gates(c.ops) == 12 and P.count_gates(k.ops) == 12
    assert [type(op).__name__ for op in k.ops] == ["FusedOp", "GateOp"] * 3 + ["FusedOp"]
    assert [len(op.gates) for op in k.ops if isinstance(op, FusedOp)] == [3, 2, 2, 2]
    assert all(op.angles[0] == Input() for op in k.ops if isinstance(op, GateOp))
    assert_same_function(c, k, np.random.default_rng(10), matrix=False)


def test_run_pipeline_selected_passes_and_errors():
    graph = kernel_graph(pz(1))
    out = P.run_pipeline(graph, passes=["unroll_loops", "canonicalize"])
    assert not any(isinstance(op, LoopOp) for op in kernel_of(out).ops)
    assert any(op.op == Op.RZ and op.angles[0] == Const(math.pi) for op in kernel_of(out).ops)
    with pytest.raises(CompileError, match="unknown pass 'nope'"):
        P.run_pipeline(graph, passes=["nope"])
    broken = lambda gr: P.map_kernels(gr, lambda c: Circuit((g(Op.RX, ref("zz", 0)),)))  # noqa: E731
    with pytest.raises(IRError, match="after pass broken"):
        P.run_pipeline(graph, passes=[("broken", broken)], verify_each=True)


# ----------------------------------------------------------------------------- random circuits

_GATES = [Op.H, Op.X, Op.Y, Op.Z, Op.S, Op.SDG, Op.T, Op.TDG, Op.SX, Op.PHASE, Op.U3, Op.RX, Op.RY, Op.RZ]


def _random_angle(rng, loop: bool):
    kind = rng.integers(6)
    idx = L if loop and rng.random() < 0.7 else Const(int(rng.integers(3)))
    if kind == 0:
        return Input()
    if kind == 1:
        return Binary("+", Binary("*", ref("w", idx), Input()), ref("b", idx))
    if kind == 2:
        return Const(float(rng.choice([0.0, math.pi, -math.pi / 2, 2 * math.pi, 0.3])))
    if kind == 3:
        return Binary("*", ref("k", idx), ref("t", idx, 1))
    return ref("t", idx, int(rng.integers(2)))


def _random_circuit(rng):
    def seq(n, loop):
        out = []
        for _ in range(n):
            op = _GATES[rng.integers(len(_GATES))]
            from qvaf.compiler.ir import GATE_ARITY
            out.append(g(op, *(_random_angle(rng, loop) for _ in range(GATE_ARITY[op]))))
        return out

    ops = seq(int(rng.integers(0, 4)), False)
    if rng.random() < 0.8:
        ops.append(LoopOp("l", 0, int(rng.integers(0, 4)), tuple(seq(int(rng.integers(1, 4)), True))))
    ops += seq(int(rng.integers(0, 4)), False)
    obs = ["z", "x", "y", "inspired"][rng.integers(4)]
    consts = (("k", tuple(float(v) for v in rng.choice([0.0, 1.0, 2.0], size=3))), ("b", (0.0, 0.5, 0.0)))
    return Circuit(tuple(ops), obs, (("t", (3, 2)), ("w", (3,))), consts)


def test_every_pass_preserves_random_circuits():
    rng = np.random.default_rng(123)
    for _ in range(150):
        c = _random_circuit(rng)
        graph = kernel_graph(c)
        stages = [("lowered", graph)]
        P.run_pipeline(graph, verify_each=True, dump=lambda name, gr: stages.append((name, gr)))
        for _ in range(3):
            params = random_params(c, rng)
            x = float(rng.uniform(-2, 2))
            want = measured_component(c, x, params)
            for name, gr in stages:
                got = measured_component(kernel_of(gr), x, params)
                assert got == pytest.approx(want, abs=TOL), (name, c)
