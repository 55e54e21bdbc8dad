"""The memory estimate of a train step: close to XLA's own analysis, a warning for a large
step and a clear refusal (naming the layer and widths) for one that cannot fit."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qvaf
from qvaf import QvafError
from qvaf.runtime import memory
from qvaf.runtime.cli import main
from qvaf.runtime.data import load_task
from qvaf.runtime.train import TrainConfig, fit


@pytest.mark.parametrize("hidden, batch, reps", [(64, 128, 1), (64, 64, 3)])
def test_estimate_is_near_xlas_memory_analysis(hidden, batch, reps):
    model = qvaf.compile("digits", args={"hidden": hidden}, ansatz_overrides={"*": {"reps": reps}})
    p = model.init(0)
    x, y = jnp.zeros((batch, 64), jnp.float32), jnp.zeros((batch, 10), jnp.float32)
    step = jax.jit(jax.value_and_grad(lambda q: ((model.apply(q, x) - y) ** 2).mean()))
    analysis = step.lower(p).compile().memory_analysis()
    if analysis is None:
        pytest.skip("this backend reports no memory analysis")
    measured = analysis.temp_size_in_bytes + analysis.argument_size_in_bytes + analysis.output_size_in_bytes
    estimate, layers = memory.estimate_step_bytes(model, batch)
    assert 0.8 < estimate / measured < 2.0, (estimate, measured)
    assert [l.layer for l in layers] == ["layer0", "layer1"]


def test_a_large_step_warns_and_one_that_cannot_fit_is_refused(monkeypatch):
    model = qvaf.compile("regression")
    data = load_task("toy_sin2", n_train=64)
    estimate, _ = memory.estimate_step_bytes(model, 32, 64)
    monkeypatch.setattr(memory, "WARN_BYTES", estimate // 2)
    with pytest.warns(memory.MemoryWarning, match=r"a train step needs about .* layer0 \(kan 2 -> 5\) takes .* at batch 32"):
        fit(model, model.init(0), data, TrainConfig(steps=1, batch_size=32))
    monkeypatch.setattr(memory, "device_memory_bytes", lambda: estimate // 4)
    with pytest.raises(QvafError, match=r"needs about .* more than the .* this device has: layer0 \(kan 2 -> 5\) "
                                        r"takes .* at batch 32\. Use a narrower layer or a smaller batch \(--batch 4 or less\)"):
        fit(model, model.init(0), data, TrainConfig(steps=1, batch_size=32))


def test_the_cli_refuses_a_width_that_cannot_fit(tmp_path, capsys):
    code = main(["train", "digits", "--task", "digits", "--arg", "hidden=100000", "--steps", "1",
                 "--out", str(tmp_path / "wide")])
    err = capsys.readouterr().err
    if memory.device_memory_bytes() is not None and memory.device_memory_bytes() > 120e9:
        pytest.skip("this device could hold the step")
    assert code == 2 and "qvaf train: a train step needs about 107.0 GB of memory" in err
    assert "layer0 (kan 64 -> 100000)" in err and "Traceback" not in err


def test_the_cli_prints_the_warning_as_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "WARN_BYTES", 1)
    with warnings.catch_warnings():
        code = main(["train", "regression", "--task", "toy_sin2", "--n-train", "40", "--batch", "0", "--steps", "1",
                     "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0
    assert err.startswith("qvaf train: warning: a train step needs about ") and err.count("\n") == 1
    assert np.isfinite(memory.estimate_step_bytes(qvaf.compile("regression"), 40)[0])
