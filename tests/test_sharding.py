"""Data-parallel training on several devices (runtime/sharding.py).

The number of CPU devices is fixed when JAX starts, so everything that needs four devices runs
in subprocesses started with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``:
tests/_sharding_probe.py measures, the tests here assert. The reference is the same
computation on one device. Tolerances: 1e-6 absolute on float64 losses and gradients (the
sums only change order), 1e-5 relative on float32 losses over a run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import pytest

import qvaf
from qvaf import QvafError
from qvaf.runtime import sharding as S
from qvaf.runtime.run import specs_dir

from _runtime_models import TINY

HERE = os.path.dirname(__file__)
ROOT = os.path.dirname(HERE)


def _env(devices: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_ENABLE_X64")}
    return {**env, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu",
            "PYTHONPATH": HERE + os.pathsep + env.get("PYTHONPATH", "")}


def _run(argv, devices=4, timeout=240):
    done = subprocess.run([sys.executable, *argv], env=_env(devices), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


#: (what is checked, check of the probe's measurements): one probe process serves them all
CHECKS = [
    ("the probe sees four devices", lambda p: p["devices"] == 4),
    # loss and gradient of a float64 qvaf model, 30 and 3 rows split over 4 devices (padded to 32 and 4)
    *[(f"sharded loss and gradient equal one device's ({n} rows)",
       lambda p, n=n: p[f"loss_diff_{n}"] <= 1e-6 and p[f"grad_diff_{n}"] <= 1e-6 and p[f"grad_norm_{n}"] > 1.0)
      for n in (30, 3)],
    *[(f"each device gets its share of the rows and the gradient is all-reduced ({n} rows)",
       lambda p, n=n: p[f"per_device_rows_{n}"] and p[f"all_reduce_{n}"]) for n in (30, 3)],
    # whole runs: float64 with batches 4 divides, float32 with batches it does not
    *[(f"a {kind} run on four devices follows the run on one",
       lambda p, kind=kind, tol=tol: p[f"{kind}_loss_rel_diff"] <= tol and p[f"{kind}_param_diff"] <= 100 * tol
       and p[f"{kind}_param_change"] > 0.1 and p[f"{kind}_result_on_one_device"])
      for kind, tol in (("fit64", 1e-12), ("fit32", 1e-5))],
    ("full batch on four devices (201 samples, padded to 204)", lambda p: p["full_batch_loss_rel_diff"] <= 1e-5),
    ("lbfgs and lm are refused on several devices",
     lambda p: (p["single_device_error"] or "").startswith("lbfgs and lm train on one device")
     and "adam/adamw" in p["single_device_error"]),
    ("checkpoints of a sharded run hold host arrays", lambda p: p["checkpoint_step"] == 20
     and p["checkpoint_host_arrays"]),
    ("a sharded run resumes bit-identically on four devices", lambda p: p["resume4_steps"] == 40
     and p["resume4_losses_equal"] and p["resume4_params_equal"]),
    ("a run trained on four devices resumes on one", lambda p: p["resume1_steps"] == 40
     and p["resume1_loss_rel_diff"] <= 1e-5),
]


def test_four_cpu_devices(tmp_path):
    """Every check of :data:`CHECKS` on the measurements of tests/_sharding_probe.py."""
    done = _run([os.path.join(HERE, "_sharding_probe.py"), str(tmp_path / "run")])
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    failed = [name for name, check in CHECKS if not check(probe)]
    assert not failed, f"failed: {failed}; measured: {probe}"


def test_cli_trains_on_four_devices_and_resumes_on_one(tmp_path):
    out = str(tmp_path / "run")
    spec = TINY
    common = ["-m", "qvaf", "train"]
    first = _run([*common, spec, "--task", "toy_sin2", "--n-train", "60", "--batch", "30", "--steps", "6",
                  "--eval-every", "3", "--devices", "4", "--out", out, "--json"])
    done = json.loads(first.stdout.strip().splitlines()[-1])
    assert done["event"] == "done" and done["step"] == 6 and done["devices"] == 4
    again = _run([*common, "--resume", "--out", out, "--steps", "9", "--devices", "1", "--json"])
    done = json.loads(again.stdout.strip().splitlines()[-1])
    assert done["step"] == 9 and done["start_step"] == 6 and done["devices"] == 1


def test_cli_names_the_devices_it_sees(tmp_path):
    spec = os.path.join(specs_dir(), "models", "regression.qvaf")
    done = subprocess.run([sys.executable, "-m", "qvaf", "train", spec, "--task", "toy_sin2", "--devices", "8",
                           "--out", str(tmp_path / "r")], env=_env(4), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "qvaf train: --devices 8: JAX sees 4 cpu devices; on a CPU, split the host into 8 devices by setting "
        "XLA_FLAGS=--xla_force_host_platform_device_count=8 before Python starts; devices of several processes "
        "or machines: jax.distributed.initialize (docs/runtime.md, 'Several devices')"]


def test_too_many_devices_in_this_process():
    n = len(jax.devices())
    with pytest.raises(QvafError, match=f"devices {n + 1}: JAX sees {n} cpu device"):
        S.check_devices(n + 1)
    model = qvaf.compile("regression")
    with pytest.raises(QvafError, match="xla_force_host_platform_device_count"):
        qvaf.fit(model, model.init(jax.random.PRNGKey(0)), "toy_sin2", {"steps": 2}, devices=n + 1)


@pytest.mark.parametrize("bad", [0, -2, 2.0, "4", True, None])
def test_device_count_must_be_a_positive_integer(bad):
    with pytest.raises(QvafError, match="devices must be a positive integer"):
        S.check_devices(bad)


def test_two_processes_train_as_one():
    """docs/distributed.py: two processes with two CPU devices each (jax.distributed), one
    mesh of four devices, compared with a one-device run of the same configuration."""
    done = _run([os.path.join(ROOT, "docs", "distributed.py")], devices=1, timeout=300)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["processes"] == 2 and result["devices"] == 4 and result["local_devices"] == 2
    assert result["same_on_every_process"]
    assert result["max_rel_diff"] <= 1e-5
