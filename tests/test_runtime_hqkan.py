"""HQKAN blocks: structure, parameter counts, use inside a JAX model, and the bundled spec."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qvaf
from qvaf import QvafError
from qvaf.runtime.hqkan import default_hidden, hqkan, mlp_param_count
from qvaf.runtime.run import specs_dir


def test_block_shapes_counts_and_layers():
    block = hqkan(16, reps=2)
    assert block.hidden == default_hidden(16) == 8  # ceil(log2 16) * 2
    p = block.init(jax.random.PRNGKey(0))
    assert p["layer0"]["weight"].shape == (8, 16) and p["layer2"]["weight"].shape == (16, 8)
    assert p["layer1"]["theta"].shape == (3, 3, 2)  # 3 groups of shared circuits, as the spec says
    # linear 16*8+8, kan: theta 3*6 + postact weight/bias 2*64 + base 64, linear 8*16+16
    expected = (16 * 8 + 8) + 3 * 6 + 3 * 64 + (8 * 16 + 16)
    assert block.param_count == expected
    assert mlp_param_count(16) == 16 * 64 + 64 + 64 * 16 + 16
    assert block.param_count < block.mlp_param_count()
    grouped = hqkan(16, reps=2, group=2)
    assert grouped.param_count == expected - 3 * 6 + 2 * 6
    assert hqkan(2).compiled.model_args["group"] == 2  # the default 3 is capped at hidden = 2


def test_hqkan_is_the_bundled_spec():
    """qvaf.hqkan(d=64) and specs/models/hqkan.qvaf are one network: same parameters (2,056,
    group 3), same initial values, same outputs."""
    block = hqkan(64)
    spec = qvaf.compile(f"{specs_dir()}/models/hqkan.qvaf", "hqkan_ffn")
    assert block.param_count == spec.param_count == 2056
    assert block.compiled.model_args == spec.model_args == {"d": 64, "k": 2, "hidden": 12, "reps": 1, "group": 3}
    pa, pb = block.init(jax.random.PRNGKey(4)), spec.init(jax.random.PRNGKey(4))
    assert jax.tree_util.tree_structure(pa) == jax.tree_util.tree_structure(pb)
    for a, b in zip(jax.tree_util.tree_leaves(pa), jax.tree_util.tree_leaves(pb)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    x = np.random.default_rng(1).normal(size=(3, 64)).astype(np.float32)
    assert np.array_equal(np.asarray(block.apply(pa, x)), np.asarray(spec.apply(pb, x)))
    with open(f"{specs_dir()}/models/hqkan.qvaf") as fh:
        assert block.source == fh.read()
    # d = 768: the bottleneck follows ceil(log2 d) * k = 20 (what the README quotes)
    big = hqkan(768)
    assert big.hidden == 20 and big.compiled.model_args["group"] == 3
    assert big.param_count == (768 * 20 + 20) + (3 * 4 + 3 * 400) + (20 * 768 + 768) == 32720


def test_a_custom_spec_changes_the_ansatz(tmp_path):
    with open(f"{specs_dir()}/models/hqkan.qvaf") as fh:
        text = fh.read()
    custom = tmp_path / "mine.qvaf"
    custom.write_text(text.replace('"../ansatz/pz.qvaf"', f'"{specs_dir()}/ansatz/rpz.qvaf"')
                      .replace("using pz(", "using rpz("))
    block = hqkan(16, spec=str(custom), reps=2)
    assert block.compiled.ir.nodes["layer1"]["op"].ansatz == "rpz"
    assert block.hidden == 8 and block.compiled.model_args["reps"] == 2
    other = tmp_path / "other.qvaf"
    other.write_text(f'import "{specs_dir()}/ansatz/pz.qvaf"\nmodel m(n: int = 4) {{ input n; kan n using pz }}\n')
    with pytest.raises(QvafError, match="must take the arguments d and hidden"):
        hqkan(16, spec=str(other))


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


def test_bad_options_are_clear_errors():
    with pytest.raises(QvafError, match="group must be an integer in 1..hidden"):
        hqkan(8, hidden=4, group=9)
    with pytest.raises(QvafError, match="d must be a positive integer"):
        hqkan(0)
    with pytest.raises(QvafError, match="reps must be a positive integer, got 1.5"):
        hqkan(8, reps=1.5)
    with pytest.raises(QvafError, match="no spec file 'nope.qvaf'"):
        hqkan(8, spec="nope.qvaf")
    assert default_hidden(768, 2) == math.ceil(math.log2(768)) * 2 == 20
