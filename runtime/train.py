"""Training: a jit-compiled optax loop over any model with ``apply(params, x)`` and a
``trainable`` mask.

The loop is generic: a compiled qvaf model, an HQKAN block or a plain JAX function all train
the same way. Arrays whose ``trainable`` flag is False (masks, fixed pre-processing) are
split off before the optimizer sees the parameters, so they are never updated and carry no
optimizer state.

Steps run in chunks inside one jitted ``lax.fori_loop`` (no host round trip per step), on
batches that depend only on the seed and the step number (:mod:`qvaf.runtime.steps`), so a
resumed run sees exactly the batches an uninterrupted one would.

Phases: the optimizer and the number of re-uploads may change at given steps
(``optimizer="adam:0,lbfgs:400"``, ``extend="1:0,3:200"``). At each such boundary the model
is extended (:mod:`qvaf.runtime.extend`) and the optimizer state is initialised afresh; the
learning-rate schedule runs on the global step.

Precision: the loop computes in the parameters' dtype with explicit dtypes throughout (the
optimizers' scalars too, :mod:`qvaf.runtime.optimizers`), so a float32 run gives the same
losses bit for bit whether JAX's 64-bit mode is on or off; it never changes that mode.

Compiled chunk runners are kept on the model (``Compiled.cached``), so several fits of one
model (seeds, restarts) compile once; a model without that method gets fresh runners.

The parts, one module each:

- :mod:`qvaf.runtime.train_config`: :class:`TrainConfig`, every option of a run, checked, and
  its phase schedules;
- :mod:`qvaf.runtime.train_state`: :class:`TrainState` (what checkpoints save), :class:`RunLog`,
  :class:`FitResult`, :func:`init_state`;
- :mod:`qvaf.runtime.train_loop`: :class:`TrainLoop`, the chunks between which a run switches
  phases, stops on a non-finite loss, evaluates, stops early and checkpoints;
- :mod:`qvaf.runtime.steps`: the jitted chunk runners, :func:`evaluate`, :func:`predict` and
  :class:`TrainError`;
- this module: :func:`fit`, which checks its arguments and runs a :class:`TrainLoop`.

The names of the parts are importable from here too (``from qvaf.runtime.train import
TrainConfig, fit, evaluate``).

Example::

    result = fit(model, params, dataset, TrainConfig(steps=500, lr=1e-2))
    print(result.log.history[-1]["val_rmse"])
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import metrics as M
from .optimizers import FULL_BATCH
from .steps import TrainError, evaluate, partition, predict
from .train_config import OPTIMIZERS, SCHEDULES, TrainConfig, parse_schedule
from .train_loop import TrainLoop, apply_phase, progress_bar
from .train_state import FitResult, RunLog, TrainState, init_opt_state, init_state

__all__ = ["fit", "TrainConfig", "TrainError", "parse_schedule", "OPTIMIZERS", "SCHEDULES", "TrainState", "RunLog",
           "FitResult", "init_state", "init_opt_state", "TrainLoop", "evaluate", "predict"]


def fit(model, params, dataset, config: TrainConfig | dict | None = None, *, state: TrainState | None = None,
        log: RunLog | None = None, extender: Callable | None = None,
        on_checkpoint: Callable | None = None, on_record: Callable[[dict], None] | None = None,
        progress: bool = False, devices: int = 1) -> FitResult:
    """Train ``model`` on ``dataset`` from ``params`` (or continue from ``state``).

    Before anything runs, the memory of a train step is estimated
    (:func:`qvaf.runtime.memory.check_train_memory`): a :class:`~qvaf.runtime.memory.MemoryWarning`
    above 2 GiB, a :class:`TrainError` naming the widest layer when it exceeds the device.

    Args:
        model: has ``apply(params, x) -> y`` and ``trainable`` (a bool pytree like params).
        params: initial parameters (ignored when ``state`` is given).
        dataset: a :class:`qvaf.runtime.data.Dataset`, or a task name (``"toy_expsin"``,
            loaded with :func:`qvaf.runtime.data.load_task`).
        config: the :class:`TrainConfig`, a dict of its fields, or None (the defaults).
        state, log: a restored run to continue (``--resume``).
        extender: ``extender(model, params, reps) -> (model, params)``, required when
            ``config.extend`` is set (defaults to :func:`qvaf.runtime.extend.extend`).
        on_checkpoint: ``on_checkpoint(state, model, log)`` at every checkpoint step.
        on_record: called with each history record (after each evaluation).
        progress: show a tqdm bar on stderr (only when stderr is a terminal).
        devices: train data-parallel on the first ``devices`` of ``jax.devices()``
            (:mod:`qvaf.runtime.sharding`); where the computation runs, not what it
            computes, so it is not part of the config and a run may resume on any number.

    Returns:
        A :class:`FitResult`; ``stop_reason`` is ``"steps"``, ``"early_stopping"`` or ``"nan"``.
    """
    from .memory import check_train_memory

    model, params, dataset, config = _fit_arguments(model, params, dataset, config, state)
    devices = _check_devices(devices, config)
    n_train = len(dataset.x_train)
    full = any(o in FULL_BATCH for _, o in config.optimizer_phases()) or config.batch_size is None
    check_train_memory(model, n_train if full else min(config.batch_size, n_train), n_train)
    loss_name = _check_task(model, params if state is None else state.params, dataset, config)
    if config.extend and extender is None:
        from .extend import extend as extender
    if state is None and config.extend:
        model, params = _starting_reps(model, params, config, extender)
    state = state if state is not None else init_state(model, params, config)
    loop = TrainLoop(model, dataset, config, loss_name, state, log if log is not None else RunLog(), extender,
                     on_checkpoint, on_record, devices)
    return loop.run(progress_bar(config.steps, state.step, progress))


def _check_devices(devices, config: TrainConfig) -> int:
    from .sharding import SINGLE_DEVICE, check_devices

    devices = check_devices(devices)
    single = sorted({o for _, o in config.optimizer_phases()} & set(SINGLE_DEVICE))
    if devices > 1 and single:
        raise TrainError(f"{' and '.join(single)} train{'s' if len(single) == 1 else ''} on one device "
                         f"({'; '.join(SINGLE_DEVICE[o] for o in single)}); use devices=1, or adam/adamw "
                         f"on several devices")
    return devices


def _check_task(model, params, dataset, config: TrainConfig) -> str:
    """The loss to train with, after checking that it, the optimizers and early stopping fit the task."""
    loss_name = config.loss or M.default_loss(dataset.kind)
    if M.LOSSES[loss_name] != dataset.kind:
        raise TrainError(f"loss '{loss_name}' does not fit the {dataset.kind} task '{dataset.name}'")
    if config.patience is not None and len(dataset.x_val) == 0:
        raise TrainError("early stopping needs a validation split; the task has none")
    if any(o == "lm" for _, o in config.optimizer_phases()):
        _check_lm(model, params, dataset, loss_name)
    return loss_name


def _starting_reps(model, params, config: TrainConfig, extender):
    """The model at the extension schedule's reps for step 0, after checking that the
    schedule's largest reps can be reached (refused now, not after hours of training)."""
    model, params = apply_phase(model, params, config.phase_at(0)[2], extender)
    later = [r for s, r in config.extend_schedule() if s > 0]
    if later:
        apply_phase(model, params, max(later), extender)
    return model, params


def _fit_arguments(model, params, dataset, config, state):
    """The arguments of :func:`fit` checked (a clear :class:`TrainError` for a wrong kind of
    value) and normalised: a task name becomes its dataset, a dict its TrainConfig."""
    from .data import Dataset, load_task

    if not (callable(getattr(model, "apply", None)) and hasattr(model, "trainable")):
        raise TrainError(f"fit trains a model with apply(params, x) and trainable (qvaf.compile(...), "
                         f"qvaf.hqkan(...)), not {type(model).__name__}")
    if params is None and state is None:
        raise TrainError("fit needs the model's parameters: fit(model, model.init(key), ...)")
    if isinstance(dataset, str):
        dataset = load_task(dataset)
    elif not isinstance(dataset, Dataset):
        raise TrainError(f"fit trains on a Dataset (qvaf.load_task(NAME)) or a task name, not {type(dataset).__name__}")
    if config is None:
        config = TrainConfig()
    elif isinstance(config, dict):
        config = TrainConfig.from_json(config)
    elif not isinstance(config, TrainConfig):
        raise TrainError(f"config must be a TrainConfig (or a dict of its fields), not {type(config).__name__}")
    return model, params, dataset, config


def _check_lm(model, params, dataset, loss_name) -> None:
    from .lm import MAX_JACOBIAN

    if loss_name != "mse":
        raise TrainError(f"lm (Levenberg-Marquardt) fits least squares: it needs the mse loss, not {loss_name}")
    tl, _, _, _ = partition(params, model.trainable)
    n_params = sum(int(np.prod(np.shape(p))) for p in tl)
    size = len(dataset.x_train) * dataset.out_width * n_params
    if size > MAX_JACOBIAN:
        raise TrainError(f"lm builds the full Jacobian ({len(dataset.x_train)} samples x {dataset.out_width} outputs x "
                         f"{n_params} parameters = {size:.3g} numbers, limit {MAX_JACOBIAN:.0e}); use lbfgs or adam")

