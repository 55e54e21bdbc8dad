"""Training options: :class:`TrainConfig`, every option of a run, checked when it is built,
and the phase schedules it holds (``optimizer="adam:0,lbfgs:400"``, ``extend="1:0,3:200"``).

Part of :mod:`qvaf.runtime.train`; a config is JSON (``to_json``/``from_json``) and is stored
in checkpoints.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import metrics as M
from .optimizers import FULL_BATCH
from .steps import TrainError

if TYPE_CHECKING:
    from qvaf.compiler.noise import NoiseModel

OPTIMIZERS = ("adam", "adamw", "lbfgs", "lm")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "exponential")


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

