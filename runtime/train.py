"""Training: a jit-compiled optax loop over any model with ``apply(params, x)`` and a
``trainable`` mask.

The loop is generic: a compiled qvaf model, an HQKAN block or a plain JAX function all train
the same way. Arrays whose ``trainable`` flag is False (masks, fixed pre-processing) are
split off before the optimizer sees the parameters, so they are never updated and carry no
optimizer state.

Steps run in chunks inside one jitted ``lax.fori_loop`` (no host round trip per step); the
minibatch of step ``t`` is slice ``t mod E`` of the permutation drawn from
``fold_in(key, t // E)`` (E = batches per epoch), so batches depend only on the seed and the
step number, and a resumed run sees exactly the batches an uninterrupted one would.

Phases: the optimizer and the number of re-uploads may change at given steps
(``optimizer="adam:0,lbfgs:400"``, ``extend="1:0,3:200"``). At each such boundary the model
is extended (:mod:`qvaf.runtime.extend`) and the optimizer state is initialised afresh; the
learning-rate schedule runs on the global step.

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

from qvaf.dsl.errors import QvafError

from . import metrics as M

OPTIMIZERS = ("adam", "adamw", "lbfgs", "lm")
#: optimizers that take no learning rate and always train full batch
FULL_BATCH = ("lbfgs", "lm")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "exponential")
DEFAULT_LR = {"adam": 1e-2, "adamw": 1e-2}


class TrainError(QvafError):
    """A bad training configuration, or a run that cannot continue.

    ``field`` names the :class:`TrainConfig` field a configuration error is about (its
    message then starts with that name), so the CLI can name its flag instead.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


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

    def __new__(cls, *args, **kwargs):
        names = [f.name for f in dataclasses.fields(cls)]
        if len(args) > len(names):
            raise TrainError(f"TrainConfig takes at most {len(names)} positional values, got {len(args)}; "
                             f"name them (TrainConfig(steps=..., lr=...))")
        for name in kwargs:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f"; fields: {', '.join(names)}"
                raise TrainError(f"TrainConfig has no field '{name}'{hint}", field=name)
        return super().__new__(cls)

    def __post_init__(self):
        for f in dataclasses.fields(self):
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
        return dataclasses.asdict(self)

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


# ----------------------------------------------------------------------------- optimizer


def learning_rate(config: TrainConfig, step: int) -> float:
    """The schedule's learning rate at global ``step`` (0 for L-BFGS phases)."""
    return float(_schedule_fn(config)(step))


def _schedule_fn(config: TrainConfig):
    import optax

    lr = config.lr if config.lr is not None else 1e-2
    if config.schedule == "constant":
        return optax.constant_schedule(lr)
    if config.schedule == "cosine":
        return optax.cosine_decay_schedule(lr, config.steps, alpha=0.01)
    if config.schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, config.warmup_steps, config.steps, end_value=0.01 * lr)
    return optax.exponential_decay(lr, config.steps, config.decay_rate)


def make_optimizer(config: TrainConfig, name: str, phase_start: int):
    """The optax transformation for one phase; its schedule reads the global step
    ``phase_start + count``."""
    import optax

    if name == "lbfgs":
        return optax.lbfgs(memory_size=config.lbfgs_memory)
    if name == "lm":
        return _LMInit()
    base = _schedule_fn(config)

    def sched(count):
        return base(count + phase_start)

    opt = optax.adam(sched) if name == "adam" else optax.adamw(sched, weight_decay=config.weight_decay)
    if config.clip_norm is not None:
        opt = optax.chain(optax.clip_by_global_norm(config.clip_norm), opt)
    return opt


class _LMInit:
    """Levenberg-Marquardt has no optax transformation; this gives its state like one."""

    def init(self, params):
        from . import lm

        return lm.init(model_dtype(params))


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

    @property
    def params(self):
        return self.state.params


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


def init_opt_state(model, params, config: TrainConfig, step: int = 0):
    """A fresh optimizer state for the phase in force at ``step`` (what checkpoints fill).

    Floating leaves take the model's dtype and every leaf is a committed (not weakly typed)
    array, so the state has the same types before and after an update: one compiled step
    serves the whole phase, and a restored state runs the very same program.
    """
    import jax
    import jax.numpy as jnp

    phase_start, opt_name, _ = config.phase_at(step)
    tl, _, _, _ = partition(params, model.trainable)
    dtype = model_dtype(params)
    state = make_optimizer(config, opt_name, phase_start).init(tl)

    def canonical(a):
        a = jnp.asarray(a)
        return jnp.array(a, dtype=dtype if jnp.issubdtype(a.dtype, jnp.floating) else a.dtype)

    return jax.tree_util.tree_map(canonical, state)


def init_state(model, params, config: TrainConfig) -> TrainState:
    """The state of a run at step 0."""
    import jax

    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)  # batch order; init uses the seed itself
    return TrainState(0, params, init_opt_state(model, params, config, 0), key, 0, params, None, 0, 0)


def model_dtype(params):
    import jax
    import jax.numpy as jnp

    floats = [p.dtype for p in jax.tree_util.tree_leaves(params) if jnp.issubdtype(p.dtype, jnp.floating)]
    return jnp.result_type(*floats) if floats else jnp.float32


# ----------------------------------------------------------------------------- the jitted chunk


_RUNNERS: dict = {}  # compiled chunk runners, reused by later fits of the same model and options
_RUNNER_CACHE_SIZE = 8


def _runner(model, params, config: TrainConfig, opt_name: str, phase_start: int, loss_name: str, n_train: int):
    """:func:`_make_runner`, cached so that several fits of one model (seeds, restarts) compile once."""
    import jax

    fields = dataclasses.replace(config, seed=0, eval_every=1, patience=None, checkpoint_every=None,
                                 extend=None, top_k=1, optimizer="adam")
    if opt_name in FULL_BATCH or config.schedule == "constant":  # the step count does not matter
        fields = dataclasses.replace(fields, steps=1)
    shapes = tuple((tuple(np.shape(a)), str(np.asarray(a).dtype) if not hasattr(a, "dtype") else str(a.dtype))
                   for a in jax.tree_util.tree_leaves(params))
    key = (id(model), fields, opt_name, phase_start, loss_name, n_train,
           jax.tree_util.tree_structure(params), shapes)
    hit = _RUNNERS.get(key)
    if hit is not None and hit[0] is model:
        return hit[1:]
    made = _make_runner(model, params, config, opt_name, phase_start, loss_name, n_train)
    if len(_RUNNERS) >= _RUNNER_CACHE_SIZE:
        _RUNNERS.pop(next(iter(_RUNNERS)))
    _RUNNERS[key] = (model, *made)  # holding the model keeps its id from being reused
    return made


def _make_runner(model, params, config: TrainConfig, opt_name: str, phase_start: int, loss_name: str,
                 n_train: int):
    """Jitted ``run(train_leaves, fixed, opt_state, key, start, n, x, y)`` doing ``n`` steps,
    jitted ``next_loss(train_leaves, fixed, key, t, x, y)``, and the batch size."""
    import jax
    import jax.flatten_util
    import jax.numpy as jnp
    import optax

    _, _, treedef, mask = partition(params, model.trainable)
    loss_f = M.loss_function(loss_name)
    opt = make_optimizer(config, opt_name, phase_start)
    dtype = model_dtype(params)
    full = opt_name in FULL_BATCH or config.batch_size is None or config.batch_size >= n_train
    batch = n_train if full else int(config.batch_size)
    per_epoch = max(1, n_train // batch)
    apply = model.apply

    def objective(tl, fl, xb, yb):
        return loss_f(apply(merge(tl, fl, treedef, mask), xb), yb)

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
        return objective(tl, fl, xb, yb)

    def run(tl, fl, opt_state, key, start, n, x, y):
        def body(i, carry):
            tl, os, losses = carry
            if opt_name == "lbfgs":
                def f(p):
                    return objective(p, fl, x, y)

                value, grad = optax.value_and_grad_from_state(f)(tl, state=os)
                updates, os = opt.update(grad, os, tl, value=value, grad=grad, value_fn=f)
            elif opt_name == "lm":
                from . import lm

                flat, unravel = jax.flatten_util.ravel_pytree(tl)

                def predict(v, xb):
                    return apply(merge(unravel(v), fl, treedef, mask), xb)

                new, os, value = lm.step(flat, os, lambda v, x1: predict(v, x1[None])[0], predict, x, y)
                return unravel(new), os, losses.at[i].set(value.astype(losses.dtype))
            else:
                xb, yb = batch_at(key, start + i, x, y)
                value, grad = jax.value_and_grad(objective)(tl, fl, xb, yb)
                updates, os = opt.update(grad, os, tl)
            tl = optax.apply_updates(tl, updates)
            return tl, os, losses.at[i].set(value.astype(losses.dtype))

        losses = jnp.full((config.log_every,), jnp.nan, dtype)
        return jax.lax.fori_loop(0, n, body, (tl, opt_state, losses))

    return jax.jit(run), jax.jit(next_loss), batch


# ----------------------------------------------------------------------------- evaluation


_APPLY: dict = {}


def jit_apply(model):
    """``jax.jit(model.apply)``, one per model (reused across fits and evaluations)."""
    import jax

    hit = _APPLY.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1]
    if len(_APPLY) >= _RUNNER_CACHE_SIZE:
        _APPLY.pop(next(iter(_APPLY)))
    fn = jax.jit(model.apply)
    _APPLY[id(model)] = (model, fn)
    return fn


def predict(model, params, x, *, batch: int = 8192, apply_jit=None) -> np.ndarray:
    """Model outputs for ``x`` (numpy in, numpy out), evaluated in batches."""
    import jax
    import jax.numpy as jnp

    f = apply_jit or jit_apply(model)
    dtype = model_dtype(params)
    outs = [np.asarray(f(params, jnp.asarray(x[i:i + batch], dtype))) for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, 1))


def evaluate(model, params, x, y, kind: str, *, top_k: int = 5, apply_jit=None) -> dict[str, float]:
    """All metrics of ``kind`` for the model on (x, y)."""
    return M.metrics_for(kind, predict(model, params, x, apply_jit=apply_jit), y, top_k)


# ----------------------------------------------------------------------------- the loop


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


def fit(model, params, dataset, config: TrainConfig | dict | None = None, *, state: TrainState | None = None,
        log: RunLog | None = None, extender: Callable | None = None,
        on_checkpoint: Callable | None = None, on_record: Callable[[dict], None] | None = None,
        progress: bool = False) -> FitResult:
    """Train ``model`` on ``dataset``; see :func:`_fit` for the arguments.

    ``dataset`` may also be a task name (``"toy_expsin"``, loaded with
    :func:`qvaf.runtime.data.load_task`) and ``config`` a dict of :class:`TrainConfig` fields
    or None (the defaults).

    Before anything runs, the memory of a train step is estimated
    (:func:`qvaf.runtime.memory.check_train_memory`): a :class:`~qvaf.runtime.memory.MemoryWarning`
    above 2 GiB, a :class:`TrainError` naming the widest layer when it exceeds the device.

    A float32 model trains with JAX's 64-bit mode switched off for the duration, whatever the
    global flag says (``import catalyst`` switches it on): optax derives some scalars (Adam's
    bias correction, schedules) from the step count in the default float type, so without this
    the same seed would give different losses in a process where 64-bit mode is on.
    """
    import contextlib

    import jax

    from .memory import check_train_memory

    model, params, dataset, config = _fit_arguments(model, params, dataset, config, state)
    n_train = len(dataset.x_train)
    full = any(o in FULL_BATCH for _, o in config.optimizer_phases()) or config.batch_size is None
    check_train_memory(model, n_train if full else min(config.batch_size, n_train), n_train)
    leaves = jax.tree_util.tree_leaves(state.params if state is not None else params)
    kinds = {np.dtype(getattr(a, "dtype", np.float64)) for a in leaves if np.dtype(getattr(a, "dtype", np.float64)).kind == "f"}
    if kinds == {np.dtype(np.float32)}:
        from jax.experimental import disable_x64

        scope = disable_x64()
    else:
        scope = contextlib.nullcontext()
    with scope:
        return _fit(model, params, dataset, config, state=state, log=log, extender=extender,
                    on_checkpoint=on_checkpoint, on_record=on_record, progress=progress)


def _fit(model, params, dataset, config: TrainConfig, *, state: TrainState | None = None,
         log: RunLog | None = None, extender: Callable | None = None,
         on_checkpoint: Callable | None = None, on_record: Callable[[dict], None] | None = None,
         progress: bool = False) -> FitResult:
    """Train ``model`` on ``dataset`` from ``params`` (or continue from ``state``).

    Args:
        model: has ``apply(params, x) -> y`` and ``trainable`` (a bool pytree like params).
        params: initial parameters (ignored when ``state`` is given).
        dataset: a :class:`qvaf.runtime.data.Dataset`.
        config: the :class:`TrainConfig`.
        state, log: a restored run to continue (``--resume``).
        extender: ``extender(model, params, reps) -> (model, params)``, required when
            ``config.extend`` is set (defaults to :func:`qvaf.runtime.extend.extend`).
        on_checkpoint: ``on_checkpoint(state, model, log)`` at every checkpoint step.
        on_record: called with each history record (after each evaluation).
        progress: show a tqdm bar on stderr (only when stderr is a terminal).

    Returns:
        A :class:`FitResult`; ``stop_reason`` is ``"steps"``, ``"early_stopping"`` or ``"nan"``.
    """
    import jax
    import jax.numpy as jnp

    loss_name = config.loss or M.default_loss(dataset.kind)
    if M.LOSSES[loss_name] != dataset.kind:
        raise TrainError(f"loss '{loss_name}' does not fit the {dataset.kind} task '{dataset.name}'")
    if config.patience is not None and len(dataset.x_val) == 0:
        raise TrainError("early stopping needs a validation split; the task has none")
    if any(o == "lm" for _, o in config.optimizer_phases()):
        _check_lm(model, params if state is None else state.params, dataset, loss_name)
    if config.extend and extender is None:
        from .extend import extend as extender
    metric_name = M.METRIC_OF_KIND[dataset.kind][0]
    if state is None and config.extend:  # the schedule's entry at step 0 sets the starting reps
        model, params = _apply_phase(model, params, config.phase_at(0)[2], extender)
        later = [r for s, r in config.extend_schedule() if s > 0]
        if later:  # refuse an impossible schedule now, not after hours of training
            _apply_phase(model, params, max(later), extender)
    state = state if state is not None else init_state(model, params, config)
    log = log if log is not None else RunLog()
    _check_shapes(model, state.params, dataset)
    dtype = model_dtype(state.params)
    ydtype = dtype if dataset.kind == "regression" else jnp.int32
    x, y = jnp.asarray(dataset.x_train, dtype), jnp.asarray(dataset.y_train, ydtype)
    n_train = len(dataset.x_train)
    apply_jit = jit_apply(model)
    runner = next_loss = batch = None
    ckpt_every = config.checkpoint_every or config.eval_every
    prev_good = state
    bar = _progress_bar(config.steps, state.step, progress)
    t_mark, samples = time.perf_counter(), 0
    window: list[float] = []
    stop_reason, message = "steps", ""

    def record(step):
        nonlocal t_mark, samples, window
        now = time.perf_counter()
        rec = {"step": step, "train_loss": float(np.mean(window)) if window else float("nan"),
               "lr": learning_rate(config, step - 1) if config.phase_at(step - 1)[1] not in FULL_BATCH else 0.0,
               "samples_per_s": samples / max(now - t_mark, 1e-9)}
        if len(dataset.x_val):
            ev = evaluate(model, state.params, dataset.x_val, dataset.y_val, dataset.kind,
                          top_k=config.top_k, apply_jit=apply_jit)
            rec.update({f"val_{k}": v for k, v in ev.items()})
        t_mark, samples, window = time.perf_counter(), 0, []
        return rec

    try:
        while state.step < config.steps:
            phase_start, opt_name, reps = config.phase_at(state.step)
            if phase_start != state.phase_start or runner is None:
                if phase_start != state.phase_start:
                    model, params2 = _apply_phase(model, state.params, reps, extender)
                    state = state._replace(
                        params=params2, phase_start=phase_start,
                        opt_state=init_opt_state(model, params2, config, state.step),
                        **({"best_params": params2, "best_metric": None, "best_step": state.step, "stale": 0}
                           if params2 is not state.params else {}))
                    apply_jit = jit_apply(model)
                    _check_shapes(model, state.params, dataset)
                runner, next_loss, batch = _runner(model, state.params, config, opt_name, phase_start, loss_name, n_train)
            nxt = min([config.steps] + [b for b in config.boundaries() if b > state.step]
                      + [(state.step // p + 1) * p for p in (config.log_every, config.eval_every, ckpt_every)])
            n = nxt - state.step
            tl, fl, _, _ = partition(state.params, model.trainable)
            tl, opt_state, losses = runner(tl, fl, state.opt_state, state.key, jnp.int32(state.step),
                                           jnp.int32(n), x, y)
            losses = np.asarray(losses[:n], np.float64)
            bad = np.flatnonzero(~np.isfinite(losses))
            if len(bad):
                at = state.step + int(bad[0])
                good = state if bad[0] > 0 else prev_good
                stop_reason = "nan"
                message = (f"loss is {losses[bad[0]]} at step {at}; stopped. Parameters are those at "
                           f"step {good.step}" + ("; the last checkpoint is kept" if on_checkpoint else "")
                           + _domain_hint(model))
                state = good
                break
            prev_good = state
            _, _, treedef, mask = partition(state.params, model.trainable)
            state = state._replace(step=nxt, params=merge(tl, fl, treedef, mask), opt_state=opt_state)
            log.losses.extend(losses.tolist())
            window.extend(losses.tolist())
            samples += n * batch
            if bar is not None:
                bar.update(n)
            if nxt % config.eval_every == 0 or nxt == config.steps:
                rec = record(nxt)
                if reps is not None:
                    rec["reps"] = reps
                log.history.append(rec)
                state, stop = _early_stopping(state, rec.get(f"val_{metric_name}"), dataset.kind, config)
                if bar is not None:
                    bar.set_postfix({"loss": f"{rec['train_loss']:.3g}",
                                     metric_name: f"{rec.get('val_' + metric_name, float('nan')):.4g}",
                                     "samples/s": f"{rec['samples_per_s']:.3g}"})
                if on_record is not None:
                    on_record(rec)
                if stop:
                    stop_reason = "early_stopping"
                    message = (f"early stopping at step {nxt}: no better validation {metric_name} in "
                               f"{config.patience} evaluations; best {state.best_metric:.6g} at step {state.best_step}")
                    state = state._replace(params=state.best_params)
                    break
            if on_checkpoint is not None and (nxt % ckpt_every == 0 or nxt == config.steps):
                # only a state that can go on is worth keeping: finite weights and next loss
                if _all_finite(state.params) and np.isfinite(float(next_loss(
                        tl, fl, state.key, jnp.int32(nxt), x, y))):
                    on_checkpoint(state, model, log)
    finally:
        if bar is not None:
            bar.close()
    if stop_reason == "early_stopping" and on_checkpoint is not None:
        on_checkpoint(state, model, log)
    return FitResult(state, model, log, stop_reason, message)


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
