"""verify(graph): each invariant, broken on purpose, gives an IRError that names it."""

from __future__ import annotations

from dataclasses import replace

import networkx as nx
import pytest

from qvaf.compiler.errors import IRError
from qvaf.compiler.expr import Binary, Const, Input, LoopVar, ParamRef, Unary
from qvaf.compiler.ir import Circuit, FusedOp, GateOp, Init, KanNode, LinearNode, LoopOp, Op, ParamSpec
from qvaf.compiler.lower import DeclaredArray, build_graph, kernel_graph, layer_params
from qvaf.compiler.verify import verify

L = LoopVar("l")


def g(op, *angles):
    return GateOp(op, tuple(angles))


def ref(name, *idx):
    return ParamRef(name, tuple(i if not isinstance(i, int) else Const(i) for i in idx))


GOOD = Circuit(
    (g(Op.H), LoopOp("l", 0, 3, (g(Op.RZ, ref("t", L, 0)), g(Op.RZ, Binary("*", ref("w", L), Input())))),
     FusedOp((g(Op.RY, ref("t", 3, 1)), g(Op.RX, Const(1.0))))),
    "z", (("t", (4, 2)),), (("w", (1.0, 1.0, 1.0)),),
)


def with_kernel(kernel, **kw):
    return kernel_graph(kernel, in_width=2, out_width=3, **kw)


def set_op(graph, node, rec):
    out = graph.copy()
    out.nodes[node]["op"] = rec
    return out


def test_good_graphs_pass():
    verify(with_kernel(GOOD))
    verify(with_kernel(GOOD, group=2, base="silu", postact_weight=True, postact_bias=True))


@pytest.mark.parametrize("kernel, message", [
    (replace(GOOD, observable="w"), "unknown observable 'w'"),
    (Circuit((g(Op.RX),)), "takes 1 angles, has 0"),
    (Circuit((g(Op.RX, ref("nope", 0)),)), "'nope' is not a per-edge param or constant"),
    (Circuit((g(Op.RX, ref("t", 0)),), "z", (("t", (2, 2)),)), "rank 2, indexed with 1"),
    (Circuit((g(Op.RX, ref("t", 2, 0)),), "z", (("t", (2, 2)),)), "index 0 of t is 2, out of range 0..1"),
    (Circuit((LoopOp("l", 0, 3, (g(Op.RX, ref("t", Binary("+", L, Const(1)))),)),), "z", (("t", (3,)),)),
     r"index 0 of t is 3, out of range 0..2 \(at l=2\)"),
    (Circuit((g(Op.RX, ref("t", Const(0.5))),), "z", (("t", (2,)),)), "not an integer"),
    (Circuit((g(Op.RX, ref("t", Input())),), "z", (("t", (2,)),)), "compile-time integer"),
    (Circuit((g(Op.RX, L),)), "loop variable 'l' is not bound"),
    (Circuit((FusedOp((g(Op.RX, Input()),)),)), "fused block contains a gate reading x"),
    (Circuit((FusedOp((FusedOp(()),)),)), "nested fused block"),
    (Circuit((g(Op.RX, Unary("cosh", Input())),)), "unknown function 'cosh'"),
    (Circuit((g(Op.RX, Binary("%", Input(), Const(2))),)), "unknown operator '%'"),
    (Circuit((g(Op.RX, Const("a")),)), "is not a number"),
    (Circuit((LoopOp("l", 0, 2, (LoopOp("l", 0, 2, ()),)),)), "shadows"),
    (Circuit((), "z", (("t", (2,)),), (("t", 1.0),)), "both a param and a constant"),
    (Circuit((), "z", (("t", (2,)), ("t", (3,)))), "declared twice"),
    (Circuit((), "z", (("t", (0,)),)), "bad shape"),
])
def test_broken_kernels(kernel, message):
    good = with_kernel(Circuit((), "z", kernel.params))
    rec = good.nodes["layer0"]["op"]
    with pytest.raises(IRError, match=message):
        verify(set_op(good, "layer0", replace(rec, kernel=kernel)))


def test_reserved_param_name():
    k = Circuit((), "z", (("mask", (1,)),))
    node = KanNode("layer0", 1, 1, k, "a", (), base="none")
    graph = build_graph("m", 1, [node], [ParamSpec("layer0", "mask", (1, 1, 1), Init("ones"), False)])
    with pytest.raises(IRError, match="reserved"):
        verify(graph)


def test_chain_invariants():
    graph = with_kernel(GOOD)
    extra = graph.copy()
    extra.add_edge("input", "output")
    with pytest.raises(IRError, match="not the chain"):
        verify(extra)
    renamed = nx.relabel_nodes(graph, {"layer0": "layerX"})
    with pytest.raises(IRError, match="nodes must be"):
        verify(renamed)
    rec = graph.nodes["layer0"]["op"]
    with pytest.raises(IRError, match="in_width 5 != width 2"):
        verify(set_op(graph, "layer0", replace(rec, in_width=5)))
    with pytest.raises(IRError, match="output width 4 != width 3"):
        verify(set_op(graph, "output", replace(graph.nodes["output"]["op"], width=4)))
    with pytest.raises(IRError, match="holds a record named"):
        verify(set_op(graph, "layer0", replace(rec, name="layer7")))
    with pytest.raises(IRError, match="not KanNode or LinearNode"):
        verify(set_op(graph, "layer0", graph.nodes["input"]["op"]))
    no_params = graph.copy()
    del no_params.graph["params"]
    with pytest.raises(IRError, match="'params' is missing"):
        verify(no_params)


def test_param_table_invariants():
    graph = with_kernel(GOOD, base="silu")
    table = graph.graph["params"]

    def with_table(rows):
        out = graph.copy()
        out.graph = {**graph.graph, "params": tuple(rows)}
        return out

    verify(with_table(table))
    with pytest.raises(IRError, match=r"missing \['mask'\]"):
        verify(with_table([p for p in table if p.name != "mask"]))
    with pytest.raises(IRError, match=r"shape \(3, 2, 4\) != expected \(3, 2, 4, 2\)"):
        verify(with_table([replace(p, shape=(3, 2, 4)) if p.name == "t" else p for p in table]))
    with pytest.raises(IRError, match="appears twice"):
        verify(with_table(list(table) + [table[0]]))
    with pytest.raises(IRError, match="not a layer"):
        verify(with_table(list(table) + [replace(table[0], owner="input")]))
    with pytest.raises(IRError, match="mask must be fixed"):
        verify(with_table([replace(p, trainable=True) if p.name == "mask" else p for p in table]))
    with pytest.raises(IRError, match=r"unexpected \['postact_bias'\]"):
        verify(with_table(list(table) + [replace(table[0], name="postact_bias", shape=(3, 2))]))


def test_grouped_and_linear_layers():
    kan = KanNode("layer1", 4, 3, Circuit((g(Op.RX, ref("t", 1)),), "z", (("t", (2,)),)), "a", (), group=2)
    lin = LinearNode("layer0", 2, 4)
    rows = [ParamSpec("layer0", "weight", (4, 2), Init("xavier"), True),
            ParamSpec("layer0", "bias", (4,), Init("zeros"), True)]
    rows += layer_params(kan, {"t": DeclaredArray(Init("normal", (0.0, 1.0)), True)})
    graph = build_graph("m", 2, [lin, kan], rows)
    verify(graph)
    assert [p.shape for p in rows if p.owner == "layer1"] == [(2, 2), (3, 4), (3, 4)]  # t is [G, 2]
    bad = build_graph("m", 2, [lin, kan], [replace(rows[1], shape=(2,))] + rows[:1] + rows[2:])
    with pytest.raises(IRError, match=r"layer0.bias: shape \(2,\) != expected \(4,\)"):
        verify(bad)


def test_layer_and_initialiser_invariants():
    graph = with_kernel(GOOD, base="silu")
    rec = graph.nodes["layer0"]["op"]
    with pytest.raises(IRError, match="unknown base function 'swish'"):
        verify(set_op(graph, "layer0", replace(rec, base="swish")))
    table = graph.graph["params"]

    def with_table(rows):
        out = graph.copy()
        out.graph = {**graph.graph, "params": tuple(rows)}
        return out

    t = next(p for p in table if p.name == "t")
    for bad, message in [(replace(t, init=Init("gaussian", (0.0, 1.0))), "unknown initialiser 'gaussian'"),
                         (replace(t, init=Init("normal", (0.0,))), "normal takes 2 arguments, has 1"),
                         (replace(t, reps_axes=((4, 1),)), r"reps axis \(4, 1\) does not fit its shape"),
                         (replace(t, reps_axes=((2, 5),)), r"reps axis \(2, 5\) does not fit")]:
        with pytest.raises(IRError, match=message):
            verify(with_table([bad if p is t else p for p in table]))
    verify(with_table([replace(t, reps_axes=((2, 1),)) if p is t else p for p in table]))


def test_an_error_about_a_gate_carries_its_span():
    from qvaf.dsl.ast import Span

    span = Span("a.qvaf", 4, 9, 4, 20)
    kernel = Circuit((GateOp(Op.RX, (ref("t", 7),), span=span),), "z", (("t", (2,)),))
    with pytest.raises(IRError) as info:
        verify(with_kernel(kernel))
    assert info.value.span == span and "index 0 of t is 7" in str(info.value)


def test_the_layer_arrays_are_stated_once():
    """verify, lowering and init read one function; the table rows follow it exactly."""
    from qvaf.compiler.ir import layer_arrays

    graph = with_kernel(GOOD, group=2, base="gelu", postact_weight=True, postact_bias=True)
    rec = graph.nodes["layer0"]["op"]
    arrays = layer_arrays(rec)
    assert [(a.name, a.shape, a.per_edge) for a in arrays] == [
        ("t", (2, 4, 2), True), ("postact_weight", (3, 2), False), ("postact_bias", (3, 2), False),
        ("base_weight", (3, 2), False), ("mask", (3, 2), False)]
    assert [(p.name, p.shape) for p in graph.graph["params"]] == [(a.name, a.shape) for a in arrays]
    lin = layer_arrays(LinearNode("layer0", 2, 4))
    assert [(a.name, a.shape, a.init.kind) for a in lin] == [("weight", (4, 2), "xavier"), ("bias", (4,), "zeros")]
