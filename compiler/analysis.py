"""Analyses of an IR graph: per-layer statistics and parameters that cannot matter.

* :func:`stats` — per layer: edges, gates before and after the passes, fused blocks, data
  re-uploads, trainable and fixed scalar counts, and the highest frequency the activation
  can contain.
* :func:`unused_params` — per-edge parameter entries the optimised circuit never reads.
* :func:`domain_limits` — data-dependent angles that leave the real numbers for some inputs
  (``acos``/``asin`` outside [-1, 1], ``log``/``sqrt`` of negatives): px's encoding is one.

**Frequency spectrum.** An encoding rotation ``R_sigma(a x + d)`` = exp(-i (a x + d) sigma/2)
multiplies the state by e^{+-i a x / 2}; in the expectation <O> = tr(O U rho U^dagger) each
encoding therefore shifts the frequency by at most |a| (one half from U, one from
U^dagger). With L encodings of coefficients a_1..a_L the readout <Z> is a trigonometric
polynomial in x whose highest frequency is::

    omega_max = sum_l |a_l|          (= L for unit coefficients, as in pz with w = 1)

That bound is reported when every ``a_l`` is a compile-time constant; when it reads a
parameter the report says which one (a trainable ``w`` moves the spectrum). With an
``acos(u)`` encoding (px) <Z> is a trigonometric polynomial of degree <= L in acos(u), not a
Fourier series in x; the ``inspired`` readout |alpha| - |beta| = f(<Z>) with a square root
is not a finite Fourier series at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx

from .expr import Const, Unary, depends_on_input, param_refs, to_str, walk
from .ir import FusedOp, GateOp, KanNode, LinearNode, LoopOp
from .passes import count_gates, run_pipeline, unroll_circuit
from .simplify import affine_in_x

__all__ = ["LayerStats", "UnusedParam", "DomainLimit", "stats", "unused_params", "domain_limits",
           "frequency_bound", "layer_order", "UNROLL_WARN", "unrolled_ops", "unroll_problems"]

#: top-level ops per edge circuit above which compiling is slow enough to say so (pz with
#: reps = 32 has 65); the refusal limit is :attr:`CompileOptions.unroll_limit`
UNROLL_WARN = 64


@dataclass(frozen=True)
class LayerStats:
    """One row of ``qvaf inspect``.

    ``gates_before`` counts the lowered circuit's gates with loops unrolled (named gates
    count one each); ``gates_after`` the optimised circuit's gates (inside fused blocks too);
    ``ops_after`` its top-level ops (a fused block counts one): the per-edge work of a
    backend. ``max_frequency`` is None when no finite bound is known; ``frequency_note``
    then says why. Kernel fields are None for linear layers.
    """

    layer: str
    kind: str
    ansatz: str | None
    in_width: int
    out_width: int
    edges: int
    gates_before: int | None
    gates_after: int | None
    ops_after: int | None
    fused_blocks: int | None
    reuploads: int | None
    trainable: int
    fixed: int
    max_frequency: float | int | None
    frequency_note: str = ""

    @property
    def frequency_text(self) -> str:
        if self.kind != "kan":
            return "-"
        if self.max_frequency is not None:
            return _num_text(self.max_frequency) + (f" ({self.frequency_note})" if self.frequency_note else "")
        return self.frequency_note


@dataclass(frozen=True)
class UnusedParam:
    """Entries of a per-edge parameter that the optimised circuit never reads."""

    layer: str
    name: str
    indices: tuple[tuple[int, ...], ...]
    total: int

    def message(self) -> str:
        if len(self.indices) == self.total:
            what = f"{self.layer}.{self.name} (all {self.total} entries per edge)"
        else:
            shown = ", ".join(f"{self.name}[{', '.join(map(str, i))}]" for i in self.indices[:6])
            more = f" and {len(self.indices) - 6} more" if len(self.indices) > 6 else ""
            what = f"{self.layer}: {shown}{more}"
        return f"{what} never read by the optimised circuit: cannot affect the output"


def layer_order(graph: nx.DiGraph) -> list[str]:
    """Layer node ids in network order (``layer0``, ``layer1``, ...)."""
    return [n for n in nx.topological_sort(graph) if n not in ("input", "output")]


def _num_text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def _top_ops(circuit):
    if any(isinstance(op, LoopOp) for op in circuit.ops):
        circuit = unroll_circuit(circuit)
    return circuit.ops


def unrolled_ops(graph: nx.DiGraph) -> dict[str, int]:
    """Top-level ops of each kan layer's edge circuit, loops unrolled: the steps a backend
    traces one after another, so compile time grows with it (fused blocks count one)."""
    return {nid: len(_top_ops(graph.nodes[nid]["op"].kernel)) for nid in layer_order(graph)
            if isinstance(graph.nodes[nid]["op"], KanNode)}


def unroll_problems(graph: nx.DiGraph, limit: int | None) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` about circuit sizes: layers whose edge circuit unrolls into more
    than ``limit`` ops (None: no limit), and layers above :data:`UNROLL_WARN` ops."""
    errors, warnings = [], []
    for nid, n in unrolled_ops(graph).items():
        rec = graph.nodes[nid]["op"]
        what = f"{nid} ({rec.ansatz}{_args_text(rec)}) unrolls into {n} ops per edge circuit"
        if limit is not None and n > limit:
            errors.append(f"{what}, above the limit of {limit}: compile time grows with every op "
                          f"(minutes at a few hundred)")
        elif n > UNROLL_WARN:
            warnings.append(f"{what}: compiling it takes a while (tens of seconds and more)")
    return errors, warnings


def _args_text(rec: KanNode) -> str:
    return "(" + ", ".join(f"{k}={_num_text(v)}" for k, v in rec.ansatz_args) + ")" if rec.ansatz_args else ""


def _data_gates(ops):
    for op in ops:
        if isinstance(op, GateOp) and any(depends_on_input(a) for a in op.angles):
            yield op


def frequency_bound(kernel, trainable: dict[str, bool]) -> tuple[float | int | None, str]:
    """The highest frequency in ``x`` of the kernel's readout, or None with the reason.

    Args:
        kernel: an optimised :class:`~qvaf.compiler.ir.Circuit` (rotations only).
        trainable: per-edge parameter name -> trainable flag (names the blocker).
    """
    ops = _top_ops(kernel)
    total: float | int = 0
    blockers: list[str] = []
    nonlinear: list[str] = []
    for g in _data_gates(ops):
        if len(g.angles) != 1:
            return None, f"gate {g.op.value} reads x (canonicalize first)"
        form = affine_in_x(g.angles[0])
        if form is None:
            a = g.angles[0]
            if isinstance(a, Unary) and a.fn in ("acos", "asin") and affine_in_x(a.arg) is not None:
                nonlinear.append(a.fn)
                continue
            return None, "non-linear encoding: no finite spectrum"
        coef = form[0]
        refs = sorted({r.name for r in param_refs(coef)})
        if refs:
            for name in refs:
                kind = "trainable" if trainable.get(name, False) else "fixed per-edge"
                if f"{kind} {name}" not in blockers:
                    blockers.append(f"{kind} {name}")
            continue
        if not isinstance(coef, Const):
            return None, f"data coefficient {to_str(coef)} is not a compile-time number"
        total += abs(coef.value)
    if nonlinear:
        if len(nonlinear) != len(list(_data_gates(ops))) or len(set(nonlinear)) != 1:
            return None, "mixed encodings: no finite spectrum in x"
        return None, f"degree <= {len(nonlinear)} in the angle {nonlinear[0]}(.) of x, not a Fourier series in x"
    if kernel.observable == "inspired":
        return None, "unbounded: the inspired readout is not a Fourier series"
    if blockers:
        return None, "depends on " + ", ".join(blockers)
    if isinstance(total, float) and total.is_integer():
        total = int(total)
    return total, ""


def stats(graph: nx.DiGraph, optimized: nx.DiGraph | None = None) -> list[LayerStats]:
    """Per-layer statistics of a lowered ``graph`` and its optimised form.

    Args:
        graph: the graph as lowered (the "before" counts).
        optimized: the same graph after the passes; None runs :func:`run_pipeline`.
    """
    if optimized is None:
        optimized = run_pipeline(graph)
    table = optimized.graph["params"]
    rows = []
    for layer in layer_order(graph):
        before = graph.nodes[layer]["op"]
        after = optimized.nodes[layer]["op"]
        specs = [p for p in table if p.owner == layer]
        trainable = sum(math.prod(p.shape) for p in specs if p.trainable)
        fixed = sum(math.prod(p.shape) for p in specs if not p.trainable)
        common = dict(layer=layer, in_width=before.in_width, out_width=before.out_width,
                      edges=before.in_width * before.out_width, trainable=trainable, fixed=fixed)
        if isinstance(before, LinearNode):
            rows.append(LayerStats(kind="linear", ansatz=None, gates_before=None, gates_after=None,
                                   ops_after=None, fused_blocks=None, reuploads=None,
                                   max_frequency=None, **common))
            continue
        assert isinstance(before, KanNode) and isinstance(after, KanNode)
        ops = _top_ops(after.kernel)
        flags = {p.name: p.trainable for p in specs}
        freq, note = frequency_bound(after.kernel, flags)
        rows.append(LayerStats(
            kind="kan", ansatz=before.ansatz,
            gates_before=count_gates(before.kernel.ops), gates_after=count_gates(ops),
            ops_after=len(ops), fused_blocks=sum(isinstance(op, FusedOp) for op in ops),
            reuploads=sum(1 for _ in _data_gates(ops)), max_frequency=freq, frequency_note=note, **common,
        ))
    return rows


def unused_params(graph: nx.DiGraph) -> list[UnusedParam]:
    """Per-edge parameter entries the (optimised) circuit never reads.

    Pass the graph after :func:`run_pipeline`: an entry read only by a gate the passes
    removed (a trailing ``rz`` before ``measure z``, a rotation multiplied by a zero
    constant) cannot affect the output. Model-level arrays (mask, weights) always matter.
    Returns one :class:`UnusedParam` per parameter with unread entries, in layer order.
    """
    out = []
    for layer in layer_order(graph):
        rec = graph.nodes[layer]["op"]
        if not isinstance(rec, KanNode):
            continue
        ops = _top_ops(rec.kernel)
        read: dict[str, set] = {}
        whole: set[str] = set()
        for g in _all_gates(ops):
            for a in g.angles:
                for r in param_refs(a):
                    if not r.indices:
                        whole.add(r.name)
                    elif all(isinstance(i, Const) for i in r.indices):
                        read.setdefault(r.name, set()).add(tuple(int(i.value) for i in r.indices))
                    else:  # symbolic index that survived: assume it reads everything
                        whole.add(r.name)
        for name, shape in rec.kernel.params:
            if name in whole:
                continue
            every = _all_indices(shape)
            missing = tuple(i for i in every if i not in read.get(name, set()))
            if missing:
                out.append(UnusedParam(layer, name, missing, len(every)))
    return out


def _all_gates(ops):
    for op in ops:
        if isinstance(op, GateOp):
            yield op
        elif isinstance(op, FusedOp):
            yield from op.gates
        elif isinstance(op, LoopOp):
            yield from _all_gates(op.body)


def _all_indices(shape):
    import itertools

    return list(itertools.product(*(range(s) for s in shape)))


#: functions whose real domain is limited, with the condition their argument must meet
_LIMITED = {"acos": "in [-1, 1]", "asin": "in [-1, 1]", "log": "> 0", "sqrt": ">= 0"}


@dataclass(frozen=True)
class DomainLimit:
    """A data-dependent sub-expression ``fn(arg)`` that is real only when ``arg`` meets ``need``."""

    layer: str
    ansatz: str
    expr: str
    need: str

    def message(self) -> str:
        return (f"{self.layer} ({self.ansatz}): {self.expr} needs its argument {self.need}; "
                f"inputs outside give NaN (scale the data or constrain the pre-activation)")


def domain_limits(graph: nx.DiGraph) -> list[DomainLimit]:
    """Every data-dependent ``acos``/``asin``/``log``/``sqrt`` in the kernels, once per layer.

    The reference package returns NaN silently for px inputs outside [-1, 1]; qvaf names the
    layer and the expression instead (``qvaf inspect`` notes, and the message when training
    meets a NaN loss).
    """
    out = []
    for layer in layer_order(graph):
        rec = graph.nodes[layer]["op"]
        if not isinstance(rec, KanNode):
            continue
        seen = set()
        for g in _all_gates(rec.kernel.ops):
            for a in g.angles:
                for node in walk(a):
                    if isinstance(node, Unary) and node.fn in _LIMITED and depends_on_input(node.arg):
                        text = to_str(node)
                        if text not in seen:
                            seen.add(text)
                            out.append(DomainLimit(layer, rec.ansatz, text, _LIMITED[node.fn]))
    return out
