"""The ``noise`` statement: noise placed where the spec says (``NoiseModel(where="spec")``).

* The statement parses, formats back and is a keyword; it lowers to a mark that the
  optimising pipeline drops, so without noise (and under ``where="gate"``/``"upload"``) a
  spec with marks computes and emits exactly what the same spec without them does.
* Marks after every gate of every ansatz of specs/ give exactly the ``where="gate"`` values.
* A hand-written ansatz with marks in a loop and in between gates, under every channel at
  once, equals qiskit-aer's density-matrix simulation of its emitted QASM with the aer error
  at the marks' places, to 1e-9 in float64; depolarizing shrinks <Z> by (1 - p)^(marks).
* Gradients under spec-placed noise match central finite differences.
* ``where="spec"`` on a model without marks is refused with a message saying what to add;
  the CLI takes ``--noise ...,where=spec``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qiskit.qasm3
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator
from qiskit_aer.noise import amplitude_damping_error, depolarizing_error, pauli_error, phase_damping_error

import qvaf
from qvaf import NoiseModel, QvafError
from qvaf.compiler.emit import emit
from qvaf.compiler.lower import lower_ansatz
from qvaf.dsl import ast, load_program, program_from_text
from qvaf.dsl.fmt import format_module
from qvaf.dsl.parser import parse
from qvaf.runtime.cli import main
from qvaf.runtime.run import specs_dir

TOL = 1e-9
ALL = dict(depolarizing=0.03, pauli=(0.01, 0.02, 0.015), phase_damping=0.05, amplitude_damping=0.08,
           readout=(0.02, 0.05))
XS = np.array([-0.7, 0.15, 0.8])

#: marks at the start, inside a loop (once per iteration), between two gates and twice in a row
MARKED = """\
ansatz marked(reps: int = 2) {
    param theta[reps + 1, 2] ~ xavier() grow 0
    h
    noise
    for l in 0..reps {
        rz(theta[l, 0])
        ry(theta[l, 1])
        encode(x, y)
        noise
    }
    rz(theta[reps, 0])
    noise
    ry(theta[reps, 1])
    noise
    noise
    measure z
}
"""
MARKS = 1 + 2 + 1 + 2  # the marks MARKED runs with reps = 2


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _random_params(model, seed=0):
    params = model.init(seed)
    rng = np.random.default_rng(seed)
    for spec in model.param_table:
        if spec.trainable and spec.name != "base_weight":
            params[spec.owner][spec.name] = rng.normal(size=spec.shape)
    return params


def _edge(model, params, noise=None):
    m = model if noise is None else model.with_noise(noise)
    with jax.disable_jit():  # tiny inputs: op by op beats compiling
        return np.asarray(m.edge_values(params, XS[:, None], 0))[:, 0, 0]


# ----------------------------------------------------------------------------- the language


def test_noise_parses_formats_and_is_a_keyword():
    module = parse(MARKED)
    body = module.items[0].body
    loop = next(s for s in body if isinstance(s, ast.For))
    assert [type(s).__name__ for s in loop.body] == ["Gate", "Gate", "Encode", "Noise"]
    assert sum(isinstance(s, ast.Noise) for s in body) == 4
    assert format_module(module) == MARKED
    with pytest.raises(QvafError, match="'noise' is a keyword"):
        program_from_text("ansatz a {\n    param noise = 1.0\n    rz(noise * x)\n    measure z\n}\n")


def test_noise_with_an_argument_says_how_noise_is_given(tmp_path):
    path = _write(tmp_path, "arg.qvaf", "ansatz a {\n    rz(x)\n    noise(0.1)\n    measure z\n}\n")
    with pytest.raises(QvafError, match=r"'noise' takes no arguments.*where=spec"):
        load_program(path)


def test_marks_change_nothing_without_spec_placed_noise(tmp_path):
    marked = qvaf.compile(_write(tmp_path, "m.qvaf", MARKED), ansatz="marked", dtype="float64")
    plain_text = re.sub(r"\n *noise(?=\n)", "", MARKED)
    plain = qvaf.compile(_write(tmp_path, "p.qvaf", plain_text), ansatz="marked", dtype="float64")
    assert marked.ir.nodes["layer0"]["op"] == plain.ir.nodes["layer0"]["op"]  # the marks are gone
    params = _random_params(marked)
    np.testing.assert_array_equal(_edge(marked, params), _edge(plain, params))
    for where in ("gate", "upload"):
        noise = NoiseModel(**ALL, where=where)
        np.testing.assert_array_equal(_edge(marked, params, noise), _edge(plain, params, noise))
    for level in ("written", "optimised"):
        kernels = [lower_ansatz(program_from_text(t), "marked", None).nodes["layer0"]["op"].kernel
                   for t in (MARKED, plain_text)]
        values = {n: np.asarray(params["layer0"][n])[0, 0] for n, _ in kernels[0].params}
        texts = [emit(k, values, level=level, basis="stdgates").text for k in kernels]
        assert texts[0] == texts[1], level


# ----------------------------------------------------------------------------- values


def _mark_every_gate(stmts):
    out = []
    for s in stmts:
        if isinstance(s, ast.For):
            out.append(dataclasses.replace(s, body=_mark_every_gate(s.body)))
            continue
        out.append(s)
        if isinstance(s, (ast.Gate, ast.Encode)):
            out.append(ast.Noise())
    return tuple(out)


def _spec_ansatze():
    folder = os.path.join(specs_dir(), "ansatz")
    return [(os.path.join(folder, f), name) for f in sorted(os.listdir(folder)) if f.endswith(".qvaf")
            for name in load_program(os.path.join(folder, f)).ansatze]


@pytest.mark.parametrize("path,name", _spec_ansatze(), ids=lambda v: os.path.basename(v).removesuffix(".qvaf"))
def test_a_mark_after_every_gate_is_noise_after_every_gate(tmp_path, path, name):
    with open(path, encoding="utf-8") as fh:
        module = parse(fh.read(), path)
    marked = dataclasses.replace(module, items=tuple(
        dataclasses.replace(item, body=_mark_every_gate(item.body)) if isinstance(item, ast.Ansatz) else item
        for item in module.items))
    marked_path = _write(tmp_path, os.path.basename(path), format_module(marked))
    original = qvaf.compile(path, ansatz=name, dtype="float64")
    spec = qvaf.compile(marked_path, ansatz=name, dtype="float64")
    params = _random_params(original)
    want = _edge(original, params, NoiseModel(**ALL, where="gate"))
    got = _edge(spec, params, NoiseModel(**ALL, where="spec"))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    assert np.abs(got - _edge(original, params)).max() > 1e-3  # the noise is visible


def _aer_error(noise: NoiseModel):
    """One noise step as a qiskit-aer QuantumError, from aer's own constructors."""
    px, py, pz = noise.pauli
    err = pauli_error([("X", px), ("Y", py), ("Z", pz), ("I", 1 - px - py - pz)])
    err = err.compose(depolarizing_error(noise.depolarizing, 1))
    err = err.compose(phase_damping_error(noise.phase_damping))
    return err.compose(amplitude_damping_error(noise.amplitude_damping))


def _aer_expectation(qasm: str, inputs: dict, noise: NoiseModel) -> float:
    """<Z> read out of aer's density matrix, the error standing in for every ``rz(0)``."""
    circ = qiskit.qasm3.loads(qasm).remove_final_measurements(inplace=False)
    out = QuantumCircuit(*circ.qregs)
    error = _aer_error(noise)
    for inst in circ.data:
        if inst.operation.name == "rz" and inst.operation.params[0] == 0:
            out.append(error, inst.qubits)
        else:
            out.append(inst.operation, inst.qubits)
    params = {p.name: p for p in out.parameters}
    bound = out.assign_parameters({params[n]: v for n, v in inputs.items()})
    bound.save_density_matrix()
    rho = np.asarray(AerSimulator(method="density_matrix").run(bound).result().data()["density_matrix"])
    p0, p1 = np.real(np.diag(rho))
    p01, p10 = noise.readout
    read0 = p0 * (1 - p10) + p1 * p01
    return float(read0 - (1 - read0))


def test_spec_placed_noise_matches_aer_with_errors_at_the_marks(tmp_path):
    model = qvaf.compile(_write(tmp_path, "m.qvaf", MARKED), ansatz="marked", dtype="float64")
    params = _random_params(model, seed=3)
    noise = NoiseModel(**ALL, where="spec")
    got = _edge(model, params, noise)
    # the aer side: the marks written as rz(0), emitted as written, replaced by the aer error
    stand_in = MARKED.replace("    noise\n", "    rz(0)\n")
    kernel = lower_ansatz(program_from_text(stand_in), "marked", None).nodes["layer0"]["op"].kernel
    values = {n: np.asarray(params["layer0"][n])[0, 0] for n, _ in kernel.params}
    program = emit(kernel, values, level="written", basis="stdgates")
    assert program.text.count("rz(0.0) q[0];") == MARKS
    want = [_aer_expectation(program.text, program.values([x]), noise) for x in XS]
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    p = 0.05
    shrunk = _edge(model, params, NoiseModel(depolarizing=p, where="spec"))
    np.testing.assert_allclose(shrunk, (1 - p) ** MARKS * _edge(model, params), rtol=1e-13, atol=1e-15)


def test_gradients_under_spec_placed_noise_match_finite_differences(tmp_path):
    model = qvaf.compile(_write(tmp_path, "m.qvaf", MARKED), ansatz="marked", dtype="float64")
    noisy = model.with_noise(NoiseModel(**ALL, where="spec"))
    params = _random_params(model, seed=4)
    x = XS[:, None]

    def loss(p):
        return jnp.sum(noisy.apply(p, x) ** 2)

    grad = np.asarray(jax.grad(loss)(params)["layer0"]["theta"])
    theta = np.asarray(params["layer0"]["theta"])
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (0, 0, 1, 1), (0, 0, 2, 0)]:
        up, down = theta.copy(), theta.copy()
        up[idx] += eps
        down[idx] -= eps
        fd = (loss({**params, "layer0": {**params["layer0"], "theta": up}})
              - loss({**params, "layer0": {**params["layer0"], "theta": down}})) / (2 * eps)
        assert abs(grad[idx] - float(fd)) < 1e-7, idx


# ----------------------------------------------------------------------------- refusals and the CLI


def test_spec_placement_without_marks_is_refused():
    model = qvaf.compile("regression")
    with pytest.raises(QvafError, match=r"where=spec applies at the ansatz's 'noise' statements.*has none"):
        model.with_noise("depolarizing=0.01,where=spec")
    assert model.with_noise("readout=0.02,where=spec").noise.where == "spec"  # readout needs no marks


def test_cli_trains_and_evaluates_under_spec_placed_noise(tmp_path, capsys):
    _write(tmp_path, "marked.qvaf", MARKED)
    spec = _write(tmp_path, "model.qvaf", 'import "marked.qvaf"\n\nmodel m {\n    input 2\n    kan 1 using marked\n}\n')
    out = str(tmp_path / "run")
    noise = "depolarizing=0.05,where=spec"
    assert main(["train", spec, "--task", "toy_sin2", "--n-train", "20", "--batch", "0", "--steps", "2",
                 "--eval-every", "2", "--noise", noise, "--out", out, "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["test_noisy"]["noise"] == noise
    assert main(["eval", out, "--noise", "amplitude_damping=0.1,where=gate", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["noisy"]["rmse"] != result["rmse"]
