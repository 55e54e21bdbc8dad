"""Design comparison: candidate ansätze against each other and a classical MLP.

Every candidate ansatz is placed in one standard network per task, trained under the same
budget on the same seeds, and evaluated on the task's test split::

    input IN;  kan H using ANSATZ;  kan OUT using ANSATZ        (default kan options: base silu)

with ``H = 5`` for regression tasks (the paper's [2, 5, 1]) and ``H = 8`` for
classification (as specs/models/digits.qvaf); ``hidden=`` changes it. The ansatz keeps its
own default arguments unless ``ansatz_args`` are given. The baseline is a tanh MLP
``IN -> H' -> OUT`` whose hidden width ``H'`` makes its parameter count closest to the
first candidate's network on that task.

Training: Adam, learning rate 1e-2, minibatches of 256 (full batch on smaller sets), float32,
seeds ``0 .. K-1`` (the seed sets initialisation and batch order; the data split is fixed).
The budget is a number of steps (``"1000"``, the default) or of seconds of wall-clock training time
(``"60s"``, compilation included, checked every 50 steps). Runs go to separate processes
when ``jobs > 1`` (each XLA single-threaded, so J jobs use about J cores).

Reported per candidate and task: trainable parameters, the spectrum of the trained edges
(the largest number of distinct non-zero frequencies of one edge, and the highest frequency,
seed 0), the test metric (RMSE or accuracy) as mean ± standard deviation over seeds, the
mean training time and the steps trained.

Example::

    result = compare(["my.qvaf", "pz", "rpz", "real"], ["toy_bessel", "digits"], seeds=3, budget="1000")
    print(markdown(result))
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from qvaf.dsl.errors import QvafError

DEFAULT_HIDDEN = {"regression": 5, "classification": 8}
DEFAULT_SEEDS = 3
DEFAULT_BUDGET = "1000"
BATCH = 256
LR = 1e-2
#: seconds budgets are checked after every chunk of this many steps
CHUNK = 50


class CompareError(QvafError):
    """A candidate, task or budget that cannot be compared."""


# ----------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Candidate:
    """One ansatz to compare: its file, its name there, its label in the table."""

    label: str
    path: str
    ansatz: str
    args: tuple = ()


def _bundled_ansatz_dir() -> str:
    from .run import specs_dir

    return os.path.join(specs_dir(), "ansatz")


def resolve_candidates(specs, ansatz_args: dict | None = None) -> list[Candidate]:
    """Candidates from ``specs``: bundled ansatz names (``pz``), ``.qvaf`` files (each ansatz
    the file itself defines) or ``FILE.qvaf:NAME`` (one of them)."""
    import qvaf

    out: list[Candidate] = []
    args = tuple(sorted((ansatz_args or {}).items()))
    for spec in specs:
        path, name = spec.rsplit(":", 1) if ".qvaf:" in spec else (spec, "")
        if not os.path.isfile(path):
            bundled = os.path.join(_bundled_ansatz_dir(), f"{path}.qvaf")
            if path.endswith(".qvaf") or not os.path.isfile(bundled):
                have = sorted(f[:-5] for f in os.listdir(_bundled_ansatz_dir()) if f.endswith(".qvaf"))
                raise CompareError(f"no ansatz file '{path}' and no bundled ansatz of that name "
                                   f"(bundled: {', '.join(have)})")
            path, name = bundled, name or spec
        program = qvaf.load(path)
        own = [a for a, node in program.ansatze.items()
               if node.span is not None and os.path.abspath(node.span.file) == os.path.abspath(path)]
        names = [name] if name else (own or sorted(program.ansatze))
        for n in names:
            if n not in program.ansatze:
                raise CompareError(f"{path} defines no ansatz '{n}'; ansätze: {', '.join(sorted(program.ansatze))}")
            label = n if not any(c.label == n for c in out) else f"{n} ({os.path.basename(path)})"
            out.append(Candidate(label, os.path.abspath(path), n, args))
    if not out:
        raise CompareError("nothing to compare: give at least one ansatz")
    return out


def network_source(c: Candidate, widths) -> str:
    """The standard network of the comparison around candidate ``c``."""
    args = ", ".join(f"{k} = {v}" for k, v in c.args)
    use = f"{c.ansatz}({args})" if args else c.ansatz
    if '"' in c.path or "\n" in c.path:
        raise CompareError(f"cannot import a spec path containing quotes or newlines: {c.path!r}")
    layers = "".join(f"    kan {w} using {use}\n" for w in widths[1:])
    return f'import "{c.path}"\n\nmodel compare_net {{\n    input {widths[0]}\n{layers}}}\n'


def compile_candidate(c: Candidate, widths, dtype: str = "float32"):
    import qvaf
    from qvaf.dsl import program_from_text

    return qvaf.compile(program_from_text(network_source(c, widths), f"<compare {c.label}>"), "compare_net",
                        dtype=dtype)


# ----------------------------------------------------------------------------- the MLP baseline


class MLP:
    """``in -> hidden -> out`` with tanh: the model protocol of :func:`qvaf.fit` in plain JAX.

    Weights are Glorot-uniform and biases zero, as the DSL's ``linear`` layers start.
    """

    def __init__(self, in_width: int, hidden: int, out_width: int):
        self.in_width, self.hidden, self.out_width = in_width, hidden, out_width
        self.dtype = "float32"

    def init(self, key):
        import jax
        import jax.numpy as jnp

        if isinstance(key, int):
            key = jax.random.PRNGKey(key)
        k1, k2 = jax.random.split(key)
        a, h, o = self.in_width, self.hidden, self.out_width
        l1, l2 = math.sqrt(6 / (a + h)), math.sqrt(6 / (h + o))
        return {"layer0": {"weight": jax.random.uniform(k1, (h, a), jnp.float32, -l1, l1),
                           "bias": jnp.zeros((h,), jnp.float32)},
                "layer1": {"weight": jax.random.uniform(k2, (o, h), jnp.float32, -l2, l2),
                           "bias": jnp.zeros((o,), jnp.float32)}}

    @property
    def trainable(self):
        return {"layer0": {"weight": True, "bias": True}, "layer1": {"weight": True, "bias": True}}

    @property
    def param_count(self) -> int:
        return mlp_params(self.in_width, self.hidden, self.out_width)

    def apply(self, params, x):
        import jax.numpy as jnp

        h = jnp.tanh(x @ params["layer0"]["weight"].T + params["layer0"]["bias"])
        return h @ params["layer1"]["weight"].T + params["layer1"]["bias"]


def mlp_params(a: int, h: int, o: int) -> int:
    return a * h + h + h * o + o


def mlp_width(target: int, a: int, o: int) -> int:
    """The hidden width whose MLP ``a -> h -> o`` has the parameter count closest to ``target``."""
    h = max(1, round((target - o) / (a + 1 + o)))
    return min((c for c in (h - 1, h, h + 1) if c >= 1), key=lambda c: (abs(mlp_params(a, c, o) - target), c))


# ----------------------------------------------------------------------------- one training run


def parse_budget(text) -> tuple[str, float]:
    """``"1000"`` -> ("steps", 1000); ``"45s"`` -> ("seconds", 45.0)."""
    s = str(text).strip().lower()
    try:
        if s.endswith("s"):
            v = float(s[:-1])
            if v > 0 and math.isfinite(v):
                return "seconds", v
        else:
            v = int(s)
            if v >= 1:
                return "steps", v
    except ValueError:
        pass
    raise CompareError(f"bad budget '{text}': a number of steps (1000) or of seconds (45s)")


def _train_config(steps: int, n_train: int):
    from .train_config import TrainConfig

    batch = BATCH if n_train > BATCH else None
    return TrainConfig(steps=steps, batch_size=batch, optimizer="adam", lr=LR, eval_every=steps,
                       log_every=min(CHUNK, steps), seed=0)


def _fit_budget(model, params, ds, budget, seed):
    """Train under ``budget``; returns (params, steps, seconds, stop_reason, message)."""
    import dataclasses

    from .train import fit

    kind, amount = budget
    t0 = time.perf_counter()
    if kind == "steps":
        cfg = dataclasses.replace(_train_config(int(amount), len(ds.x_train)), seed=seed)
        r = fit(model, params, ds, cfg)
        return r.state.params, r.state.step, time.perf_counter() - t0, r.stop_reason, r.message
    state = log = None
    steps = 0
    while True:
        steps += CHUNK
        cfg = dataclasses.replace(_train_config(steps, len(ds.x_train)), seed=seed, log_every=CHUNK)
        r = fit(model, params, ds, cfg, state=state, log=log)
        state, log = r.state, r.log
        if r.stop_reason != "steps" or time.perf_counter() - t0 >= amount:
            return state.params, state.step, time.perf_counter() - t0, r.stop_reason, r.message


def _spectrum_stats(model, params) -> dict:
    from qvaf.compiler.spectrum import SpectrumError, network_spectra

    try:
        spectra = network_spectra(model.ir, params)
    except SpectrumError as exc:
        return {"frequencies": None, "highest": None, "note": str(exc).split(": ", 1)[-1]}
    edges = [s for layer in spectra.values() for s in layer.values()]
    return {"frequencies": max(s.count(1e-9) for s in edges), "highest": max(s.highest_frequency(1e-9) for s in edges),
            "note": ""}


def run_job(job: dict) -> dict:
    """Train and evaluate one (candidate or MLP, task, seed); a plain dict in and out so it
    can run in a worker process."""
    import jax

    from .data import load_task
    from .steps import evaluate

    ds = load_task(job["task"])
    widths = job["widths"]
    if job["kind"] == "mlp":
        model = MLP(widths[0], job["mlp_hidden"], widths[-1])
    else:
        model = compile_candidate(Candidate(**job["candidate"]), widths)
    params = model.init(jax.random.PRNGKey(job["seed"]))
    params, steps, seconds, stop, message = _fit_budget(model, params, ds, tuple(job["budget"]), job["seed"])
    metric = "rmse" if ds.kind == "regression" else "accuracy"
    value = float("nan") if stop == "nan" else float(evaluate(model, params, ds.x_test, ds.y_test, ds.kind)[metric])
    rec = {"label": job["label"], "task": job["task"], "kind": ds.kind, "seed": job["seed"],
           "params": model.param_count, "metric": metric, "value": value, "steps": int(steps),
           "seconds": float(seconds), "stop_reason": stop, "message": message, "spectrum": None}
    if job["kind"] != "mlp" and job["seed"] == job["first_seed"]:
        rec["spectrum"] = _spectrum_stats(model, params)
    return rec


def _worker_init():
    # one XLA thread per worker process: J workers share J cores instead of oversubscribing
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()


# ----------------------------------------------------------------------------- the comparison


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def plan_jobs(candidates, tasks, *, seeds: int, budget, hidden: int | None = None, mlp: bool = True) -> list[dict]:
    """Every training run of a comparison as a job dict for :func:`run_job`, in table order."""
    from .data import load_task

    kind_budget = parse_budget(budget) if not isinstance(budget, tuple) else budget
    if seeds < 1:
        raise CompareError(f"seeds must be >= 1, got {seeds}")
    jobs = []
    for task in tasks:
        ds = load_task(task)
        h = hidden or DEFAULT_HIDDEN[ds.kind]
        widths = [ds.in_width, h, ds.out_width]
        first = compile_candidate(candidates[0], widths)
        for c in candidates:
            for seed in range(seeds):
                jobs.append({"kind": "qkan", "label": c.label, "candidate": asdict(c), "task": task, "seed": seed,
                             "first_seed": 0, "widths": widths, "budget": list(kind_budget)})
        if mlp:
            hm = mlp_width(first.param_count, ds.in_width, ds.out_width)
            label = f"MLP {ds.in_width}-{hm}-{ds.out_width} (tanh)"
            for seed in range(seeds):
                jobs.append({"kind": "mlp", "label": label, "task": task, "seed": seed, "first_seed": 0,
                             "widths": widths, "mlp_hidden": hm, "budget": list(kind_budget)})
    return jobs


def run_jobs(jobs: list[dict], n_jobs: int = 1, on_record=None) -> list[dict]:
    """Run ``jobs`` in this process (``n_jobs == 1``) or in ``n_jobs`` worker processes;
    records come back in job order."""
    records: list = [None] * len(jobs)
    if n_jobs <= 1 or len(jobs) <= 1:
        for k, job in enumerate(jobs):
            records[k] = run_job(job)
            if on_record:
                on_record(records[k], k, len(jobs))
        return records
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs)), mp_context=ctx, initializer=_worker_init) as pool:
        futures = {pool.submit(run_job, job): k for k, job in enumerate(jobs)}
        for fut in as_completed(futures):
            k = futures[fut]
            try:
                records[k] = fut.result()
            except BrokenProcessPool:
                job = jobs[k]
                raise CompareError(f"a worker process died while training {job['label']} on {job['task']} "
                                   f"(seed {job['seed']}); out of memory? try fewer --jobs") from None
            if on_record:
                on_record(records[k], k, len(jobs))
    return records


def summarize(records: list[dict]) -> list[dict]:
    """One row per (task, candidate): parameters, spectrum, metric mean and std, time, steps."""
    rows: dict = {}
    for r in records:
        key = (r["task"], r["label"])
        row = rows.setdefault(key, {"task": r["task"], "kind": r["kind"], "candidate": r["label"],
                                    "params": r["params"], "metric": r["metric"], "values": [], "seconds": [],
                                    "steps": [], "spectrum": None, "failures": []})
        row["values"].append(r["value"])
        if r.get("stop_reason") == "nan":
            row["failures"].append(f"seed {r['seed']}: {r.get('message', '')}")
        row["seconds"].append(r["seconds"])
        row["steps"].append(r["steps"])
        if r.get("spectrum") is not None:
            row["spectrum"] = r["spectrum"]
    out = []
    for row in rows.values():
        v = np.asarray(row["values"], np.float64)
        ok = v[np.isfinite(v)]
        out.append({**row, "mean": float(ok.mean()) if ok.size else float("nan"),
                    "std": float(ok.std(ddof=1)) if ok.size > 1 else 0.0,
                    "seeds": int(v.size), "mean_seconds": float(np.mean(row["seconds"])),
                    "mean_steps": float(np.mean(row["steps"]))})
    return out


def compare(specs, tasks, *, seeds: int = DEFAULT_SEEDS, budget=DEFAULT_BUDGET, jobs: int | None = None,
            hidden: int | None = None, ansatz_args: dict | None = None, mlp: bool = True, on_record=None) -> dict:
    """Train every candidate (and the MLP) on every task; returns settings, records and rows.

    Args:
        specs: candidates (see :func:`resolve_candidates`).
        tasks: task names (``qvaf tasks``).
        seeds: seeds per candidate and task (0 .. seeds - 1).
        budget: steps (``"1000"``, or an int) or seconds (``"60s"``).
        jobs: worker processes (default: the cores available).
        hidden: the hidden width of the standard network (default by task kind).
        ansatz_args: arguments for every candidate ansatz, e.g. ``{"reps": 2}``.
        mlp: add the parameter-matched MLP baseline.
        on_record: called as ``on_record(record, index, total)`` when a run finishes.
    """
    if not tasks:
        raise CompareError("compare needs at least one task (--task NAME)")
    candidates = resolve_candidates(specs, ansatz_args)
    parsed = parse_budget(budget)
    job_list = plan_jobs(candidates, list(dict.fromkeys(tasks)), seeds=seeds, budget=parsed, hidden=hidden, mlp=mlp)
    n_jobs = default_jobs() if jobs is None else jobs
    if n_jobs < 1:
        raise CompareError(f"jobs must be >= 1, got {n_jobs}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    records = run_jobs(job_list, n_jobs, on_record)
    wall = time.perf_counter() - t0
    settings = {"candidates": [asdict(c) for c in candidates], "tasks": list(dict.fromkeys(tasks)), "seeds": seeds,
                "budget": {"kind": parsed[0], "amount": parsed[1]}, "jobs": n_jobs,
                "hidden": hidden, "ansatz_args": dict(ansatz_args or {}), "batch": BATCH, "lr": LR,
                "optimizer": "adam", "dtype": "float32"}
    return {"settings": settings, "records": records, "rows": summarize(records), "wall_seconds": wall,
            "load_average_before": list(load) if load else None,
            "load_average_after": list(os.getloadavg()) if load else None, "cpus": default_jobs()}


# ----------------------------------------------------------------------------- reporting


def _spectrum_text(s) -> str:
    if s is None:
        return "-"
    if s["frequencies"] is None:
        return "n/a (" + s["note"].split(";")[0].split(" (")[0].replace("the data angle ", "") + ")"
    return f"{s['frequencies']} / {s['highest']:.3g}"


def markdown(result: dict) -> str:
    """The comparison as markdown tables, one per task."""
    lines = []
    for task in result["settings"]["tasks"]:
        rows = [r for r in result["rows"] if r["task"] == task]
        if not rows:
            continue
        metric = rows[0]["metric"]
        better = "lower is better" if metric == "rmse" else "higher is better"
        seeds = f"{rows[0]['seeds']} seed{'s' if rows[0]['seeds'] != 1 else ''}"
        lines += [f"**{task}** ({rows[0]['kind']}; test {metric}, {better}; mean ± std over {seeds})",
                  "", f"| candidate | params | spectrum: freqs / highest | test {metric} | train time (s) | steps |",
                  "|---|---:|---:|---:|---:|---:|"]
        notes = []
        for r in rows:
            value = f"{r['mean']:.4g} ± {r['std']:.2g}" if metric == "rmse" else \
                f"{100 * r['mean']:.2f} % ± {100 * r['std']:.2f}"
            if r["failures"]:
                value = "failed" if len(r["failures"]) == r["seeds"] else \
                    f"{value} ({len(r['failures'])} of {r['seeds']} runs failed)"
                notes.append(f"{r['candidate']}, {r['failures'][0]}")
            lines.append(f"| {r['candidate']} | {r['params']:,} | {_spectrum_text(r['spectrum'])} | {value} | "
                         f"{r['mean_seconds']:.1f} | {r['mean_steps']:.0f} |")
        lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    s = result["settings"]
    b = s["budget"]
    budget = f"{int(b['amount'])} steps" if b["kind"] == "steps" else f"{b['amount']:g} s"
    lines.append(f"Budget {budget} per run, {s['seeds']} seed{'s' if s['seeds'] != 1 else ''}, Adam lr {s['lr']:g}, "
                 f"batch {s['batch']}, float32; "
                 f"{len(result['records'])} runs in {result['wall_seconds']:.0f} s with {s['jobs']} "
                 f"parallel job(s) on {result['cpus']} core(s).")
    return "\n".join(lines) + "\n"


def write_outputs(result: dict, out: str) -> list[str]:
    """``compare.json``, ``compare.md`` and ``compare.png`` in ``out`` (written atomically)."""
    import json

    from .design_plots import plot_compare

    os.makedirs(out, exist_ok=True)
    files = [os.path.join(out, "compare.json"), os.path.join(out, "compare.md"), os.path.join(out, "compare.png")]
    write_atomic(files[0], json.dumps(json_safe(result), indent=1) + "\n")
    write_atomic(files[1], markdown(result))
    plot_compare(result, files[2])
    return files


def json_safe(value):
    """``value`` with non-finite floats as None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, fsync, rename."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".qvaf-", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise QvafError(f"cannot write '{path}': {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
