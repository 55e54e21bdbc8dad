"""Emitters: OpenQASM 3 and 2 programs from the circuit IR, in native gate sets.

Stages, each a module::

    circuit.py   one edge's circuit: pipeline stage, parameters bound, lowered to a basis
    native.py    the table of native bases (exact lowering of every IR gate), SU(2) numerics
    text.py      angle expressions as program text, hoisting, JSON
    program.py   circuits on the qubits of a program (the EMITTERS registry), Braket dialect

The one-call entry point for a single edge::

    from qvaf.compiler.emit import edge_program
    text = edge_program(node.kernel, {"theta": params["layer0"]["theta"][o, i]},
                        target="qasm3", basis="ibm")
"""

from __future__ import annotations

from typing import Mapping

from .circuit import LEVELS, PARAM_MODES, EdgeCircuit, edge_circuit, gate_counts, stage
from .errors import EmitError
from .native import BASES, Basis, NativeGate, get_basis
from .program import EMITTERS, BRAKET_NAMES, Emitter, Program, ProgramInput, fill_template, to_braket, write

__all__ = [
    "BASES", "BRAKET_NAMES", "Basis", "EMITTERS", "EdgeCircuit", "EmitError", "Emitter", "LEVELS",
    "NativeGate", "PARAM_MODES", "Program", "ProgramInput", "edge_circuit", "edge_program", "emit",
    "fill_template", "gate_counts", "get_basis", "stage", "to_braket", "write",
]


def emit(kernel, values: Mapping[str, object] | None = None, x: float | None = None, *, target: str = "qasm3",
         basis: str = "stdgates", level: str = "optimised", params: str = "literal", functions: str = "hoist",
         physical_qubits: bool = False) -> Program:
    """The :class:`Program` of one edge circuit (see :func:`edge_program` for the arguments)."""
    ec = edge_circuit(kernel, values, basis=basis, level=level, params=params)
    return write([ec], target, xs=None if x is None else [x], functions=functions, physical_qubits=physical_qubits)


def edge_program(kernel, values: Mapping[str, object] | None = None, x: float | None = None, *,
                 target: str = "qasm3", basis: str = "stdgates", level: str = "optimised",
                 params: str = "literal", functions: str = "hoist", physical_qubits: bool = False) -> str:
    """The program text of one edge circuit.

    Args:
        kernel: the circuit IR of a kan layer (``graph.nodes["layer0"]["op"].kernel``), any stage.
        values: the edge's parameter values, ``{name: array}`` with each parameter's per-edge
            shape (``params["layer0"]["theta"][o, i]``; with ``group g``, row ``i mod g``).
        x: bind the edge input: the program then holds numbers only (QASM 3 without
            ``input``; QASM 2 needs it unless a template is wanted).
        target: ``"qasm3"`` or ``"qasm2"`` (:data:`EMITTERS`).
        basis: ``"stdgates"``, ``"ibm"``, ``"rz-rx90"`` or ``"clifford"`` (:data:`BASES`).
        level: ``"optimised"`` (after the pass pipeline, fused blocks as Euler angles) or
            ``"written"`` (loops unrolled, constants inlined, gates as written).
        params: ``"literal"`` bakes parameters in; ``"input"`` declares them as inputs
            ``q0_theta_I_J`` (parametric compilation).
        functions: ``"hoist"`` or ``"inline"`` (see :func:`qvaf.compiler.emit.program.write`).
        physical_qubits: write ``$0`` instead of a qubit register (QASM 3).

    Raises:
        EmitError: ``measure inspired``; a gate with no exact lowering in ``basis``; an angle
            that is not a real number at ``x``.
    """
    return emit(kernel, values, x, target=target, basis=basis, level=level, params=params,
                functions=functions, physical_qubits=physical_qubits).text
