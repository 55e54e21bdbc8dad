"""Readable text of an IR graph (``qvaf inspect --dump-ir``): one gate per line.

Example output for one layer of the regression model after the whole pipeline::

    layer0: kan 2 -> 5 edges, pz(reps=3), base silu
      params theta[4, 2]
      fused {
        ry(pi / 2)
        rz(theta[0, 0])
        ry(theta[0, 1])
      }
      rz(x)
      ...
      measure z
"""

from __future__ import annotations

import math

import networkx as nx

from .expr import Binary, Const, Expr, Unary, substitute, to_str
from .ir import FusedOp, GateOp, KanNode, LinearNode, LoopOp, NoiseOp

__all__ = ["format_expr", "format_graph", "format_ops"]

_DENOMS = (1, 2, 3, 4, 6, 8, 12)


def _pi_form(v: float) -> Expr | None:
    """``Const(3*pi/4)`` -> ``3 * pi / 4`` (None when not a small rational multiple of pi)."""
    if isinstance(v, bool) or not isinstance(v, float) or v == 0 or not math.isfinite(v):
        return None
    for q in _DENOMS:
        p = v * q / math.pi
        if abs(p - round(p)) < 1e-12 and 0 < abs(round(p)) <= 64:
            p = int(round(p))
            num: Expr = Const(math.pi) if abs(p) == 1 else Binary("*", Const(abs(p)), Const(math.pi))
            e = num if q == 1 else Binary("/", num, Const(q))
            return Unary("neg", e) if p < 0 else e
    return None


def format_expr(e: Expr) -> str:
    """:func:`~qvaf.compiler.expr.to_str`, with multiples of pi written as such."""
    return to_str(substitute(e, lambda n: _pi_form(n.value) if isinstance(n, Const) else None))


def _gate(g: GateOp) -> str:
    if not g.angles:
        return g.op.value
    return f"{g.op.value}({', '.join(format_expr(a) for a in g.angles)})"


def format_ops(ops, indent: str = "  ") -> list[str]:
    lines = []
    for op in ops:
        if isinstance(op, GateOp):
            lines.append(indent + _gate(op))
        elif isinstance(op, LoopOp):
            lines.append(f"{indent}for {op.var} in {op.start}..{op.stop} {{")
            lines += format_ops(op.body, indent + "  ")
            lines.append(indent + "}")
        elif isinstance(op, NoiseOp):
            lines.append(indent + "noise")
        elif isinstance(op, FusedOp):
            lines.append(indent + "fused {")
            lines += format_ops(op.gates, indent + "  ")
            lines.append(indent + "}")
        else:
            lines.append(f"{indent}{op!r}")
    return lines


def _shape(name, shape) -> str:
    return name + (f"[{', '.join(map(str, shape))}]" if shape else "")


def _constant(name, value) -> str:
    import numpy as np

    arr = np.asarray(value, dtype=float)
    flat = np.unique(arr)
    shown = f"{flat[0]:g}" if flat.size == 1 else np.array2string(arr, separator=", ")
    return f"{_shape(name, arr.shape)} = {shown}"


def format_graph(graph: nx.DiGraph) -> str:
    """Every layer of ``graph`` as text: kernel circuits gate by gate, linear layers one line."""
    lines = []
    for node in nx.topological_sort(graph):
        rec = graph.nodes[node]["op"]
        if isinstance(rec, KanNode):
            args = ", ".join(f"{k}={v}" for k, v in rec.ansatz_args)
            extras = [f"base {rec.base}"]
            post = [w for w, on in (("weight", rec.postact_weight), ("bias", rec.postact_bias)) if on]
            if post:
                extras.append("postact " + " ".join(post))
            if rec.group is not None:
                extras.append(f"group {rec.group}")
            lines.append(f"{node}: kan {rec.in_width} -> {rec.out_width} ({rec.edges} edges), "
                         f"{rec.ansatz}({args}), {', '.join(extras)}")
            k = rec.kernel
            if k.params:
                lines.append("  params " + ", ".join(_shape(n, s) for n, s in k.params))
            if k.constants:
                lines.append("  consts " + "; ".join(_constant(n, v) for n, v in k.constants))
            lines += format_ops(k.ops)
            lines.append(f"  measure {k.observable}")
        elif isinstance(rec, LinearNode):
            lines.append(f"{node}: linear {rec.in_width} -> {rec.out_width}")
    return "\n".join(lines)
