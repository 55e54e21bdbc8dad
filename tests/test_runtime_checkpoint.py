"""Checkpoints: round trip, bit-identical resume after a simulated kill, atomic writes, and
clear errors for damaged or incompatible checkpoints. Stand-in model: a small JAX MLP."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from qvaf.runtime import checkpoint as C
from qvaf.runtime import train as T

from _runtime_models import MLP, regression_data

RUN_CONFIG = {"model": {"kind": "mlp"}, "task": {"name": "synthetic"}, "train": {}}


class Killed(Exception):
    pass


def _saver(out, config):
    def on_checkpoint(state, model, log):
        C.save(out, state, log, {**RUN_CONFIG, "train": config.to_json()}, {"m.qvaf": "model m {}\n"})
    return on_checkpoint


def _resume(out, model, data, config):
    ck = C.load(out)
    state, log = C.restore(ck, model, config)
    return T.fit(model, state.params, data, config, state=state, log=log, on_checkpoint=_saver(out, config))


@pytest.mark.parametrize("optimizer, batch", [("adam", 32), ("adamw:0,lbfgs:40", None), ("adam:0,lm:30", None)])
def test_resume_after_a_kill_is_bit_identical(tmp_path, optimizer, batch):
    model, data = MLP([2, 8, 1]), regression_data()
    config = T.TrainConfig(steps=70, batch_size=batch, optimizer=optimizer, eval_every=10, log_every=5,
                           checkpoint_every=10, schedule="cosine" if batch else "constant", seed=5)
    params = model.init(jax.random.PRNGKey(5))
    full = T.fit(model, params, data, config)

    out = str(tmp_path / "run")

    def kill_at_55(record):
        if record["step"] == 50:  # after the step-50 checkpoint... the kill comes mid-way to 60
            raise Killed

    saver = _saver(out, config)

    def save_then_maybe_die(state, m, log):
        saver(state, m, log)

    with pytest.raises(Killed):
        T.fit(model, params, data, config, on_checkpoint=save_then_maybe_die, on_record=kill_at_55)
    ck = C.load(out)
    assert ck.step == 40  # the record at 50 came before the step-50 checkpoint was written
    resumed = _resume(out, model, data, config)
    assert resumed.state.step == 70
    assert resumed.log.losses == full.log.losses  # every step, bit for bit
    for a, b in zip(jax.tree_util.tree_leaves(full.params), jax.tree_util.tree_leaves(resumed.params)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert [r["step"] for r in resumed.log.history] == [r["step"] for r in full.log.history]
    assert C.load(out).step == 70


def test_round_trip_of_every_part(tmp_path):
    model, data = MLP([2, 4, 1]), regression_data()
    config = T.TrainConfig(steps=20, batch_size=16, eval_every=10)
    res = T.fit(model, model.init(jax.random.PRNGKey(0)), data, config, on_checkpoint=_saver(str(tmp_path), config))
    ck = C.load(str(tmp_path))
    assert ck.path.endswith("step-00000020")
    assert ck.config["train"]["steps"] == 20 and ck.config["model"] == {"kind": "mlp"}
    assert open(os.path.join(ck.spec_dir, "m.qvaf")).read() == "model m {}\n"
    state, log = C.restore(ck, model, config)
    assert state.step == 20 and log.losses == res.log.losses and log.history == res.log.history
    for a, b in zip(jax.tree_util.tree_leaves(res.state), jax.tree_util.tree_leaves(state)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    # only the newest checkpoints are kept
    names = sorted(os.listdir(tmp_path / "checkpoints"))
    assert names == ["latest", "step-00000010", "step-00000020"]
    manifest = json.load(open(os.path.join(ck.path, "manifest.json")))
    assert manifest["arrays"]["weights.npz:layer0/weight"] == {"shape": [4, 2], "dtype": "float32"}


def _one_checkpoint(tmp_path):
    model, data = MLP([2, 4, 1]), regression_data()
    config = T.TrainConfig(steps=10, batch_size=16, eval_every=10)
    T.fit(model, model.init(jax.random.PRNGKey(0)), data, config, on_checkpoint=_saver(str(tmp_path), config))
    return model, config, C.resolve(str(tmp_path))


def test_truncated_npz_is_reported(tmp_path):
    _, _, path = _one_checkpoint(tmp_path)
    f = os.path.join(path, "weights.npz")
    data = open(f, "rb").read()
    open(f, "wb").write(data[: len(data) // 2])
    with pytest.raises(C.CheckpointError, match="weights.npz: checksum mismatch"):
        C.load(path)


def test_flipped_byte_is_a_checksum_mismatch(tmp_path):
    _, _, path = _one_checkpoint(tmp_path)
    f = os.path.join(path, "optimizer.npz")
    data = bytearray(open(f, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(f, "wb").write(bytes(data))
    with pytest.raises(C.CheckpointError, match="optimizer.npz: checksum mismatch"):
        C.load(path)


def test_bad_manifest_json_and_missing_files(tmp_path):
    _, _, path = _one_checkpoint(tmp_path)
    open(os.path.join(path, "manifest.json"), "w").write("{not json")
    with pytest.raises(C.CheckpointError, match="manifest.json: not valid JSON"):
        C.load(path)
    with pytest.raises(C.CheckpointError, match="no such checkpoint"):
        C.load(str(tmp_path / "nowhere"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(C.CheckpointError, match="not a checkpoint"):
        C.load(str(tmp_path / "empty"))


def test_unreadable_npz_with_matching_checksum_and_missing_array(tmp_path):
    _, _, path = _one_checkpoint(tmp_path)
    m = json.load(open(os.path.join(path, "manifest.json")))
    # a state.npz without the key array, with the manifest updated to match its checksum
    f = os.path.join(path, "state.npz")
    with np.load(f) as z:
        arrays = {k: z[k] for k in z.files if k != "key"}
    np.savez(f, **arrays)
    m["files"]["state.npz"] = {"sha256": C._sha256(f), "bytes": os.path.getsize(f)}
    json.dump(m, open(os.path.join(path, "manifest.json"), "w"))
    with pytest.raises(C.CheckpointError, match="state.npz: missing array 'key'"):
        C.load(path)
    # garbage that is not a zip at all
    open(f, "wb").write(b"not a zip file")
    m["files"]["state.npz"] = {"sha256": C._sha256(f), "bytes": os.path.getsize(f)}
    json.dump(m, open(os.path.join(path, "manifest.json"), "w"))
    with pytest.raises(C.CheckpointError, match="state.npz: unreadable"):
        C.load(path)


def test_pickled_object_arrays_are_refused(tmp_path):
    _, _, path = _one_checkpoint(tmp_path)
    f = os.path.join(path, "weights.npz")
    np.savez(f, **{"layer0/weight": np.array([object()], dtype=object)})
    m = json.load(open(os.path.join(path, "manifest.json")))
    m["files"]["weights.npz"] = {"sha256": C._sha256(f), "bytes": os.path.getsize(f)}
    json.dump(m, open(os.path.join(path, "manifest.json"), "w"))
    with pytest.raises(C.CheckpointError, match="weights.npz: unreadable"):
        C.load(path)


def test_incompatible_model_is_reported(tmp_path):
    _, config, path = _one_checkpoint(tmp_path)
    ck = C.load(path)
    with pytest.raises(C.CheckpointError, match=r"incompatible checkpoint.*layer0/bias.*float32\[4\], the model needs float32\[6\]"):
        C.restore(ck, MLP([2, 6, 1]), config)
    with pytest.raises(C.CheckpointError, match="incompatible checkpoint.*optimizer state"):
        C.restore(ck, MLP([2, 4, 1]), T.TrainConfig(steps=10, optimizer="lbfgs", batch_size=None))


def test_a_failed_write_leaves_the_last_good_checkpoint(tmp_path, monkeypatch):
    model, config, path = _one_checkpoint(tmp_path)
    good = C.load(str(tmp_path))
    calls = {"n": 0}
    real = C._npz_bytes

    def failing(arrays):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(arrays)

    monkeypatch.setattr(C, "_npz_bytes", failing)
    state, log = C.restore(good, model, config)
    with pytest.raises(OSError, match="disk full"):
        C.save(str(tmp_path), state._replace(step=11), log, RUN_CONFIG)
    after = C.load(str(tmp_path))
    assert after.path == good.path and after.step == 10
    assert not [d for d in os.listdir(tmp_path / "checkpoints") if d.startswith(".tmp")]
