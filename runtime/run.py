"""A training run from a spec file: compile, load the task, train, checkpoint, evaluate.

This is what ``qvaf train`` / ``qvaf eval`` do, callable from Python::

    from qvaf.runtime.run import train_run
    summary = train_run("specs/models/regression.qvaf", "toy_expsin",
                        TrainConfig(steps=500), out="runs/expsin")
    print(summary["test"]["rmse"])

A run's configuration is a JSON dict with three parts, stored in every checkpoint:
``model`` (spec file inside the checkpoint, model name, arguments, ansatz overrides, dtype,
backend),
``task`` (task name and data options) and ``train`` (:class:`TrainConfig`). Resuming
rebuilds the model from the spec copy saved in the checkpoint, so a run continues with
exactly the code it started with.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from qvaf._specs import find_spec, pick_model, specs_dir  # noqa: F401 - find_spec, specs_dir re-exported
from qvaf.dsl.errors import QvafError

from . import checkpoint as C
from .data import Dataset, load_task
from .steps import evaluate
from .train import fit
from .train_config import TrainConfig
from .train_state import FitResult


class RunError(QvafError):
    """A run cannot start or continue (bad spec name, existing run, mismatched resume)."""


def spec_sources(program) -> tuple[dict[str, str], str]:
    """(relative path -> text for every file of the program, the main file's relative path),
    laid out under their common folder so relative imports still resolve."""
    files = {os.path.abspath(f): t for f, t in program.sources.items()}
    main = os.path.abspath(program.path)
    root = os.path.commonpath([os.path.dirname(f) for f in files]) if files else os.path.dirname(main)
    return {os.path.relpath(f, root): t for f, t in files.items()}, os.path.relpath(main, root)


# ----------------------------------------------------------------------------- building


def compile_model(spec_path: str, model_cfg: dict):
    """Compile the model a run configuration's ``model`` part describes."""
    import qvaf

    return qvaf.compile(spec_path, model_cfg.get("model"), args=model_cfg.get("args") or None,
                        ansatz_overrides=model_cfg.get("ansatz_overrides") or None,
                        dtype=model_cfg.get("dtype", "float32"), backend=model_cfg.get("backend", "jax"))


def saved_dtype(path) -> str | None:
    """The model dtype a saved run (or checkpoint) at ``path`` computes in, or None when it
    cannot be read (the command that loads it reports why)."""
    import json

    try:
        with open(os.path.join(C.resolve(path), "config.json"), encoding="utf-8") as fh:
            dtype = json.load(fh)["model"].get("dtype")
    except (QvafError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return dtype if isinstance(dtype, str) else None


def task_from_config(task_cfg: dict) -> Dataset:
    opts = {k: v for k, v in task_cfg.items() if k != "name"}
    return load_task(task_cfg["name"], **opts)


def model_config(model, spec_rel: str, dtype: str) -> dict:
    return {"spec": spec_rel, "model": model.model_name, "args": dict(model.model_args),
            "ansatz_overrides": {k: dict(v) for k, v in (model.ansatz_overrides or {}).items()},
            "dtype": dtype, "backend": model.backend}


def reps_overrides(config: TrainConfig) -> dict | None:
    """The ansatz overrides a run compiles its first model with (the extension schedule's
    entry at step 0, if any)."""
    sched = config.extend_schedule()
    if sched and sched[0][0] == 0:
        return {"*": {"reps": sched[0][1]}}
    return None


# ----------------------------------------------------------------------------- running


def train_run(spec: str, task: str | dict, config: TrainConfig | None, *, out: str, model_name: str | None = None,
              model_args: dict | None = None, dtype: str = "float32", backend: str = "jax", resume: bool = False,
              progress: bool = False, on_record: Callable[[dict], None] | None = None, devices: int = 1) -> dict:
    """Train a spec's model on a task, checkpointing into ``out``; returns a summary dict.

    ``backend`` runs the model's circuits (``"catalyst"``: compiled PennyLane programs; slow, for
    fidelity). With ``resume`` the model, task and training options come from the latest checkpoint in
    ``out``; pass ``config`` (only its ``steps`` is used) to train to a different step count,
    or None to finish the saved run. ``devices`` is where it trains (:func:`~qvaf.runtime.train.fit`);
    a run may resume on another number of devices.
    """
    if resume:
        ck = C.load(out)
        saved = ck.config
        train_cfg = TrainConfig.from_json(saved["train"])
        if config is not None and config.steps != train_cfg.steps:
            train_cfg = TrainConfig.from_json({**saved["train"], "steps": config.steps})
        spec_path = os.path.join(ck.spec_dir, saved["model"]["spec"])
        model = compile_model(spec_path, saved["model"])
        dataset = task_from_config(saved["task"])
        state, log = C.restore(ck, model, train_cfg)
        run_config = {**saved, "train": train_cfg.to_json()}
        sources = _read_sources(ck.spec_dir)
        if state.step >= train_cfg.steps:
            raise RunError(f"{ck.path}: the run already reached step {state.step}; raise --steps to train further")
        params = state.params
    else:
        if os.path.exists(os.path.join(out, "checkpoints", "latest")):
            raise RunError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        import jax

        import qvaf

        spec_path = find_spec(spec)
        program = qvaf.load(spec_path)
        sources, main_rel = spec_sources(program)
        dataset = task if isinstance(task, Dataset) else load_task(**_task_cfg(task))
        model_name = pick_model(program, model_name, how="--model NAME")
        model = qvaf.compile(program, model_name, args=model_args or None,
                             ansatz_overrides=reps_overrides(config), dtype=dtype, backend=backend)
        params = model.init(jax.random.PRNGKey(config.seed))
        state, log, train_cfg = None, None, config
        run_config = {"model": model_config(model, main_rel, model.dtype), "task": _task_cfg(task),
                      "train": config.to_json()}

    def on_checkpoint(st, mdl, lg):
        cfg = {**run_config, "model": {**run_config["model"], **_dynamic_model_cfg(mdl)}}
        C.save(out, st, lg, cfg, sources)

    _writable_run_dir(out)
    start_step = state.step if state is not None else 0
    if progress:
        print(compiling_line(model), file=sys.stderr, flush=True)
    result = fit(model, params, dataset, train_cfg, state=state, log=log, on_checkpoint=on_checkpoint,
                 on_record=on_record, progress=progress, devices=devices)
    return {**summarize(result, dataset, out, start_step=start_step), "devices": devices}


def compiling_line(model) -> str:
    """The line shown before the first step, which waits for XLA to compile the train step."""
    from qvaf.compiler.analysis import unrolled_ops

    ops = unrolled_ops(model.ir)
    size = f", edge circuits of up to {max(ops.values())} ops" if ops else ""
    return f"compiling {model.model_name or 'the network'} ({model.param_count} parameters{size}) ..."


def _writable_run_dir(out: str) -> None:
    """Create the run directory now, so a bad --out fails before training, not at its first checkpoint."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunError(f"cannot use '{out}' as the run directory: it is a file")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create the run directory '{out}': {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise RunError(f"cannot write to the run directory '{out}': permission denied")


def _dynamic_model_cfg(model) -> dict:
    return {"ansatz_overrides": {k: dict(v) for k, v in (model.ansatz_overrides or {}).items()}}


def _task_cfg(task) -> dict:
    if isinstance(task, Dataset):
        raise RunError("a run saved to a checkpoint needs a task name (or a task config dict), not a Dataset")
    return {"name": task} if isinstance(task, str) else dict(task)


def _read_sources(spec_dir: str) -> dict[str, str]:
    out = {}
    for root, _, files in os.walk(spec_dir):
        for f in files:
            p = os.path.join(root, f)
            with open(p, encoding="utf-8") as fh:
                out[os.path.relpath(p, spec_dir)] = fh.read()
    return out


def summarize(result: FitResult, dataset: Dataset, out: str | None, *, start_step: int = 0) -> dict:
    """Test metrics and where things went, for printing or ``--json``.

    ``step`` is the step the run reached; ``start_step`` where this call began (non-zero
    after a resume) and ``new_steps`` the steps it trained.
    """
    model, params = result.model, result.state.params
    test = evaluate(model, params, dataset.x_test, dataset.y_test, dataset.kind)
    noise = getattr(getattr(result, "config", None), "noise", None)
    summary = {"event": "done", "stop_reason": result.stop_reason, "message": result.message,
               "step": result.state.step, "start_step": start_step,
               "new_steps": result.state.step - start_step, "task": dataset.name, "kind": dataset.kind,
               "model": getattr(model, "model_name", None), "param_count": getattr(model, "param_count", None),
               "final_train_loss": result.log.losses[-1] if result.log.losses else None,
               "test": test, "sizes": dataset.sizes()}
    if noise is not None and callable(getattr(model, "with_noise", None)):
        summary["test_noisy"] = {"noise": noise.describe(),
                                 **evaluate(model.with_noise(noise), params, dataset.x_test, dataset.y_test,
                                            dataset.kind)}
    if result.log.history:
        summary["last_eval"] = result.log.history[-1]
    if out is not None:
        summary["out"] = out
        try:
            summary["checkpoint"] = C.resolve(out)
        except C.CheckpointError:
            summary["checkpoint"] = None
    return summary


def load_run(path: str, backend: str | None = None):
    """(model, params, checkpoint) of a saved run, for eval and plot; also of a model saved
    with :func:`qvaf.save` (no task, no optimizer state). ``backend`` replaces the saved one."""
    from .saving import compile_saved, param_template

    ck = C.load(path)
    if not isinstance(ck.config, dict):
        raise C.CheckpointError(f"{ck.path}/config.json: not a JSON object")
    model = compile_saved(ck, backend)
    model = getattr(model, "compiled", model)
    if "train" not in ck.config:
        return model, C.fill_named(param_template(model), ck.weights, ck.path), ck
    if not isinstance(ck.config.get("task"), dict):
        raise C.CheckpointError(f"{ck.path}/config.json: missing 'task'")
    state, _ = C.restore(ck, model, TrainConfig.from_json(ck.config["train"]))
    return model, state.params, ck


def eval_run(path: str, task: str | None = None, split: str = "test", backend: str | None = None, *, noise=None,
             shots: int | None = None, seed: int = 0) -> dict:
    """Metrics of a saved run on a split of its task (or of another task with the same shapes),
    computed by the run's own backend or by ``backend``.

    With ``noise`` (a :class:`~qvaf.NoiseModel` or its text) and/or ``shots`` the metrics
    under them are added as ``"noisy"``, next to the noise-free ones; shot samples come from
    ``seed``.
    """
    from qvaf.compiler.noise import as_noise_model

    noise = as_noise_model(noise)
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
        raise RunError(f"--shots must be a positive integer, got {shots!r}")
    model, params, ck = load_run(path, backend)
    if "task" not in ck.config and task is None:
        raise RunError(f"{ck.path} holds a saved model without a task; pass --task NAME")
    task_cfg = dict(ck.config.get("task") or {"name": task})
    if task is not None and task != task_cfg["name"]:
        task_cfg = {"name": task}
    ds = task_from_config(task_cfg)
    x, y = {"train": (ds.x_train, ds.y_train), "val": (ds.x_val, ds.y_val), "test": (ds.x_test, ds.y_test)}[split]
    if x.shape[1] != model.in_width:
        raise RunError(f"task '{ds.name}' has {x.shape[1]} inputs; the model in {ck.path} takes {model.in_width}")
    m = evaluate(model, params, x, y, ds.kind)
    out = {"event": "eval", "checkpoint": ck.path, "step": ck.step, "task": ds.name, "split": split,
           "n": int(len(x)), **m}
    if noise is not None or shots is not None:
        noisy = model.with_noise(noise) if noise is not None else model
        out["noisy"] = {"noise": noise.describe() if noise is not None else None, "shots": shots,
                        "seed": seed if shots is not None else None,
                        **evaluate(noisy, params, x, y, ds.kind, shots=shots, seed=seed)}
    return out
