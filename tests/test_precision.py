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

#: run name -> probe arguments: each process runs float32 and float64 models in both orders
RUNS = {
    "off": ["--x64", "off", "--order", "64,32,64", "--optimizers", ALL],
    "on": ["--x64", "on", "--order", "32,64,32", "--optimizers", ALL],
    "catalyst": ["--x64", "off", "--catalyst", "--order", "32"],
    "catalyst backend": ["--x64", "off", "--order", "32,c,32"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision")
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    procs = {}
    for name, argv in RUNS.items():
        if name.startswith("catalyst") and importlib.util.find_spec("catalyst") is None:
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


def _float32(run: dict, n: int) -> dict:
    """The float32 results of the ``n``-th model of a run, keyed without the position."""
    prefix = f"{n}_float32_"
    return {k[len(prefix):]: v for k, v in run.items() if k.startswith(prefix)}


def test_float64_without_64_bit_mode_is_an_error_that_names_the_fix(runs):
    run = runs["off"]
    assert not run["x64_after"], "the library turned 64-bit mode on"
    for n in (0, 2):  # before and after the float32 model
        message = str(run[f"{n}_float64_error"])
        assert "float64 needs JAX's 64-bit mode" in message
        assert "jax.config.update('jax_enable_x64', True)" in message and "JAX_ENABLE_X64=1" in message
    assert runs["on"]["1_float64_output"].dtype == np.float64
    assert runs["on"]["1_float64_losses_adam"].shape == (6,)


def test_float32_is_bit_identical_with_and_without_64_bit_mode_in_either_order(runs):
    base = _float32(runs["off"], 1)  # after a failed float64 compilation, without 64-bit mode
    assert {"losses_adam", "losses_lbfgs", "losses_lm", "output", "theta_adam"} <= set(base)
    assert any(k.startswith("grad_") for k in base) and base["output"].dtype == np.float32
    compared = {"on, before a float64 model": _float32(runs["on"], 0),
                "on, after a float64 model": _float32(runs["on"], 2)}
    assert set(compared["on, before a float64 model"]) == set(base)  # every optimizer with the mode on
    for name, got in compared.items():
        assert set(got) <= set(base) and "losses_adam" in got
        for key, value in got.items():
            assert value.dtype == base[key].dtype and np.array_equal(value, base[key]), f"{name}: {key}"


def test_fixed_arrays_get_zero_gradient_in_every_run(runs):
    for name, run in runs.items():
        grads = [v for k, v in run.items() if k.endswith("float32_grad_layer0.mask")]
        assert grads, name
        for g in grads:
            np.testing.assert_array_equal(g, 0.0)


def test_importing_catalyst_changes_no_float32_result(runs):
    if "catalyst" not in runs:
        pytest.skip("catalyst is not installed")
    run = runs["catalyst"]
    assert run["x64_after"], "importing catalyst no longer turns 64-bit mode on; this test has no subject"
    base = _float32(runs["off"], 1)
    for key, value in _float32(run, 0).items():
        assert np.array_equal(value, base[key]), key


def test_float32_training_is_bit_identical_before_and_after_using_the_catalyst_backend(runs):
    if "catalyst backend" not in runs:
        pytest.skip("catalyst is not installed")
    run = runs["catalyst backend"]
    assert run["1_catalyst_x64_after"], "the catalyst backend no longer turns 64-bit mode on; this test has no subject"
    before, after, base = _float32(run, 0), _float32(run, 2), _float32(runs["off"], 1)
    # the first float32 model also trains under noise and shots; the one after catalyst trains Adam
    assert "losses_adam" in after and set(after) <= set(before)
    for key, value in after.items():
        assert value.dtype == before[key].dtype and np.array_equal(value, before[key]), key
        assert np.array_equal(value, base[key]), key
    # the catalyst model trained the same network: float32 results of float64 circuits
    np.testing.assert_allclose(run["1_catalyst_output"], before["output"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(run["1_catalyst_losses_adam"], before["losses_adam"], rtol=1e-4, atol=1e-6)


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
