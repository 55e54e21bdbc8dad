"""Exact spectra (compiler/spectrum.py) against independent evaluations of the same circuits.

* every spec in specs/ with affine data angles: the series reproduces the JAX backend's
  activations on the inputs each layer sees, to 1e-10 (float64); px is refused, naming acos;
* hypothesis-generated random ansätze (the strategy of test_backend_random.py): the series
  reproduces the numpy statevector simulator to 1e-10, or the refusal names the non-affine
  function / the inspired readout;
* integer spectra agree with ``qml.fourier.coefficients`` (FFT sampling) of the same circuit
  run through PennyLane default.qubit, to 1e-10;
* the paper's claim: trainable weights w_l = 3^(l-1) give every integer frequency up to
  (3^L - 1)/2 with generically non-zero coefficients, fixed weights at most L.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import qvaf
from qvaf.compiler.expr import depends_on_input
from qvaf.compiler.ir import Circuit
from qvaf.compiler.simplify import affine_in_x
from qvaf.compiler.spectrum import MAX_TERMS, Spectrum, SpectrumError, network_spectra
from qvaf.dsl import program_from_text

import _statevector as sv
from _backend_ir import network
from test_backend_random import random_ansatz


SPECS = Path(__file__).resolve().parents[1] / "specs"
MODEL_ARGS = {"hqkan_ffn": {"d": 8, "k": 1}, "digits": {"hidden": 3}}
TOL = 1e-10


def _perturbed(model, seed):
    """Initial parameters moved off their defaults (w != 1, b != 0, theta random)."""
    rng = np.random.default_rng(seed)
    params = model.init(seed)
    return {lid: {k: (np.asarray(v) if k == "mask" else np.asarray(v) + 0.4 * rng.normal(size=np.shape(v)))
                  for k, v in layer.items()} for lid, layer in params.items()}


def _spec_targets():
    out = []
    for path in sorted(SPECS.glob("*/*.qvaf")):
        program = qvaf.load(path)
        names = sorted(program.models) if program.models else sorted(program.ansatze)
        kind = "model" if program.models else "ansatz"
        out += [pytest.param(path, kind, n, None, id=f"{path.stem}:{n}") for n in names]
    out += [pytest.param(SPECS / "ansatz" / "daruan.qvaf", "ansatz", "daruan", {"axis": a}, id=f"daruan-{a}")
            for a in ("x", "y")]
    return out


@pytest.mark.parametrize("path,kind,name,args", _spec_targets())
def test_spec_spectra_reproduce_activations(path, kind, name, args):
    if kind == "model":
        model = qvaf.compile(path, name, args=MODEL_ARGS.get(name), dtype="float64")
    else:
        model = qvaf.compile(path, ansatz=name, args=args, dtype="float64")
    params = _perturbed(model, 3)
    x = np.random.default_rng(0).uniform(-0.9, 0.9, (40, model.in_width))
    if name == "px":
        with pytest.raises(SpectrumError, match=r"acos\(x\).*not affine in x \(acos of x\)"):
            network_spectra(model.ir, params)
        return
    spectra = network_spectra(model.ir, params)
    with jax.disable_jit():  # op by op: the same kernels without an XLA compilation per spec
        inputs = model.layer_inputs(params, x)
        phis = {lid: np.asarray(model.edge_values(params, x, lid)) for lid in spectra}
    assert list(spectra) == [lid for lid in model.layers if lid in spectra] and spectra
    for lid, edges in spectra.items():
        h = np.asarray(inputs[lid])
        phi = phis[lid]
        assert len(edges) == phi.shape[1] * phi.shape[2]
        for (o, i), s in edges.items():
            np.testing.assert_allclose(s(h[:, i]), phi[:, o, i], rtol=0, atol=TOL, err_msg=f"{lid} ({o}, {i})")
    # the first layer on a wide grid too, far outside the data range: the series is exact everywhere
    first = next(iter(spectra))
    if first == model.layers[0]:
        grid = np.zeros((57, model.in_width))
        grid[:] = np.linspace(-7, 7, 57)[:, None]
        with jax.disable_jit():
            phi = np.asarray(model.edge_values(params, grid, first))
        for (o, i), s in spectra[first].items():
            np.testing.assert_allclose(s(grid[:, i]), phi[:, o, i], rtol=0, atol=TOL)


# ----------------------------------------------------------------------------- random ansätze


def _non_affine(circuit):
    from qvaf.compiler.backends._common import flatten_ops

    return any(depends_on_input(a) and affine_in_x(a) is None for g, _ in flatten_ops(circuit) for a in g.angles)


def _uploads(circuit):
    from qvaf.compiler.backends._common import flatten_ops

    return sum(1 for g, _ in flatten_ops(circuit) for a in g.angles if depends_on_input(a))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_ansatz())
def test_random_ansatz_spectra_match_statevector(example):
    circuit, group, seed = example
    graph = network([2, 2], circuit, base="none", group=group)
    rng = np.random.default_rng(seed)
    table = graph.graph["params"]
    params = {"layer0": {s.name: rng.normal(size=s.shape) for s in table}}
    if circuit.observable == "inspired":
        with pytest.raises(SpectrumError, match="inspired"):
            network_spectra(graph, params)
        return
    if _non_affine(circuit):
        with pytest.raises(SpectrumError, match=r"not affine in x \(atan of x\)"):
            network_spectra(graph, params)
        return
    try:
        spectra = network_spectra(graph, params)["layer0"]
    except SpectrumError as exc:
        # only a circuit with many re-uploads may exceed the term limit (3^8 < MAX_TERMS)
        assert _uploads(circuit) > 8 and "distinct frequencies" in str(exc)
        return
    x = rng.uniform(-4, 4, size=(25, 2))
    kernel = {k: _per_edge(np.asarray(v), group) for k, v in params["layer0"].items() if k in dict(circuit.params)}
    want = sv.edge_values(circuit, x, kernel)
    for (o, i), s in spectra.items():
        np.testing.assert_allclose(s(x[:, i]), want[:, o, i], rtol=0, atol=TOL)


def _per_edge(arr, group):
    if group is None:
        return arr
    rows = np.arange(2) % group
    return np.broadcast_to(arr[rows][None], (2, 2) + arr.shape[1:])


# ----------------------------------------------------------------------------- PennyLane's FFT


def _pennylane_pz(theta, reps):
    """pz written directly as a PennyLane circuit (DESIGN.md section 3), independent of the IR."""
    import pennylane as qml

    dev = qml.device("default.qubit", wires=1)

    @qml.qnode(dev)
    def circuit(x):
        qml.Hadamard(0)
        for l in range(reps):
            qml.RZ(theta[l, 0], 0)
            qml.RY(theta[l, 1], 0)
            qml.RZ(x[0], 0)
        qml.RZ(theta[reps, 0], 0)
        qml.RY(theta[reps, 1], 0)
        return qml.expval(qml.PauliZ(0))

    return circuit


def _fft_coefficients(f, degree):
    import pennylane as qml

    c = qml.fourier.coefficients(f, 1, degree)  # c[k] multiplies e^{ikx}, FFT order
    return {k: complex(c[k % len(c)]) for k in range(-degree, degree + 1)}


def _ours(spectrum: Spectrum, degree):
    out = {k: 0j for k in range(-degree, degree + 1)}
    for f, c in zip(spectrum.frequencies, spectrum.coefficients):
        k = int(round(f))
        assert abs(f - k) < 1e-12 and abs(k) <= degree, f
        out[k] += c
    return out


@pytest.mark.parametrize("reps", [1, 2, 3])
def test_pz_coefficients_match_pennylane_fft(reps):
    model = qvaf.compile(SPECS / "ansatz" / "pz.qvaf", args={"reps": reps}, dtype="float64")
    params = _perturbed(model, reps)
    theta = np.asarray(params["layer0"]["theta"])[0, 0]
    s = network_spectra(model.ir, params)["layer0"][(0, 0)]
    degree = reps + 2  # sample above the band: the FFT must find zeros there
    want = _fft_coefficients(_pennylane_pz(theta, reps), degree)
    got = _ours(s, degree)
    for k in want:
        assert abs(got[k] - want[k]) < TOL, (k, got[k], want[k])


@pytest.mark.parametrize("spec,args,weights", [
    ("rpz", {"reps": 3}, None),
    ("real", {"reps": 3}, None),
    ("mix", {"reps": 2}, None),
    ("daruan", {"reps": 3, "axis": "y"}, [1.0, 2.0, -3.0]),
    ("daruan", {"reps": 3}, [1.0, 3.0, 9.0]),
])
def test_integer_spectra_match_pennylane_fft(spec, args, weights):
    """The same IR run by the reference backend (PennyLane default.qubit), sampled by FFT."""
    path = SPECS / "ansatz" / f"{spec}.qvaf"
    model = qvaf.compile(path, args=args, dtype="float64")
    ref = qvaf.compile(path, args=args, dtype="float64", backend="reference", optimize=False)
    params = _perturbed(model, 7)
    if weights is not None:
        params["layer0"]["w"] = np.asarray(weights).reshape(1, 1, -1)
    s = network_spectra(model.ir, params)["layer0"][(0, 0)]
    degree = int(round(s.highest_frequency())) + 2
    want = _fft_coefficients(lambda x: float(np.asarray(ref.apply(params, np.asarray(x).reshape(1, 1)))[0, 0]), degree)
    got = _ours(s, degree)
    for k in want:
        assert abs(got[k] - want[k]) < TOL, (k, got[k], want[k])


# ----------------------------------------------------------------------------- the paper's claim


def _daruan(reps):
    return qvaf.compile(SPECS / "ansatz" / "daruan.qvaf", args={"reps": reps}, dtype="float64")


@pytest.mark.parametrize("reps", [1, 2, 3, 4])
def test_ternary_weights_give_exponential_spectrum(reps):
    model = _daruan(reps)
    top = (3 ** reps - 1) // 2
    for seed in range(3):
        params = _perturbed(model, seed)
        params["layer0"]["w"] = (3.0 ** np.arange(reps)).reshape(1, 1, -1)
        s = network_spectra(model.ir, params)["layer0"][(0, 0)]
        assert s.support(1e-12).tolist() == list(range(top + 1))
        _, mag = s.magnitudes()
        assert mag[1:].min() > 1e-9  # generically non-zero (round-off is ~1e-16): every frequency present
        assert s.count() == top and s.highest_frequency() == top


@pytest.mark.parametrize("reps", [1, 2, 3, 4])
def test_fixed_weights_give_at_most_L(reps):
    fixed = qvaf.compile(SPECS / "ansatz" / "pz.qvaf", args={"reps": reps}, dtype="float64")
    unit = _daruan(reps)
    for seed in range(3):
        for model in (fixed, unit):
            params = _perturbed(model, seed)
            if "w" in params["layer0"]:
                params["layer0"]["w"] = np.ones_like(params["layer0"]["w"])
            s = network_spectra(model.ir, params)["layer0"][(0, 0)]
            assert set(s.support(1e-12).tolist()) <= set(range(reps + 1))
            assert s.count() == reps and s.highest_frequency() == reps


def test_generic_weights_give_every_signed_sum():
    """Non-integer trained weights: the support is exactly {|sum_l s_l w_l|, s_l in {-1, 0, 1}}."""
    reps = 3
    model = _daruan(reps)
    params = _perturbed(model, 11)
    w = np.array([0.7, 1.9, 4.3])
    params["layer0"]["w"] = w.reshape(1, 1, -1)
    s = network_spectra(model.ir, params)["layer0"][(0, 0)]
    sums = sorted({round(abs(float(np.dot(signs, w))), 9) for signs in itertools.product((-1, 0, 1), repeat=reps)})
    assert np.allclose(s.support(1e-12), sums, atol=1e-9) and len(sums) == (3 ** reps + 1) // 2


# ----------------------------------------------------------------------------- refusals and helpers


def _ansatz_model(body, observable="z"):
    text = f"""ansatz probe(reps: int = 2) {{
    param theta[reps] ~ normal(0, 1)
    h
    for l in 0..reps {{
        ry(theta[l])
        {body}
    }}
    measure {observable}
}}"""
    return qvaf.compile(program_from_text(text, "probe.qvaf"), dtype="float64")


@pytest.mark.parametrize("body,reason", [
    ("rz(exp(x))", r"exp\(x\).*\(exp of x\)"),
    ("rz(x * x)", r"\(a product of two terms in x\)"),
    ("rx(1 / x)", r"\(x in a denominator\)"),
])
def test_non_affine_angles_are_refused_by_name(body, reason):
    model = _ansatz_model(body)
    with pytest.raises(SpectrumError, match=reason):
        network_spectra(model.ir, model.init(0))


def test_affine_forms_of_parameters_are_accepted():
    # w, b built from products and sums of parameters and constants, x anywhere in the sum
    model = _ansatz_model("rz(theta[l] * 2 * x - (x * theta[l] + pi) / 3)")
    params = _perturbed(model, 0)
    s = network_spectra(model.ir, params)["layer0"][(0, 0)]
    x = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(s(x), np.asarray(model.apply(params, x[:, None]))[:, 0], rtol=0, atol=TOL)


def test_inspired_readout_is_refused():
    model = _ansatz_model("rz(x)", observable="inspired")
    with pytest.raises(SpectrumError, match="inspired.*not a trigonometric polynomial"):
        network_spectra(model.ir, model.init(0))


def test_term_limit_is_reported():
    model = _daruan(4)
    params = _perturbed(model, 0)
    with pytest.raises(SpectrumError, match=r"layer0, edge \(0, 0\): more than 20 distinct frequencies"):
        network_spectra(model.ir, params, max_terms=20)
    assert MAX_TERMS >= 3 ** 8


def test_unknown_layer_and_edge():
    model = qvaf.compile(SPECS / "models" / "regression.qvaf", dtype="float64")
    params = model.init(0)
    with pytest.raises(SpectrumError, match="'layer7' is not a kan layer; kan layers: layer0, layer1"):
        network_spectra(model.ir, params, ["layer7"])
    with pytest.raises(SpectrumError, match=r"there is no edge \(9, 0\)"):
        network_spectra(model.ir, params, ["layer0"], edges=[(9, 0)])


def test_truncation_bound_and_postactivation():
    model = _daruan(3)
    params = _perturbed(model, 5)
    s = network_spectra(model.ir, params)["layer0"][(0, 0)]
    x = np.linspace(-10, 10, 4001)
    t, bound = s.truncated(0.05)
    err = np.abs(s(x) - t(x)).max()
    assert 0 < err <= bound + 1e-15 and t.frequencies.size < s.frequencies.size
    post = s.scaled(-1.5, 0.25)
    np.testing.assert_allclose(post(x), -1.5 * (s(x) + 0.25), rtol=0, atol=1e-12)
    # c(-omega) = conj(c(omega)): the series is real
    rev = dict(zip(np.round(-s.frequencies, 9), np.conj(s.coefficients)))
    for f, c in zip(np.round(s.frequencies, 9), s.coefficients):
        assert abs(rev[f] - c) < 1e-15
    # an empty circuit's readout is a constant
    const = network_spectra(network([1, 1], Circuit((), "z"), base="none"), {"layer0": {"mask": np.ones((1, 1))}})
    assert const["layer0"][(0, 0)].support().tolist() == [0.0]
