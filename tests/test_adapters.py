"""The Flax NNX and Equinox modules: the compiled network's own outputs and gradients, fixed
arrays left alone by optimizers, a train step, and the hybrid CNN + QKAN example."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import qvaf
from qvaf import QvafError

eqx = pytest.importorskip("equinox")
nnx = pytest.importorskip("flax.nnx")
import qvaf.eqx  # noqa: E402
import qvaf.nnx  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
X = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (6, 2)), jnp.float32)


def _trainable_grads(model, params, x):
    """Reference gradients: jax.grad of the compiled network, restricted to trainable arrays."""
    g = jax.grad(lambda p: (model.apply(p, x) ** 2).sum())(params)
    return {layer: {k: v for k, v in arrays.items() if model.trainable[layer][k]} for layer, arrays in g.items()}


def _close(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)


def test_nnx_module_is_the_compiled_network():
    model = qvaf.compile("regression")
    module = qvaf.nnx.QKAN(model, rngs=nnx.Rngs(params=3))
    params = model.init(nnx.Rngs(params=3).params())
    assert np.array_equal(np.asarray(module(X)), np.asarray(model.apply(params, X)))
    grads = nnx.grad(lambda m: (m(X) ** 2).sum())(module)
    state = nnx.to_pure_dict(nnx.state(grads, nnx.Param))["arrays"]
    assert set(state["layer0"]) == {"theta", "base_weight"}  # the fixed mask is no Param
    _close(state, _trainable_grads(model, params, X))
    assert isinstance(module.arrays["layer0"]["mask"], qvaf.nnx.Fixed)


def test_nnx_train_step_updates_params_only():
    module = qvaf.nnx.QKAN("regression", rngs=nnx.Rngs(0))
    module.arrays["layer0"]["mask"][...] = module.arrays["layer0"]["mask"][...].at[0, 0].set(0.0)
    mask = np.asarray(module.arrays["layer0"]["mask"][...])
    opt = nnx.Optimizer(module, optax.adamw(5e-2, weight_decay=0.5), wrt=nnx.Param)

    @nnx.jit
    def step(m, opt):
        loss, g = nnx.value_and_grad(lambda m: ((m(X) - 0.3) ** 2).mean())(m)
        opt.update(m, g)
        return loss

    losses = [float(step(module, opt)) for _ in range(20)]
    assert losses[-1] < 0.5 * losses[0]
    assert np.array_equal(np.asarray(module.arrays["layer0"]["mask"][...]), mask)  # weight decay left it alone
    assert module.params()["layer0"]["mask"].shape == (5, 2)


def test_eqx_module_is_the_compiled_network():
    model = qvaf.compile("regression")
    module = qvaf.eqx.QKAN(model, key=jax.random.PRNGKey(5))
    params = model.init(jax.random.PRNGKey(5))
    assert np.array_equal(np.asarray(module(X)), np.asarray(model.apply(params, X)))
    assert np.array_equal(np.asarray(jax.vmap(module)(X)), np.asarray(module(X)))  # one sample at a time too
    leaves = jax.tree_util.tree_leaves(eqx.filter(module, eqx.is_inexact_array))
    assert sum(a.size for a in leaves) == model.param_count  # trainable arrays only
    grads = eqx.filter_grad(lambda m: (m(X) ** 2).sum())(module)
    _close(grads.params, _trainable_grads(model, params, X))


def test_eqx_train_step_and_hqkan_block():
    block = qvaf.eqx.HQKAN(8, key=jax.random.PRNGKey(0), reps=2)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3, 8)), jnp.float32)
    ref = qvaf.hqkan(8, reps=2)
    assert np.array_equal(np.asarray(block(x)), np.asarray(ref.apply(ref.init(jax.random.PRNGKey(0)), x)))
    opt = optax.adam(1e-2)
    state = opt.init(eqx.filter(block, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(m, state):
        loss, g = eqx.filter_value_and_grad(lambda m: ((m(x) - x) ** 2).mean())(m)
        updates, state = opt.update(g, state)
        return eqx.apply_updates(m, updates), state, loss

    losses = []
    for _ in range(15):
        block, state, loss = step(block, state)
        losses.append(float(loss))
    assert losses[-1] < losses[0]


def test_nnx_hqkan_block_with_leading_dims():
    block = qvaf.nnx.HQKAN(8, rngs=nnx.Rngs(1), hidden=4)
    ref = qvaf.hqkan(8, hidden=4)
    x = jnp.ones((2, 5, 8), jnp.float32)
    assert np.array_equal(np.asarray(block(x)), np.asarray(ref.apply(ref.init(nnx.Rngs(1).params()), x)))
    assert block.model.hidden == 4


def test_adapter_mistakes_are_clear_errors():
    with pytest.raises(QvafError, match="pass rngs= \\(or key=\\)"):
        qvaf.nnx.QKAN("regression")
    with pytest.raises(QvafError, match="HQKAN has no option 'hiden'; did you mean 'hidden'"):
        qvaf.eqx.HQKAN(8, key=0, hiden=4)
    with pytest.raises(QvafError, match="not int"):
        qvaf.eqx.QKAN(3, key=0)
    model = qvaf.compile("regression")
    with pytest.raises(QvafError, match="params do not fit the model: no array 'layer1/base_weight'"):
        qvaf.eqx.QKAN(model, params={"layer0": model.init(0)["layer0"]})


@pytest.mark.parametrize("framework", ["nnx", "eqx"])
def test_the_hybrid_example_runs(framework):
    script = os.path.join(HERE, "..", "benchmarks", "hybrid_digits.py")
    out = subprocess.run([sys.executable, script, "--framework", framework, "--steps", "30", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    result = json.loads(out.stdout.splitlines()[-1])
    assert result["last_loss"] < result["first_loss"] and result["test_accuracy"] > 0.2  # chance: 0.1
    assert result["head_params"] == 1440


def test_import_qvaf_loads_neither_framework():
    code = "import sys, qvaf; print([m for m in ('flax', 'equinox') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
