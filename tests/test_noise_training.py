"""Training and evaluation under noise and shots: the loss the loop optimises is the noisy
model's (or the shot-sampled one's), runs are reproducible, and noise models travel through
checkpoints and the CLI as plain JSON."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import pytest

import qvaf
from qvaf.runtime import metrics as M
from qvaf.runtime.cli import main
from qvaf.runtime.data import load_task
from qvaf.runtime.run import specs_dir
from qvaf.runtime.steps import SHOT_STREAM
from qvaf.runtime.train import TrainConfig, TrainError, fit, init_state

from _runtime_models import TINY

NOISE = "depolarizing=0.05,amplitude_damping=0.03,readout=0.02"
REGRESSION = os.path.join(specs_dir(), "models", "regression.qvaf")


@pytest.fixture(scope="module")
def setup():
    model = qvaf.compile(TINY)
    data = load_task("toy_sin2", n_train=40)
    return model, data


def _first_loss(model, params, data, config, **apply_kw):
    y = model.apply(params, jnp.asarray(data.x_train, jnp.float32), **apply_kw)
    return float(M.loss_function("mse")(y, jnp.asarray(data.y_train, jnp.float32)))


def test_noise_aware_training_optimises_the_noisy_loss(setup):
    model, data = setup
    params = model.init(0)
    config = TrainConfig(steps=3, batch_size=None, eval_every=3, noise=NOISE)
    result = fit(model, params, data, config)
    noisy = model.with_noise(NOISE)
    assert result.log.losses[0] == pytest.approx(_first_loss(noisy, params, data, config), rel=1e-6)
    assert result.log.losses[0] != pytest.approx(_first_loss(model, params, data, config), rel=1e-3)
    assert result.model is model  # the parameters belong to the noise-free model


def test_shot_training_samples_each_step_reproducibly(setup):
    model, data = setup
    params = model.init(0)
    config = TrainConfig(steps=4, batch_size=None, eval_every=4, shots=50)
    a, b = fit(model, params, data, config), fit(model, params, data, config)
    assert a.log.losses == b.log.losses
    key = jax.random.fold_in(jax.random.fold_in(init_state(model, params, config).key, SHOT_STREAM), 0)
    assert a.log.losses[0] == pytest.approx(_first_loss(model, params, data, config, key=key, shots=50), rel=1e-6)
    assert a.log.losses[0] != pytest.approx(_first_loss(model, params, data, config), rel=1e-4)


def test_train_config_keeps_noise_as_json():
    config = TrainConfig(noise=NOISE, shots=100)
    data = json.loads(json.dumps(config.to_json()))
    assert data["noise"]["depolarizing"] == 0.05 and data["shots"] == 100
    assert TrainConfig.from_json(data) == config
    with pytest.raises(TrainError, match="deterministic"):
        TrainConfig(shots=10, optimizer="lm")


def test_cli_trains_under_noise_and_evaluates_side_by_side(tmp_path, capsys):
    out = str(tmp_path / "run")
    argv = ["train", TINY, "--task", "toy_sin2", "--n-train", "40", "--batch", "0", "--steps", "2",
            "--eval-every", "2", "--noise", NOISE, "--shots", "20", "--out", out, "--json", "--quiet"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "test_noisy" in summary and summary["test_noisy"]["noise"].startswith("depolarizing=0.05")
    ckpt = summary["checkpoint"]
    with open(os.path.join(ckpt, "config.json"), encoding="utf-8") as fh:
        saved = json.load(fh)["train"]
    assert saved["noise"]["amplitude_damping"] == 0.03 and saved["shots"] == 20
    assert main(["train", "--resume", "--out", out, "--steps", "3", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", out, "--noise", NOISE, "--shots", "1000", "--seed", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["noisy"]["shots"] == 1000 and result["noisy"]["seed"] == 3
    assert result["noisy"]["rmse"] != result["rmse"]
    assert main(["eval", out, "--noise", NOISE]) == 0
    text = capsys.readouterr().out
    assert "noise-free" in text and "noisy" in text and "rmse" in text


def test_shots_and_noise_need_a_model_that_has_them():
    from _runtime_models import MLP, regression_data

    model = MLP([2, 4, 1])
    params = model.init(jax.random.PRNGKey(0))
    with pytest.raises(TrainError, match="apply takes key= and shots="):
        fit(model, params, regression_data(), TrainConfig(steps=2, shots=10))
    with pytest.raises(TrainError, match="with_noise"):
        fit(model, params, regression_data(), TrainConfig(steps=2, noise="depolarizing=0.1"))
