"""``qvaf spectrum``: text and JSON reports for specs and runs, one edge or all, the plot, the
post-activation option, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qvaf.runtime.cli import main

from _explore_runs import regression_run

ROOT = Path(__file__).resolve().parents[1]
TERNARY = ROOT / "docs" / "tutorial" / "ternary.qvaf"


def test_spectrum_of_an_ansatz(capsys):
    assert main(["spectrum", "pz"]) == 0
    out = capsys.readouterr().out
    assert "layer0 (pz(reps=3), 1 -> 1): 3 distinct non-zero frequencies per edge, highest 3" in out
    assert "  edge (0, 0): 3 non-zero frequencies, highest 3" in out
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("    ") and "omega" not in ln]
    assert [float(r[0]) for r in rows] == [0, 1, 2, 3]
    assert main(["spectrum", str(TERNARY), "--arg", "reps=2", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    (layer,) = rec["layers"]
    assert layer["highest_frequency"] == 4 and layer["frequencies_per_edge"] == [4, 4]
    (edge,) = layer["edges"]
    assert edge["frequencies"] == [0, 1, 2, 3, 4] and len(edge["coefficients"]) == 5
    assert edge["coefficients"][0][1] == 0.0  # c_0 is real


def test_spectrum_of_a_run_one_edge_and_plot(tmp_path, capsys):
    from qvaf.compiler.spectrum import network_spectra
    from qvaf.runtime.run import load_run

    run = regression_run()
    png = tmp_path / "edge.png"
    assert main(["spectrum", run, "--edge", "layer1,0,3", "--plot", str(png), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["source"].startswith("trained parameters of ") and rec["plot"] == str(png)
    (layer,) = rec["layers"]
    assert layer["layer"] == "layer1" and [e["edge"] for e in layer["edges"]] == [[0, 3]]
    model, params, _ = load_run(run)
    want = network_spectra(model, params, ["layer1"], edges=[(0, 3)])["layer1"][(0, 3)]
    got = np.array([complex(*c) for c in layer["edges"][0]["coefficients"]])
    keep = want.frequencies >= 0
    np.testing.assert_array_equal(got, want.coefficients[keep])
    assert png.stat().st_size > 10_000
    # the post-activation view of the full edge contribution: scaled by the mask (1 here)
    assert main(["spectrum", run, "--edge", "layer0,4,1", "--postact", "--json"]) == 0
    post = json.loads(capsys.readouterr().out)
    assert post["quantity"] == "m a (phi + c)"
    assert main(["spectrum", run]) == 0
    text = capsys.readouterr().out
    assert "layer0 (pz(reps=3), 2 -> 5): 3 distinct" in text and "--edge LAYER,O,I" in text


@pytest.mark.parametrize("argv,message", [
    (["spectrum", "px"], "layer0 (px): the data angle acos(x) of rx is not affine in x (acos of x)"),
    (["spectrum", "regression", "--edge", "layer0,9,0"], "there is no edge (9, 0)"),
    (["spectrum", "regression", "--edge", "layer3,0,0"], "--edge: no layer 'layer3'; layers: layer0, layer1"),
    (["spectrum", "regression", "--edge", "layer0"], "--edge expects LAYER,O,I"),
    (["spectrum", "regression", "--edge", "layer0,a,1"], "integer O and I"),
    (["spectrum", "hqkan", "--edge", "layer0,0,0"], "layer0 is a linear layer"),
    (["spectrum", "nothing-here"], "no spec file or run directory 'nothing-here'"),
])
def test_spectrum_refusals(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("qvaf spectrum: ") and message in err
