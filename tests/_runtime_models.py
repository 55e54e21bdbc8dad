"""Small stand-in models for the runtime tests: plain JAX, no qvaf compilation.

They follow the model protocol the training loop uses: ``init(key)``, ``apply(params, x)``
and a ``trainable`` mask with the structure of the parameters.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from qvaf.runtime.data import Dataset

#: the smallest qvaf network the command-line tests train (2 -> 1, pz with one re-upload):
#: what they check (pipes, checkpoints, resume, devices, noise options) does not depend on its size
TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tiny.qvaf")


class MLP:
    """tanh MLP with a fixed (never trained) ``mask`` per layer and an optional fixed scale."""

    def __init__(self, sizes, dtype="float32"):
        self.sizes = tuple(sizes)
        self.dtype = dtype

    def init(self, key):
        params = {}
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            key, k = jax.random.split(key)
            params[f"layer{i}"] = {
                "weight": jax.random.normal(k, (b, a), self.dtype) * jnp.asarray(1 / np.sqrt(a), self.dtype),
                "bias": jnp.zeros((b,), self.dtype),
                "mask": jnp.ones((b, a), self.dtype),
                "scale": jnp.full((b,), 1.0, self.dtype),
            }
        return params

    @property
    def trainable(self):
        return {f"layer{i}": {"weight": True, "bias": True, "mask": False, "scale": False}
                for i in range(len(self.sizes) - 1)}

    def apply(self, params, x):
        n = len(self.sizes) - 1
        for i in range(n):
            p = params[f"layer{i}"]
            x = (x @ (p["weight"] * p["mask"]).T + p["bias"]) * p["scale"]
            if i < n - 1:
                x = jnp.tanh(x)
        return x


def regression_data(n=256, seed=0, noise=0.0) -> Dataset:
    """y = sin(2 x0) + x1**2 on [-1, 1]^2, with train/val/test splits."""
    rng = np.random.default_rng(seed)

    def draw(m):
        x = rng.uniform(-1, 1, (m, 2))
        return x, (np.sin(2 * x[:, 0]) + x[:, 1] ** 2)[:, None] + noise * rng.standard_normal((m, 1))

    (a, b), (c, d), (e, f) = draw(n), draw(64), draw(128)
    return Dataset("synthetic", "regression", a, b, c, d, e, f)


def linear_data(n=64, seed=0) -> Dataset:
    """An exactly linear problem y = x A + c: a linear model can reach zero loss."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, 1))
    x = rng.uniform(-1, 1, (n + 40, 3))
    y = x @ A + 0.5
    return Dataset("linear", "regression", x[:n], y[:n], x[n:n + 20], y[n:n + 20], x[n + 20:], y[n + 20:])
