"""Attribution and pruning (runtime/prune.py): masked edges contribute exactly nothing, scores
add up as defined, the cut-down network computes what the masked one does, and ``qvaf prune``
reports parameter counts and metrics that are reproducible and match ``qvaf eval``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import qvaf
from qvaf.dsl import program_from_text
from qvaf.runtime.cli import main
from qvaf.runtime.prune import (
    PruneError,
    active_param_count,
    attribute,
    contributions,
    plan_pruning,
    prune_run,
)
from qvaf.runtime.run import eval_run, load_run

from _explore_runs import regression_run


ROOT = Path(__file__).resolve().parents[1]
HYBRID = (ROOT / "specs" / "ansatz" / "pz.qvaf").read_text() + """
model hybrid {
    input 3
    linear 4
    kan 5 using pz(reps = 1) { postact weight bias; base tanh }
    kan 4 using pz(reps = 1) { group 2 }
    linear 2
}
"""


def _perturbed(model, seed):
    rng = np.random.default_rng(seed)
    params = model.init(seed)
    return {lid: {k: np.asarray(v) + (0 if k == "mask" else 0.5 * rng.normal(size=np.shape(v))) for k, v in layer.items()}
            for lid, layer in params.items()}


@pytest.fixture(scope="module")
def hybrid():
    model = qvaf.compile(program_from_text(HYBRID, "hybrid.qvaf"), "hybrid", dtype="float64")
    return model, _perturbed(model, 0), np.random.default_rng(1).uniform(-1, 1, (64, 3))


def test_masked_edges_contribute_exactly_nothing(hybrid):
    model, params, x = hybrid
    masked = {lid: dict(layer) for lid, layer in params.items()}
    m = np.ones((5, 4))
    m[[0, 2, 4], [1, 1, 3]] = 0.0
    masked["layer1"]["mask"] = m
    y = np.asarray(model.apply(masked, x))
    # whatever the masked edges' own parameters are, the output does not move by one bit
    wild = {lid: dict(layer) for lid, layer in masked.items()}
    for name in ("theta", "postact_weight", "postact_bias", "base_weight"):
        a = np.array(wild["layer1"][name])
        a[[0, 2, 4], [1, 1, 3]] = 1e3
        wild["layer1"][name] = a
    assert np.array_equal(np.asarray(model.apply(wild, x)), y)
    e = contributions(model, wild, x)["layer1"]
    assert np.all(e[:, [0, 2, 4], [1, 1, 3]] == 0.0)
    # the layer output is the sum of the edge contributions
    h = model.layer_inputs(wild, x)
    np.testing.assert_allclose(e.sum(axis=2), np.asarray(h["layer2"]), rtol=0, atol=1e-12)


def test_scores_add_up(hybrid):
    model, params, x = hybrid
    a = attribute(model, params, x)
    assert list(a.edge) == list(model.layers)
    for lid in model.layers:
        np.testing.assert_allclose(a.edge[lid].sum(), model.out_width, rtol=1e-12)  # output share per layer
        np.testing.assert_allclose(a.node[lid], a.edge[lid].sum(axis=0), rtol=1e-12)
    e = contributions(model, params, x)
    np.testing.assert_allclose(a.magnitude["layer1"], np.abs(e["layer1"]).mean(axis=0), rtol=1e-12)
    # the next layer's node scores are what each output node passes back
    np.testing.assert_allclose(a.edge["layer1"].sum(axis=1), a.node["layer2"], rtol=1e-12)


@pytest.mark.parametrize("threshold", [0.0, 0.08, 0.15])
def test_cut_down_network_equals_masked_network(hybrid, tmp_path, threshold):
    from qvaf.runtime.prune import compile_pruned

    model, params, x = hybrid
    plan = plan_pruning(model, params, attribute(model, params, x), threshold)
    new, new_params, rel, text = compile_pruned(model, params, plan, {"hybrid.qvaf": HYBRID}, "hybrid.qvaf",
                                                str(tmp_path))
    assert rel == "hybrid_pruned.qvaf" and "model hybrid_pruned {" in text
    np.testing.assert_allclose(np.asarray(new.apply(new_params, x)),
                               np.asarray(model.apply(plan.masked_params(params), x)), rtol=0, atol=1e-12)
    before, after = plan.widths
    assert before == [3, 4, 5, 4, 2]
    assert after[0] == 3 and after[-1] == 2 and after[2] == 5  # a grouped layer keeps every input
    if threshold == 0.0:
        assert after == before and active_param_count(new, new_params) == new.param_count == model.param_count
    else:
        assert sum(after) < sum(before) and new.param_count < model.param_count
    # a dropped node had no live kan edge left: out of it (into layer1), or into it (out of layer2)
    for j in set(range(4)) - set(plan.keep[0].tolist()):
        assert not plan.masks["layer1"][:, j].any()
    for j in set(range(4)) - set(plan.keep[2].tolist()):
        assert not plan.masks["layer2"][j].any()


def test_prune_plan_refusals(hybrid):
    model, params, x = hybrid
    a = attribute(model, params, x)
    with pytest.raises(PruneError, match="prunes every node of a hidden layer"):
        plan_pruning(model, params, a, 10.0)
    with pytest.raises(PruneError, match="threshold must be a number >= 0"):
        plan_pruning(model, params, a, float("nan"))
    lin = qvaf.compile(program_from_text("model lin { input 2\n linear 3 }", "lin.qvaf"), "lin")
    with pytest.raises(PruneError, match="no kan layer"):
        plan_pruning(lin, lin.init(0), attribute(lin, lin.init(0), x[:, :2]), 0.1)


def _numbers(report):
    return {k: report[k] for k in ("widths", "edges", "params", "test", "threshold", "finetune_steps")}


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    out = tmp_path_factory.mktemp("pruned") / "a"
    return prune_run(regression_run(), threshold=0.1, out=str(out), steps=10), out


def test_prune_run_report_and_checkpoint(pruned):
    a, out = pruned
    assert a["widths"]["before"] == [2, 5, 1] and sum(a["widths"]["after"]) < 8
    # parameters of the smaller network counted independently: 8 theta + 1 base weight per edge
    w = a["widths"]["after"]
    assert a["params"]["after"] == 9 * (w[0] * w[1] + w[1] * w[2]) and a["params"]["before"] == 135
    assert a["params"]["active_after"] <= a["params"]["after"] < a["params"]["active_before"] == 135
    assert a["edges"]["after"] < a["edges"]["before"] == 15
    assert a["test"]["finetuned"]["rmse"] < a["test"]["pruned"]["rmse"]
    # the pruned run is a normal checkpoint: eval reads it and agrees with the report
    ev = eval_run(str(out))
    assert ev["rmse"] == pytest.approx(a["test"]["finetuned"]["rmse"], rel=1e-12) and ev["step"] == 10
    model, params, ck = load_run(str(out))
    assert model.model_name == "regression_pruned" and ck.config["pruned_from"]["threshold"] == 0.1
    assert model.param_count == a["params"]["after"]
    saved = json.loads((out / "prune.json").read_text())
    assert _numbers(saved) == _numbers(a)
    assert (out / "pruned_network.png").stat().st_size > 10_000
    with pytest.raises(PruneError, match="already holds a run"):
        prune_run(regression_run(), threshold=0.1, out=str(out))


def test_prune_command_reproduces_the_numbers(pruned, tmp_path, capsys):
    a, _ = pruned
    run = regression_run()
    out = tmp_path / "b"
    assert main(["prune", run, "--threshold", "0.1", "--out", str(out), "--steps", "10"]) == 0
    text = capsys.readouterr().out
    assert f"pruned {run}" in text and "test rmse on toy_expsin: before " in text
    assert "fine-tuned (10 steps)" in text and str(out / "pruned_network.png") in text
    # the same command twice gives the same numbers
    assert _numbers(json.loads((out / "prune.json").read_text())) == _numbers(a)
    assert main(["eval", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rmse"] == a["test"]["finetuned"]["rmse"]
    assert main(["plot", str(out)]) == 0
    capsys.readouterr()
    assert main(["prune", run, "--threshold", "0.05", "--out", str(tmp_path / "q"), "--task", "digits"]) == 2
    assert "task 'digits' has 64 inputs" in capsys.readouterr().err


def test_prune_without_finetuning(tmp_path):
    rep = prune_run(regression_run(), threshold=0.05, out=str(tmp_path / "z"), steps=0)
    assert rep["test"]["pruned"] == rep["test"]["finetuned"] and rep["finetune_steps"] == 0
    assert eval_run(str(tmp_path / "z"))["rmse"] == pytest.approx(rep["test"]["pruned"]["rmse"], rel=1e-12)
