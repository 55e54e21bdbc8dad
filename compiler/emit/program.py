"""Programs: edge circuits on the qubits of one OpenQASM 3 or 2 program, with their inputs.

Qubit ``k`` of a program runs one edge circuit. Its inputs are named so that no name can
collide with a gate of ``stdgates.inc`` (qiskit's importer rejects an input called ``x``,
the X gate's name) or with ``pi`` (Amazon Braket reads an input called ``pi`` as the
constant)::

    x_K           the edge input of qubit K
    a_K_J         a value computed classically from x_K before each run (a hoisted function
                  call, see qvaf.compiler.emit.text; QASM 2: every data angle)
    qK_NAME_I_J   parameter NAME[I, J] of qubit K's edge (only with params="input")

Every measurement is in Z (``c[K] = measure q[K]``); the basis change of ``measure x|y`` is
part of the circuit. QASM 2 has no inputs: a program written for it with unbound data angles
is a *template* whose angles are ``{a_K_J}`` placeholders; :meth:`Program.bind` turns it into
a valid program.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from ..expr import Const, Expr, Input, ParamRef, evaluate, walk
from ..simplify import fold
from .circuit import EdgeCircuit, gate_counts
from .errors import EmitError
from .native import NativeGate
from .text import format_number, hoist, render, substitute_names

#: gates whose QASM 2 (qelib1.inc) name differs
_QASM2_NAMES = {"p": "u1"}
#: sx is not in the original qelib1.inc; programs that use it define it (SX = S^dag H S^dag up to phase)
_QASM2_SX = "gate sx a { sdg a; h a; sdg a; }"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ProgramInput:
    """One input of a program.

    ``kind`` is ``"data"`` (the qubit's edge input), ``"derived"`` (computed from it) or
    ``"param"``. ``expr`` gives its value: ``Input()`` is qubit ``qubit``'s edge input,
    ``ParamRef(name)`` the value of the program's parameter input ``name``.
    """

    name: str
    qubit: int
    kind: str
    expr: Expr


@dataclass(frozen=True)
class Program:
    """A program's text, its target, and what binding it takes."""

    text: str
    target: str
    qubits: int
    inputs: tuple[ProgramInput, ...]
    counts: tuple[dict, ...]  # gates by name, per qubit

    @property
    def depth(self) -> int:
        """Circuit depth: the longest qubit's gate count (qubits do not interact)."""
        return max((sum(c.values()) for c in self.counts), default=0)

    def values(self, xs: Sequence[float]) -> dict[str, float]:
        """Every input's value for edge inputs ``xs`` (one per qubit); NaN where an input is
        outside its function's domain (``arccos`` of 1.5)."""
        if len(xs) != self.qubits:
            raise EmitError(f"the program has {self.qubits} qubits, got {len(xs)} edge inputs")
        params = {i.name: np.asarray(float(i.expr.value)) for i in self.inputs if i.kind == "param"}
        out = {name: float(v) for name, v in params.items()}
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN outside a domain
            for i in self.inputs:
                if i.kind != "param":
                    out[i.name] = float(evaluate(i.expr, np.asarray(float(xs[i.qubit])), params, np))
        return out

    def bind(self, values: Mapping[str, float]) -> tuple[str, dict[str, float]]:
        """``(text, inputs)`` to run: QASM 3 keeps its text and takes ``values`` as inputs;
        a QASM 2 template gets the numbers written in and takes no inputs."""
        if EMITTERS[self.target].has_inputs:
            return self.text, {i.name: float(values[i.name]) for i in self.inputs}
        return fill_template(self.text, values), {}


def fill_template(text: str, values: Mapping[str, float]) -> str:
    """A QASM 2 template with every ``{name}`` replaced by the number ``values[name]``."""
    def number(m):
        name = m.group(1)
        if name not in values:
            raise EmitError(f"no value for the template's angle {{{name}}}")
        v = float(values[name])
        if not math.isfinite(v):
            raise EmitError(f"angle {name} is {v}, not a real number (an input outside the encoding's domain?)")
        return format_number(v)[0]

    return _PLACEHOLDER.sub(number, text)


# ----------------------------------------------------------------------------- naming


def _qubit_angles(ec: EdgeCircuit, k: int, emitter, functions: str, x: float | None):
    """Angles of qubit ``k`` renamed for the program, and its inputs."""
    params = dict(ec.params)
    if x is not None:  # bound: numbers only
        def rep(leaf):
            if isinstance(leaf, Input):
                return Const(float(x))
            return Const(params[leaf.name])

        gates = []
        for g in ec.gates:
            angles = []
            for a in g.angles:
                v = fold(substitute_names(a, rep))
                if not isinstance(v, Const) or not math.isfinite(float(v.value)):
                    raise EmitError(f"angle {render(a, functions=True)} is not a real number at x = {x!r} "
                                    f"(an input outside the encoding's domain?)")
                angles.append(v)
            gates.append(NativeGate(g.name, tuple(angles)))
        return gates, []

    def rename(leaf):
        if isinstance(leaf, Input):
            return ParamRef(f"x_{k}")
        if leaf.name in params:
            return ParamRef(f"q{k}_{leaf.name}")
        return None  # hoisted names are final

    table: dict[Expr, str] = {}
    everything = not emitter.has_inputs
    inline = functions == "inline" and emitter.has_inputs
    gates = []
    for g in ec.gates:
        angles = tuple(a if inline else hoist(a, table, lambda j: f"a_{k}_{j}", everything=everything)
                       for a in g.angles)
        gates.append(NativeGate(g.name, tuple(substitute_names(a, rename) for a in angles)))
    used = {leaf.name for g in gates for a in g.angles for leaf in _leaves(a)}
    inputs = []
    if f"x_{k}" in used:
        inputs.append(ProgramInput(f"x_{k}", k, "data", Input()))
    for sub, name in table.items():
        inputs.append(ProgramInput(name, k, "derived", substitute_names(
            sub, lambda leaf: None if isinstance(leaf, Input) else rename(leaf))))
    needed = used | {leaf.name for i in inputs for leaf in _leaves(i.expr) if isinstance(leaf, ParamRef)}
    for sym, value in ec.params:
        if f"q{k}_{sym}" in needed:
            inputs.append(ProgramInput(f"q{k}_{sym}", k, "param", Const(float(value))))
    return gates, inputs


def _leaves(e: Expr):
    return [n for n in walk(e) if isinstance(n, (Input, ParamRef))]


def _gate_line(g: NativeGate, target: str, wire: str, placeholders: bool) -> str:
    name = _QASM2_NAMES.get(g.name, g.name) if target == "qasm2" else g.name
    if not g.angles:
        return f"{name} {wire};"
    names = (lambda e: "{" + e.name + "}") if placeholders else None
    return f"{name}({', '.join(render(a, names, functions=True) for a in g.angles)}) {wire};"


# ----------------------------------------------------------------------------- writers


def _qasm3(per_qubit, inputs, n: int, physical_qubits: bool) -> list[str]:
    wire = (lambda k: f"${k}") if physical_qubits else (lambda k: f"q[{k}]")
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";']
    lines += [f"input float[64] {i.name};" for i in inputs]
    lines += ([] if physical_qubits else [f"qubit[{n}] q;"]) + [f"bit[{n}] c;"]
    lines += [_gate_line(g, "qasm3", wire(k), False) for k, (gates, _) in enumerate(per_qubit) for g in gates]
    return lines + [f"c[{k}] = measure {wire(k)};" for k in range(n)]


def _qasm2(per_qubit, inputs, n: int, physical_qubits: bool) -> list[str]:
    if physical_qubits:
        raise EmitError("OpenQASM 2 has no physical qubits; drop physical_qubits")
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";']
    if any(g.name == "sx" for gates, _ in per_qubit for g in gates):
        lines.append(_QASM2_SX)
    lines += [f"qreg q[{n}];", f"creg c[{n}];"]
    lines += [_gate_line(g, "qasm2", f"q[{k}]", True) for k, (gates, _) in enumerate(per_qubit) for g in gates]
    return lines + [f"measure q[{k}] -> c[{k}];" for k in range(n)]


@dataclass(frozen=True)
class Emitter:
    """A program format: how its lines are assembled, and whether it takes inputs at all
    (without them every data angle is hoisted into a template placeholder)."""

    name: str
    assemble: Callable
    has_inputs: bool
    description: str


#: every program format, by name: the one registry an emitter plugs into
EMITTERS: dict[str, Emitter] = {
    "qasm3": Emitter("qasm3", _qasm3, True, "OpenQASM 3.0 with stdgates.inc and input float[64] declarations"),
    "qasm2": Emitter("qasm2", _qasm2, False, "OpenQASM 2.0 with qelib1.inc; data angles bound per run"),
}


def write(circuits: Sequence[EdgeCircuit], target: str = "qasm3", *, xs: Sequence[float] | None = None,
          functions: str = "hoist", physical_qubits: bool = False) -> Program:
    """One program running ``circuits[k]`` on qubit ``k``, each measured in Z.

    Args:
        circuits: edge circuits (one per qubit).
        target: a name from :data:`EMITTERS` (``"qasm3"``, ``"qasm2"``).
        xs: edge inputs to bind (one per qubit): the program then has numbers only.
        functions: ``"hoist"`` computes non-arithmetic data angles classically (inputs
            ``a_K_J``; what qiskit and IBM's stack load), ``"inline"`` writes QASM 3's
            built-in functions (``arccos(x_0)``; openqasm3 and Amazon Braket read them).
        physical_qubits: address ``$K`` instead of a declared register (QASM 3).
    """
    if target not in EMITTERS:
        raise EmitError(f"unknown target {target!r}; targets: {', '.join(EMITTERS)}")
    emitter = EMITTERS[target]
    if functions not in ("hoist", "inline"):
        raise EmitError(f"unknown functions mode {functions!r}; modes: hoist, inline")
    if not circuits:
        raise EmitError("a program needs at least one circuit")
    if xs is not None and len(xs) != len(circuits):
        raise EmitError(f"{len(circuits)} circuits but {len(xs)} edge inputs")
    per_qubit = [_qubit_angles(ec, k, emitter, functions, None if xs is None else xs[k])
                 for k, ec in enumerate(circuits)]
    inputs = tuple(i for _, ins in per_qubit for i in ins)
    lines = emitter.assemble(per_qubit, inputs, len(circuits), physical_qubits)
    counts = tuple(gate_counts(gates) for gates, _ in per_qubit)
    return Program("\n".join(lines) + "\n", target, len(circuits), inputs, counts)


# ----------------------------------------------------------------------------- dialects

#: stdgates.inc name -> Amazon Braket's name for the same gate
BRAKET_NAMES = {"sx": "v", "sdg": "si", "tdg": "ti", "p": "phaseshift", "u3": "U"}
_GATE_LINE = re.compile(r"^([a-z][a-z0-9]*)(?=[ (])")
_MEASURE = re.compile(r"^c\[(\d+)\] = measure (q\[\d+\]|\$\d+);$")


def to_braket(text: str, *, exact: bool = False) -> str:
    """A QASM 3 program written by :func:`write` in the dialect Amazon Braket runs.

    Braket's simulators and devices know their gates without ``include "stdgates.inc"``
    (and fail on the include, looking for the file) and call some of them differently
    (:data:`BRAKET_NAMES`). With ``exact`` the measurements become
    ``#pragma braket result expectation z(...)`` result types, which the local simulator
    evaluates exactly with ``shots=0``.
    """
    out, measured = [], []
    for line in text.splitlines():
        if line.startswith("include "):
            continue
        m = _MEASURE.match(line)
        if m:
            measured.append(m.group(2))
            if exact:
                continue
        elif exact and line.startswith("bit["):
            continue
        elif not line.startswith(("OPENQASM", "input", "qubit", "bit", "#")):
            line = _GATE_LINE.sub(lambda g: BRAKET_NAMES.get(g.group(1), g.group(1)), line)
        out.append(line)
    if exact:
        out += [f"#pragma braket result expectation z({w})" for w in measured]
    return "\n".join(out) + "\n"
