"""OpenQASM 3 and 2 programs of every spec ansatz and of random ansätze, read back by the
consumers and simulated against the JAX backend.

For every ansatz in specs/ (daruan also with axis x and y) and for 104 hypothesis-generated
ansätze (tests/test_backend_random.py's strategy; an ``inspired`` readout is checked to be
refused and then read out as ``z``), at both levels and in every universal basis:

* QASM 3 parses with ``openqasm3.parse`` and ``qiskit.qasm3.loads``; with the inputs bound
  (qiskit ``Statevector``) it gives the JAX backend's <observable> to 1e-9 (float64);
* QASM 2 with the edge input bound parses with ``qiskit.qasm2.loads`` and gives the same.

Parametric programs (``params="input"``), physical qubits, QASM 3 built-in functions
(``functions="inline"``, read by openqasm3 and Amazon Braket's simulator) and the refusals
are checked here too.
"""

from __future__ import annotations

import glob
import os
from dataclasses import replace

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import openqasm3
import qiskit.qasm2
import qiskit.qasm3
from qiskit.quantum_info import Statevector

import qvaf
from qvaf.compiler.emit import BASES, EmitError, edge_circuit, edge_program, emit, to_braket, write
from qvaf.compiler.expr import Binary, Const, Input, ParamRef, Unary
from qvaf.compiler.ir import Circuit, GateOp, LoopOp, Op
from qvaf.compiler.lower import lower_ansatz
from qvaf.dsl import load_program

from _backend_ir import network
from test_backend_random import random_ansatz


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIVERSAL = [name for name, b in BASES.items() if b.universal]
LEVELS = ("written", "optimised")
TOL = 1e-9


def load(text: str):
    circ = (qiskit.qasm3.loads if text.startswith("OPENQASM 3") else qiskit.qasm2.loads)(text)
    return circ.remove_final_measurements(inplace=False)


def simulate_all(text_or_circuit, inputs: dict) -> np.ndarray:
    """<Z_k> of every qubit by qiskit: load, bind by name, Statevector."""
    circ = load(text_or_circuit) if isinstance(text_or_circuit, str) else text_or_circuit
    params = {p.name: p for p in circ.parameters}
    assert set(params) == set(inputs)
    if params:
        circ = circ.assign_parameters({params[n]: v for n, v in inputs.items()})
    p = Statevector(circ).probabilities()
    idx = np.arange(len(p))
    return np.array([np.sum(p * (1 - 2 * ((idx >> k) & 1))) for k in range(circ.num_qubits)])


def simulate(text: str, inputs: dict) -> float:
    return float(simulate_all(text, inputs)[0])


def jax_values(kernel: Circuit, values: dict, xs) -> np.ndarray:
    """The JAX backend's readout of one edge (unoptimised IR, float64, op by op)."""
    model = qvaf.compile(network([1, 1], kernel, base="none"), dtype="float64", optimize=False)
    params = {"layer0": {n: np.asarray(v, np.float64)[None, None] for n, v in values.items()}}
    params["layer0"]["mask"] = np.ones((1, 1))
    with jax.disable_jit():
        return np.asarray(model.edge_values(params, np.asarray(xs, np.float64)[:, None], "layer0"))[:, 0, 0]


def check_all_programs(kernel: Circuit, values: dict, xs, want) -> None:
    """Both levels in every universal basis, one qubit each of one program (so each parser
    reads one QASM 3 text per ansatz), bound at every ``xs``; QASM 2 likewise per ``x``."""
    variants = [(level, basis) for level in LEVELS for basis in UNIVERSAL]
    circuits = [edge_circuit(kernel, values, basis=basis, level=level) for level, basis in variants]
    p3 = write(circuits, "qasm3")
    assert "**" not in p3.text and "^" not in p3.text
    openqasm3.parse(p3.text)
    circ = load(p3.text)
    for x, w in zip(xs, want):
        got = simulate_all(circ, p3.bind(p3.values([x] * len(circuits)))[1])
        got2 = simulate_all(write(circuits, "qasm2", xs=[x] * len(circuits)).text, {})
        for k, variant in enumerate(variants):
            assert abs(got[k] - w) < TOL, (variant, "qasm3", x, got[k], w, p3.text)
            assert abs(got2[k] - w) < TOL, (variant, "qasm2", x, got2[k], w)


# ----------------------------------------------------------------------------- the spec library


def _spec_ansatze():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "specs", "ansatz", "*.qvaf"))):
        program = load_program(path)
        for name in program.ansatze:
            out.append((path, name, None))
            if name == "daruan":
                out += [(path, name, {"axis": "x"}), (path, name, {"axis": "y"})]
    return out


@pytest.mark.parametrize("path,name,args", _spec_ansatze(),
                         ids=lambda v: v if isinstance(v, str) and "/" not in v else (str(v) if v else ""))
def test_spec_ansatz_programs_match_jax(path, name, args):
    graph = lower_ansatz(load_program(path), name, args)
    kernel = graph.nodes["layer0"]["op"].kernel
    rng = np.random.default_rng(abs(hash((name, str(args)))) % 2**32)
    values = {n: rng.normal(size=shape) for n, shape in kernel.params}
    xs = np.array([-0.8, 0.1, 0.65])  # inside px's arccos domain
    check_all_programs(kernel, values, xs, jax_values(kernel, values, xs))


def test_optimised_programs_are_shorter_than_written():
    kernel = lower_ansatz(load_program(os.path.join(ROOT, "specs/ansatz/pz.qvaf")), "pz").nodes["layer0"]["op"].kernel
    values = {"theta": np.random.default_rng(0).normal(size=(4, 2))}
    for basis in UNIVERSAL:
        written = emit(kernel, values, basis=basis, level="written").counts[0]
        optimised = emit(kernel, values, basis=basis, level="optimised").counts[0]
        assert sum(optimised.values()) < sum(written.values()), basis
    ibm = emit(kernel, values, basis="ibm").counts[0]
    assert ibm == {"sx": 8, "rz": 7}  # per upload: one rz carrying the data, two sx


# ----------------------------------------------------------------------------- random ansätze


@settings(max_examples=104, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_ansatz())
def test_random_ansatz_programs_match_jax(example):
    circuit, _group, seed = example
    if circuit.observable == "inspired":
        with pytest.raises(EmitError, match="inspired.*not an observable"):
            edge_program(circuit, {})
        circuit = replace(circuit, observable="z")
    rng = np.random.default_rng(seed)
    values = {n: rng.normal(size=shape) for n, shape in circuit.params}
    xs = rng.uniform(-1.2, 1.2, 2)
    check_all_programs(circuit, values, xs, jax_values(circuit, values, xs))


# ----------------------------------------------------------------------------- variants


def _px_kernel():
    return lower_ansatz(load_program(os.path.join(ROOT, "specs/ansatz/px.qvaf")), "px").nodes["layer0"]["op"].kernel


def test_hoisted_functions_become_classical_inputs():
    kernel = _px_kernel()
    values = {"theta": np.array([0.3, -0.2, 0.9, 0.4])}
    p = emit(kernel, values, basis="ibm")
    assert "arccos" not in p.text and "(" not in "".join(line for line in p.text.splitlines() if line.startswith("input"))
    derived = [i for i in p.inputs if i.kind == "derived"]
    assert derived and all(i.expr == Unary("acos", Input()) for i in derived)
    assert p.values([0.5])[derived[0].name] == pytest.approx(np.arccos(0.5), abs=1e-15)


def test_parametric_programs_take_parameters_as_inputs():
    kernel = lower_ansatz(load_program(os.path.join(ROOT, "specs/ansatz/daruan.qvaf")), "daruan", {"axis": "y"}) \
        .nodes["layer0"]["op"].kernel
    rng = np.random.default_rng(5)
    values = {n: rng.normal(size=shape) for n, shape in kernel.params}
    xs = [-0.4, 0.9]
    want = jax_values(kernel, values, xs)
    for level in LEVELS:
        for basis in UNIVERSAL:
            p = emit(kernel, values, basis=basis, level=level, params="input")
            params = [i for i in p.inputs if i.kind == "param"]
            assert len(params) == sum(int(np.prod(s)) for _, s in kernel.params)
            assert all(i.name.startswith("q0_") for i in params)
            openqasm3.parse(p.text)
            for x, w in zip(xs, want):
                assert abs(simulate(*p.bind(p.values([x]))) - w) < TOL, (level, basis)


def test_physical_qubits_load_in_qiskit():
    kernel = _px_kernel()
    values = {"theta": np.array([0.3, -0.2, 0.9, 0.4])}
    p = emit(kernel, values, basis="ibm", physical_qubits=True)
    assert "$0" in p.text and "qubit[" not in p.text
    openqasm3.parse(p.text)
    want = jax_values(kernel, values, [0.2])[0]
    assert abs(simulate(*p.bind(p.values([0.2]))) - want) < TOL


def _function_kernel():
    """Every function of the language on the data path, and powers."""
    x = Input()
    ops = (
        GateOp(Op.H),
        GateOp(Op.RY, (Const(0.4),)),
        GateOp(Op.RX, (Unary("tanh", Binary("*", Const(1.7), x)),)),
        GateOp(Op.RY, (Binary("**", x, Const(3)),)),
        GateOp(Op.RZ, (Binary("**", Binary("+", x, Const(2.0)), Const(0.5)),)),
        GateOp(Op.RY, (Binary("+", Unary("sin", x), Unary("atan", ParamRef("w", (Const(0),)))),)),
        GateOp(Op.RX, (Binary("/", Unary("exp", x), Unary("sqrt", Binary("+", x, Const(1.5)))),)),
        GateOp(Op.RZ, (Unary("log", Binary("+", x, Const(3.0))),)),
        GateOp(Op.RX, (Unary("asin", Binary("*", Const(0.5), x)),)),
    )
    return Circuit(ops, "y", (("w", (1,)),))


def test_functions_hoisted_for_qiskit_and_inline_for_openqasm3():
    kernel, values, xs = _function_kernel(), {"w": np.array([0.8])}, [-0.7, 0.4]
    want = jax_values(kernel, values, xs)
    check_all_programs(kernel, values, xs, want)
    inline = emit(kernel, values, functions="inline")
    for fn in ("exp(2 * ", "arcsin(", "sqrt(", "log(", "sin(", "exp(0.5 * log("):
        assert fn in inline.text, fn
    assert "**" not in inline.text and "tanh" not in inline.text
    assert "x_0 * x_0 * x_0" in inline.text
    openqasm3.parse(inline.text)


def test_qiskit_rejects_qasm3_function_calls_which_hoisting_avoids():
    """A fact about the consumer (qiskit-qasm3-import 0.6): if this starts passing, inline
    functions could become the default for qiskit too."""
    inline = emit(_px_kernel(), {"theta": np.array([0.3, -0.2, 0.9, 0.4])}, functions="inline")
    assert "arccos(x_0)" in inline.text
    with pytest.raises(Exception, match="FunctionCall"):
        qiskit.qasm3.loads(inline.text)
    clash = inline.text.replace("x_0", "x")  # an input named like the X gate of stdgates.inc
    with pytest.raises(Exception, match="already inserted"):
        qiskit.qasm3.loads(clash.replace("arccos(x)", "x"))


def test_braket_local_runs_inline_and_hoisted_programs():
    pytest.importorskip("braket.devices")
    from braket.devices import LocalSimulator
    from braket.ir.openqasm import Program as BraketProgram

    device = LocalSimulator()
    kernel, values, xs = _function_kernel(), {"w": np.array([0.8])}, [-0.7, 0.4]
    want = jax_values(kernel, values, xs)
    for functions in ("inline", "hoist"):
        for basis in ("stdgates", "ibm"):
            p = emit(kernel, values, basis=basis, functions=functions)
            source = to_braket(p.text, exact=True)
            assert "include" not in source and "sx " not in source
            for x, w in zip(xs, want):
                _, inputs = p.bind(p.values([x]))
                result = device.run(BraketProgram(source=source, inputs=inputs), shots=0).result()
                assert abs(result.values[0] - w) < TOL, (functions, basis, x)


# ----------------------------------------------------------------------------- refusals


def test_inspired_readout_is_refused():
    kernel = lower_ansatz(load_program(os.path.join(ROOT, "specs/ansatz/pz.qvaf")), "pz").nodes["layer0"]["op"].kernel
    with pytest.raises(EmitError, match=r"measure inspired is the reference's \|alpha\| - \|beta\| readout, not an observable"):
        edge_program(replace(kernel, observable="inspired"), {"theta": np.zeros((4, 2))})


def test_gate_without_exact_lowering_is_refused():
    kernel = _px_kernel()
    with pytest.raises(EmitError, match="no exact lowering in basis 'clifford'"):
        edge_program(kernel, {"theta": np.zeros(4)}, basis="clifford")
    t_gate = Circuit((GateOp(Op.H), GateOp(Op.T)), "x")
    with pytest.raises(EmitError, match="gate t has no exact lowering in basis 'clifford'.*not Clifford"):
        edge_program(t_gate, level="written", basis="clifford")


def test_clifford_circuits_run_in_the_clifford_basis():
    ops = (GateOp(Op.H), GateOp(Op.S), GateOp(Op.RY, (Const(np.pi / 2),)), GateOp(Op.SX),
           LoopOp("l", 0, 2, (GateOp(Op.SDG), GateOp(Op.RX, (Const(-np.pi / 2),)))))
    for obs in ("x", "y", "z"):
        kernel = Circuit(ops, obs)
        want = jax_values(kernel, {}, [0.0])[0]
        for level in LEVELS:
            p = emit(kernel, {}, basis="clifford", level=level)
            assert {line.split(" ")[0] for line in p.text.splitlines()[5:-1]} <= set(BASES["clifford"].gates)
            assert abs(simulate(p.text, {}) - want) < TOL, (obs, level)


def test_angle_outside_the_encodings_domain_is_refused_when_bound():
    with pytest.raises(EmitError, match="not a real number at x = 1.5"):
        edge_program(_px_kernel(), {"theta": np.array([0.3, -0.2, 0.9, 0.4])}, 1.5, target="qasm2")


def test_unknown_options_name_the_choices():
    kernel = _px_kernel()
    with pytest.raises(EmitError, match="unknown target 'qasm4'"):
        edge_program(kernel, {"theta": np.zeros(4)}, target="qasm4")
    with pytest.raises(EmitError, match="unknown level 'fast'"):
        edge_program(kernel, {"theta": np.zeros(4)}, level="fast")
    with pytest.raises(EmitError, match="parameter 'theta' has shape \\[3\\], the ansatz declares \\[4\\]"):
        edge_program(kernel, {"theta": np.zeros(3)})
    with pytest.raises(EmitError, match="no value for parameter 'theta'"):
        edge_program(kernel, {})
