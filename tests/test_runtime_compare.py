"""Design comparison (runtime/compare.py, ``qvaf compare``): a tiny comparison end to end,
the table's structure and the sanity of its numbers, the parameter-matched MLP, budgets and
the errors for bad candidates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import qvaf
from qvaf.runtime.cli import main
from qvaf.runtime.compare import (
    CompareError,
    compile_candidate,
    markdown,
    mlp_params,
    mlp_width,
    parse_budget,
    resolve_candidates,
)

ROOT = Path(__file__).resolve().parents[1]
TERNARY = ROOT / "docs" / "tutorial" / "ternary.qvaf"


def test_budget_and_mlp_width():
    assert parse_budget("300") == ("steps", 300) and parse_budget(" 45s ") == ("seconds", 45.0)
    for bad in ("0", "-3", "2.5", "abc", "s", "0s", "nans"):
        with pytest.raises(CompareError, match="bad budget"):
            parse_budget(bad)
    for target, a, o in ((135, 2, 1), (5328, 64, 10), (7, 3, 2)):
        h = mlp_width(target, a, o)
        best = min(range(1, 500), key=lambda k: abs(mlp_params(a, k, o) - target))
        assert abs(mlp_params(a, h, o) - target) == abs(mlp_params(a, best, o) - target)


def test_candidates_resolve_by_name_file_and_member(tmp_path):
    two = tmp_path / "two.qvaf"
    two.write_text(TERNARY.read_text() + TERNARY.read_text().replace("ansatz ternary", "ansatz ternary2"))
    cands = resolve_candidates(["pz", str(TERNARY), f"{two}:ternary2"], {"reps": 2})
    assert [c.label for c in cands] == ["pz", "ternary", "ternary2"]
    assert cands[0].path.endswith("specs/ansatz/pz.qvaf") and cands[0].args == (("reps", 2),)
    assert [c.ansatz for c in resolve_candidates([str(two)])] == ["ternary", "ternary2"]
    with pytest.raises(CompareError, match="no ansatz file 'nope' and no bundled ansatz of that name"):
        resolve_candidates(["nope"])
    with pytest.raises(CompareError, match="defines no ansatz 'zz'"):
        resolve_candidates([f"{two}:zz"])
    net = compile_candidate(cands[1], [2, 5, 1])
    assert net.param_count == 15 * (3 * 2 + 1)  # theta[3, 2] and a base weight per edge


def test_tiny_compare_end_to_end(tmp_path, capsys):
    """Two candidates and the MLP, one seed, a few steps, in two worker processes."""
    out = tmp_path / "cmp"
    code = main(["compare", "pz", str(TERNARY), "--task", "toy_mul", "--seeds", "1", "--budget", "25",
                 "--jobs", "2", "--ansatz-arg", "reps=2", "--out", str(out), "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    result = json.loads((out / "compare.json").read_text())
    assert result["settings"]["jobs"] == 2 and result["settings"]["budget"] == {"kind": "steps", "amount": 25}
    rows = result["rows"]
    assert [r["candidate"] for r in rows] == ["pz", "ternary", "MLP 2-26-1 (tanh)"]
    pz_net = qvaf.compile(ROOT / "specs" / "models" / "regression.qvaf", ansatz_overrides={"*": {"reps": 2}})
    assert rows[0]["params"] == pz_net.param_count == 105 and rows[1]["params"] == 105
    assert rows[2]["params"] == mlp_params(2, 26, 1) == 105
    for r in rows:
        assert r["metric"] == "rmse" and r["seeds"] == 1 and r["mean_steps"] == 25
        assert 0 < r["mean"] < 5 and math.isfinite(r["mean"]) and r["std"] == 0.0 and r["mean_seconds"] > 0
    assert rows[0]["spectrum"] == {"frequencies": 2, "highest": 2.0, "note": ""}
    assert rows[1]["spectrum"]["frequencies"] == 4 and rows[1]["spectrum"]["highest"] == 4.0
    assert rows[2]["spectrum"] is None
    table = (out / "compare.md").read_text()
    assert table.strip() in text and markdown(result) == table
    lines = [ln for ln in table.splitlines() if ln.startswith("|")]
    assert lines[0] == "| candidate | params | spectrum: freqs / highest | test rmse | train time (s) | steps |"
    assert len(lines) == 2 + 3 and lines[2].startswith("| pz | 105 | 2 / 2 | ")
    assert lines[4].startswith("| MLP 2-26-1 (tanh) | 105 | - | ")
    assert (out / "compare.png").stat().st_size > 10_000


def test_compare_with_a_seconds_budget(capsys, tmp_path):
    from qvaf.runtime.compare import compare

    result = compare(["rpz"], ["toy_mul"], seeds=1, budget="1s", jobs=1, hidden=2, ansatz_args={"reps": 1},
                     mlp=False)
    (rec,) = result["records"]
    assert result["settings"]["budget"] == {"kind": "seconds", "amount": 1.0}
    assert rec["seconds"] >= 1.0 and rec["steps"] % 50 == 0 and rec["steps"] >= 50
    (row,) = result["rows"]
    assert row["params"] == 6 * (2 + 1 + 1) and row["seeds"] == 1  # theta[2], b[1], base weight per edge


def test_compare_errors(capsys):
    assert main(["compare", "pz", "--seeds", "1"]) == 2
    assert "compare needs --task NAME" in capsys.readouterr().err
    assert main(["compare", "pz", "--task", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert main(["compare", "zz", "--task", "toy_mul"]) == 2
    assert "no ansatz file 'zz'" in capsys.readouterr().err
    assert main(["compare", "pz", "--task", "toy_mul", "--budget", "ten"]) == 2
    assert "bad budget 'ten'" in capsys.readouterr().err
