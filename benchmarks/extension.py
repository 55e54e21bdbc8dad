"""The reference's layer-extension experiment: grow reps 1 -> 5 -> 10 -> 15 -> 20 while training.

Task: f(x, y) = exp(sin(pi x) + y^2), task ``toy_expsin`` (1000 train, 200 validation, 1000
test points, uniform on [-1, 1]^2, data seed 0). Model: ``benchmarks/extension.qvaf``, a
[2, 5, 1] QKAN of pz edges with trainable pre-activations w x + b, trainable post-activation
weight and bias and base weight; float64, full batch, seed 0.

Runs (each one ``qvaf.runtime.train.fit``, or ``qvaf train`` for the CLI run):

* ``extension``: reps 1 -> 5 -> 10 -> 15 -> 20, ``--stage`` steps per stage (default 100):
  Adam (lr 5e-3) in the first stage, L-BFGS in the later ones
  (``optimizer="adam:0,lbfgs:100"``, ``extend="1:0,5:100,10:200,15:300,20:400"``);
* ``cli``: the same schedule through ``qvaf train --extend ...`` in a subprocess; its loss
  curve is compared with the Python run's;
* ``direct``: reps 20 from the start, 5 x ``--stage`` L-BFGS steps (the reference's baseline);
* ``lm_extension`` and ``lm_direct``: the same two with Levenberg-Marquardt instead of
  L-BFGS (qvaf's recipe for small least-squares fits, runtime/lm.py).

Test MSE and wall time are reported per stage (wall time of each stage includes compiling
its step function). Writes ``benchmarks/extension.json``, its section of
``benchmarks/RESULTS.md`` (between ``<!-- extension -->`` markers) and
``docs/img/extension.png`` (loss curves, stage boundaries marked).

Run::

    python benchmarks/extension.py              # the full experiment
    python benchmarks/extension.py --stage 5 --no-write   # a quick check of the plumbing
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPEC = os.path.join(HERE, "extension.qvaf")
STAGES = (1, 5, 10, 15, 20)
#: the reference's numbers (its notebook): test MSE after the last stage, and training reps 20 directly
REFERENCE = {"extension_test_mse": 1.24e-7, "direct_test_mse": 7.66e-7}
PARTIAL = os.path.join(tempfile.gettempdir(), "qvaf-extension-partial.json")
MARK_BEGIN, MARK_END = "<!-- extension -->", "<!-- /extension -->"


def schedules(stage: int, second: str) -> tuple[str, str]:
    """(optimizer schedule, extension schedule) of the staged run."""
    ext = ",".join(f"{r}:{i * stage}" for i, r in enumerate(STAGES))
    return f"adam:0,{second}:{stage}", ext


def staged_fit(data, optimizer: str, extend: str | None, reps0: int, steps: int, stage: int, seed: int = 0,
               progress_path: str | None = None):
    """Train with ``fit``; per stage end: step, reps, test MSE, seconds since the start."""
    import jax

    import qvaf
    from qvaf.runtime.extend import kan_reps
    from qvaf.runtime.train import TrainConfig, evaluate, fit

    model = qvaf.compile(SPEC, "extension", args={"reps": reps0}, dtype="float64")
    lr = 5e-3 if "adam" in optimizer else None  # L-BFGS and LM choose their own step
    config = TrainConfig(steps=steps, batch_size=None, optimizer=optimizer, lr=lr, extend=extend,
                         eval_every=stage, log_every=stage, seed=seed)
    rows, t_start = [], time.perf_counter()

    def at_stage_end(state, mdl, _log):
        test = evaluate(mdl, state.params, data.x_test, data.y_test, data.kind)
        rows.append({"step": state.step, "reps": max(kan_reps(mdl).values()), "params": mdl.param_count,
                     "test_mse": test["rmse"] ** 2, "seconds": time.perf_counter() - t_start})
        if progress_path:  # what is done so far, should the run be cut short
            with open(progress_path, "w", encoding="utf-8") as fh:
                json.dump({"optimizer": optimizer, "steps": steps, "stages": rows, "test_mse": rows[-1]["test_mse"],
                           "seconds": rows[-1]["seconds"], "losses": [], "done_steps": state.step}, fh)

    res = fit(model, model.init(jax.random.PRNGKey(seed)), data, config, on_checkpoint=at_stage_end)
    for prev, row in zip([{"seconds": 0.0}] + rows, rows):
        row["stage_seconds"] = row["seconds"] - prev["seconds"]
    return {"optimizer": optimizer, "extend": extend, "steps": steps, "stages": rows,
            "test_mse": rows[-1]["test_mse"], "seconds": rows[-1]["seconds"], "losses": list(res.log.losses)}


def cli_run(optimizer: str, extend: str, steps: int, stage: int, work: str) -> dict:
    """The staged run through ``qvaf train``: timestamps of its evaluation lines, its final
    test MSE (``qvaf eval``) and its loss curve (from the checkpoint)."""
    from qvaf.runtime import checkpoint as C

    out = os.path.join(work, "cli-run")
    cmd = [sys.executable, "-m", "qvaf", "train", SPEC, "--task", "toy_expsin", "--dtype", "float64",
           "--batch", "0", "--optimizer", optimizer, "--lr", "5e-3", "--extend", extend, "--steps", str(steps),
           "--eval-every", str(stage), "--log-every", str(stage), "--seed", "0", "--out", out, "--json", "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    stages = []
    for line in proc.stdout:
        rec = json.loads(line)
        if rec.get("event") == "eval":
            stages.append({"step": rec["step"], "reps": rec.get("reps"), "val_rmse": rec.get("val_rmse"),
                           "seconds": time.perf_counter() - t0})
    if proc.wait() != 0:
        raise SystemExit(f"qvaf train failed: {' '.join(cmd)}")
    seconds = time.perf_counter() - t0
    ev = subprocess.run([sys.executable, "-m", "qvaf", "eval", out, "--json"], capture_output=True, text=True,
                        cwd=ROOT, check=True)
    test = json.loads(ev.stdout)
    display = ["qvaf" if c == sys.executable else c for c in cmd[2:]]
    display = ["qvaf"] + [os.path.relpath(c, ROOT) if c == SPEC else ("RUN" if c == out else c) for c in display[1:]]
    return {"command": " ".join(display), "stages": stages, "test_mse": test["rmse"] ** 2, "seconds": seconds,
            "losses": [float(v) for v in C.load(out).extra["losses"]]}


def plot(result: dict, path: str, stage: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4.5))
    curves = [("extension (Python)", result["extension"], "C0", "-"),
              ("extension (qvaf train --extend)", result.get("cli"), "C1", "--"),
              ("reps 20 directly", result.get("direct"), "C3", "-"),
              ("extension, Levenberg-Marquardt", result.get("lm_extension"), "C2", "-"),
              ("reps 20 directly, Levenberg-Marquardt", result.get("lm_direct"), "C4", ":")]
    for label, run, color, style in curves:
        if run:
            losses = np.asarray(run["losses"])
            ax.semilogy(np.arange(1, len(losses) + 1), losses, style, color=color, lw=1.4, label=label)
    for i, r in enumerate(STAGES):
        if i:
            ax.axvline(i * stage, color="0.6", lw=0.8, ls=":")
        ax.text(i * stage + stage / 2, 1.0, f"reps {r}", transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=8, color="0.3")
    ax.set_xlabel("step")
    ax.set_ylabel("training MSE")
    ax.set_title("exp(sin(pi x) + y^2), [2, 5, 1] pz with trainable pre-activations", pad=16)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def _g(v: float) -> str:
    return f"{v:.3g}" if v == v else "not run"


def _s(v: float) -> str:
    return f"{v:.1f} s" if v == v else "—"


def markdown(result: dict) -> str:
    none = {"stages": [], "test_mse": float("nan"), "seconds": float("nan"), "losses": []}
    ext, direct, cli = result["extension"], result.get("direct", none), result.get("cli")
    lm_ext, lm_direct = result.get("lm_extension", none), result.get("lm_direct", none)
    stage = result["stage"]
    lines = [MARK_BEGIN, "", "## 6. Layer extension as the reference does it (reps 1 → 5 → 10 → 15 → 20)", "",
             "```", "python benchmarks/extension.py", "```", "",
             f"Task `toy_expsin` (f = exp(sin(πx) + y²), 1000 train / 1000 test points); model "
             f"`benchmarks/extension.qvaf`: [2, 5, 1], pz edges with trainable pre-activations w·x + b, trainable "
             f"post-activation weight and bias and base weight (grow values as the reference's `refine()`: new theta "
             f"0, new w 1, new b 0); float64, full batch, seed 0. {stage} steps per stage: Adam (lr 5e-3) in the "
             f"first, L-BFGS (optax, memory 10, one iteration per step) in the later ones. Machine: "
             f"{result['cpus']} CPU cores shared with other jobs (load average {result.get('load_note') or result['load']}); wall times "
             f"include compiling each stage's step function (minutes each at this load: XLA warns of slow compiles), "
             f"and some runs went in parallel processes.", "",
             "| stage | reps | parameters | test MSE (extension) | stage time | test MSE (LM extension) | stage time |",
             "|---|---|---|---|---|---|---|"]
    for row, lm in zip(ext["stages"], lm_ext["stages"] or [{"test_mse": float("nan"), "stage_seconds": float("nan")}] * 5):
        lines.append(f"| steps {row['step'] - stage + 1}–{row['step']} | {row['reps']} | {row['params']} | "
                     f"{_g(row['test_mse'])} | {_s(row['stage_seconds'])} | {_g(lm['test_mse'])} | "
                     f"{_s(lm['stage_seconds'])} |")
    lines += ["", "| run | test MSE | wall time | reference (its notebook) |", "|---|---|---|---|",
              f"| extension 1 → 20, Adam then L-BFGS ({5 * stage} steps) | **{_g(ext['test_mse'])}** | "
              f"{_s(ext['seconds'])} | {REFERENCE['extension_test_mse']:.3g} |",
              f"| reps 20 directly, L-BFGS ({5 * stage} steps) | **{_g(direct['test_mse'])}** | {_s(direct['seconds'])} "
              f"| {REFERENCE['direct_test_mse']:.3g} |"]
    if cli:
        lines.append(f"| extension from the CLI (`qvaf train --extend`) | {_g(cli['test_mse'])} | "
                     f"{_s(cli['seconds'])} (process, imports included) | |")
    lines += [f"| extension 1 → 20, Adam then Levenberg–Marquardt | **{_g(lm_ext['test_mse'])}** | "
              f"{_s(lm_ext['seconds'])} | |",
              f"| reps 20 directly, Levenberg–Marquardt | {_g(lm_direct['test_mse'])} | {_s(lm_direct['seconds'])} | |",
              ""]
    if cli:
        same = result["cli_max_rel_loss_diff"] == 0
        lines += [f"The CLI run (`{cli['command']}`) " + (
                  f"gives the Python run's loss at every one of its {len(cli['losses'])} steps bit for bit." if same else
                  f"follows the Python run's loss curve to {_g(result['cli_max_rel_loss_diff'])} (largest relative "
                  f"difference over its {len(cli['losses'])} steps)."), ""]
    best = min(("extension, L-BFGS", ext), ("reps 20 directly, L-BFGS", direct),
               ("extension, Levenberg–Marquardt", lm_ext), ("reps 20 directly, Levenberg–Marquardt", lm_direct),
               key=lambda t: t[1]["test_mse"] if t[1]["test_mse"] == t[1]["test_mse"] else float("inf"))
    lines += [f"Best recipe here: {best[0]}, test MSE {_g(best[1]['test_mse'])} in {_s(best[1]['seconds'])}. "
              f"A reference L-BFGS step is torch's `LBFGS.step()`, up to 20 iterations with a strong-Wolfe line "
              f"search; a qvaf L-BFGS step is one iteration, so equal step counts are not equal work. The training "
              f"loss is continuous at every extension (the plot): growth keeps the function.", "",
              "![loss curves of layer extension and direct training](../docs/img/extension.png)", "", MARK_END]
    return "\n".join(lines)


def write_section(path: str, text: str) -> None:
    with open(path, encoding="utf-8") as fh:
        body = fh.read()
    if MARK_BEGIN in body and MARK_END in body:
        body = body[:body.index(MARK_BEGIN)] + text + body[body.index(MARK_END) + len(MARK_END):]
    else:
        body = body.rstrip("\n") + "\n\n" + text + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(body)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", type=int, default=100, help="steps per stage (default 100)")
    ap.add_argument("--no-cli", action="store_true", help="skip the qvaf train run")
    ap.add_argument("--no-write", action="store_true", help="print the JSON only")
    ap.add_argument("--replot", metavar="JSON", action="append",
                    help="write the outputs from saved (partial) results (repeatable: merged in order)")
    ap.add_argument("--load-note", help="the machine's load while the runs went, for the text")
    ap.add_argument("--only", help="comma-separated runs to do (extension,direct,cli,lm_extension,lm_direct)")
    ap.add_argument("--partial", default=PARTIAL, help=f"where the partial result goes (default {PARTIAL})")
    args = ap.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)  # this script computes in float64: its process, its setting
    import numpy as np

    from qvaf.runtime.data import load_task

    data = load_task("toy_expsin")
    stage, total = args.stage, 5 * args.stage
    result = {"task": "toy_expsin", "spec": "benchmarks/extension.qvaf", "stage": stage, "cpus": os.cpu_count(),
              "reference": REFERENCE}
    if args.replot:
        for path in args.replot:
            with open(path, encoding="utf-8") as fh:
                result.update(json.load(fh))
        stage = result["stage"]
        _compare_cli(result, np)
    else:
        only = set(args.only.split(",")) if args.only else None
        _runs(result, data, stage, total, args.no_cli, np, only, args.partial)
    if args.load_note:
        result["load_note"] = args.load_note
    result.setdefault("load", " / ".join(f"{v:.1f}" for v in os.getloadavg()))
    result["seconds"] = time.perf_counter() - T0
    if not args.no_write:
        plot(result, os.path.join(ROOT, "docs", "img", "extension.png"), stage)
        write_section(os.path.join(HERE, "RESULTS.md"), markdown(result))
        tmp = os.path.join(HERE, "extension.json.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
        os.replace(tmp, os.path.join(HERE, "extension.json"))
    summary = {k: ({kk: vv for kk, vv in v.items() if kk != "losses"} if isinstance(v, dict) else v)
               for k, v in result.items()}
    print(json.dumps(summary, indent=1))
    return 0


def _runs(result: dict, data, stage: int, total: int, no_cli: bool, np, only=None, partial=PARTIAL) -> None:
    """Every run, the reference's comparison first; the partial result is saved after each
    (``--replot`` writes the outputs from it)."""
    staged = {"extension": schedules(stage, "lbfgs"), "lm_extension": schedules(stage, "lm")}
    plan = [("extension", lambda: staged_fit(data, *staged["extension"], 1, total, stage)),
            ("direct", lambda: staged_fit(data, "lbfgs", None, STAGES[-1], total, stage,
                                          progress_path=partial + ".direct")),
            ("cli", None),
            ("lm_extension", lambda: staged_fit(data, *staged["lm_extension"], 1, total, stage)),
            ("lm_direct", lambda: staged_fit(data, "lm", None, STAGES[-1], total, stage))]
    for name, job in plan:
        if only is not None and name not in only:
            continue
        if name == "cli":
            if no_cli:
                continue
            with tempfile.TemporaryDirectory(prefix="qvaf-extension-") as work:
                result["cli"] = cli_run(*staged["extension"], total, stage, work)
            _compare_cli(result, np)
        else:
            result[name] = job()
        _progress(name, result[name])
        with open(partial, "w", encoding="utf-8") as fh:
            json.dump(result, fh)


def _compare_cli(result: dict, np) -> None:
    """The largest relative difference between the CLI run's and the Python run's losses."""
    if "extension" not in result or "cli" not in result:
        return
    a, b = np.asarray(result["extension"]["losses"]), np.asarray(result["cli"]["losses"])
    result["cli_max_rel_loss_diff"] = float(np.max(np.abs(a - b) / np.abs(a))) if len(a) == len(b) else float("inf")


def _progress(name: str, run: dict) -> None:
    print(json.dumps({"run": name, "test_mse": run["test_mse"], "seconds": run["seconds"],
                      "elapsed": time.perf_counter() - T0}), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
