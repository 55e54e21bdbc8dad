"""The hardware plan of a network: which circuits each layer runs, on which qubits of which
program, and which edges each one serves.

Per kan layer every edge (o, i) whose mask is non-zero gets its circuit, parameters baked in
(:func:`qvaf.compiler.emit.edge_circuit`). Edges with the same circuit and the same input
share one measurement: with ``group g`` the circuit of edge (o, i) depends on ``i mod g``
and ``x_i`` only, so a layer needs one circuit per input instead of one per edge. Masked
edges (m = 0, pruned) run nothing. Circuits are then packed, in order, ``pack`` to a program
(qubit ``k`` of a program runs its ``k``-th circuit); the qubits never interact, so packing
changes the number of jobs and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qvaf.compiler.backends._common import layer_order
from qvaf.compiler.emit import EMITTERS, PARAM_MODES, EdgeCircuit, EmitError, Program, get_basis, stage, write
from qvaf.compiler.emit.circuit import bind, lower_bound
from qvaf.compiler.ir import KanNode, LinearNode
from qvaf.dsl.errors import QvafError


class HardwareError(QvafError):
    """A network, export or run that the hardware path cannot handle."""


@dataclass(frozen=True)
class Placement:
    """Qubit ``qubit`` of a program: the circuit of the edges ``edges`` (pairs (o, i), all
    with ``i == input``), fed by component ``input`` of the layer's input."""

    qubit: int
    input: int
    edges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class PlannedProgram:
    """A program, where its qubits' inputs come from, and the circuit on each qubit."""

    program: Program
    placements: tuple[Placement, ...]
    circuits: tuple[EdgeCircuit, ...]


@dataclass(frozen=True)
class LayerPlan:
    """One layer: its record, what feeds it (``"input"`` or the previous layer's id) and,
    for a kan layer, its programs."""

    id: str
    record: object
    source: str
    programs: tuple[PlannedProgram, ...] = ()

    @property
    def circuits(self) -> int:
        return sum(len(p.placements) for p in self.programs)


def lowered_graph(model):
    """The network as lowered (before the passes): what the ``written`` level reads."""
    program = getattr(model, "program", None)
    if program is None:
        return model.ir
    from qvaf.compiler.lower import lower_ansatz, lower_model

    name = model.model_name
    if name in getattr(program, "models", {}):
        return lower_model(program, name, model.model_args or None, model.ansatz_overrides or None)
    # an ansatz compiled alone keeps its arguments on its one kan layer, not in model_args
    return lower_ansatz(program, name, dict(model.ir.nodes["layer0"]["op"].ansatz_args))


def _edge_values(node: KanNode, layer: dict, o: int, i: int) -> dict:
    out = {}
    for name, _shape in node.kernel.params:
        arr = np.asarray(layer[name], np.float64)
        out[name] = arr[i % node.group] if node.group is not None else arr[o, i]
    return out


def plan_layer(node: KanNode, layer: dict, *, target: str, basis: str, level: str, pack: int,
               functions: str = "hoist", physical_qubits: bool = False,
               param_mode: str = "literal") -> tuple[PlannedProgram, ...]:
    """The packed programs of one kan layer (see the module docstring). With ``param_mode="input"``
    each edge's trained parameters are program inputs (``qK_NAME_I_J``) whose values the
    program's :class:`ProgramInput` records carry, instead of numbers in the text."""
    b = get_basis(basis)
    staged = stage(node.kernel, level, param_mode)
    mask = np.asarray(layer.get("mask", np.ones((node.out_width, node.in_width))))
    circuits: dict[tuple, list] = {}
    for i in range(node.in_width):
        for o in range(node.out_width):
            if mask[o, i] == 0:
                continue
            ops, symbols = bind(staged, _edge_values(node, layer, o, i), param_mode)
            try:
                ec = lower_bound(ops, symbols, staged.observable, b, level)
            except EmitError as exc:
                raise EmitError(f"{node.name} edge ({o}, {i}) ({node.ansatz}): {exc}") from None
            # edges of one input with the same circuit share a program (the parameter values
            # are part of the circuit when they are inputs)
            circuits.setdefault((i, ec.gates, ec.params), [ec, i, []])[2].append((o, i))
    ordered = list(circuits.values())
    programs = []
    for start in range(0, len(ordered), pack):
        chunk = ordered[start:start + pack]
        program = write([ec for ec, _, _ in chunk], target, functions=functions, physical_qubits=physical_qubits)
        placements = tuple(Placement(k, i, tuple(edges)) for k, (_, i, edges) in enumerate(chunk))
        programs.append(PlannedProgram(program, placements, tuple(ec for ec, _, _ in chunk)))
    return tuple(programs)


def plan_network(model, params, *, target: str = "qasm3", basis: str = "stdgates", level: str = "optimised",
                 pack: int = 1, functions: str = "hoist", physical_qubits: bool = False,
                 param_mode: str = "literal") -> list[LayerPlan]:
    """Every layer's plan for ``model`` (a :class:`qvaf.Compiled`) with parameters ``params``.

    Raises:
        HardwareError: a bad ``pack``; EmitError: a circuit with no program (``measure
            inspired``, no exact lowering in ``basis``), naming the layer and edge.
    """
    if not isinstance(pack, int) or pack < 1:
        raise HardwareError(f"pack must be a positive integer, got {pack!r}")
    if param_mode not in PARAM_MODES:
        raise HardwareError(f"unknown parameter mode {param_mode!r}; modes: {', '.join(PARAM_MODES)}")
    if param_mode == "input" and not EMITTERS[target].has_inputs:
        raise HardwareError(f"parameters as program inputs need a target with inputs (qasm3); {target} has none")
    # the optimised IR has data-free stretches fused into numbers; parametric programs start
    # from the lowered circuit (stage() then runs every pass but the fusion)
    graph = lowered_graph(model) if level == "written" or param_mode == "input" else model.ir
    plans, source = [], "input"
    for node_id, record in layer_order(graph)[1:-1]:
        if isinstance(record, KanNode):
            layer = {k: np.asarray(v) for k, v in params[node_id].items()}
            programs = plan_layer(record, layer, target=target, basis=basis, level=level, pack=pack,
                                  functions=functions, physical_qubits=physical_qubits,
                                  param_mode=param_mode)
            plans.append(LayerPlan(node_id, record, source, programs))
        elif isinstance(record, LinearNode):
            plans.append(LayerPlan(node_id, record, source))
        else:
            raise HardwareError(f"layer {node_id!r}: {type(record).__name__} has no hardware form")
        source = node_id
    return plans
