"""HQKAN blocks: structure, parameter counts, use inside a JAX model, and the bundled spec."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qvaf
from qvaf import QvafError
from qvaf.runtime.hqkan import default_hidden, hqkan, hqkan_source, mlp_param_count
from qvaf.runtime.run import specs_dir


def test_block_shapes_counts_and_layers():
    block = hqkan(16, reps=2)
    assert block.hidden == default_hidden(16) == 8  # ceil(log2 16) * 2
    p = block.init(jax.random.PRNGKey(0))
    assert p["layer0"]["weight"].shape == (8, 16) and p["layer2"]["weight"].shape == (16, 8)
    assert p["layer1"]["theta"].shape == (8, 8, 3, 2)
    # linear 16*8+8, kan: theta 64*6 + postact weight/bias 2*64 + base 64, linear 8*16+16
    expected = (16 * 8 + 8) + 64 * 6 + 3 * 64 + (8 * 16 + 16)
    assert block.param_count == expected
    assert mlp_param_count(16) == 16 * 64 + 64 + 64 * 16 + 16
    assert block.param_count < block.mlp_param_count()
    grouped = hqkan(16, reps=2, group=2)
    assert grouped.param_count == expected - 64 * 6 + 2 * 6


def test_block_matches_its_own_layers_composed_by_hand():
    block = hqkan(12, hidden=4, reps=1, dtype="float64")
    p = block.init(jax.random.PRNGKey(3))
    x = np.random.default_rng(0).normal(size=(5, 12))
    h = x @ np.asarray(p["layer0"]["weight"]).T + np.asarray(p["layer0"]["bias"])
    inner = block.compiled.layer_inputs(p, x)
    np.testing.assert_allclose(np.asarray(inner["layer1"]), h, rtol=1e-12)
    # the kan layer by its formula: sum_i (phi + c) a + beta silu(h)
    phi = np.asarray(block.compiled.edge_values(p, x, "layer1"))
    k = p["layer1"]
    silu = h / (1 + np.exp(-h))
    y1 = ((phi + np.asarray(k["postact_bias"])) * np.asarray(k["postact_weight"])
          + np.asarray(k["base_weight"]) * silu[:, None, :]).sum(-1)
    out = y1 @ np.asarray(p["layer2"]["weight"]).T + np.asarray(p["layer2"]["bias"])
    np.testing.assert_allclose(np.asarray(block.apply(p, x)), out, rtol=1e-10, atol=1e-12)


def test_block_drops_into_a_jax_model_with_leading_batch_dims():
    block = hqkan(8, hidden=3)
    p = block.init(jax.random.PRNGKey(0))
    x = jnp.ones((2, 5, 8))

    def residual(params, x):  # a transformer-style residual feed-forward sub-layer
        return x + block.apply(params, jax.nn.gelu(x))

    y = jax.jit(residual)(p, x)
    assert y.shape == (2, 5, 8)
    np.testing.assert_allclose(np.asarray(y[0, 0]), np.asarray(block.apply(p, jax.nn.gelu(x[:1, 0]))[0] + 1.0),
                               rtol=1e-5)
    g = jax.grad(lambda q: jnp.sum(residual(q, x) ** 2))(p)
    assert set(g) == set(p) and all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree_util.tree_leaves(g))
    with pytest.raises(QvafError, match=r"expects inputs \[\.\.\., 8\]"):
        block.apply(p, jnp.ones((3, 7)))


def test_bundled_hqkan_spec_agrees_with_the_generated_block():
    spec = qvaf.compile(f"{specs_dir()}/models/hqkan.qvaf", "hqkan_ffn", args={"d": 64, "k": 2})
    block = hqkan(64, k=2, group=3)
    assert spec.param_count == block.param_count
    assert spec.in_width == spec.out_width == 64


def test_bad_options_are_clear_errors():
    with pytest.raises(QvafError, match="no bundled ansatz 'qz'"):
        hqkan(8, ansatz="qz")
    with pytest.raises(QvafError, match="group must be an integer in 1..hidden"):
        hqkan_source(8, 4, group=9)
    with pytest.raises(QvafError, match="d must be a positive integer"):
        hqkan_source(0, 4)
    assert default_hidden(768, 2) == math.ceil(math.log2(768)) * 2 == 20
