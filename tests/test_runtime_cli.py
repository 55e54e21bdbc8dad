"""The train / eval / plot / tasks commands end to end on a compiled spec, including a resume
after a real SIGKILL of the training process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from qvaf.runtime import checkpoint as C
from qvaf.runtime.cli import main
from qvaf.runtime.cmd_train import demo_out
from qvaf.runtime.run import specs_dir

from _runtime_models import TINY

SPEC = os.path.join(specs_dir(), "models", "regression.qvaf")
SMALL = ["--task", "toy_sin2", "--n-train", "100", "--batch", "0", "--arg", "x=1"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cli") / "run")
    argv = ["train", SPEC, "--task", "toy_sin2", "--n-train", "100", "--batch", "0", "--steps", "40",
            "--eval-every", "20", "--log-every", "10", "--out", out, "--json", "--quiet"]
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(argv)
    assert code == 0
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    return out, lines


def test_train_writes_json_records_and_a_checkpoint(trained):
    out, lines = trained
    assert [r["event"] for r in lines] == ["eval", "eval", "done"]
    assert [r["step"] for r in lines[:2]] == [20, 40]
    done = lines[-1]
    assert done["stop_reason"] == "steps" and done["task"] == "toy_sin2" and done["model"] == "regression"
    assert done["test"]["rmse"] == pytest.approx(np.sqrt(done["test"]["mse"]))
    ck = C.load(out)
    assert ck.step == 40 and ck.config["task"]["n_train"] == 100
    assert os.path.isfile(os.path.join(ck.spec_dir, "models", "regression.qvaf"))
    assert os.path.isfile(os.path.join(ck.spec_dir, "ansatz", "pz.qvaf"))


def test_eval_reproduces_the_test_metrics(trained, capsys):
    out, lines = trained
    code, stdout, _ = _run(capsys, "eval", out, "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["rmse"] == pytest.approx(lines[-1]["test"]["rmse"], rel=1e-6)
    assert result["split"] == "test" and result["step"] == 40


def test_plot_writes_pngs(trained, capsys, tmp_path):
    out, _ = trained
    code, stdout, _ = _run(capsys, "plot", out, "--out", str(tmp_path / "p"), "--json")
    assert code == 0
    files = json.loads(stdout)["files"]
    assert sorted(os.path.basename(f) for f in files) == ["activations_layer0.png", "activations_layer1.png", "curves.png"]
    for f in files:
        with open(f, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(f) > 5000


def test_resume_trains_further_and_refuses_changed_options(trained, capsys, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(trained[0], out)  # the other tests read the run as trained, whatever the order
    code, _, err = _run(capsys, "train", SPEC, "--task", "toy_sin2", "--out", out, "--steps", "10")
    assert code == 2 and "already holds a run; pass --resume" in err
    code, _, err = _run(capsys, "train", "--resume", "--out", out, "--lr", "0.5")
    assert code == 2 and "drop --lr" in err
    code, _, err = _run(capsys, "train", "--resume", "--out", out)
    assert code == 2 and "already reached step 40" in err
    code, stdout, _ = _run(capsys, "train", "--resume", "--out", out, "--steps", "50", "--json", "--quiet")
    done = json.loads(stdout.splitlines()[-1])
    assert code == 0 and (done["step"], done["start_step"], done["new_steps"]) == (50, 40, 10)
    code, stdout, _ = _run(capsys, "train", "--resume", "--out", out, "--steps", "55")
    assert code == 0 and "for 5 more steps (steps 51-55, 55 in all)" in stdout


def test_user_errors_exit_2_with_the_choices(capsys, tmp_path):
    code, _, err = _run(capsys, "train", SPEC, "--task", "toy_nope", "--out", str(tmp_path / "a"))
    assert code == 2 and "unknown task 'toy_nope'" in err and "toy_expsin" in err
    code, _, err = _run(capsys, "train", SPEC, "--task", "toy_sin2", "--model", "nope", "--out", str(tmp_path / "b"))
    assert code == 2 and "no model named 'nope'" in err and "regression" in err
    code, _, err = _run(capsys, "train", "nospec", "--task", "toy_sin2")
    assert code == 2 and "no spec file 'nospec'" in err and "bundled" in err
    code, _, err = _run(capsys, "train", SPEC, "--task", "digits", "--out", str(tmp_path / "c"), "--steps", "1")
    assert code == 2 and "the model takes 2 inputs but task 'digits' has 64" in err
    code, _, err = _run(capsys, "train", SPEC, "--task", "toy_bessel", "--out", str(tmp_path / "c"), "--steps", "1")
    assert code == 2 and "takes 2 inputs but task 'toy_bessel' has 1" in err
    code, _, err = _run(capsys, "train", SPEC, "--task", "toy_sin2", "--optimizer", "sgd", "--out", str(tmp_path / "d"))
    assert code == 2 and "unknown optimizer 'sgd'" in err
    code, _, err = _run(capsys, "eval", str(tmp_path / "missing"))
    assert code == 2 and "no such checkpoint" in err


def test_tasks_lists_feynman_equations(capsys):
    code, stdout, _ = _run(capsys, "tasks")
    assert code == 0
    assert "feynman:I.6.2 " in stdout and "toy_expsin" in stdout and "digits" in stdout


def _losses(out):
    return np.asarray(C.load(out).extra["losses"])


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    """Kill a real training process at an arbitrary moment (possibly mid-checkpoint), resume,
    and compare every step's loss with an uninterrupted run of the same length."""
    common = ["--task", "toy_sin2", "--n-train", "200", "--batch", "50", "--eval-every", "20",
              "--log-every", "10", "--checkpoint-every", "20", "--seed", "3", "--quiet"]
    killed = str(tmp_path / "killed")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "qvaf", "train", TINY, "--steps", "1000000", "--out", killed, *common],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    pointer = os.path.join(killed, "checkpoints", "latest")
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if os.path.exists(pointer) and C.load(killed).step >= 60:
                break
            if proc.poll() is not None:
                pytest.fail(f"training process ended early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
        else:
            pytest.fail("no checkpoint within 120 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    at = C.load(killed).step
    total = at + 40
    assert main(["train", "--resume", "--out", killed, "--steps", str(total), "--quiet"]) == 0
    straight = str(tmp_path / "straight")
    assert main(["train", TINY, "--steps", str(total), "--out", straight, *common]) == 0
    a, b = _losses(killed), _losses(straight)
    assert len(a) == len(b) == total
    assert np.array_equal(a, b)  # bit for bit


def test_demo_compiles_trains_evaluates_and_plots(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = _run(capsys, "demo", "--steps", "60", "--quiet", "--json")
    assert code == 0
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["out"] == os.path.join("runs", "demo") and summary["step"] == 60
    assert summary["test"]["rmse"] < 0.6  # y = sin(pi x) cos(pi y) has RMS 0.5: it learned something
    assert len(summary["plots"]) == 3 and all(os.path.isfile(f) for f in summary["plots"])
    hardware = summary["hardware"]  # exported to QASM 3 and run back through the statevector executor
    assert os.path.isfile(os.path.join(hardware["export"], "manifest.json")) and hardware["samples"] == 16
    assert hardware["max_abs_diff"] < 1e-5 and "circuits in 15 jobs" in hardware["cost"]
    code, _, err = _run(capsys, "demo", "--steps", "10", "--out", summary["out"])
    assert code == 2 and "already holds a run" in err


def test_the_demo_takes_the_first_free_folder(tmp_path):
    root = str(tmp_path)
    assert demo_out(root) == os.path.join(root, "demo")
    os.makedirs(os.path.join(root, "demo"))
    os.makedirs(os.path.join(root, "demo-2"))
    assert demo_out(root) == os.path.join(root, "demo-3")
