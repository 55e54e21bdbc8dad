"""The per-layer table of a compiled network: what ``qvaf inspect`` and ``Compiled.summary()``
print (one implementation for both).

Example::

    layer   kind  ansatz      in->out  edges     gates  ops  uploads  trainable  fixed  max freq
    layer0  kan   pz(reps=3)     2->5     10  12 -> 12    7        3         90     10         3
    layer1  kan   pz(reps=3)     5->1      5  12 -> 12    7        3         45      5         3
    total                                 15                                135     15
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from .analysis import LayerStats, stats

LEGEND = (
    "gates: before -> after the passes; ops: kernel steps per edge after fusion (a fused block is one)\n"
    "uploads: data-dependent rotations; trainable/fixed: scalars; max freq: highest frequency in x"
)
HEADER = ("layer", "kind", "ansatz", "in->out", "edges", "gates", "ops", "uploads", "trainable", "fixed",
          "max freq")


def ansatz_label(node) -> str:
    """``pz(reps=3)``: a kan node's ansatz with its bound arguments."""
    args = ",".join(f"{k}={v}" for k, v in node.ansatz_args)
    return f"{node.ansatz}({args})" if args else node.ansatz


def layer_rows(lowered: nx.DiGraph, optimized: nx.DiGraph) -> list[LayerStats]:
    """:func:`~qvaf.compiler.analysis.stats` with each kan row's ansatz labelled with its arguments."""
    rows = stats(lowered, optimized)
    return [r if r.kind != "kan" else replace(r, ansatz=ansatz_label(lowered.nodes[r.layer]["op"])) for r in rows]


def _cell(value) -> str:
    return "-" if value is None else str(value)


def format_table(rows: list[LayerStats]) -> list[str]:
    """The table's lines; footnotes for frequencies that have no number."""
    body, notes = [], []
    for r in rows:
        if r.kind == "kan":
            gates = f"{r.gates_before} -> {r.gates_after}"
            if r.max_frequency is not None:
                freq = r.frequency_text
            else:
                freq = f"[{len(notes) + 1}]"
                notes.append(f"  [{len(notes) + 1}] {r.layer}: {r.frequency_note}")
        else:
            gates, freq = "-", "-"
        body.append([r.layer, r.kind, r.ansatz or "-", f"{r.in_width}->{r.out_width}", str(r.edges), gates,
                     _cell(r.ops_after), _cell(r.reuploads), str(r.trainable), str(r.fixed), freq])
    body.append(["total", "", "", "", str(sum(r.edges for r in rows if r.kind == "kan")), "", "", "",
                 str(sum(r.trainable for r in rows)), str(sum(r.fixed for r in rows)), ""])
    widths = [max(len(line[i]) for line in [list(HEADER)] + body) for i in range(len(HEADER))]
    left = {0, 1, 2}

    def fmt(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [fmt(HEADER)] + [fmt(b) for b in body] + notes


def title(kind: str, name: str, graph: nx.DiGraph) -> str:
    """``model hqkan_ffn(d=64, k=2): 64 -> 64``."""
    in_w = graph.nodes["input"]["op"].width
    out_w = graph.nodes["output"]["op"].width
    margs = graph.graph.get("model_args") or {}
    shown = f"({', '.join(f'{k}={v}' for k, v in margs.items())})" if margs else ""
    return f"{kind} {name}{shown}: {in_w} -> {out_w}"
