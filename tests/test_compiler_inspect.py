"""``qvaf inspect``: the per-layer table, --dump-ir, warnings and errors, through the CLI."""

from __future__ import annotations

import os

import pytest

from qvaf.runtime.cli import main

ROOT = os.path.join(os.path.dirname(__file__), "..")


def spec(rel):
    return os.path.join(ROOT, "specs", rel)


def inspect(capsys, *argv):
    rc = main(["inspect", *argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def rows(out):
    """layer id -> the row's cells (split on whitespace)."""
    return {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith(("layer", "total")) and not line.startswith("layer ") and ":" not in line}


def test_regression_table(capsys):
    rc, out, err = inspect(capsys, spec("models/regression.qvaf"))
    assert rc == 0 and err == ""
    assert out.splitlines()[0] == "model regression: 2 -> 1"
    r = rows(out)
    # layer kind ansatz in->out edges gates-before -> gates-after ops uploads trainable fixed freq
    assert r["layer0"] == ["layer0", "kan", "pz(reps=3)", "2->5", "10", "12", "->", "12", "7", "3", "90", "10", "3"]
    assert r["layer1"] == ["layer1", "kan", "pz(reps=3)", "5->1", "5", "12", "->", "12", "7", "3", "45", "5", "3"]
    assert r["total"] == ["total", "15", "135", "15"]


def test_overrides_and_model_args(capsys):
    rc, out, _ = inspect(capsys, spec("models/regression.qvaf"), "--ansatz-arg", "reps=5",
                         "--ansatz-arg", "layer1:reps=1")
    r = rows(out)
    assert rc == 0
    assert r["layer0"][2:] == ["pz(reps=5)", "2->5", "10", "18", "->", "18", "11", "5", "130", "10", "5"]
    assert r["layer1"][2:] == ["pz(reps=1)", "5->1", "5", "6", "->", "6", "3", "1", "25", "5", "1"]
    rc, out, _ = inspect(capsys, spec("models/hqkan.qvaf"), "--arg", "d=16", "--arg", "k=1")
    r = rows(out)
    assert out.splitlines()[0] == "model hqkan_ffn(d=16, k=1, hidden=6, reps=1, group=3): 16 -> 16"
    assert r["layer0"] == ["layer0", "linear", "-", "16->6", "96", "-", "-", "-", "102", "0", "-"]
    # theta [3 groups, 2, 2] + postact weight, bias and base weight [6, 6]; mask fixed
    assert r["layer1"][2:] == ["pz(reps=1)", "6->6", "36", "6", "->", "6", "3", "1", str(12 + 3 * 36), "36", "1"]


def test_ansatz_only_spec_and_unused_param_warning(capsys):
    rc, out, err = inspect(capsys, spec("ansatz/px.qvaf"))
    assert rc == 0 and out.splitlines()[0] == "ansatz px: 1 -> 1"
    r = rows(out)
    assert r["layer0"][:12] == ["layer0", "kan", "px(reps=3)", "1->1", "1", "8", "->", "7", "6", "3", "4", "1"]
    assert r["layer0"][12] == "[1]" and "degree <= 3 in the angle acos" in out
    assert "theta[3] never read by the optimised circuit" in err
    assert "note: ansatz px: layer0 (px): acos(x) needs its argument in [-1, 1]" in err


def test_trainable_encoding_frequency_note(capsys):
    rc, out, _ = inspect(capsys, spec("ansatz/daruan.qvaf"), "--arg", "reps=2", "--arg", "axis=y")
    assert rc == 0 and "daruan(reps=2,axis=y)" in out
    assert "[1] layer0: depends on trainable w" in out


def test_several_models_are_all_inspected(capsys, tmp_path):
    path = tmp_path / "two.qvaf"
    path.write_text(
        "ansatz a(reps: int = 2) {\n  param t[reps] ~ normal(0, 1)\n  h\n"
        "  for l in 0..reps {\n    ry(t[l])\n    rz(2 * x)\n  }\n  measure x\n}\n"
        "model one {\n  input 3\n  kan 2 using a\n}\n"
        "model two {\n  input 1\n  linear 4\n  kan 1 using a(reps = 3) { base none }\n}\n")
    rc, out, err = inspect(capsys, str(path))
    assert rc == 0
    assert "model one: 3 -> 2" in out and "model two: 1 -> 1" in out
    assert out.index("model one") < out.index("model two")
    # h -> ry(pi/2) merges into ry(t[0]); rz(2x) upload, measured along x: nothing else dropped
    lines = [line.split() for line in out.splitlines() if line.startswith("layer1")]
    assert lines[0][2:] == ["a(reps=3)", "4->1", "4", "7", "->", "6", "6", "3", "12", "4", "6"]
    rc, out, _ = inspect(capsys, str(path), "--model", "two")
    assert "model one" not in out and "model two" in out
    rc, out, _ = inspect(capsys, str(path), "--ansatz", "a")
    assert out.splitlines()[0] == "ansatz a: 1 -> 1"


def test_dump_ir_prints_every_stage(capsys):
    rc, out, _ = inspect(capsys, spec("ansatz/pz.qvaf"), "--arg", "reps=1", "--dump-ir")
    assert rc == 0
    stages = [line for line in out.splitlines() if line.startswith("--- IR after")]
    assert stages == ["--- IR after " + s + " ---" for s in (
        "lowering", "unroll_loops", "inline_constants", "drop_noise_marks", "canonicalize", "merge_rotations",
        "drop_boundary_gates", "fuse_static")]
    last = out.split("--- IR after fuse_static ---")[1]
    body = [line.strip() for line in last.splitlines()[1:] if line.startswith("  ")]
    assert body[:8] == ["params theta[2, 2]", "fused {", "ry(pi / 2)", "rz(theta[0, 0])", "ry(theta[0, 1])",
                        "}", "rz(x)", "fused {"]
    lowered = out.split("--- IR after unroll_loops ---")[0]
    assert "for l in 0..1 {" in lowered and "rz(w[l] * x + b[l])" in lowered


@pytest.mark.parametrize("argv, message", [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--arg", "reps"], "--arg expects K=V"),
    (["--ansatz-arg", "layer9:reps=2"], "'layer9', not a kan layer"),
    (["--ansatz-arg", "reps=-1"], "shape of 'theta' has size 0"),
])
def test_errors_are_messages_not_tracebacks(capsys, argv, message):
    rc, out, err = inspect(capsys, spec("models/regression.qvaf"), *argv)
    assert rc == 2 and message in err and "Traceback" not in err


def test_missing_file(capsys):
    rc, _, err = inspect(capsys, "no/such/file.qvaf")
    assert rc == 2 and "no such file" in err
