"""Caches belong to their owners: a long session that compiles many specs does not grow.

The shared caches (the JAX backend's jitted functions per graph structure, the adjoint
kernel cores per circuit structure) are bounded; everything derived from one model lives on
that model and goes with it.
"""

from __future__ import annotations

import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np

import qvaf
from qvaf.compiler.backends import _adjoint, jax_backend
from qvaf.dsl import program_from_text
from qvaf.runtime import train as T
from qvaf.runtime.data import Dataset

#: a trainable pre-activation per re-upload, so the layers run the per-sample adjoint kernel
#: (whose cores are cached) rather than the Fourier form
ANSATZ = """
ansatz a(reps: int = 1) {
    param theta[reps + 1] ~ normal(0, 1)
    param w[reps] ~ normal(1, 0.3)
    for l in 0..reps {
        ry(theta[l])
        rz(w[l] * x)
    }
    ry(theta[reps])
    measure z
}
"""


def _spec(width: int, reps: int) -> str:
    return ANSATZ + f"model m {{\n    input 2\n    kan {width} using a(reps = {reps})\n    kan 1 using a\n}}\n"


def test_compiling_200_specs_keeps_every_cache_bounded(monkeypatch):
    monkeypatch.setattr(jax_backend, "_CACHE", {})
    monkeypatch.setattr(jax_backend, "_CACHE_LIMIT", 16)
    monkeypatch.setattr(_adjoint, "_CORES", {})
    monkeypatch.setattr(_adjoint, "_CORES_LIMIT", 8)
    probe = jax.ShapeDtypeStruct((3, 2), jnp.float32)
    models = []
    for n in range(200):
        width, reps = 1 + n % 20, 1 + n // 20  # 200 different structures, 10 different circuits
        model = qvaf.compile(program_from_text(_spec(width, reps)), dtype="float32")
        params = model.init(n)
        if n % 20 == 0:  # one trace per circuit structure: every adjoint core is made
            assert jax.eval_shape(model.apply, params, probe).shape == (3, 1)
        assert model.jitted_apply is model.jitted_apply  # kept on the model
        assert len(jax_backend._CACHE) <= 16 and len(_adjoint._CORES) <= 8
        models.append(weakref.ref(model))
    assert len(jax_backend._CACHE) == 16 and len(_adjoint._CORES) == 8  # the bounds were reached
    del model
    gc.collect()
    alive = sum(ref() is not None for ref in models)
    assert alive == 0, f"{alive} compiled models are still referenced after the loop"


def test_no_module_level_cache_keyed_by_model():
    import qvaf._api as api

    for module, name in ((api, "_INIT_CACHE"), (T, "_RUNNERS"), (T, "_APPLY")):
        assert not hasattr(module, name), f"{module.__name__}.{name}"


def test_training_runners_live_on_the_model_and_are_reused():
    model = qvaf.compile(program_from_text(_spec(2, 1)), dtype="float32")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (32, 2))
    data = Dataset("t", "regression", x, x[:, :1] * x[:, 1:], x[:4], x[:4, :1], x[:4], x[:4, :1])
    config = T.TrainConfig(steps=4, batch_size=8, eval_every=4, log_every=4)
    T.fit(model, model.init(0), data, config)
    kept = [k for k in model._memo if k[0] == "train runner"]
    assert len(kept) == 1
    runner = model._memo[kept[0]]
    T.fit(model, model.init(1), data, T.TrainConfig(steps=4, batch_size=8, eval_every=4, log_every=4, seed=1))
    assert model._memo[kept[0]] is runner and len([k for k in model._memo if k[0] == "train runner"]) == 1
    for n in range(qvaf._api.MEMO_SIZE + 4):  # bounded: the least recently used goes
        model.cached(("probe", n), lambda: n)
    assert len(model._memo) == qvaf._api.MEMO_SIZE
