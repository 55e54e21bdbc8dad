"""Precision without process-wide state: float32 results are the same bit for bit whether
JAX's 64-bit mode is on or off, whatever float64 models run in the same process and in which
order, and after ``import catalyst`` (which turns the mode on); float64 without the mode is
a clear error; no library module changes JAX's configuration.

Each configuration runs in a fresh process (``tests/_precision_probe.py``); they run side by
side. Compared exactly: the output and every gradient of a fixed loss, and the training
losses and final parameters with Adam (warmup-cosine schedule, gradient clipping), L-BFGS and
Levenberg-Marquardt.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).resolve().parent / "_precision_probe.py"
ALL = "adam,lbfgs,lm"

#: run name -> probe arguments
RUNS = {
    "off 32,64": ["--x64", "off", "--order", "32,64", "--optimizers", ALL],
    "off 64,32": ["--x64", "off", "--order", "64,32"],
    "on 32,64": ["--x64", "on", "--order", "32,64", "--optimizers", ALL],
    "on 64,32": ["--x64", "on", "--order", "64,32"],
    "catalyst": ["--x64", "off", "--catalyst", "--order", "32"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision")
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    procs = {}
    for name, argv in RUNS.items():
        if name == "catalyst" and importlib.util.find_spec("catalyst") is None:
            continue
        out = folder / (name.replace(" ", "_").replace(",", "-") + ".npz")
        procs[name] = (out, subprocess.Popen([sys.executable, str(PROBE), str(out), *argv], env=env,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    results = {}
    for name, (out, proc) in procs.items():
        log, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{name}: {log}"
        results[name] = dict(np.load(out))
    return results


def _float32(run: dict) -> dict:
    return {k: v for k, v in run.items() if k.startswith("float32_")}


def test_float64_without_64_bit_mode_is_an_error_that_names_the_fix(runs):
    for name in ("off 32,64", "off 64,32"):
        run = runs[name]
        assert not run["x64_after"], "the library turned 64-bit mode on"
        message = str(run["float64_error"])
        assert "float64 needs JAX's 64-bit mode" in message
        assert "jax.config.update('jax_enable_x64', True)" in message and "JAX_ENABLE_X64=1" in message
    for name in ("on 32,64", "on 64,32"):
        assert runs[name]["float64_output"].dtype == np.float64
        assert runs[name]["float64_losses_adam"].shape == (6,)


def test_float32_is_bit_identical_with_and_without_64_bit_mode_in_either_order(runs):
    base = _float32(runs["off 32,64"])
    keys = {k.split("_")[1] for k in base}
    assert {"output", "grad", "losses", "theta"} <= keys
    assert {"float32_losses_adam", "float32_losses_lbfgs", "float32_losses_lm"} <= set(base)
    assert base["float32_output"].dtype == np.float32
    for name in ("off 64,32", "on 32,64", "on 64,32"):
        got = _float32(runs[name])
        assert set(got) <= set(base) and "float32_losses_adam" in got
        for key, value in got.items():
            assert value.dtype == base[key].dtype and np.array_equal(value, base[key]), f"{name}: {key}"
    assert set(_float32(runs["on 32,64"])) == set(base)  # every optimizer compared with the mode on


def test_fixed_arrays_get_zero_gradient_in_every_run(runs):
    for run in runs.values():
        np.testing.assert_array_equal(run["float32_grad_layer0.mask"], 0.0)


def test_importing_catalyst_changes_no_float32_result(runs):
    if "catalyst" not in runs:
        pytest.skip("catalyst is not installed")
    run = runs["catalyst"]
    assert run["x64_after"], "importing catalyst no longer turns 64-bit mode on; this test has no subject"
    base = runs["off 32,64"]
    for key, value in _float32(run).items():
        assert np.array_equal(value, base[key]), key


def _config_changes(path: Path) -> list[str]:
    """Calls in a module's code (not its docstrings) that change JAX's configuration."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
        if (name == "update" and owner.endswith("config")) or name in ("enable_x64", "disable_x64"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_library_module_changes_jax_configuration():
    """Only the CLI's start-up calls jax.config.update; no library module does."""
    offenders = [hit for folder in ("qvaf", "dsl", "compiler", "runtime")
                 for path in sorted((ROOT / folder).rglob("*.py")) for hit in _config_changes(path)]
    assert len(offenders) == 1 and offenders[0].startswith("runtime/cli.py:"), offenders
    assert "set_precision" in (ROOT / "runtime" / "cli.py").read_text()
