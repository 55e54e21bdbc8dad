"""Measurements for tests/test_sharding.py, taken in a process with four CPU devices.

Run as ``XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/_sharding_probe.py
OUT_DIR``: the device count must be fixed before JAX starts, so the tests run this in a
subprocess. It prints one JSON object of numbers and flags; the tests assert on them.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

import qvaf
from qvaf.dsl.errors import QvafError
from qvaf.runtime import checkpoint as C
from qvaf.runtime import sharding as S
from qvaf.runtime import train as T

from _runtime_models import MLP, regression_data

jax.config.update("jax_enable_x64", True)  # the float64 comparisons; float32 runs keep explicit dtypes


class Killed(Exception):
    pass


def max_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def loss_and_grad(model, params, x, y, mesh):
    """Mean squared error and its gradient, on one device (mesh None) or split over ``mesh``."""
    apply = model.apply if mesh is None else S.split_rows(model.apply, mesh)

    def loss(p):
        return jnp.mean((apply(p, x) - y) ** 2)

    f = jax.jit(jax.value_and_grad(loss))
    if mesh is None:
        return f(params), ""
    args = S.to_mesh(params, mesh)
    return f(args), f.lower(args).compile().as_text()


def agreement(out: dict) -> None:
    """Loss and gradient of a float64 model: split over 4 devices vs one, batch 32 and 30 (padded)."""
    model = qvaf.compile("regression", dtype="float64")
    params = model.init(jax.random.PRNGKey(0))
    mesh = S.batch_mesh(4)
    rng = np.random.default_rng(0)
    for n in (30, 3):
        x = jnp.asarray(rng.uniform(-1, 1, (n, 2)), jnp.float64)
        y = jnp.asarray(rng.uniform(-1, 1, (n, 1)), jnp.float64)
        (l1, g1), _ = loss_and_grad(model, params, x, y, None)
        (l4, g4), hlo = loss_and_grad(model, params, x, y, mesh)
        out[f"loss_diff_{n}"] = abs(float(l1) - float(l4))
        out[f"grad_diff_{n}"] = max_diff(g1, g4)
        out[f"grad_norm_{n}"] = float(sum(jnp.sum(g ** 2) for g in jax.tree_util.tree_leaves(g1)) ** 0.5)
        out[f"all_reduce_{n}"] = "all-reduce" in hlo
        out[f"per_device_rows_{n}"] = f"f64[{(n + 3) // 4},2]" in hlo


def fits(out: dict) -> None:
    """Whole runs, 4 devices vs 1: float64 minibatches 4 divides, float32 ones it does not.
    Stand-in model: a small MLP with fixed (untrained) arrays, cheap to compile."""
    data = regression_data(n=200)
    for dtype, batch, tol_key in (("float64", 32, "fit64"), ("float32", 30, "fit32")):
        model = MLP([2, 8, 1], dtype=dtype)
        params = model.init(jax.random.PRNGKey(1))
        config = T.TrainConfig(steps=30, batch_size=batch, lr=2e-2, eval_every=15, log_every=5, seed=2)
        one = T.fit(model, params, data, config)
        four = T.fit(model, params, data, config, devices=4)
        rel = np.abs(np.array(one.log.losses) - np.array(four.log.losses)) / np.abs(np.array(one.log.losses))
        out[f"{tol_key}_loss_rel_diff"] = float(rel.max())
        out[f"{tol_key}_param_diff"] = max_diff(one.params, four.params)
        out[f"{tol_key}_param_change"] = max_diff(one.params, params)
        out[f"{tol_key}_result_on_one_device"] = all(len(a.devices()) == 1 for a in jax.tree_util.tree_leaves(four.params))
    model = MLP([2, 8, 1], dtype="float32")
    full = T.TrainConfig(steps=10, batch_size=None, eval_every=10, log_every=5)
    data = regression_data(n=201)
    one = T.fit(model, model.init(jax.random.PRNGKey(1)), data, full)
    four = T.fit(model, model.init(jax.random.PRNGKey(1)), data, full, devices=4)
    out["full_batch_loss_rel_diff"] = float(np.max(np.abs(np.array(one.log.losses) - np.array(four.log.losses))
                                                   / np.abs(np.array(one.log.losses))))
    try:
        T.fit(model, model.init(jax.random.PRNGKey(0)), data, {"optimizer": "adam:0,lbfgs:10,lm:15", "steps": 20,
                                                   "batch_size": None}, devices=4)
        out["single_device_error"] = None
    except QvafError as exc:
        out["single_device_error"] = str(exc)


def resume(out: dict, run_dir: str) -> None:
    """A run on 4 devices, killed after a checkpoint, resumed on 4 (bit-identical) and on 1."""
    model = MLP([2, 8, 1], dtype="float32")
    params = model.init(jax.random.PRNGKey(5))
    data = regression_data(n=200)
    config = T.TrainConfig(steps=40, batch_size=30, schedule="cosine", eval_every=10, log_every=5,
                           checkpoint_every=10, seed=5)
    run_config = {"model": {"kind": "mlp"}, "task": {"name": "synthetic"}, "train": config.to_json()}

    def saver(state, m, log):
        C.save(run_dir, state, log, run_config)

    def kill(record):
        if record["step"] == 30:
            raise Killed

    full = T.fit(model, params, data, config, devices=4)
    try:
        T.fit(model, params, data, config, devices=4, on_checkpoint=saver, on_record=kill)
    except Killed:
        pass
    ck = C.load(run_dir)
    out["checkpoint_step"] = ck.step
    out["checkpoint_host_arrays"] = all(isinstance(a, np.ndarray) for a in ck.weights.values())
    for devices in (4, 1):
        state, log = C.restore(C.load(run_dir), model, config)
        again = T.fit(model, state.params, data, config, state=state, log=log, devices=devices)
        out[f"resume{devices}_steps"] = again.state.step
        out[f"resume{devices}_losses_equal"] = again.log.losses == full.log.losses
        out[f"resume{devices}_params_equal"] = all(
            np.array_equal(np.asarray(a), np.asarray(b))
            for a, b in zip(jax.tree_util.tree_leaves(full.params), jax.tree_util.tree_leaves(again.params)))
        out[f"resume{devices}_loss_rel_diff"] = float(np.max(np.abs(np.array(again.log.losses) - np.array(full.log.losses))
                                                             / np.abs(np.array(full.log.losses))))


def main() -> None:
    out = {"devices": len(jax.devices())}
    agreement(out)
    fits(out)
    resume(out, sys.argv[1])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
