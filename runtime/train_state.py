"""Training state: :class:`TrainState`, the pytree a run continues from (what checkpoints
save), the :class:`RunLog` of losses and evaluations, the :class:`FitResult` of a fit, and a
run's fresh state (:func:`init_state`, :func:`init_opt_state`).

Part of :mod:`qvaf.runtime.train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .optimizers import make_optimizer
from .steps import model_dtype, partition
from .train_config import TrainConfig



class TrainState(NamedTuple):
    """Everything a run needs to continue (a pytree; saved by :mod:`qvaf.runtime.checkpoint`).

    ``opt_state`` belongs to the optimizer of the phase that started at ``phase_start`` and
    covers the trainable arrays only (in flattening order). ``key`` seeds the batch order.
    ``best_*`` and ``stale`` are early-stopping bookkeeping.
    """

    step: int
    params: Any
    opt_state: Any
    key: Any
    phase_start: int
    best_params: Any
    best_metric: float | None
    best_step: int
    stale: int


@dataclass
class RunLog:
    """Per-step training losses and the per-evaluation history records."""

    losses: list[float] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)


@dataclass
class FitResult:
    state: TrainState
    model: Any
    log: RunLog
    stop_reason: str  # "steps" | "early_stopping" | "nan"
    message: str = ""
    config: Any = None

    @property
    def params(self):
        return self.state.params


def init_opt_state(model, params, config: TrainConfig, step: int = 0):
    """A fresh optimizer state for the phase in force at ``step`` (what checkpoints fill).

    Floating leaves take the model's dtype, signed integer leaves (step counters) int32, and
    every leaf is a committed (not weakly typed) array, so the state has the same types before
    and after an update, with JAX's 64-bit mode on or off: one compiled step serves the whole
    phase, and a restored state runs the very same program.
    """
    import jax
    import jax.numpy as jnp

    phase_start, opt_name, _ = config.phase_at(step)
    tl, _, _, _ = partition(params, model.trainable)
    dtype = model_dtype(params)
    state = make_optimizer(config, opt_name, phase_start, dtype=dtype).init(tl)

    def canonical(a):
        a = jnp.asarray(a)
        if jnp.issubdtype(a.dtype, jnp.floating):
            return jnp.array(a, dtype=dtype)
        return jnp.array(a, dtype=jnp.int32 if jnp.issubdtype(a.dtype, jnp.signedinteger) else a.dtype)

    return jax.tree_util.tree_map(canonical, state)


def init_state(model, params, config: TrainConfig) -> TrainState:
    """The state of a run at step 0."""
    import jax

    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)  # batch order; init uses the seed itself
    return TrainState(0, params, init_opt_state(model, params, config, 0), key, 0, params, None, 0, 0)

