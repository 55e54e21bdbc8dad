"""The jitted pieces of training: a chunk of optimizer steps in one ``lax.fori_loop``, the
minibatch order, and evaluation in batches.

The minibatch of step ``t`` is slice ``t mod E`` of the permutation drawn from
``fold_in(key, t // E)`` (E = batches per epoch), so batches depend only on the seed and the
step number, and a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from qvaf.dsl.errors import QvafError

from . import metrics as M
from .optimizers import FULL_BATCH, make_optimizer

#: ``fold_in`` tag of the shot-sampling key stream of training (the batch order uses the key itself)
SHOT_STREAM = 0x5407


class TrainError(QvafError):
    """A bad training configuration, or a run that cannot continue.

    ``field`` names the :class:`~qvaf.runtime.train_config.TrainConfig` field a configuration error is
    about (its message then starts with that name), so the CLI can name its flag instead.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def partition(params, trainable):
    """Split a parameter pytree into (trainable leaves, fixed leaves, treedef, mask)."""
    import jax

    leaves, treedef = jax.tree_util.tree_flatten(params)
    try:
        mask = [bool(m) for m in treedef.flatten_up_to(trainable)]
    except (ValueError, TypeError) as exc:
        raise TrainError(f"the trainable mask does not match the parameter structure ({exc})") from None
    return ([p for p, m in zip(leaves, mask) if m], [p for p, m in zip(leaves, mask) if not m], treedef, mask)


def merge(train_leaves, fixed_leaves, treedef, mask):
    """Inverse of :func:`partition`."""
    it_t, it_f = iter(train_leaves), iter(fixed_leaves)
    return treedef.unflatten([next(it_t) if m else next(it_f) for m in mask])


def model_dtype(params):
    import jax
    import jax.numpy as jnp

    floats = [p.dtype for p in jax.tree_util.tree_leaves(params) if jnp.issubdtype(p.dtype, jnp.floating)]
    return jnp.result_type(*floats) if floats else jnp.float32


def _runner(model, params, config, opt_name: str, phase_start: int, loss_name: str, n_train: int,
            devices: int = 1):
    """:func:`_make_runner`, kept on the model when it offers ``cached(key, build)``, so that
    several fits of one model (seeds, restarts) compile once."""
    import jax

    fields = dataclasses.replace(config, seed=0, eval_every=1, patience=None, checkpoint_every=None,
                                 extend=None, top_k=1, optimizer="adam")
    if opt_name in FULL_BATCH or config.schedule == "constant":  # the step count does not matter
        fields = dataclasses.replace(fields, steps=1)
    shapes = tuple((tuple(np.shape(a)), str(np.asarray(a).dtype) if not hasattr(a, "dtype") else str(a.dtype))
                   for a in jax.tree_util.tree_leaves(params))
    key = ("train runner", fields, opt_name, phase_start, loss_name, n_train,
           jax.tree_util.tree_structure(params), shapes, devices)

    def make():
        return _make_runner(model, params, config, opt_name, phase_start, loss_name, n_train, devices)

    cached = getattr(model, "cached", None)
    return cached(key, make) if callable(cached) else make()


def _make_runner(model, params, config, opt_name: str, phase_start: int, loss_name: str,
                 n_train: int, devices: int = 1):
    """Jitted ``run(train_leaves, fixed, opt_state, key, start, n, x, y)`` doing ``n`` steps,
    jitted ``next_loss(train_leaves, fixed, key, t, x, y)``, and the batch size.

    With ``devices > 1`` both run data-parallel on a mesh of that many devices
    (:mod:`qvaf.runtime.sharding`): the model sees its batch split by rows over the mesh,
    and arguments and results are replicated host-side arrays around each call."""
    import jax
    import jax.flatten_util
    import jax.numpy as jnp
    import optax

    _, _, treedef, mask = partition(params, model.trainable)
    loss_f = M.loss_function(loss_name)
    dtype = model_dtype(params)
    opt = make_optimizer(config, opt_name, phase_start, dtype=dtype)
    full = opt_name in FULL_BATCH or config.batch_size is None or config.batch_size >= n_train
    batch = n_train if full else int(config.batch_size)
    per_epoch = max(1, n_train // batch)
    apply, jit = model.apply, jax.jit
    if devices > 1:
        from . import sharding

        mesh = sharding.batch_mesh(devices)
        apply, jit = sharding.split_rows(model.apply, mesh), lambda f: sharding.on_mesh(f, mesh)
    shots = getattr(config, "shots", None)

    def objective(tl, fl, xb, yb, key=None):
        p = merge(tl, fl, treedef, mask)
        return loss_f(apply(p, xb) if shots is None else apply(p, xb, key=key, shots=shots), yb)

    def shot_key(key, t):
        """The shot samples of step ``t`` (None without shots): a stream apart from the batches'."""
        return None if shots is None else jax.random.fold_in(jax.random.fold_in(key, SHOT_STREAM), t)

    def batch_at(key, t, x, y):
        if full:
            return x, y
        perm = jax.random.permutation(jax.random.fold_in(key, t // per_epoch), n_train)
        idx = jax.lax.dynamic_slice(perm, ((t % per_epoch) * batch,), (batch,))
        return x[idx], y[idx]

    def next_loss(tl, fl, key, t, x, y):
        """The loss step ``t`` would compute (checked before a checkpoint is written)."""
        if opt_name in FULL_BATCH:
            return objective(tl, fl, x, y)
        xb, yb = batch_at(key, t, x, y)
        return objective(tl, fl, xb, yb, shot_key(key, t))

    def lbfgs_step(tl, fl, os, x, y):
        def f(p):
            return objective(p, fl, x, y)

        value, grad = optax.value_and_grad_from_state(f)(tl, state=os)
        updates, os = opt.update(grad, os, tl, value=value, grad=grad, value_fn=f)
        return optax.apply_updates(tl, updates), os, value

    def lm_step(tl, fl, os, x, y):
        from . import lm

        flat, unravel = jax.flatten_util.ravel_pytree(tl)

        def predict(v, xb):
            return apply(merge(unravel(v), fl, treedef, mask), xb)

        new, os, value = lm.step(flat, os, lambda v, x1: predict(v, x1[None])[0], predict, x, y)
        return unravel(new), os, value

    def gradient_step(tl, fl, os, key, t, x, y):
        xb, yb = batch_at(key, t, x, y)
        value, grad = jax.value_and_grad(objective)(tl, fl, xb, yb, shot_key(key, t))
        updates, os = opt.update(grad, os, tl)
        return optax.apply_updates(tl, updates), os, value

    def run(tl, fl, opt_state, key, start, n, x, y):
        def body(i, carry):
            tl, os, losses = carry
            if opt_name == "lbfgs":
                tl, os, value = lbfgs_step(tl, fl, os, x, y)
            elif opt_name == "lm":
                tl, os, value = lm_step(tl, fl, os, x, y)
            else:
                tl, os, value = gradient_step(tl, fl, os, key, start + i, x, y)
            return tl, os, losses.at[i].set(value.astype(losses.dtype))

        losses = jnp.full((config.log_every,), jnp.nan, dtype)
        return jax.lax.fori_loop(0, n, body, (tl, opt_state, losses))

    return jit(run), jit(next_loss), batch


# ----------------------------------------------------------------------------- evaluation


def jit_apply(model):
    """``jax.jit(model.apply)``: the model's own (``Compiled.jitted_apply``) when it has one."""
    import jax

    own = getattr(model, "jitted_apply", None)
    return own if own is not None else jax.jit(model.apply)


def predict(model, params, x, *, batch: int = 8192, apply_jit=None, shots: int | None = None,
            seed: int = 0) -> np.ndarray:
    """Model outputs for ``x`` (numpy in, numpy out), evaluated in batches; with ``shots``
    from S-shot estimates, batch ``k`` sampled from ``fold_in(PRNGKey(seed), k)``."""
    import jax
    import jax.numpy as jnp

    dtype = model_dtype(params)
    if shots is None:
        f = apply_jit or jit_apply(model)
        outs = [np.asarray(f(params, jnp.asarray(x[i:i + batch], dtype))) for i in range(0, len(x), batch)]
    else:
        f = jax.jit(lambda p, xb, k: model.apply(p, xb, key=k, shots=shots))
        root = jax.random.PRNGKey(seed)
        outs = [np.asarray(f(params, jnp.asarray(x[i:i + batch], dtype), jax.random.fold_in(root, i // batch)))
                for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, 1))


def evaluate(model, params, x, y, kind: str, *, top_k: int = 5, apply_jit=None, shots: int | None = None,
             seed: int = 0) -> dict[str, float]:
    """All metrics of ``kind`` for the model on (x, y) (with ``shots``: on S-shot estimates)."""
    return M.metrics_for(kind, predict(model, params, x, apply_jit=apply_jit, shots=shots, seed=seed), y, top_k)
