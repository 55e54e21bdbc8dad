"""The training loop: :class:`TrainLoop` runs one fit in chunks of jitted steps and, between
chunks, switches phases, stops on a non-finite loss, evaluates, stops early and checkpoints.

Part of :mod:`qvaf.runtime.train`; :func:`~qvaf.runtime.train.fit` checks its arguments and
builds the loop.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from . import metrics as M
from .optimizers import FULL_BATCH, learning_rate
from .steps import TrainError, _runner, evaluate, jit_apply, merge, model_dtype, partition
from .train_config import TrainConfig
from .train_state import FitResult, RunLog, TrainState, init_opt_state


class TrainLoop:
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
            self.model, params = apply_phase(self.model, state.params, reps, self.extender)
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
    """Refuse a model whose input or output width does not fit the task (checked when the loop
    starts and again after every extension)."""
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


def apply_phase(model, params, reps, extender):
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


def progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar on stderr from ``initial`` to ``total`` steps, or None when not ``enabled``
    or stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, file=sys.stderr, unit="step", dynamic_ncols=True, leave=False)
