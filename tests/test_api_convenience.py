"""The Python API as convenient as the CLI: bundled names, layer indices, summaries, and
saving / restoring a model with its parameters."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

import qvaf
from qvaf import QvafError
from qvaf.runtime.cli import main
from qvaf.runtime.run import specs_dir

SPECS = specs_dir()


def _leaves_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(la, lb))


# ----------------------------------------------------------------------------- names


def test_compile_takes_a_bundled_model_name():
    by_name = qvaf.compile("regression")
    by_path = qvaf.compile(os.path.join(SPECS, "models", "regression.qvaf"))
    assert by_name.model_name == by_path.model_name == "regression"
    assert by_name.param_count == by_path.param_count == 135
    assert qvaf.load("digits").path == os.path.join(SPECS, "models", "digits.qvaf")
    with pytest.raises(QvafError, match="no spec file 'regresion'.*did you mean 'regression'"):
        qvaf.compile("regresion")


def test_the_main_files_models_only(tmp_path):
    """A file importing a model file offers its own models, not the imported ones."""
    regression = os.path.join(SPECS, "models", "regression.qvaf")
    one = tmp_path / "one.qvaf"
    one.write_text(f'import "{regression}"\nmodel mine {{ input 2; kan 1 using pz }}\n')
    assert qvaf.compile(str(one)).model_name == "mine"
    two = tmp_path / "two.qvaf"
    two.write_text(f'import "{regression}"\nmodel a {{ input 2; kan 1 using pz }}\nmodel b {{ input 2; kan 1 using pz }}\n')
    with pytest.raises(QvafError) as info:
        qvaf.compile(str(two))
    assert "defines several models (a, b); choose one with model=NAME" in str(info.value)
    assert "regression" not in str(info.value)
    assert qvaf.compile(str(two), "regression").model_name == "regression"  # still reachable by name


def test_the_cli_names_its_flag(tmp_path, capsys):
    regression = os.path.join(SPECS, "models", "regression.qvaf")
    two = tmp_path / "two.qvaf"
    two.write_text(f'import "{regression}"\nmodel a {{ input 2; kan 1 using pz }}\nmodel b {{ input 2; kan 1 using pz }}\n')
    code = main(["train", str(two), "--task", "toy_sin2", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "defines several models (a, b); choose one with --model NAME" in err


def test_edge_values_take_a_layer_index():
    model = qvaf.compile("regression", dtype="float64")
    p = model.init(0)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 2))
    np.testing.assert_array_equal(np.asarray(model.edge_values(p, x, 0)), np.asarray(model.edge_values(p, x, "layer0")))
    np.testing.assert_array_equal(np.asarray(model.edge_values(p, x, -1)), np.asarray(model.edge_values(p, x, "layer1")))
    with pytest.raises(QvafError, match=r"layer index 2 is out of range: the network has 2 layers \(0: layer0, 1: layer1\)"):
        model.edge_values(p, x, 2)
    with pytest.raises(QvafError, match="no layer 'layer7'"):
        model.edge_values(p, x, "layer7")
    with pytest.raises(QvafError, match="not float"):
        model.edge_values(p, x, 0.0)


# ----------------------------------------------------------------------------- summaries


def test_summary_is_the_inspect_table(capsys):
    model = qvaf.compile("regression")
    assert main(["inspect", "regression"]) == 0
    inspect_lines = capsys.readouterr().out.splitlines()
    text = model.summary()
    assert str(model) == text
    lines = text.splitlines()
    assert lines[0] == "model regression: 2 -> 1 (135 trainable + 15 fixed parameters; jax, float32)"
    assert lines[1:] == inspect_lines[1:]  # the table and the legend, from one implementation
    assert lines[2].split() == ["layer0", "kan", "pz(reps=3)", "2->5", "10", "12", "->", "12", "7", "3", "90", "10", "3"]
    assert "Compiled('regression'" in repr(model)


def test_summary_of_an_hqkan_block_and_an_ansatz():
    block = qvaf.hqkan(64)
    text = block.summary()
    assert "model hqkan_ffn(d=64, k=2, hidden=12, reps=1, group=3): 64 -> 64 (2056 trainable" in text
    assert "layer1  kan     pz(reps=1)   12->12    144" in text and "33088 parameters" in text
    px = qvaf.compile(os.path.join(SPECS, "ansatz", "px.qvaf"))
    assert px.summary().startswith("ansatz px: 1 -> 1")
    assert "8 -> 7" in px.summary()  # gates before -> after the passes


# ----------------------------------------------------------------------------- save / restore


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_restore_round_trip_is_bit_exact(tmp_path, dtype):
    model = qvaf.compile("regression", dtype=dtype, ansatz_overrides={"layer1": {"reps": 2}})
    params = jax.tree_util.tree_map(lambda a: a + 0.125, model.init(7))  # not the initial values
    path = qvaf.save(tmp_path / "m", model, params)
    assert os.path.isfile(os.path.join(path, "manifest.json"))
    back, p2 = qvaf.restore(tmp_path / "m")
    assert back.model_name == "regression" and back.dtype == dtype
    assert back.ansatz_overrides == {"layer1": {"reps": 2}} and back.param_count == model.param_count
    assert _leaves_equal(params, p2)
    x = np.random.default_rng(1).uniform(-1, 1, (8, 2)).astype(dtype)
    assert np.array_equal(np.asarray(model.apply(params, x)), np.asarray(back.apply(p2, x)))
    qvaf.save(tmp_path / "m", model, p2)  # saving again replaces it
    assert _leaves_equal(qvaf.restore(tmp_path / "m")[1], params)


def test_save_restore_an_hqkan_block_and_an_ansatz(tmp_path):
    block = qvaf.hqkan(16, reps=2)
    p = block.init(1)
    qvaf.save(tmp_path / "h", block, p)
    back, p2 = qvaf.restore(tmp_path / "h")
    assert type(back).__name__ == "HQKAN" and (back.d, back.hidden) == (16, 8)
    x = np.ones((2, 3, 16), np.float32)
    assert np.array_equal(np.asarray(block.apply(p, x)), np.asarray(back.apply(p2, x)))
    px = qvaf.compile(os.path.join(SPECS, "ansatz", "px.qvaf"), args={"reps": 2})
    qvaf.save(tmp_path / "px", px, px.init(0))
    back, _ = qvaf.restore(tmp_path / "px")
    assert back.summary().startswith("ansatz px: 1 -> 1") and back.ir.nodes["layer0"]["op"].ansatz_args == (("reps", 2),)


def test_restore_reads_a_training_run(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "regression", "--task", "toy_sin2", "--n-train", "40", "--steps", "3", "--batch", "0",
                 "--out", out, "--quiet"]) == 0
    model, params = qvaf.restore(out)
    from qvaf.runtime import checkpoint as C

    assert model.model_name == "regression"
    assert np.array_equal(np.asarray(params["layer0"]["theta"]), C.load(out).weights["layer0/theta"])
    with pytest.raises(QvafError, match="holds a training run"):
        qvaf.save(out, model, params)
    qvaf.save(tmp_path / "saved", model, params)  # a saved model evaluates with --task
    assert main(["eval", str(tmp_path / "saved"), "--task", "toy_sin2", "--json"]) == 0
    assert main(["eval", str(tmp_path / "saved")]) == 2
    assert "saved model without a task; pass --task NAME" in capsys.readouterr().err


def test_bad_saves_and_restores_are_clear_errors(tmp_path):
    model = qvaf.compile("regression")
    params = model.init(0)
    with pytest.raises(QvafError, match="no such checkpoint or run directory"):
        qvaf.restore(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(QvafError, match="not a checkpoint"):
        qvaf.restore(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(QvafError, match="is a file, not a folder"):
        qvaf.save(tmp_path / "file", model, params)
    with pytest.raises(QvafError, match="params do not fit the model: no array 'layer0/base_weight'"):
        qvaf.save(tmp_path / "a", model, {"layer1": params["layer1"]})
    bad = {**params, "layer0": {**params["layer0"], "theta": np.zeros((3, 3), np.float32)}}
    with pytest.raises(QvafError, match="'layer0/theta' is float32\\[3, 3\\], the model needs float32\\[5, 2, 4, 2\\]"):
        qvaf.save(tmp_path / "a", model, bad)
    with pytest.raises(QvafError, match="not str"):
        qvaf.save(tmp_path / "a", "regression", params)
    path = qvaf.save(tmp_path / "ok", model, params)
    weights = os.path.join(path, "weights.npz")
    data = bytearray(open(weights, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(weights, "wb").write(bytes(data))
    with pytest.raises(QvafError, match="weights.npz: checksum mismatch"):
        qvaf.restore(tmp_path / "ok")
    path = qvaf.save(tmp_path / "ok2", model, params)
    open(os.path.join(path, "manifest.json"), "w").write("{")
    with pytest.raises(QvafError, match="manifest.json: not valid JSON"):
        qvaf.restore(tmp_path / "ok2")


def test_edge_contributions_sum_to_the_next_layers_input():
    """m[(phi + c) a + beta base(x)] summed over inputs is the layer's output (checked against
    the network's own layer inputs and output, float64)."""
    block = qvaf.hqkan(8, hidden=4, reps=2, dtype="float64")
    p = jax.tree_util.tree_map(lambda a: a + 0.1, block.init(2))  # non-trivial postact bias and mask
    x = np.random.default_rng(3).normal(size=(5, 8))
    compiled = block.compiled
    terms = np.asarray(compiled.edge_contributions(p, x, 1))
    assert terms.shape == (5, 4, 4)
    np.testing.assert_allclose(terms.sum(-1), np.asarray(compiled.layer_inputs(p, x)["layer2"]), rtol=1e-12, atol=1e-13)
    model = qvaf.compile("regression", dtype="float64")
    q = model.init(0)
    xr = np.random.default_rng(4).uniform(-1, 1, (6, 2))
    np.testing.assert_allclose(np.asarray(model.edge_contributions(q, xr, "layer1")).sum(-1),
                               np.asarray(model.apply(q, xr)), rtol=1e-12, atol=1e-13)
