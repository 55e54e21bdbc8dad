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

Example::

    result = fit(model, params, dataset, TrainConfig(steps=500, lr=1e-2))
    print(result.log.history[-1]["val_rmse"])
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from . import metrics as M
from .optimizers import FULL_BATCH, learning_rate, make_optimizer
from .steps import TrainError, _runner, evaluate, jit_apply, merge, model_dtype, partition, predict  # noqa: F401

OPTIMIZERS = ("adam", "adamw", "lbfgs", "lm")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "exponential")


# ----------------------------------------------------------------------------- configuration


def parse_schedule(text: str, what: str, value: Callable[[str], Any] = int) -> tuple[tuple[int, Any], ...]:
    """Parse ``"v0:s0,v1:s1,..."`` (value ``v`` from step ``s`` on) into sorted ``((s, v), ...)``.

    A bare ``"v"`` means ``"v:0"``. Used for ``--extend 1:0,5:200,10:400`` (reps at a step)
    and ``--optimizer adam:0,lbfgs:300``.
    """
    out = {}
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        v, _, s = part.partition(":")
        try:
            val = value(v.strip())
            step = int(s) if s.strip() else 0
        except ValueError:
            raise TrainError(f"bad {what} schedule entry '{part}' in '{text}': expected VALUE:STEP, "
                             f"e.g. '1:0,5:200'") from None
        if step < 0 or step in out:
            raise TrainError(f"bad {what} schedule '{text}': steps must be distinct and >= 0")
        out[step] = val
    if not out:
        raise TrainError(f"empty {what} schedule '{text}'")
    return tuple(sorted(out.items()))


def _optimizer_name(v: str) -> str:
    if v not in OPTIMIZERS:
        raise ValueError(v)
    return v


@dataclass(frozen=True)
class TrainConfig:
    """Every training option (all JSON-serialisable; stored in checkpoints).

    Attributes:
        steps: total optimizer steps.
        batch_size: minibatch size; None (or >= the train set) trains full batch.
        optimizer: ``adam``, ``adamw``, ``lbfgs`` (full batch, zoom line search) or ``lm``
            (Levenberg-Marquardt, full batch, MSE only, small models; see
            :mod:`qvaf.runtime.lm`), or a phase schedule ``"adam:0,lbfgs:500"``.
        lr: peak learning rate (None: 1e-2); L-BFGS takes its step from the line search.
        schedule: ``constant``, ``cosine`` (to 1% of lr at ``steps``), ``warmup_cosine``
            (linear warmup over ``warmup_steps``), ``exponential`` (lr * decay_rate**(t/steps)).
        clip_norm: clip gradients to this global norm (Adam/AdamW only).
        loss: ``mse`` or ``cross_entropy``; None picks by task kind.
        eval_every: evaluate on the validation split every this many steps (and at the end).
        log_every: steps per jitted chunk, i.e. how often the progress bar moves.
        patience: early stopping after this many evaluations without improvement of the
            validation metric (RMSE or accuracy); the best parameters are returned. None: off.
        checkpoint_every: write a checkpoint every this many steps (None: at each evaluation).
        extend: layer-extension schedule ``"reps:step,..."`` (``"1:0,3:200"``), or None.
        seed: seeds parameter initialisation and batch order.
        shots: train on S-shot estimates of every edge's expectation (sampled per step;
            the gradient is the expectation's, straight-through; see docs/noise.md), or None
            for exact expectations. Adam/AdamW only.
        noise: train under this :class:`~qvaf.NoiseModel` (or its ``"name=value,..."`` text
            or JSON dict); validation metrics are then computed under it too. The fitted
            parameters belong to the noise-free model: evaluate them with or without noise.
    """

    steps: int = 1000
    batch_size: int | None = 256
    optimizer: str = "adam"
    lr: float | None = None
    schedule: str = "constant"
    warmup_steps: int = 0
    decay_rate: float = 0.1
    weight_decay: float = 1e-4
    clip_norm: float | None = None
    lbfgs_memory: int = 10
    loss: str | None = None
    eval_every: int = 100
    log_every: int = 25
    patience: int | None = None
    checkpoint_every: int | None = None
    extend: str | None = None
    top_k: int = 5
    seed: int = 0
    shots: int | None = None
    noise: "NoiseModel | None" = None

    def __new__(cls, *args, **kwargs):
        names = [f.name for f in dataclasses.fields(cls)]
        if len(args) > len(names):
            raise TrainError(f"TrainConfig takes at most {len(names)} positional values, got {len(args)}; "
                             f"name them (TrainConfig(steps=..., lr=...))")
        for name in kwargs:
            if name == "devices":
                raise TrainError("devices is where a run trains, not part of its configuration (a run may resume "
                                 "on another number): pass it to fit(..., devices=N) or qvaf train --devices N",
                                 field=name)
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f"; fields: {', '.join(names)}"
                raise TrainError(f"TrainConfig has no field '{name}'{hint}", field=name)
        return super().__new__(cls)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name == "noise":
                from qvaf.compiler.noise import as_noise_model

                object.__setattr__(self, "noise", as_noise_model(self.noise))
                continue
            object.__setattr__(self, f.name, _checked_type(f.name, f.type, getattr(self, f.name)))

        def need(cond, name, msg):
            if not cond:
                raise TrainError(f"{name} {msg}", field=name)

        need(self.steps >= 1, "steps", f"must be a positive integer, got {self.steps}")
        need(self.steps < 2**31, "steps", f"must be less than 2**31 (steps count in int32), got {self.steps}")
        need(self.batch_size is None or self.batch_size >= 1, "batch_size",
             f"must be >= 1, or None for full batch; got {self.batch_size}")
        phases = self.optimizer_phases()
        if self.schedule not in SCHEDULES:
            raise TrainError(f"unknown schedule '{self.schedule}'; choices: {', '.join(SCHEDULES)}", field="schedule")
        need(self.lr is None or (self.lr > 0 and math.isfinite(self.lr)), "lr", f"must be > 0, got {self.lr}")
        if all(p in FULL_BATCH for _, p in phases):
            need(self.lr is None, "lr", "is not used: lbfgs and lm choose their own step size; drop --lr")
            need(self.schedule == "constant", "schedule",
                 "is not used: lbfgs and lm choose their own step size; drop --schedule")
            need(self.clip_norm is None, "clip_norm", "applies to adam/adamw only (gradient clipping); drop --clip")
        need(self.clip_norm is None or (self.clip_norm > 0 and math.isfinite(self.clip_norm)), "clip_norm",
             f"must be > 0, got {self.clip_norm}")
        for name in ("eval_every", "log_every", "lbfgs_memory", "top_k"):
            need(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        need(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        need(self.warmup_steps == 0 or self.schedule == "warmup_cosine", "warmup_steps",
             f"applies to the warmup_cosine schedule, not '{self.schedule}'")
        need(self.schedule != "warmup_cosine" or self.warmup_steps < self.steps, "warmup_steps",
             f"({self.warmup_steps}) must be less than steps ({self.steps})")
        need(math.isfinite(self.decay_rate) and self.decay_rate > 0, "decay_rate", f"must be > 0, got {self.decay_rate}")
        need(math.isfinite(self.weight_decay) and self.weight_decay >= 0, "weight_decay",
             f"must be >= 0, got {self.weight_decay}")
        need(self.patience is None or self.patience >= 1, "patience", f"must be >= 1, got {self.patience}")
        need(self.checkpoint_every is None or self.checkpoint_every >= 1, "checkpoint_every",
             f"must be >= 1, got {self.checkpoint_every}")
        if self.loss is not None:
            M.loss_function(self.loss)
        self.extend_schedule()
        need(self.shots is None or self.shots >= 1, "shots", f"must be a positive integer, got {self.shots}")
        need(self.shots is None or not any(p in FULL_BATCH for _, p in phases), "shots",
             "makes the loss random: lbfgs and lm need a deterministic one; train with adam or adamw")

    def optimizer_phases(self) -> tuple[tuple[int, str], ...]:
        try:
            phases = parse_schedule(self.optimizer, "optimizer", _optimizer_name)
        except TrainError:
            raise TrainError(f"unknown optimizer '{self.optimizer}'; choices: {', '.join(OPTIMIZERS)} "
                             f"or a phase schedule like 'adam:0,lbfgs:500'") from None
        if phases[0][0] != 0:
            raise TrainError(f"optimizer schedule '{self.optimizer}' must say which optimizer starts at step 0")
        return phases

    def extend_schedule(self) -> tuple[tuple[int, int], ...]:
        if not self.extend:
            return ()
        sched = parse_schedule(self.extend, "extension")
        if any(r < 1 for _, r in sched):
            raise TrainError(f"extension schedule '{self.extend}': reps must be >= 1")
        return sched

    def boundaries(self) -> list[int]:
        """Steps at which a new phase starts (optimizer switch or extension), always incl. 0."""
        return sorted({0} | {s for s, _ in self.optimizer_phases()} | {s for s, _ in self.extend_schedule()})

    def phase_at(self, step: int) -> tuple[int, str, int | None]:
        """(phase start, optimizer, reps or None) in force at ``step``."""
        start = max(b for b in self.boundaries() if b <= step)
        opt = [o for s, o in self.optimizer_phases() if s <= step][-1]
        reps = [r for s, r in self.extend_schedule() if s <= step]
        return start, opt, (reps[-1] if reps else None)

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["noise"] = self.noise.to_json() if self.noise is not None else None
        return out

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise TrainError(f"training options must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(names), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise TrainError(f"unknown training option(s) {unknown}{hint}", field=unknown[0])
        return cls(**d)


#: what each annotation of :class:`TrainConfig` accepts, for messages
_TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "a string"}


def _checked_type(name: str, annotation: str, value):
    """``value`` if it has the field's type (numpy scalars become Python ones, an int becomes
    a float where a float is expected); otherwise a :class:`TrainError` naming the field.

    Annotations are strings here (``from __future__ import annotations``): ``"int"``,
    ``"float | None"``, ...
    """
    kinds = [k.strip() for k in str(annotation).split("|")]
    if value is None:
        if "None" in kinds:
            return None
    elif "int" in kinds and isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    elif "float" in kinds and isinstance(value, (int, float, np.integer, np.floating)) \
            and not isinstance(value, (bool, np.bool_)):
        return float(value)
    elif "str" in kinds and isinstance(value, str):
        return value
    want = " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
    hint = ""
    if isinstance(value, str):
        for conv in ((int, float) if "int" in kinds else (float,)):
            try:
                hint = f"; write {name}={conv(value)!r}, without quotes"
                break
            except ValueError:
                pass
    elif isinstance(value, float) and "int" in kinds and value.is_integer():
        hint = f"; write {name}={int(value)}"
    raise TrainError(f"{name} must be {want}, got {value!r} ({type(value).__name__}){hint}", field=name)


# ----------------------------------------------------------------------------- state


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


# ----------------------------------------------------------------------------- the loop


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
    loop = _Loop(model, dataset, config, loss_name, state, log if log is not None else RunLog(), extender,
                 on_checkpoint, on_record, devices)
    return loop.run(_progress_bar(config.steps, state.step, progress))


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
    model, params = _apply_phase(model, params, config.phase_at(0)[2], extender)
    later = [r for s, r in config.extend_schedule() if s > 0]
    if later:
        _apply_phase(model, params, max(later), extender)
    return model, params


class _Loop:
    """One training run in chunks of jitted steps: between chunks it switches phases,
    stops on a non-finite loss, evaluates, stops early and checkpoints."""

    def __init__(self, model, dataset, config: TrainConfig, loss_name: str, state: TrainState, log: RunLog,
                 extender, on_checkpoint, on_record, devices: int = 1):
        import jax.numpy as jnp

        self.model, self.dataset, self.config, self.loss_name = model, dataset, config, loss_name
        self.state, self.log, self.extender = state, log, extender
        self.on_checkpoint, self.on_record = on_checkpoint, on_record
        _check_shapes(model, state.params, dataset)
        dtype = model_dtype(state.params)
        self.x = jnp.asarray(dataset.x_train, dtype)
        self.y = jnp.asarray(dataset.y_train, dtype if dataset.kind == "regression" else jnp.int32)
        self.devices = devices
        if devices > 1:  # the training set goes to the devices once, not at every chunk
            from .sharding import batch_mesh, to_mesh

            self.x, self.y = to_mesh((self.x, self.y), batch_mesh(devices))
        self.metric_name = M.METRIC_OF_KIND[dataset.kind][0]
        self.ckpt_every = config.checkpoint_every or config.eval_every
        self.run_model = _under_noise(model, config)
        self.apply_jit = jit_apply(self.run_model)
        self.runner = self.next_loss = self.batch = None
        self.prev_good = state
        self.stop_reason, self.message = "steps", ""
        self.t_mark, self.samples, self.window = time.perf_counter(), 0, []

    def run(self, bar) -> FitResult:
        config = self.config
        try:
            while self.state.step < config.steps:
                reps = self.enter_phase()
                nxt = self.chunk_end()
                tl, fl, opt_state, losses = self.train_chunk(nxt - self.state.step)
                if self.stopped_by_nan(losses):
                    break
                self.advance(nxt, tl, fl, opt_state, losses, bar)
                if self.due(nxt, config.eval_every) and self.evaluate(nxt, reps, bar):
                    break
                if self.on_checkpoint is not None and self.due(nxt, self.ckpt_every):
                    self.checkpoint(tl, fl, nxt)
        finally:
            if bar is not None:
                bar.close()
        if self.stop_reason == "early_stopping" and self.on_checkpoint is not None:
            self.on_checkpoint(self.state, self.model, self.log)
        return FitResult(self.state, self.model, self.log, self.stop_reason, self.message, self.config)

    def due(self, step: int, every: int) -> bool:
        return step % every == 0 or step == self.config.steps

    def enter_phase(self) -> int | None:
        """At a phase boundary: extend the model, start a fresh optimizer state and get the
        phase's compiled runner. Returns the phase's reps (None without an extension schedule)."""
        state, config = self.state, self.config
        phase_start, opt_name, reps = config.phase_at(state.step)
        if phase_start == state.phase_start and self.runner is not None:
            return reps
        if phase_start != state.phase_start:
            self.model, params = _apply_phase(self.model, state.params, reps, self.extender)
            reset = ({"best_params": params, "best_metric": None, "best_step": state.step, "stale": 0}
                     if params is not state.params else {})
            self.state = state._replace(params=params, phase_start=phase_start,
                                        opt_state=init_opt_state(self.model, params, config, state.step), **reset)
            self.run_model = _under_noise(self.model, config)
            self.apply_jit = jit_apply(self.run_model)
            _check_shapes(self.model, self.state.params, self.dataset)
        self.runner, self.next_loss, self.batch = _runner(self.run_model, self.state.params, config, opt_name,
                                                          phase_start, self.loss_name, len(self.dataset.x_train),
                                                          self.devices)
        return reps

    def chunk_end(self) -> int:
        """The step the next chunk ends at: the next phase boundary, log, evaluation or
        checkpoint step, or the end."""
        step, config = self.state.step, self.config
        every = (config.log_every, config.eval_every, self.ckpt_every)
        return min([config.steps] + [b for b in config.boundaries() if b > step]
                   + [(step // p + 1) * p for p in every])

    def train_chunk(self, n: int):
        """``n`` steps from the current state: ``(trainable leaves, fixed leaves, optimizer
        state, the n losses as float64)``."""
        import jax.numpy as jnp

        state = self.state
        tl, fl, _, _ = partition(state.params, self.model.trainable)
        tl, opt_state, losses = self.runner(tl, fl, state.opt_state, state.key, jnp.int32(state.step),
                                            jnp.int32(n), self.x, self.y)
        return tl, fl, opt_state, np.asarray(losses[:n], np.float64)

    def stopped_by_nan(self, losses) -> bool:
        """On a non-finite loss: stop with the state before it and say where and why."""
        bad = np.flatnonzero(~np.isfinite(losses))
        if not len(bad):
            return False
        state = self.state
        good = state if bad[0] > 0 else self.prev_good
        self.stop_reason = "nan"
        self.message = (f"loss is {losses[bad[0]]} at step {state.step + int(bad[0])}; stopped. Parameters are "
                        f"those at step {good.step}" + ("; the last checkpoint is kept" if self.on_checkpoint else "")
                        + _domain_hint(self.model))
        self.state = good
        return True

    def advance(self, nxt: int, tl, fl, opt_state, losses, bar) -> None:
        self.prev_good = self.state
        _, _, treedef, mask = partition(self.state.params, self.model.trainable)
        self.state = self.state._replace(step=nxt, params=merge(tl, fl, treedef, mask), opt_state=opt_state)
        self.log.losses.extend(losses.tolist())
        self.window.extend(losses.tolist())
        self.samples += len(losses) * self.batch
        if bar is not None:
            bar.update(len(losses))

    def record(self, step: int) -> dict:
        """The history record at ``step``: mean training loss since the last one, learning
        rate, throughput and the validation metrics."""
        config, dataset = self.config, self.dataset
        now = time.perf_counter()
        rec = {"step": step, "train_loss": float(np.mean(self.window)) if self.window else float("nan"),
               "lr": learning_rate(config, step - 1) if config.phase_at(step - 1)[1] not in FULL_BATCH else 0.0,
               "samples_per_s": self.samples / max(now - self.t_mark, 1e-9)}
        if len(dataset.x_val):
            ev = evaluate(self.run_model, self.state.params, dataset.x_val, dataset.y_val, dataset.kind,
                          top_k=config.top_k, apply_jit=self.apply_jit)
            rec.update({f"val_{k}": v for k, v in ev.items()})
        self.t_mark, self.samples, self.window = time.perf_counter(), 0, []
        return rec

    def evaluate(self, nxt: int, reps, bar) -> bool:
        """Record, report and apply early stopping; True when the run stops here."""
        rec = self.record(nxt)
        if reps is not None:
            rec["reps"] = reps
        self.log.history.append(rec)
        self.state, stop = _early_stopping(self.state, rec.get(f"val_{self.metric_name}"), self.dataset.kind,
                                           self.config)
        if bar is not None:
            bar.set_postfix({"loss": f"{rec['train_loss']:.3g}",
                             self.metric_name: f"{rec.get('val_' + self.metric_name, float('nan')):.4g}",
                             "samples/s": f"{rec['samples_per_s']:.3g}"})
        if self.on_record is not None:
            self.on_record(rec)
        if not stop:
            return False
        state = self.state
        self.stop_reason = "early_stopping"
        self.message = (f"early stopping at step {nxt}: no better validation {self.metric_name} in "
                        f"{self.config.patience} evaluations; best {state.best_metric:.6g} at step {state.best_step}")
        self.state = state._replace(params=state.best_params)
        return True

    def checkpoint(self, tl, fl, nxt: int) -> None:
        """Checkpoint a state that can go on: finite weights and a finite next loss."""
        import jax.numpy as jnp

        if _all_finite(self.state.params) and np.isfinite(float(self.next_loss(
                tl, fl, self.state.key, jnp.int32(nxt), self.x, self.y))):
            self.on_checkpoint(self.state, self.model, self.log)


def _under_noise(model, config: TrainConfig):
    """The model training runs: ``model`` under ``config.noise`` (itself without one)."""
    if config.shots is not None:
        import inspect

        try:
            takes_shots = "shots" in inspect.signature(model.apply).parameters
        except (TypeError, ValueError):
            takes_shots = False
        if not takes_shots:
            raise TrainError(f"shots= trains a model whose apply takes key= and shots= (a compiled qvaf model on "
                             f"the jax backend), not {type(model).__name__}", field="shots")
    if config.noise is None:
        return model
    if not callable(getattr(model, "with_noise", None)):
        raise TrainError(f"noise= trains a compiled qvaf model (with_noise), not {type(model).__name__}", field="noise")
    return model.with_noise(config.noise)


def _check_shapes(model, params, dataset):
    import jax

    in_width = getattr(model, "in_width", None)
    if in_width is not None and in_width != dataset.in_width:
        raise TrainError(f"the model takes {in_width} inputs but task '{dataset.name}' has {dataset.in_width}")
    probe = jax.eval_shape(model.apply, params, jax.ShapeDtypeStruct((2, dataset.in_width), model_dtype(params)))
    if probe.shape != (2, dataset.out_width):
        raise TrainError(f"the model maps [B, {dataset.in_width}] to {list(probe.shape)} but task "
                         f"'{dataset.name}' needs outputs [B, {dataset.out_width}]"
                         + (f" ({dataset.n_classes} classes)" if dataset.kind == "classification" else ""))


def _domain_hint(model) -> str:
    """Name the data-dependent acos/asin/log/sqrt of the model's kernels, the usual NaN source."""
    graph = getattr(model, "ir", None)
    if graph is None:
        return ""
    from qvaf.compiler.analysis import domain_limits

    limits = domain_limits(graph)
    return "".join(f". Possible cause: {d.message()}" for d in limits)


def _all_finite(tree) -> bool:
    import jax

    return all(bool(np.all(np.isfinite(np.asarray(p)))) for p in jax.tree_util.tree_leaves(tree)
               if np.asarray(p).dtype.kind == "f")


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


def _apply_phase(model, params, reps, extender):
    """Extend the model to ``reps`` (the extender returns its inputs when nothing changes)."""
    if reps is None:
        return model, params
    return extender(model, params, reps)


def _early_stopping(state: TrainState, value, kind: str, config: TrainConfig):
    if value is None:
        return state, False
    if M.is_better(kind, value, state.best_metric):
        return state._replace(best_params=state.params, best_metric=float(value), best_step=state.step, stale=0), False
    state = state._replace(stale=state.stale + 1)
    return state, config.patience is not None and state.stale >= config.patience


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, file=sys.stderr, unit="step", dynamic_ncols=True, leave=False)
