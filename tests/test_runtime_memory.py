"""The memory estimate of a train step: close to XLA's own analysis, a warning for a large
step and a clear refusal (naming the layer and widths) for one that cannot fit."""

from __future__ import annotations

import os
import re
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

from _runtime_models import TINY

DARUAN = os.path.join(os.path.dirname(__file__), "..", "specs", "ansatz", "daruan.qvaf")


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
    estimate, layers = memory.estimate_step_bytes(model, 32, 64)
    widest = max(layers, key=lambda l: l.bytes)
    named = re.escape(f"{widest.layer} (kan {widest.in_width} -> {widest.out_width})")
    monkeypatch.setattr(memory, "WARN_BYTES", estimate // 2)
    with pytest.warns(memory.MemoryWarning, match=rf"a train step needs about .* {named} takes .* at batch 32"):
        fit(model, model.init(0), data, TrainConfig(steps=1, batch_size=32))
    monkeypatch.setattr(memory, "device_memory_bytes", lambda: estimate // 4)
    with pytest.raises(QvafError, match=rf"needs about .* more than the .* this device has: {named} "
                                        r"takes .* at batch 32\. Use a narrower layer or a smaller batch \(--batch 4 or less\)"):
        fit(model, model.init(0), data, TrainConfig(steps=1, batch_size=32))


def test_the_cli_refuses_a_width_that_cannot_fit(tmp_path, capsys):
    """daruan's trainable pre-activations give every edge its own angle: per-sample edge work."""
    spec = tmp_path / "wide.qvaf"
    spec.write_text(f'import "{DARUAN}"\nmodel wide {{\n    input 64\n    kan 100000 using daruan(reps = 2)\n'
                    '    kan 10 using daruan(reps = 2)\n}\n')
    estimate, _ = memory.estimate_step_bytes(qvaf.compile(str(spec)), 1437, 1437)
    if memory.device_memory_bytes() is not None and memory.device_memory_bytes() > estimate:
        pytest.skip("this device could hold the step")
    code = main(["train", str(spec), "--task", "digits", "--batch", "0", "--steps", "1", "--out", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 2 and "qvaf train: a train step needs about " in err and "more than the" in err
    assert "layer0 (kan 64 -> 100000)" in err and "Traceback" not in err


def test_the_cli_prints_the_warning_as_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "WARN_BYTES", 1)
    with warnings.catch_warnings():
        code = main(["train", TINY, "--task", "toy_sin2", "--n-train", "40", "--batch", "0", "--steps", "1",
                     "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0
    assert err.startswith("qvaf train: warning: a train step needs about ") and err.count("\n") == 1
    assert np.isfinite(memory.estimate_step_bytes(qvaf.compile("regression"), 40)[0])
