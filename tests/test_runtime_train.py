"""The training loop on small pure-JAX stand-in models: determinism, fixed arrays, optimizers,
schedules, clipping, early stopping, NaN handling and configuration errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from qvaf import QvafError
from qvaf.runtime import train as T
from qvaf.runtime.data import Dataset
from qvaf.runtime.optimizers import learning_rate, make_optimizer

from _runtime_models import MLP, linear_data, regression_data


def _fit(config, model=None, data=None, seed=0, **kw):
    model = model or MLP([2, 8, 1])
    data = data or regression_data()
    return T.fit(model, model.init(jax.random.PRNGKey(seed)), data, config, **kw)


def test_same_seed_gives_bit_identical_losses():
    cfg = T.TrainConfig(steps=60, batch_size=32, eval_every=20, log_every=7, seed=3)
    a, b = _fit(cfg), _fit(cfg)
    assert len(a.log.losses) == 60
    assert a.log.losses == b.log.losses  # exact float equality, step by step
    for la, lb in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        assert np.array_equal(np.asarray(la), np.asarray(lb))
    c = _fit(T.TrainConfig(steps=60, batch_size=32, eval_every=20, log_every=7, seed=4))
    assert c.log.losses != a.log.losses  # the seed changes the batch order


def test_chunking_does_not_change_the_numbers():
    a = _fit(T.TrainConfig(steps=40, batch_size=16, eval_every=40, log_every=40))
    b = _fit(T.TrainConfig(steps=40, batch_size=16, eval_every=10, log_every=3))
    assert a.log.losses == b.log.losses


def test_minibatches_are_permutations_of_the_training_set():
    # a model whose loss on a batch is the mean of the labels it sees: with 4 batches per
    # epoch the four losses of an epoch average to the mean of all labels
    class Probe:
        trainable = {"w": True}

        def init(self, key):
            return {"w": jnp.zeros((1,), jnp.float64)}

        def apply(self, params, x):
            return jnp.zeros((x.shape[0], 1), x.dtype) + 0 * params["w"]

    n = 64
    rng = np.random.default_rng(1)
    y = rng.normal(size=(n, 1))
    x = np.zeros((n, 1))
    ds = Dataset("probe", "regression", x, y, x[:0], y[:0], x[:4], y[:4])
    m = Probe()
    res = T.fit(m, m.init(None), ds, T.TrainConfig(steps=8, batch_size=16, optimizer="adam", eval_every=8))
    losses = np.array(res.log.losses)
    target = np.mean(y**2)
    np.testing.assert_allclose(losses[:4].mean(), target, rtol=1e-12)
    np.testing.assert_allclose(losses[4:].mean(), target, rtol=1e-12)
    assert not np.allclose(losses[:4], losses[4:])  # each epoch draws a new order


def test_fixed_arrays_are_never_updated_and_training_learns():
    model = MLP([2, 8, 1])
    p0 = model.init(jax.random.PRNGKey(0))
    p0["layer0"]["mask"] = p0["layer0"]["mask"].at[0, 0].set(0.0)
    res = T.fit(model, p0, regression_data(), T.TrainConfig(steps=300, batch_size=64, lr=2e-2, eval_every=100))
    for layer in p0:
        for name in ("mask", "scale"):
            assert np.array_equal(np.asarray(res.params[layer][name]), np.asarray(p0[layer][name]))
        assert not np.array_equal(np.asarray(res.params[layer]["weight"]), np.asarray(p0[layer]["weight"]))
    first, last = res.log.history[0], res.log.history[-1]
    assert last["val_rmse"] < 0.5 * first["val_rmse"]
    # the optimizer state covers only the trainable arrays (weight, bias per layer)
    mu = res.state.opt_state[0].mu
    assert len(mu) == 4


def test_lbfgs_solves_a_linear_least_squares_problem():
    model = MLP([3, 1], dtype="float64")
    res = _fit(T.TrainConfig(steps=40, optimizer="lbfgs", batch_size=None, eval_every=20), model, linear_data())
    assert res.log.history[-1]["val_rmse"] < 1e-8


def test_levenberg_marquardt_solves_least_squares_and_fits_a_curve():
    model = MLP([3, 1], dtype="float64")
    res = _fit(T.TrainConfig(steps=10, optimizer="lm", batch_size=None, eval_every=10), model, linear_data())
    assert res.log.history[-1]["val_rmse"] < 1e-8  # Gauss-Newton is exact on a linear model
    mlp = MLP([2, 8, 1], dtype="float64")
    lm = _fit(T.TrainConfig(steps=60, optimizer="lm", batch_size=None, eval_every=60), mlp)
    adam = _fit(T.TrainConfig(steps=60, optimizer="adam", batch_size=None, eval_every=60), mlp)
    assert lm.log.history[-1]["val_rmse"] < 0.2 * adam.log.history[-1]["val_rmse"]
    losses = np.array(lm.log.losses)
    assert np.all(np.diff(losses) <= 0)  # only steps that lower the loss are accepted


def test_levenberg_marquardt_refuses_classification():
    ds = Dataset("c", "classification", np.zeros((8, 2)), np.zeros(8, np.int32), np.zeros((0, 2)),
                 np.zeros(0, np.int32), np.zeros((2, 2)), np.zeros(2, np.int32), n_classes=2)
    with pytest.raises(QvafError, match="lm .* needs the mse loss"):
        _fit(T.TrainConfig(steps=2, optimizer="lm"), MLP([2, 2]), ds)


def test_optimizer_phases_switch_and_reinitialise_state():
    cfg = T.TrainConfig(steps=60, optimizer="adam:0,lbfgs:30", batch_size=None, eval_every=30)
    res = _fit(cfg)
    assert cfg.phase_at(29)[1] == "adam" and cfg.phase_at(30) == (30, "lbfgs", None)
    assert res.state.phase_start == 30
    assert res.log.history[-1]["val_rmse"] < res.log.history[0]["val_rmse"]


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_schedules_follow_their_formulas(name):
    base = dict(steps=100, lr=0.1, optimizer=name)
    c = T.TrainConfig(**base, schedule="constant")
    assert learning_rate(c, 0) == pytest.approx(0.1) and learning_rate(c, 99) == pytest.approx(0.1)
    c = T.TrainConfig(**base, schedule="cosine")
    assert learning_rate(c, 0) == pytest.approx(0.1)
    assert learning_rate(c, 50) == pytest.approx(0.001 + 0.099 * 0.5, rel=1e-5)
    assert learning_rate(c, 100) == pytest.approx(0.001, rel=1e-5)
    c = T.TrainConfig(**base, schedule="warmup_cosine", warmup_steps=10)
    assert learning_rate(c, 0) == 0.0
    assert learning_rate(c, 5) == pytest.approx(0.05, rel=1e-5)
    assert learning_rate(c, 10) == pytest.approx(0.1, rel=1e-5)
    c = T.TrainConfig(**base, schedule="exponential", decay_rate=0.1)
    assert learning_rate(c, 50) == pytest.approx(0.1 * 0.1**0.5, rel=1e-5)


def test_schedule_runs_on_the_global_step_after_a_phase_switch():
    cfg = T.TrainConfig(steps=100, lr=0.1, schedule="cosine", optimizer="adam:0,adamw:50")
    opt = make_optimizer(cfg, "adamw", 50, dtype=jnp.float64)
    params = [jnp.ones(3)]
    state = opt.init(params)
    g = [jnp.array([1.0, 0.0, 0.0])]
    updates, _ = opt.update(g, state, params)
    # first adamw step of the phase uses lr(50), not lr(0): update = -lr * (1 + wd * p) on coord 0
    expected = -learning_rate(cfg, 50) * (1.0 + cfg.weight_decay)
    assert float(updates[0][0]) == pytest.approx(expected, rel=1e-4)


def test_gradient_clipping_matches_clipping_by_hand():
    cfg = T.TrainConfig(steps=10, lr=0.1, clip_norm=1.0)
    opt = make_optimizer(cfg, "adam", 0, dtype=jnp.float64)
    ref = optax.adam(0.1)
    params = [jnp.zeros(2)]
    s, r = opt.init(params), ref.init(params)
    for g in ([jnp.array([30.0, 40.0])], [jnp.array([0.3, -0.1])]):
        u, s = opt.update(g, s, params)
        norm = float(jnp.linalg.norm(g[0]))
        clipped = [g[0] * min(1.0, 1.0 / norm)]
        v, r = ref.update(clipped, r, params)
        np.testing.assert_allclose(np.asarray(u[0]), np.asarray(v[0]), rtol=1e-6)


def test_early_stopping_returns_the_best_parameters():
    class Flat(MLP):
        def apply(self, params, x):  # output independent of the trained weights after step 0
            return super().apply(params, x) * 0.0 + params["layer0"]["bias"][:1] * 0.0

    model = Flat([2, 4, 1])
    res = _fit(T.TrainConfig(steps=1000, batch_size=64, eval_every=10, patience=3), model)
    assert res.stop_reason == "early_stopping"
    assert res.state.step == 40  # improvement only at the first evaluation, then 3 stale ones
    assert "step 40" in res.message and "best" in res.message


def test_nan_loss_stops_with_the_step_and_keeps_good_parameters():
    class Explodes(MLP):
        def apply(self, params, x):
            b = params["layer0"]["bias"][0]
            return super().apply(params, x) + jnp.log(1.0 + b)  # NaN once the bias passes -1

    model = Explodes([2, 4, 1])
    data = regression_data()
    data = Dataset("down", "regression", data.x_train, data.y_train - 50.0, data.x_val, data.y_val - 50.0,
                   data.x_test, data.y_test)
    saved = []
    res = _fit(T.TrainConfig(steps=500, batch_size=None, lr=0.05, eval_every=4, log_every=4), model, data,
               on_checkpoint=lambda st, m, lg: saved.append(st.step))
    assert res.stop_reason == "nan"
    step_named = int(res.message.split("at step ")[1].split(";")[0])
    assert "last checkpoint is kept" in res.message
    assert len(res.log.losses) <= step_named < len(res.log.losses) + 4
    assert step_named > 4  # adam moves the bias by about lr per step: NaN after ~20 steps
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree_util.tree_leaves(res.params))
    assert float(res.params["layer0"]["bias"][0]) > -1.0
    assert saved and max(saved) <= res.state.step


def test_classification_metrics_and_top_k():
    from qvaf.runtime import metrics as M

    logits = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 5.0], [2.0, 3.0, 1.0]])
    labels = np.array([0, 2, 2, 2])
    m = M.classification_metrics(logits, labels, top_k=2)
    assert m["accuracy"] == 0.5
    assert m["top2_accuracy"] == 0.75
    ref = -np.mean([jax.nn.log_softmax(jnp.asarray(z))[c] for z, c in zip(logits, labels)])
    assert m["loss"] == pytest.approx(float(ref), rel=1e-12)
    r = M.regression_metrics(np.array([[1.0], [2.0]]), np.array([[1.0], [4.0]]))
    assert r["mse"] == 2.0 and r["rmse"] == pytest.approx(np.sqrt(2.0))


def test_classification_training_reaches_high_accuracy():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 4)) * 3
    y = rng.integers(0, 3, 600)
    x = centers[y] + rng.normal(size=(600, 4))
    ds = Dataset("blobs", "classification", x[:400], y[:400].astype(np.int32), x[400:500], y[400:500].astype(np.int32),
                 x[500:], y[500:].astype(np.int32), n_classes=3)
    model = MLP([4, 16, 3])
    res = T.fit(model, model.init(jax.random.PRNGKey(0)), ds, T.TrainConfig(steps=200, batch_size=50, eval_every=100))
    acc = T.evaluate(model, res.params, ds.x_test, ds.y_test, ds.kind)["accuracy"]
    assert acc > 0.9


@pytest.mark.parametrize("kwargs, msg", [
    (dict(optimizer="sgd"), "unknown optimizer 'sgd'"),
    (dict(optimizer="lbfgs", lr=0.1), "choose their own step size"),
    (dict(schedule="linear"), "unknown schedule"),
    (dict(steps=0), "steps must be a positive integer"),
    (dict(extend="1:0,x:10"), "bad extension schedule entry"),
    (dict(extend="2:5,3:5"), "distinct"),
    (dict(optimizer="adam:10"), "must say which optimizer starts at step 0"),
    (dict(loss="hinge"), "unknown loss"),
    (dict(step=100), "TrainConfig has no field 'step'; did you mean 'steps'"),
    (dict(learning_rate=0.1), "no field 'learning_rate'"),
    (dict(lr="0.1"), r"lr must be a number or None, got '0.1' \(str\); write lr=0.1"),
    (dict(steps="100"), "steps must be an integer, got '100'"),
    (dict(steps=10.5), "steps must be an integer, got 10.5"),
    (dict(batch_size=True), "batch_size must be an integer or None, got True"),
    (dict(batch_size=0), "batch_size must be >= 1, or None for full batch"),
    (dict(optimizer=None), "optimizer must be a string, got None"),
    (dict(eval_every=0), "eval_every must be >= 1, got 0"),
    (dict(weight_decay=float("nan")), "weight_decay must be >= 0"),
])
def test_bad_configurations_are_clear_errors(kwargs, msg):
    with pytest.raises(QvafError, match=msg):
        T.TrainConfig(**kwargs)


def test_config_values_are_normalised_to_json_types():
    cfg = T.TrainConfig(steps=np.int64(7), lr=1, batch_size=np.int32(4))
    assert (cfg.steps, cfg.lr, cfg.batch_size) == (7, 1.0, 4)
    assert type(cfg.steps) is int and type(cfg.lr) is float and type(cfg.batch_size) is int
    assert T.TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(QvafError, match="takes at most 20 positional values"):
        T.TrainConfig(*range(21))


def test_model_output_width_must_fit_the_task():
    with pytest.raises(QvafError, match=r"maps \[B, 2\] to \[2, 3\].*needs outputs \[B, 1\]"):
        _fit(T.TrainConfig(steps=2), MLP([2, 3]))


def test_parse_schedule_and_config_round_trip():
    assert T.parse_schedule("1:0,5:200,10:400", "extension") == ((0, 1), (200, 5), (400, 10))
    assert T.parse_schedule("3", "extension") == ((0, 3),)
    cfg = T.TrainConfig(steps=10, extend="1:0,2:5", optimizer="adam:0,lbfgs:5", clip_norm=None)
    assert T.TrainConfig.from_json(cfg.to_json()) == cfg
    assert cfg.boundaries() == [0, 5]
    with pytest.raises(QvafError, match="unknown training option"):
        T.TrainConfig.from_json({"steps": 3, "stepz": 4})


def test_nan_from_an_acos_encoding_names_the_layer_and_expression():
    import qvaf
    from pathlib import Path

    px = Path(__file__).resolve().parents[1] / "specs" / "ansatz" / "px.qvaf"
    source = px.read_text() + "\nmodel m {\n    input 2\n    kan 1 using px(reps = 2)\n}\n"
    from qvaf.dsl import program_from_text

    model = qvaf.compile(program_from_text(source, str(px)), dtype="float64")
    data = regression_data()
    data = Dataset("wide", "regression", 3.0 * data.x_train, data.y_train, 3.0 * data.x_val, data.y_val,
                   3.0 * data.x_test, data.y_test)  # inputs reach |x| = 3: acos(x) is NaN there
    res = T.fit(model, model.init(jax.random.PRNGKey(0)), data,
                T.TrainConfig(steps=20, batch_size=None, eval_every=4, log_every=4))
    assert res.stop_reason == "nan"
    assert "at step 0" in res.message
    assert "layer0 (px): acos(x) needs its argument in [-1, 1]" in res.message
