"""Hand-built IR graphs for the backend tests: the reference package's ansätze written
directly as circuit IR (independent of the DSL and the lowering), and a network builder."""

from __future__ import annotations

import math

import networkx as nx

from qvaf.compiler.expr import Binary, Const, Input, LoopVar, ParamRef
from qvaf.compiler.ir import (
    Circuit,
    GateOp,
    InputNode,
    Init,
    KanNode,
    LinearNode,
    LoopOp,
    Op,
    OutputNode,
    ParamSpec,
)

L = LoopVar("l")


def ref(name, *idx):
    return ParamRef(name, tuple(i if not isinstance(i, int) else Const(float(i)) for i in idx))


def g(op, *angles):
    return GateOp(op, tuple(angles))


def data_angle(preact: bool):
    """``w[l] * x + b[l]`` with trainable pre-activations, exactly ``x`` otherwise."""
    if preact:
        return Binary("+", Binary("*", ref("w", L), Input()), ref("b", L))
    return Input()


def pz_kernel(reps: int, preact: bool = False, observable: str = "z") -> Circuit:
    """H . [RZ(t_l0) RY(t_l1) RZ(angle_l)]_{l<r} . RZ(t_r0) RY(t_r1)"""
    body = (g(Op.RZ, ref("theta", L, 0)), g(Op.RY, ref("theta", L, 1)), g(Op.RZ, data_angle(preact)))
    ops = (
        g(Op.H),
        LoopOp("l", 0, reps, body),
        g(Op.RZ, ref("theta", reps, 0)),
        g(Op.RY, ref("theta", reps, 1)),
    )
    params = (("theta", (reps + 1, 2)),) + ((("w", (reps,)), ("b", (reps,))) if preact else ())
    return Circuit(ops, observable, params)


def rpz_kernel(reps: int, observable: str = "z") -> Circuit:
    """H . [RY(t_l) RZ(w_l x + b_l)]_{l<r} . RY(t_r) (pre-activations always read)."""
    body = (g(Op.RY, ref("theta", L)), g(Op.RZ, data_angle(True)))
    ops = (g(Op.H), LoopOp("l", 0, reps, body), g(Op.RY, ref("theta", reps)))
    return Circuit(ops, observable, (("theta", (reps + 1,)), ("w", (reps,)), ("b", (reps,))))


def real_kernel(reps: int, observable: str = "z") -> Circuit:
    """H . [X RY(t_l) Z RY(x)]_{l<r}"""
    body = (g(Op.X), g(Op.RY, ref("theta", L)), g(Op.Z), g(Op.RY, Input()))
    return Circuit((g(Op.H), LoopOp("l", 0, reps, body)), observable, (("theta", (reps,)),))


#: default initialisers of the kernels' arrays
KERNEL_INITS = {
    "theta": (Init("normal", (0.0, 1.0)), True),
    "w": (Init("constant", (1.0,)), True),
    "b": (Init("constant", (0.0,)), True),
}


def network(
    widths,
    kernel: Circuit,
    *,
    ansatz="test",
    base="silu",
    postact_weight=False,
    postact_bias=False,
    group=None,
    linear_after=(),
    trainable=None,
    name="net",
):
    """A chain input -> kan(widths[1]) -> ... with the same kernel on every kan layer.

    ``linear_after`` lists kan layer positions followed by a linear layer of the same width.
    ``trainable`` overrides the trainable flag of kernel arrays by name.
    """
    trainable = trainable or {}
    graph = nx.DiGraph(name=name, model_args={})
    graph.add_node("input", op=InputNode(widths[0]))
    table = []
    prev, width, k = "input", widths[0], 0
    for pos, out in enumerate(widths[1:]):
        nid = f"layer{k}"
        node = KanNode(
            nid, width, out, kernel, ansatz, (), base=base,
            postact_weight=postact_weight, postact_bias=postact_bias, group=group,
        )
        graph.add_node(nid, op=node)
        graph.add_edge(prev, nid)
        lead = (group,) if group is not None else (out, width)
        for pname, shape in kernel.params:
            init, tr = KERNEL_INITS.get(pname, (Init("normal", (0.0, 1.0)), True))
            table.append(ParamSpec(nid, pname, lead + tuple(shape), init, trainable.get(pname, tr)))
        if postact_weight:
            table.append(ParamSpec(nid, "postact_weight", (out, width), Init("constant", (1.0,)), True))
        if postact_bias:
            table.append(ParamSpec(nid, "postact_bias", (out, width), Init("constant", (0.0,)), True))
        if base != "none":
            table.append(ParamSpec(nid, "base_weight", (out, width), Init("normal", (0.0, 1 / math.sqrt(width))), True))
        table.append(ParamSpec(nid, "mask", (out, width), Init("constant", (1.0,)), False))
        prev, width, k = nid, out, k + 1
        if pos in linear_after:
            nid = f"layer{k}"
            graph.add_node(nid, op=LinearNode(nid, width, width))
            graph.add_edge(prev, nid)
            table.append(ParamSpec(nid, "weight", (width, width), Init("xavier"), True))
            table.append(ParamSpec(nid, "bias", (width,), Init("zeros"), True))
            prev, k = nid, k + 1
    graph.add_node("output", op=OutputNode(width))
    graph.add_edge(prev, "output")
    graph.graph["params"] = tuple(table)
    return graph


def ansatz_graph(kernel: Circuit) -> nx.DiGraph:
    """The kernel alone as a 1 -> 1 network: the raw activation phi(x)."""
    return network([1, 1], kernel, base="none")
