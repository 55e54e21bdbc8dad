"""A hybrid model: a small CNN feature extractor with a QKAN head, on the 8x8 digits.

The CNN (two 3x3 convolutions, a dense layer to 16 features, tanh) is ordinary Flax NNX or
Equinox code; the head is ``benchmarks/digits_head.qvaf`` (16 -> 10, pz with 2 re-uploads)
as a module of the same framework (:mod:`qvaf.nnx` or :mod:`qvaf.eqx`). Both parts train
together with Adam on the cross-entropy; the split is the ``digits`` task's (80/20, data
seed 0, 10% of the train part for validation).

Run::

    python benchmarks/hybrid_digits.py                      # Flax NNX, 600 steps
    python benchmarks/hybrid_digits.py --framework eqx      # the same model in Equinox
    python benchmarks/hybrid_digits.py --steps 20 --json    # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
HEAD = os.path.join(HERE, "digits_head.qvaf")
SCALE = float(np.pi / 2)  # features in (-pi/2, pi/2): the head's re-upload angles


def nnx_model(seed: int):
    from flax import nnx

    import qvaf.nnx

    class Hybrid(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.conv1 = nnx.Conv(1, 8, kernel_size=(3, 3), rngs=rngs)
            self.conv2 = nnx.Conv(8, 16, kernel_size=(3, 3), strides=(2, 2), rngs=rngs)
            self.dense = nnx.Linear(4 * 4 * 16, 16, rngs=rngs)
            self.head = qvaf.nnx.QKAN(HEAD, rngs=rngs)

        def __call__(self, x):                      # x: [B, 64] pixels in [0, 1]
            h = x.reshape((-1, 8, 8, 1))
            h = nnx.relu(self.conv2(nnx.relu(self.conv1(h))))
            h = SCALE * nnx.tanh(self.dense(h.reshape((h.shape[0], -1))))
            return self.head(h)                     # [B, 10] class scores

    return Hybrid(nnx.Rngs(seed))


def train_nnx(data, steps: int, batch: int, lr: float, seed: int):
    import jax
    import optax
    from flax import nnx

    model = nnx_model(seed)
    opt = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x, y):
        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    losses = [float(step(model, opt, x, y)) for x, y in batches(data, steps, batch, seed)]
    predict = nnx.jit(lambda m, x: m(x))
    return losses, lambda x: np.asarray(predict(model, jax.numpy.asarray(x, "float32"))), model.head.model


def train_eqx(data, steps: int, batch: int, lr: float, seed: int):
    import equinox as eqx
    import jax
    import optax

    import qvaf.eqx

    class Hybrid(eqx.Module):
        conv1: eqx.nn.Conv2d
        conv2: eqx.nn.Conv2d
        dense: eqx.nn.Linear
        head: qvaf.eqx.QKAN

        def __init__(self, key):
            k1, k2, k3, k4 = jax.random.split(key, 4)
            self.conv1 = eqx.nn.Conv2d(1, 8, 3, padding=1, key=k1)
            self.conv2 = eqx.nn.Conv2d(8, 16, 3, stride=2, padding=1, key=k2)
            self.dense = eqx.nn.Linear(4 * 4 * 16, 16, key=k3)
            self.head = qvaf.eqx.QKAN(HEAD, key=k4)

        def __call__(self, x):                      # one sample: [64] pixels in [0, 1]
            h = x.reshape((1, 8, 8))
            h = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(h))))
            return self.head(SCALE * jax.numpy.tanh(self.dense(h.reshape(-1))))

    model = Hybrid(jax.random.PRNGKey(seed))
    opt = optax.adam(lr)
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(model, state, x, y):
        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(jax.vmap(m)(x), y).mean()

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, state = opt.update(grads, state)
        return eqx.apply_updates(model, updates), state, loss

    losses = []
    for x, y in batches(data, steps, batch, seed):
        model, state, loss = step(model, state, x, y)
        losses.append(float(loss))
    predict = eqx.filter_jit(lambda m, x: jax.vmap(m)(x))
    return losses, lambda x: np.asarray(predict(model, jax.numpy.asarray(x, "float32"))), model.head.model


def batches(data, steps: int, batch: int, seed: int):
    rng = np.random.default_rng(seed)
    x, y = data.x_train.astype(np.float32), data.y_train.astype(np.int32)
    order = np.zeros(0, dtype=int)
    for _ in range(steps):
        if len(order) < batch:
            order = np.concatenate([order, rng.permutation(len(x))])
        idx, order = order[:batch], order[batch:]
        yield x[idx], y[idx]


def main(argv=None) -> dict:
    from qvaf.runtime.data import load_task

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--framework", choices=["nnx", "eqx"], default="nnx")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    data = load_task("digits")
    t0 = time.perf_counter()
    train = train_nnx if args.framework == "nnx" else train_eqx
    losses, predict, head = train(data, args.steps, args.batch, args.lr, args.seed)
    accuracy = float((predict(data.x_test).argmax(-1) == data.y_test).mean())
    result = {"framework": args.framework, "steps": args.steps, "first_loss": losses[0], "last_loss": losses[-1],
              "test_accuracy": accuracy, "head_params": head.param_count, "seconds": time.perf_counter() - t0}
    if args.json:
        print(json.dumps(result))
    else:
        print(head.summary())
        print(f"{args.framework}: CNN + QKAN head, {args.steps} steps: loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
              f"test accuracy {accuracy:.4f} ({len(data.y_test)} digits), {result['seconds']:.1f} s")
    return result


if __name__ == "__main__":
    main()
