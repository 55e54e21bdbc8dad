"""Exact formulas (runtime/formula.py): the sympy expression of a network, lambdified, against
the compiled model (float64, to 1e-8), truncation errors against their reported bounds, and
the ``qvaf formula`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import qvaf
from qvaf.dsl import program_from_text
from qvaf.runtime.cli import main
from qvaf.runtime.formula import FormulaError, network_formula

from _explore_runs import regression_run


ROOT = Path(__file__).resolve().parents[1]
PZ = ROOT / "specs" / "ansatz" / "pz.qvaf"


@pytest.fixture(scope="module")
def trained():
    """A [2, 5, 1] pz QKAN trained in float64 on toy_expsin (model, params, data)."""
    from qvaf.runtime.run import load_run, task_from_config

    model, params, ck = load_run(regression_run())
    return model, params, task_from_config(ck.config["task"])


def test_trained_regression_formula_equals_model(trained):
    model, params, data = trained
    f = network_formula(model, params)
    y = f.lambdify()(data.x_test)
    want = np.asarray(model.apply(params, data.x_test))
    assert y.shape == want.shape == (1000, 1) and model.dtype == "float64"
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-8)
    # the outputs as one expression of the inputs alone, lambdified as a whole, agree too
    import sympy

    (out,) = f.outputs
    assert out.free_symbols == set(f.inputs)
    whole = sympy.lambdify(f.inputs, out, modules=["scipy", "numpy"])
    np.testing.assert_allclose(whole(*data.x_test.T), want[:, 0], rtol=0, atol=1e-8)
    assert f.term_counts[1] == 0


def _perturbed(model, seed):
    rng = np.random.default_rng(seed)
    params = model.init(seed)
    return {lid: {k: np.asarray(v) + (0 if k == "mask" else 0.3 * rng.normal(size=np.shape(v))) for k, v in layer.items()}
            for lid, layer in params.items()}


@pytest.mark.parametrize("base,base2", [("silu", "gelu"), ("tanh", "relu"), ("identity", "none")])
def test_every_layer_kind_and_base(base, base2):
    text = PZ.read_text() + f"""
ansatz dw(reps: int = 2) {{
    param theta[reps + 1] ~ normal(0, 1)
    param w[reps] = 1.0
    h
    for l in 0..reps {{
        ry(theta[l])
        encode(w[l] * x - theta[l] / 2, x)
    }}
    ry(theta[reps])
    measure y
}}
model mixed {{
    input 3
    linear 4
    kan 3 using pz(reps = 2) {{ base {base}; postact weight bias }}
    kan 2 using dw {{ base {base2}; group 2 }}
}}
"""
    model = qvaf.compile(program_from_text(text, "mixed.qvaf"), "mixed", dtype="float64")
    params = _perturbed(model, 1)
    params["layer1"]["mask"][0, 2] = 0.0  # a masked edge is absent from the formula
    x = np.random.default_rng(2).uniform(-1.5, 1.5, (64, 3))
    f = network_formula(model, params)
    np.testing.assert_allclose(f.lambdify()(x), np.asarray(model.apply(params, x)), rtol=0, atol=1e-8)
    assert len(f.layers) == 3 and [len(rows) for _, _, rows in f.layers] == [4, 3, 2]
    assert len([e for e in f.edges if e["layer"] == "layer1"]) == 3 * 4 - 1


def test_truncation_error_is_bounded_and_measured(trained):
    model, params, data = trained
    x = np.concatenate([data.x_train, data.x_test])
    f = network_formula(model, params, threshold=0.05, x=x)
    kept, dropped = f.term_counts
    assert dropped > 0 and kept > 0
    for e in f.edges:
        assert e["max_error"] <= e["bound"] + 1e-12
    measured = np.abs(f.lambdify()(x) - np.asarray(model.apply(params, x))).max()
    assert f.max_error == pytest.approx(measured, rel=1e-12) and f.max_error > 1e-6
    # a larger threshold drops more terms
    assert network_formula(model, params, threshold=0.2).term_counts[1] > dropped


def test_non_affine_and_bad_threshold_are_refused():
    model = qvaf.compile(ROOT / "specs" / "ansatz" / "px.qvaf", dtype="float64")
    with pytest.raises(FormulaError, match=r"no closed form: layer0 \(px\).*acos"):
        network_formula(model, model.init(0))
    with pytest.raises(FormulaError, match="threshold must be >= 0"):
        network_formula(model, model.init(0), threshold=-1.0)


def test_formula_command(tmp_path, capsys):
    out = regression_run()
    assert main(["formula", str(out), "--digits", "4"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("inputs: x0, x1\nlayer0 (kan pz(reps=3), 2 -> 5; base silu):\n  h0_0 = ")
    assert "\nlayer1 (kan pz(reps=3), 5 -> 1; base silu):\n  y0 = " in text
    assert "0 dropped below amplitude 1e-12" in text
    assert main(["formula", str(out), "--threshold", "0.1", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["threshold"] == 0.1 and rec["terms_dropped"] > 0 and rec["max_error"] > 0
    assert set(rec["layers"][1]["assignments"]) == {"y0"}
    assert main(["formula", str(out), "--latex", "--expand"]) == 0
    assert "\\sin{\\left(" in capsys.readouterr().out
    assert main(["formula", str(tmp_path / "missing")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
