"""Every subcommand ends quietly when its output is closed (``qvaf tasks | head -2``).

The table ``SAMPLES`` holds a command line for every command of ``runtime.cli.COMMANDS``; a
command without an entry fails here, so each new command brings its sample along.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qvaf.runtime.cli import COMMANDS, EXIT_PIPE, main
from qvaf.runtime.run import specs_dir

from _runtime_models import TINY

SPECS = specs_dir()
REGRESSION = os.path.join(SPECS, "models", "regression.qvaf")
SMALL_TRAIN = ["--task", "toy_sin2", "--n-train", "40", "--batch", "0", "--steps", "2", "--eval-every", "1"]

#: command -> arguments; "{run}" is a trained run directory (with its QASM 3 export in
#: "{run}/hw"), "{tmp}" a fresh folder
SAMPLES = {
    "check": [SPECS],
    "fmt": [os.path.join(SPECS, "ansatz", "pz.qvaf")],
    "inspect": [TINY, "--dump-ir"],
    "train": [TINY, *SMALL_TRAIN, "--out", "{tmp}/run"],
    "eval": ["{run}", "--noise", "depolarizing=0.01,readout=0.02", "--shots", "100"],
    "plot": ["{run}", "--out", "{tmp}/plots"],
    "demo": ["--steps", "2", "--out", "{tmp}/demo"],
    "tasks": [],
    "export": ["{run}", "--target", "qasm3", "--out", "{tmp}/hw"],
    "run": ["{run}/hw", "--task", "toy_sin2", "--samples", "4"],
    "cost": ["{run}", "--basis", "ibm"],
    "spectrum": [TINY, "--edge", "layer0,0,0"],
    "formula": ["{run}"],
    "prune": ["{run}", "--steps", "0", "--out", "{tmp}/pruned"],
    "extend": ["{run}", "--reps", "4", "--out", "{tmp}/extended"],
    "compare": ["pz", "--task", "toy_sin2", "--seeds", "1", "--budget", "2", "--jobs", "1", "--no-mlp",
                "--out", "{tmp}/compare"],
}

#: options that change what a command loads or prints (command, arguments), checked like SAMPLES
OPTION_SAMPLES = [
    ("inspect", [TINY, "--backend", "catalyst"]),
    ("eval", ["{run}", "--backend", "catalyst"]),
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pipe") / "run")
    assert main(["train", TINY, *SMALL_TRAIN, "--out", out, "--quiet"]) == 0
    assert main(["export", out, "--target", "qasm3", "--out", os.path.join(out, "hw")]) == 0
    return out


def _argv(command, run_dir, tmp_path):
    if command not in SAMPLES:
        pytest.fail(f"tests/test_cli_pipe.py: add sample arguments for the new command '{command}' to SAMPLES")
    return [a.replace("{run}", run_dir).replace("{tmp}", str(tmp_path)) for a in SAMPLES[command]]


def _spawn(argv, stdout):
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.Popen([sys.executable, "-m", "qvaf", *argv], stdout=stdout, stderr=subprocess.PIPE, env=env)


def _assert_quiet(proc, argv):
    _, err = proc.communicate(timeout=240)
    text = err.decode(errors="replace")
    assert "Traceback" not in text and "Exception ignored" not in text, f"qvaf {' '.join(argv)}:\n{text}"
    return proc.returncode


def test_every_command_has_a_sample():
    missing = sorted(set(COMMANDS) - set(SAMPLES))
    assert not missing, f"add sample arguments for {missing} to SAMPLES"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_stdout_closed_from_the_start(command, run_dir, tmp_path):
    argv = [command, *_argv(command, run_dir, tmp_path)]
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        proc = _spawn(argv, write_end)
    finally:
        os.close(write_end)
    assert _assert_quiet(proc, argv) == EXIT_PIPE


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_stdout_closed_after_the_first_byte(command, run_dir, tmp_path):
    argv = [command, *_argv(command, run_dir, tmp_path)]
    proc = _spawn(argv, subprocess.PIPE)
    first = proc.stdout.read(1)
    proc.stdout.close()  # like `| head -c1`
    assert first
    code = _assert_quiet(proc, argv)
    assert code in (0, EXIT_PIPE)


@pytest.mark.parametrize("command, arguments", OPTION_SAMPLES, ids=[" ".join(a[1:]) for _, a in OPTION_SAMPLES])
def test_options_with_stdout_closed(command, arguments, run_dir, tmp_path):
    argv = [command, *(a.replace("{run}", run_dir).replace("{tmp}", str(tmp_path)) for a in arguments)]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = _spawn(argv, write_end)
    finally:
        os.close(write_end)
    assert _assert_quiet(proc, argv) == EXIT_PIPE
    proc = _spawn(argv, subprocess.PIPE)
    assert proc.stdout.read(1)
    proc.stdout.close()
    assert _assert_quiet(proc, argv) in (0, EXIT_PIPE)


def test_a_long_output_cut_short_exits_with_the_pipe_status(tmp_path):
    """``qvaf inspect --dump-ir | head -c1``: ~190 kB, far more than a pipe buffer holds."""
    argv = ["inspect", REGRESSION, "--dump-ir", "--ansatz-arg", "reps=300"]
    proc = _spawn(argv, subprocess.PIPE)
    assert proc.stdout.read(1)
    proc.stdout.close()
    assert _assert_quiet(proc, argv) == EXIT_PIPE
