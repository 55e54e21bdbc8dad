"""The optimizers of a training phase and their learning-rate schedules, in the model's dtype.

optax derives scalars of its own (Adam's bias correction ``1 - b1**t``, the schedules' step
arithmetic) in JAX's default float type, which is float64 whenever 64-bit mode is on. So that
a float32 model trains bit for bit the same with the mode on or off, every scalar here has
the model's dtype: the hyperparameters are ``jnp.asarray(v, dtype)`` and a schedule sees the
step count already cast to ``dtype`` (exact up to 2**24 steps in float32)::

    lr_t = schedule(float(phase_start + t))        Adam: b1 = 0.9, b2 = 0.999, eps = 1e-8

L-BFGS (``optax.lbfgs`` with its zoom line search) creates scalars of its own inside each
update (the first step-size guess, the line search's interval) without a dtype, so in float32
its line search runs partly in float64 when 64-bit mode is on; see ``lbfgs`` in
:func:`make_optimizer`.
"""

from __future__ import annotations

#: optimizers that take no learning rate and always train full batch
FULL_BATCH = ("lbfgs", "lm")


def schedule(config):
    """The optax learning-rate schedule of a configuration (a function of the global step)."""
    import optax

    lr = config.lr if config.lr is not None else 1e-2
    if config.schedule == "constant":
        return optax.constant_schedule(lr)
    if config.schedule == "cosine":
        return optax.cosine_decay_schedule(lr, config.steps, alpha=0.01)
    if config.schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, config.warmup_steps, config.steps, end_value=0.01 * lr)
    return optax.exponential_decay(lr, config.steps, config.decay_rate)


def learning_rate(config, step: int) -> float:
    """The schedule's learning rate at global ``step`` (for the training log)."""
    return float(schedule(config)(step))


def make_optimizer(config, name: str, phase_start: int, *, dtype):
    """The optax transformation for one phase, every scalar in ``dtype``; its schedule reads
    the global step ``phase_start + count``.

    ``lbfgs`` is optax's L-BFGS with the zoom line search; ``lm`` has no optax transformation
    (its step is :func:`qvaf.runtime.lm.step`) and gives only its initial state.
    """
    import jax.numpy as jnp
    import optax

    dt = jnp.dtype(dtype)
    if name == "lbfgs":
        return optax.lbfgs(memory_size=config.lbfgs_memory)
    if name == "lm":
        return _LMInit(dt)

    def scalar(v):
        return jnp.asarray(v, dt)

    base = schedule(config)

    def sched(count):
        return base(jnp.asarray(count, dt) + scalar(phase_start))

    moments = {"b1": scalar(0.9), "b2": scalar(0.999), "eps": scalar(1e-8)}
    if name == "adam":
        opt = optax.adam(sched, **moments)
    else:
        opt = optax.adamw(sched, weight_decay=scalar(config.weight_decay), **moments)
    if config.clip_norm is not None:
        opt = optax.chain(optax.clip_by_global_norm(scalar(config.clip_norm)), opt)
    return opt


class _LMInit:
    """Levenberg-Marquardt's state in the shape of an optax transformation's ``init``."""

    def __init__(self, dtype):
        self.dtype = dtype

    def init(self, params):
        from . import lm

        return lm.init(self.dtype)
