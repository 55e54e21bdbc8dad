"""``qvaf train``, ``qvaf eval``, ``qvaf plot``, ``qvaf tasks`` and ``qvaf demo``.

Examples::

    qvaf train specs/models/regression.qvaf --task toy_expsin --steps 2000 --out runs/expsin
    qvaf train --resume --out runs/expsin --steps 4000
    qvaf eval runs/expsin --json
    qvaf plot runs/expsin
    qvaf demo --out runs/demo
"""

from __future__ import annotations

import json
import os
import sys
import time

from qvaf.dsl.errors import QvafError

#: training options: CLI flag -> TrainConfig field
_TRAIN_FLAGS = {
    "steps": "steps", "batch": "batch_size", "optimizer": "optimizer", "lr": "lr", "schedule": "schedule",
    "warmup": "warmup_steps", "weight_decay": "weight_decay", "clip": "clip_norm", "patience": "patience",
    "eval_every": "eval_every", "log_every": "log_every", "checkpoint_every": "checkpoint_every",
    "extend": "extend", "seed": "seed", "lbfgs_memory": "lbfgs_memory", "shots": "shots", "noise": "noise",
}

_NOISE_HELP = ("noise model NAME=VALUE,...: depolarizing, pauli (px/py/pz), phase_damping, amplitude_damping, "
               "readout (p01/p10 or one number), where (gate | upload), or t1,t2,gate_time from calibration "
               "(docs/noise.md)")


def add_parser(subparsers) -> None:
    """Register ``train``, ``eval``, ``plot``, ``tasks`` and ``demo``."""
    p = subparsers.add_parser("train", help="train a model of a spec on a task, with checkpoints",
                              description="Train a model of a spec on a task; checkpoints go to --out.")
    p.add_argument("spec", nargs="?", help="a .qvaf file or a bundled model name (omit with --resume)")
    p.add_argument("--task", help="task name (`qvaf tasks` lists them), or idx:DIR, csv:PATH, npz:PATH")
    p.add_argument("--model", help="model of the spec to train (default: its only model)")
    p.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help="model argument (repeatable)")
    p.add_argument("--steps", type=int, help="optimizer steps (default 1000)")
    p.add_argument("--batch", type=int, help="minibatch size (default 256; 0 = full batch)")
    p.add_argument("--optimizer", help="adam | adamw | lbfgs | lm (Levenberg-Marquardt, small regression fits), or phases like adam:0,lm:300 (default adam)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-2; not for lbfgs or lm)")
    p.add_argument("--schedule", help="constant | cosine | warmup_cosine | exponential (default constant)")
    p.add_argument("--warmup", type=int, help="warmup steps for warmup_cosine")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 1e-4)")
    p.add_argument("--clip", type=float, help="clip gradients to this global norm")
    p.add_argument("--patience", type=int, help="early stopping after this many evaluations without improvement")
    p.add_argument("--eval-every", type=int, help="evaluate on the validation split every N steps (default 100)")
    p.add_argument("--log-every", type=int, help="steps per progress update (default 25)")
    p.add_argument("--checkpoint-every", type=int, help="checkpoint every N steps (default: each evaluation)")
    p.add_argument("--lbfgs-memory", type=int, help="L-BFGS history size (default 10)")
    p.add_argument("--extend", metavar="SCHEDULE", help="layer extension: reps:step,... e.g. 1:0,5:200,10:400")
    p.add_argument("--seed", type=int, help="seed of initialisation and batch order (default 0)")
    p.add_argument("--shots", type=int, help="train on S-shot estimates of every edge (gradient: the expectation's)")
    p.add_argument("--noise", metavar="SPEC", help="train under a " + _NOISE_HELP)
    from qvaf.compiler.options import DTYPES

    p.add_argument("--dtype", choices=DTYPES, help="compute dtype (default float32; float64 turns JAX's 64-bit mode "
                                                   "on for this process)")
    _add_backend_flag(p, "backend that runs the circuits: jax (default, fast) or catalyst (compiled PennyLane "
                         "programs on lightning.qubit; slow, the fidelity path)")
    _add_data_flags(p)
    p.add_argument("--out", help="run directory (default runs/MODEL-TASK)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--devices", type=int, default=1,
                   help="train data-parallel on N devices, the batch split over them (default 1; on a CPU "
                        "set XLA_FLAGS=--xla_force_host_platform_device_count=N; may change on --resume)")
    _add_output_flags(p)
    p.set_defaults(run=run_train)

    p = subparsers.add_parser("eval", help="evaluate a saved run on a task split")
    p.add_argument("checkpoint", help="a run directory or a checkpoint directory")
    p.add_argument("--task", help="task (default: the run's own)")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    _add_backend_flag(p, "evaluate with this backend instead of the run's own (e.g. catalyst for a model "
                         "trained with jax)")
    p.add_argument("--noise", metavar="SPEC", help="also evaluate under a " + _NOISE_HELP)
    p.add_argument("--shots", type=int, help="also evaluate on S-shot estimates of every edge")
    p.add_argument("--seed", type=int, default=0, help="seed of the shot samples (default 0)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(run=run_eval)

    p = subparsers.add_parser("plot", help="plot a saved run: learned activations and training curves")
    p.add_argument("checkpoint", help="a run directory or a checkpoint directory")
    p.add_argument("--out", help="folder for the PNGs (default RUN/plots)")
    p.add_argument("--what", choices=["raw", "edge", "both"], default="raw",
                   help="raw: each circuit's phi(x) alone (activations_LAYER.png); edge: each edge's full term "
                        "with post-activation and base branch (contributions_LAYER.png); both (default raw)")
    p.add_argument("--json", action="store_true", help="print the written files as JSON")
    p.set_defaults(run=run_plot)

    p = subparsers.add_parser("tasks", help="list the built-in tasks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_tasks)

    p = subparsers.add_parser("demo", help="compile, train, evaluate and plot a small QKAN in seconds")
    p.add_argument("--out", default=None, help="run directory (default: runs/demo, or runs/demo-N if taken)")
    p.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    _add_output_flags(p)
    p.set_defaults(run=run_demo)


def _add_backend_flag(p, text: str) -> None:
    from qvaf.compiler.backends import BACKENDS

    p.add_argument("--backend", choices=list(BACKENDS), help=text)


def _add_data_flags(p) -> None:
    p.add_argument("--data-seed", type=int, help="seed of data generation and splits (default 0)")
    p.add_argument("--n-train", type=int, help="training samples for formula tasks (default 1000)")
    p.add_argument("--target-col", type=int, help="target column of a csv: task (default -1, the last)")
    p.add_argument("--classify", action="store_true", default=None,
                   help="treat csv:/npz: targets as class labels")


def _add_output_flags(p) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable JSON lines on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary text")


# ----------------------------------------------------------------------------- helpers


def _parse_value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def _model_args(pairs) -> dict:
    out = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise QvafError(f"bad --arg '{pair}': expected NAME=VALUE")
        if name.strip() in out:
            raise QvafError(f"--arg {name.strip()} given twice ({out[name.strip()]} and {value.strip()})")
        out[name.strip()] = _parse_value(value.strip())
    return out


def _train_config(args, base: dict | None = None):
    """The :class:`TrainConfig` of the flags; its errors name the flag, not the field."""
    from .steps import TrainError
    from .train_config import TrainConfig

    values = dict(base or {})
    for flag, field in _TRAIN_FLAGS.items():
        v = getattr(args, flag, None)
        if v is not None:
            values[field] = v
    batch = values.get("batch_size")
    if batch is not None and batch < 0:
        raise TrainError(f"--batch must be >= 0 (0 = full batch), got {batch}")
    if batch == 0:
        values["batch_size"] = None
    try:
        config = TrainConfig.from_json(values)
    except TrainError as exc:
        flag = {field: flag for flag, field in _TRAIN_FLAGS.items()}.get(exc.field)
        if flag is None or not str(exc).startswith(exc.field):
            raise
        raise TrainError("--" + flag.replace("_", "-") + str(exc)[len(exc.field):], field=exc.field) from None
    _check_unused_flags(args, config)
    return config


def _check_unused_flags(args, config) -> None:
    """Options the chosen optimizer would ignore are refused, not silently dropped."""
    from .optimizers import FULL_BATCH
    from .steps import TrainError

    used = {name for _, name in config.optimizer_phases()}
    if getattr(args, "batch", None) not in (None, 0) and used <= set(FULL_BATCH):
        names = " and ".join(sorted(used))
        raise TrainError(f"--batch: {names} always train{'s' if len(used) == 1 else ''} on the full batch; drop --batch")
    if getattr(args, "weight_decay", None) is not None and "adamw" not in used:
        raise TrainError("--weight-decay applies to --optimizer adamw")
    if getattr(args, "lbfgs_memory", None) is not None and "lbfgs" not in used:
        raise TrainError("--lbfgs-memory applies to --optimizer lbfgs")


def _task_config(args, name: str) -> dict:
    cfg = {"name": name}
    for flag, key in (("data_seed", "data_seed"), ("n_train", "n_train"), ("target_col", "target_col"),
                      ("classify", "classify")):
        v = getattr(args, flag, None)
        if v is not None:
            cfg[key] = v
    return cfg


def _emit(args, record: dict) -> None:
    if getattr(args, "json", False):
        print(json.dumps(record), flush=True)


def _print_summary(summary: dict, seconds: float) -> None:
    test = summary["test"]
    metric = "rmse" if summary["kind"] == "regression" else "accuracy"
    start = summary.get("start_step", 0)
    steps = f"{summary['step']} steps" if not start else \
        f"{summary['step'] - start} more steps (steps {start + 1}-{summary['step']}, {summary['step']} in all)"
    print(f"trained {summary['model']} ({summary['param_count']} parameters) on {summary['task']} "
          f"for {steps} in {seconds:.1f} s")
    if summary.get("message"):
        print(summary["message"])
    print(f"test {metric}: {test[metric]:.6g}   test loss: {test['loss']:.6g}")
    if summary.get("test_noisy"):
        noisy = summary["test_noisy"]
        print(f"under noise {noisy['noise']}: test {metric}: {noisy[metric]:.6g}   test loss: {noisy['loss']:.6g}")
    if summary.get("checkpoint"):
        print(f"checkpoint: {summary['checkpoint']}")


# ----------------------------------------------------------------------------- commands


def run_train(args) -> int:
    try:
        return _run_train(args)
    except KeyboardInterrupt:
        _report_interrupt(args)
        return 130


def _report_interrupt(args) -> None:
    """Ctrl-C during training: say what is kept and how to go on."""
    from . import checkpoint as C

    out = getattr(args, "_out", None) or args.out
    try:
        kept = C.resolve(out) if out else None
    except C.CheckpointError:
        kept = None
    if kept:
        print(f"qvaf {args.command}: interrupted; the last checkpoint is {kept} "
              f"(continue with: qvaf train --resume --out {out})", file=sys.stderr)
    else:
        print(f"qvaf {args.command}: interrupted before the first checkpoint", file=sys.stderr)


def _run_train(args) -> int:
    from .run import RunError, find_spec, train_run

    t0 = time.perf_counter()
    from .sharding import check_devices

    check_devices(args.devices, "--devices")
    if args.resume:
        if not args.out:
            raise RunError("--resume needs --out RUN_DIR (the run to continue)")
        _check_resume_flags(args)
        from .train_config import TrainConfig

        config = TrainConfig(steps=args.steps) if args.steps is not None else None
        summary = train_run("", "", config, out=args.out, resume=True, progress=not args.quiet,
                            devices=args.devices, on_record=lambda r: _emit(args, {"event": "eval", **r}))
    else:
        if not args.spec:
            raise RunError("train needs a SPEC (a .qvaf file or bundled model name), or --resume --out RUN")
        if not args.task:
            from .data import task_names

            raise RunError(f"train needs --task NAME; choices: {', '.join(task_names())}, idx:DIR, csv:PATH, npz:PATH")
        config = _train_config(args)
        find_spec(args.spec)
        out = args.out or os.path.join("runs", f"{os.path.basename(args.spec).removesuffix('.qvaf')}-"
                                               f"{args.task.replace(':', '_').replace('/', '_')}")
        args._out = out
        summary = train_run(args.spec, _task_config(args, args.task), config, out=out, model_name=args.model,
                            model_args=_model_args(args.arg), dtype=args.dtype or "float32",
                            backend=args.backend or "jax", progress=not args.quiet, devices=args.devices,
                            on_record=lambda r: _emit(args, {"event": "eval", **r}))
    _finish(args, summary, time.perf_counter() - t0)
    return 1 if summary["stop_reason"] == "nan" else 0


def _check_resume_flags(args) -> None:
    from .run import RunError

    given = [f for f in ("spec", "task", "model", "dtype", "backend", "data_seed", "n_train", "target_col",
                         "classify")
             if getattr(args, f, None)]
    given += [f for f in _TRAIN_FLAGS if f != "steps" and getattr(args, f, None) is not None]
    if args.arg:
        given.append("arg")
    if given:
        raise RunError(f"--resume continues a run with its saved configuration; drop {', '.join('--' + g.replace('_', '-') if g != 'spec' else 'SPEC' for g in given)} "
                       f"(only --steps may change)")


def _finish(args, summary: dict, seconds: float) -> None:
    summary["seconds"] = seconds
    if args.json:
        print(json.dumps(summary), flush=True)
    elif not args.quiet:
        _print_summary(summary, seconds)
    if summary["stop_reason"] == "nan":
        print(f"qvaf {args.command}: {summary['message']}", file=sys.stderr)


def run_eval(args) -> int:
    from .run import eval_run

    result = eval_run(args.checkpoint, args.task, args.split, backend=args.backend, noise=args.noise,
                      shots=args.shots, seed=args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    keys = [k for k in result if k not in ("event", "checkpoint", "step", "task", "split", "n", "noisy")]
    print(f"{result['task']} ({result['split']}, {result['n']} samples), checkpoint {result['checkpoint']} "
          f"at step {result['step']}:")
    noisy = result.get("noisy")
    if noisy is None:
        for k in keys:
            print(f"  {k}: {result[k]:.6g}")
        return 0
    under = ", ".join(p for p in (f"noise {noisy['noise']}" if noisy["noise"] else "",
                                  f"{noisy['shots']} shots (seed {noisy['seed']})" if noisy["shots"] else "") if p)
    width = max(len(k) for k in keys)
    print(f"  {'metric':<{width}}  {'noise-free':>12}  {'noisy':>12}    noisy: {under}")
    for k in keys:
        print(f"  {k:<{width}}  {result[k]:>12.6g}  {noisy[k]:>12.6g}")
    return 0


def run_plot(args) -> int:
    from .plots import plot_run

    files = plot_run(args.checkpoint, args.out, what=args.what)
    if args.json:
        print(json.dumps({"event": "plot", "files": files}))
    else:
        for f in files:
            print(f)
    return 0


def run_tasks(args) -> int:
    from .data import describe_tasks

    rows = describe_tasks()
    if args.json:
        print(json.dumps([{"name": n, "description": d} for n, d in rows]))
    else:
        width = max(len(n) for n, _ in rows)
        for n, d in rows:
            print(f"{n:<{width}}  {d}")
    return 0


def demo_out(root: str = "runs") -> str:
    """The demo's default run folder: the first free one of root/demo, root/demo-2, ..."""
    out, n = os.path.join(root, "demo"), 1
    while os.path.exists(out):
        n += 1
        out = os.path.join(root, f"demo-{n}")
    return out


def run_demo(args) -> int:
    """Compile specs/models/regression.qvaf, train it on a toy function, evaluate, plot."""
    from .plots import plot_run
    from .run import RunError, find_spec, train_run
    from .train_config import TrainConfig

    t0 = time.perf_counter()
    if args.steps < 1:
        raise RunError(f"--steps must be a positive integer, got {args.steps}")
    out = args.out if args.out is not None else demo_out()
    spec = find_spec("regression")
    if os.path.exists(os.path.join(out, "checkpoints", "latest")):
        raise RunError(f"{out} already holds a run; remove it or pass another --out")
    config = TrainConfig(steps=args.steps, batch_size=None, optimizer="adam", lr=2e-2, schedule="cosine",
                         eval_every=max(1, args.steps // 6), log_every=max(1, args.steps // 30))
    if not args.quiet and not args.json:
        print(f"compiling {spec} and training it on toy_sin2: y = sin(pi x) cos(pi y) ...")
    summary = train_run(spec, {"name": "toy_sin2", "n_train": 500}, config, out=out, dtype="float32",
                        progress=not args.quiet, on_record=lambda r: _emit(args, {"event": "eval", **r}))
    files = plot_run(out, None)
    summary["plots"] = files
    from .cmd_hardware import demo_hardware

    hw = summary["hardware"] = demo_hardware(out, {"name": "toy_sin2", "n_train": 500})
    _finish(args, summary, time.perf_counter() - t0)
    if not args.quiet and not args.json:
        print("plots:\n  " + "\n  ".join(files))
        print(f"hardware: {hw['export']} holds the network as OpenQASM 3 (ibm basis); run through the statevector "
              f"executor on {hw['samples']} test samples it matches the {hw['dtype']} JAX model to "
              f"{hw['max_abs_diff']:.2g}")
        print(f"cost: {hw['cost']}")
        print(f"next: qvaf eval {out}    qvaf run {hw['export']} --task toy_sin2 --executor aer    "
              f"qvaf train --resume --out {out} --steps {2 * args.steps}")
    return 0
