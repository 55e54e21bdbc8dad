"""Noise channels and finite shots in the JAX backend, against qiskit-aer and the binomial law.

* Every channel (and all of them together, and one derived from calibration numbers), after
  every gate and after every data re-upload, equals qiskit-aer's density-matrix simulation of
  the emitted QASM 3 program (``written`` level, stdgates) with the same noise built from
  qiskit-aer's own error constructors, to 1e-9 in float64: on every ansatz of specs/ (daruan
  also with axis x and y), one edge, three inputs; and on every model of specs/ per kan
  layer, its first and last edge, two inputs each, under the combined model. Readout error:
  qiskit-aer's ``ReadoutError`` assignment matrix applied to aer's exact probabilities, and a
  sampled aer run with the readout error in its noise model within 4 standard errors.
* The calibration mapping equals qiskit-aer's ``thermal_relaxation_error``.
* Depolarizing shrinks <Z> by exactly (1 - p)^n (n gates, or n re-uploads).
* Gradients under noise match central finite differences (float64), reverse and forward mode.
* Shots: means and variances over many keys within 4 standard errors of the binomial
  law's; the same key gives the same samples; training under shots sees the expectation's
  gradient.
"""

from __future__ import annotations

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qiskit.qasm3
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel as AerNoiseModel
from qiskit_aer.noise import (ReadoutError, amplitude_damping_error, depolarizing_error, pauli_error,
                              phase_damping_error, thermal_relaxation_error)

import qvaf
from qvaf import NoiseModel
from qvaf.compiler.emit import emit
from qvaf.compiler.lower import lower_ansatz
from qvaf.compiler.noise import NoiseError
from qvaf.dsl import load_program
from qvaf.runtime.hardware.plan import lowered_graph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-9

#: one model per channel, all together, and from calibration numbers
CHANNELS = {
    "depolarizing": dict(depolarizing=0.07),
    "pauli": dict(pauli=(0.02, 0.05, 0.03)),
    "phase_damping": dict(phase_damping=0.15),
    "amplitude_damping": dict(amplitude_damping=0.12),
    "readout": dict(readout=(0.04, 0.09)),
    "all": dict(depolarizing=0.03, pauli=(0.01, 0.02, 0.015), phase_damping=0.05, amplitude_damping=0.08,
                readout=(0.02, 0.05)),
}


def calibrated(where):
    return NoiseModel.from_calibration(t1=60e-6, t2=45e-6, gate_time=2e-6, readout=0.03, where=where)


# ----------------------------------------------------------------------------- the aer side


def aer_error(noise: NoiseModel):
    """The noise step as one qiskit-aer QuantumError, built from the model's fields
    (order: Pauli, depolarizing, phase damping, amplitude damping), or None."""
    px, py, pz = noise.pauli
    parts = []
    if px or py or pz:
        parts.append(pauli_error([("X", px), ("Y", py), ("Z", pz), ("I", 1 - px - py - pz)]))
    if noise.depolarizing:
        parts.append(depolarizing_error(noise.depolarizing, 1))
    if noise.phase_damping:
        parts.append(phase_damping_error(noise.phase_damping))
    if noise.amplitude_damping:
        parts.append(amplitude_damping_error(noise.amplitude_damping))
    if not parts:
        return None
    err = parts[0]
    for p in parts[1:]:
        err = err.compose(p)
    return err


def aer_circuit(text: str, noise: NoiseModel, error=None):
    """The emitted program as a qiskit circuit with the noise placed, and the aer noise model
    (gate placement) or None (errors appended after the data gates)."""
    circ = qiskit.qasm3.loads(text).remove_final_measurements(inplace=False)
    error = aer_error(noise) if error is None else error
    if error is None:
        return circ, None
    if noise.where == "gate":
        model = AerNoiseModel()
        model.add_all_qubit_quantum_error(error, sorted({inst.operation.name for inst in circ.data}))
        return circ, model
    out = QuantumCircuit(*circ.qregs, *circ.cregs)
    for inst in circ.data:
        out.append(inst.operation, inst.qubits, inst.clbits)
        if any(getattr(p, "parameters", None) for p in inst.operation.params):  # reads an input: a re-upload
            out.append(error, inst.qubits)
    return out, None


def aer_probabilities(circ, model, inputs: dict) -> np.ndarray:
    params = {p.name: p for p in circ.parameters}
    bound = circ.assign_parameters({params[n]: v for n, v in inputs.items()}) if params else circ.copy()
    bound.save_density_matrix()
    result = AerSimulator(method="density_matrix", noise_model=model).run(bound).result()
    rho = np.asarray(result.data()["density_matrix"])
    return np.real(np.diag(rho))


def aer_expectation(text: str, noise: NoiseModel, inputs: dict, error=None) -> float:
    """<Z> read out under ``noise``: aer's exact probabilities, then qiskit-aer's readout
    assignment matrix (rows: prepared state, columns: read bit)."""
    circ, model = aer_circuit(text, noise, error)
    probs = aer_probabilities(circ, model, inputs)
    p01, p10 = noise.readout
    read = probs @ ReadoutError([[1 - p10, p10], [p01, 1 - p01]]).probabilities
    return float(read[0] - read[1])


# ----------------------------------------------------------------------------- the qvaf side


def _spec_ansatze():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "specs", "ansatz", "*.qvaf"))):
        for name in load_program(path).ansatze:
            out.append((path, name, None))
            if name == "daruan":
                out += [(path, name, {"axis": "x"}), (path, name, {"axis": "y"})]
    return out


def _ansatz_model(path, name, args, seed=0):
    model = qvaf.compile(path, ansatz=name, args=args, dtype="float64")
    params = model.init(seed)
    rng = np.random.default_rng(seed)
    for spec in model.param_table:  # random values for the fixed-at-one/zero ones too
        if spec.trainable and spec.name != "base_weight":
            params[spec.owner][spec.name] = rng.normal(size=spec.shape)
    return model, params


def _ansatz_kernel(path, name, args):
    """The ansatz's kernel as written (``lowered_graph`` would drop a compiled ansatz's arguments)."""
    return lower_ansatz(load_program(path), name, args).nodes["layer0"]["op"].kernel


def _edge_values(kernel, layer, o, i, group):
    return {n: np.asarray(layer[n], np.float64)[(i % group,) if group is not None else (o, i)]
            for n, _ in kernel.params}


def _written_program(kernel, values, x):
    p = emit(kernel, values, level="written", basis="stdgates")
    return p.text, p.values([x])


XS = np.array([-0.7, 0.15, 0.8])  # inside px's acos domain


@pytest.mark.parametrize("where", ["gate", "upload"])
@pytest.mark.parametrize("path,name,args", _spec_ansatze(),
                         ids=lambda v: v if isinstance(v, str) and "/" not in v else (str(v) if v else ""))
def test_every_channel_matches_aer_on_every_ansatz(path, name, args, where):
    model, params = _ansatz_model(path, name, args)
    kernel = _ansatz_kernel(path, name, args)
    values = _edge_values(kernel, params["layer0"], 0, 0, None)
    programs = [_written_program(kernel, values, x) for x in XS]
    noises = [NoiseModel(**kw, where=where) for kw in CHANNELS.values()] + [calibrated(where)]
    for noise in noises:
        with jax.disable_jit():  # op by op: no compilation per noise model
            got = np.asarray(model.with_noise(noise).edge_values(params, XS[:, None], 0))[:, 0, 0]
        want = [aer_expectation(text, noise, inputs) for text, inputs in programs]
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL, err_msg=noise.describe())
    clean = np.asarray(model.edge_values(params, XS[:, None], 0))[:, 0, 0]
    assert np.abs(got - clean).max() > 1e-3  # the noise is visible


def _model_specs():
    return sorted(glob.glob(os.path.join(ROOT, "specs", "models", "*.qvaf")))


@pytest.mark.parametrize("where", ["gate", "upload"])
@pytest.mark.parametrize("path", _model_specs(), ids=os.path.basename)
def test_models_match_aer_per_edge(path, where):
    """Every kan layer of every model: first and last edge, two inputs each."""
    model = qvaf.compile(path, dtype="float64")
    params = model.init(3)
    noise = NoiseModel(**CHANNELS["all"], where=where)
    noisy = model.with_noise(noise)
    x = np.random.default_rng(1).uniform(-1, 1, (2, model.in_width))
    written = lowered_graph(model)
    for layer_id in model.layers:
        node = written.nodes[layer_id]["op"]
        if not hasattr(node, "kernel"):
            continue
        phi = np.asarray(noisy.edge_values(params, x, layer_id))
        h = np.asarray(noisy.layer_inputs(params, x)[layer_id])
        for o, i in {(0, 0), (node.out_width - 1, node.in_width - 1)}:
            values = _edge_values(node.kernel, params[layer_id], o, i, node.group)
            for b in range(len(x)):
                text, inputs = _written_program(node.kernel, values, float(h[b, i]))
                assert abs(phi[b, o, i] - aer_expectation(text, noise, inputs)) < TOL, (layer_id, o, i, b)


def test_readout_error_matches_aer_sampling():
    """aer's own readout error (in its noise model, on sampled counts) agrees within 4 SE."""
    path = os.path.join(ROOT, "specs", "ansatz", "pz.qvaf")
    model, params = _ansatz_model(path, "pz", None, seed=2)
    noise = NoiseModel(**CHANNELS["all"])
    kernel = _ansatz_kernel(path, "pz", None)
    text, inputs = _written_program(kernel, _edge_values(kernel, params["layer0"], 0, 0, None), 0.3)
    circ = qiskit.qasm3.loads(text)
    circ = circ.assign_parameters({p: inputs[p.name] for p in circ.parameters})
    aer = AerNoiseModel()
    aer.add_all_qubit_quantum_error(aer_error(noise), sorted({i.operation.name for i in circ.data} - {"measure"}))
    p01, p10 = noise.readout
    aer.add_all_qubit_readout_error(ReadoutError([[1 - p10, p10], [p01, 1 - p01]]))
    shots = 200_000
    counts = AerSimulator(method="density_matrix", noise_model=aer, seed_simulator=7).run(circ, shots=shots) \
        .result().get_counts()
    est = (counts.get("0", 0) - counts.get("1", 0)) / shots
    z = float(np.asarray(model.with_noise(noise).edge_values(params, np.array([[0.3]]), 0))[0, 0, 0])
    assert abs(est - z) < 4 * np.sqrt((1 - z * z) / shots)


def test_calibration_equals_thermal_relaxation():
    t1, t2, t = 80e-6, 50e-6, 3e-6
    noise = NoiseModel.from_calibration(t1=t1, t2=t2, gate_time=t)
    path = os.path.join(ROOT, "specs", "ansatz", "mix.qvaf")
    model, params = _ansatz_model(path, "mix", None, seed=4)
    kernel = _ansatz_kernel(path, "mix", None)
    values = _edge_values(kernel, params["layer0"], 0, 0, None)
    got = np.asarray(model.with_noise(noise).edge_values(params, XS[:, None], 0))[:, 0, 0]
    thermal = thermal_relaxation_error(t1, t2, t)
    want = [aer_expectation(text, noise, inputs, error=thermal)
            for text, inputs in (_written_program(kernel, values, x) for x in XS)]
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("where", ["gate", "upload"])
@pytest.mark.parametrize("path,name,args", _spec_ansatze()[:4],
                         ids=lambda v: v if isinstance(v, str) and "/" not in v else (str(v) if v else ""))
def test_depolarizing_shrinks_by_the_predicted_factor(path, name, args, where):
    model, params = _ansatz_model(path, name, args, seed=5)
    kernel = _ansatz_kernel(path, name, args)
    text, inputs = _written_program(kernel, _edge_values(kernel, params["layer0"], 0, 0, None), 0.2)
    gates = [line for line in text.splitlines() if line.endswith("q[0];") and "measure" not in line]
    n = len(gates) if where == "gate" else sum(any(name in g for name in inputs) for g in gates)
    assert n > 0
    p = 0.05
    clean = np.asarray(model.edge_values(params, XS[:, None], 0))[:, 0, 0]
    noisy = np.asarray(model.with_noise(NoiseModel(depolarizing=p, where=where)).edge_values(params, XS[:, None], 0))
    np.testing.assert_allclose(noisy[:, 0, 0], (1 - p) ** n * clean, rtol=1e-13, atol=1e-15)


def test_gradients_under_noise_match_finite_differences():
    model = qvaf.compile("regression", dtype="float64")
    params = model.init(0)
    noisy = model.with_noise(NoiseModel(**CHANNELS["all"]))
    x = np.random.default_rng(2).uniform(-1, 1, (4, 2))

    @jax.jit
    def loss(p):
        return jnp.sum(noisy.apply(p, x) ** 2)

    grad = jax.jit(jax.grad(loss))(params)
    theta = np.asarray(params["layer0"]["theta"])
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (2, 1, 1, 1), (4, 1, 3, 0)]:
        up, down = theta.copy(), theta.copy()
        up[idx] += eps
        down[idx] -= eps
        fd = (loss({**params, "layer0": {**params["layer0"], "theta": up}})
              - loss({**params, "layer0": {**params["layer0"], "theta": down}})) / (2 * eps)
        assert abs(float(grad["layer0"]["theta"][idx]) - float(fd)) < 1e-7, idx
    # forward mode agrees with reverse mode
    direction = jax.tree_util.tree_map(lambda a: jnp.ones_like(a), params)
    _, jvp = jax.jvp(loss, (params,), (direction,))
    dot = sum(float(jnp.sum(g)) for g in jax.tree_util.tree_leaves(grad))
    assert abs(float(jvp) - dot) < 1e-9


# ----------------------------------------------------------------------------- shots


def _pz_model():
    return _ansatz_model(os.path.join(ROOT, "specs", "ansatz", "pz.qvaf"), "pz", None, seed=6)


def test_shot_means_and_variances_follow_the_binomial_law():
    model, params = _pz_model()
    x = np.linspace(-1, 1, 7)[:, None]
    z = np.asarray(model.apply(params, x))[:, 0]
    shots, n = 100, 4000
    keys = jax.random.split(jax.random.PRNGKey(11), n)
    samples = np.asarray(jax.vmap(lambda k: model.apply(params, x, key=k, shots=shots))(keys))[:, :, 0]
    assert samples.shape == (n, len(x))
    assert np.allclose(np.round((samples + 1) * shots / 2), (samples + 1) * shots / 2)  # 2K/S - 1
    p = (1 + z) / 2
    var = 4 * p * (1 - p) / shots
    mean = samples.mean(axis=0)
    assert np.all(np.abs(mean - z) < 4 * np.sqrt(var / n)), (mean, z)
    # the sample variance against 4 p q / S, with its standard error from the fourth moment
    mu4 = (2 / shots) ** 4 * shots * p * (1 - p) * (1 + 3 * (shots - 2) * p * (1 - p))
    se_var = np.sqrt((mu4 - var ** 2 * (n - 3) / (n - 1)) / n)
    assert np.all(np.abs(samples.var(axis=0, ddof=1) - var) < 4 * se_var)


def test_same_key_same_samples():
    model, params = _pz_model()
    x = np.linspace(-1, 1, 5)[:, None]
    k = jax.random.PRNGKey(3)
    a = np.asarray(model.apply(params, x, key=k, shots=50))
    b = np.asarray(model.apply(params, x, key=k, shots=50))
    c = np.asarray(model.apply(params, x, key=jax.random.PRNGKey(4), shots=50))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    noisy = model.with_noise("depolarizing=0.02")
    assert np.array_equal(np.asarray(noisy.apply(params, x, key=k, shots=50)),
                          np.asarray(noisy.apply(params, x, key=k, shots=50)))


def test_shot_gradient_is_the_expectations():
    model, params = _pz_model()
    x = np.linspace(-1, 1, 5)[:, None]

    def f(p, key=None, shots=None):
        return jnp.sum(model.apply(p, x, key=key, shots=shots))

    g_exact = jax.grad(f)(params)
    g_shots = jax.grad(lambda p: f(p, jax.random.PRNGKey(0), 10))(params)
    np.testing.assert_allclose(g_shots["layer0"]["theta"], g_exact["layer0"]["theta"], atol=1e-12)


def test_grouped_edges_share_one_estimate():
    """hqkan's grouped layer: the edges of one input run one circuit and share its estimate."""
    from qvaf.compiler.backends import _noise

    model = qvaf.compile("hqkan", dtype="float64")
    node = model.ir.nodes["layer1"]["op"]
    phi = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (3, 1, node.in_width)) *
                      np.ones((1, node.out_width, 1)))
    fn = _noise.sampled(lambda n, layer, h: phi, jax.random.PRNGKey(0), 20, jnp.float64)
    est = np.asarray(fn(node, None, None))
    assert np.all(est == est[:, :1, :])


# ----------------------------------------------------------------------------- the noise model as data


def test_noise_model_parsing_and_json():
    m = NoiseModel.parse("depolarizing=0.01, readout=0.02, where=upload, pauli=0.01/0/0.02")
    assert m == NoiseModel(depolarizing=0.01, readout=(0.02, 0.02), pauli=(0.01, 0.0, 0.02), where="upload")
    assert NoiseModel.from_json(m.to_json()) == m
    assert NoiseModel.parse(m.describe()) == m
    c = NoiseModel.parse("t1=100,t2=80,gate_time=0.05,readout=0.01/0.03")
    assert c.amplitude_damping == pytest.approx(1 - np.exp(-0.05 / 100), rel=1e-14)
    assert c.readout == (0.01, 0.03)
    # T2 = 2 T1: no pure dephasing
    assert NoiseModel.from_calibration(t1=10, t2=20, gate_time=1).phase_damping == 0.0


@pytest.mark.parametrize("text,match", [
    ("depolarising=0.1", "did you mean 'depolarizing'"),
    ("depolarizing=1.5", r"probability in \[0, 1\]"),
    ("depolarizing=abc", "not a number"),
    ("readout=0.1/0.2/0.3", "takes 2 numbers"),
    ("pauli=0.5/0.4/0.3", "sum to"),
    ("where=everywhere", "not a placement"),
    ("t1=10,t2=30,gate_time=1", r"exceeds 2\*t1"),
    ("t1=10,t2=5", "missing gate_time"),
    ("depolarizing", "expected NAME=VALUE"),
    ("", "empty noise model"),
])
def test_bad_noise_models_are_refused(text, match):
    with pytest.raises(NoiseError, match=match):
        NoiseModel.parse(text)


def test_bad_shot_arguments_are_refused():
    model, params = _pz_model()
    x = np.zeros((2, 1))
    with pytest.raises(qvaf.QvafError, match="pass a key"):
        model.apply(params, x, shots=10)
    with pytest.raises(qvaf.QvafError, match="positive integer"):
        model.apply(params, x, key=jax.random.PRNGKey(0), shots=0)
    with pytest.raises(qvaf.QvafError, match="pass shots"):
        model.apply(params, x, key=jax.random.PRNGKey(0))
