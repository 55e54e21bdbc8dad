"""Side by side with the reference package: qvaf vs ``qkan`` 0.2.3 vs the sincos floor.

One command measures, per configuration and in one run (both sides interleaved, so a change
of machine load hits both):

* qvaf (JAX backend, float32): forward ``model.apply`` and a full train step
  (``jax.value_and_grad`` of the MSE + an optax Adam update), jitted and warm;
* the reference ``qkan`` 0.2.3 (PyTorch, CPU, ``torch.set_num_threads(2)``, float32):
  forward and train step (``loss.backward()`` + ``torch.optim.Adam.step()``) for the solvers
  ``exact`` and ``cutn`` and both readouts (``fast_measure`` True and False), run in its own
  virtual environment by ``_qkan_worker.py`` (a subprocess that reads one configuration as
  JSON per line and answers one JSON line);
* the sincos floor: numpy's vectorised ``sin`` and ``cos`` of B·in·out·L float32 angles;
* the peak memory of a train step on both sides (see ``docs/performance.md``);
* the compile latency (``qvaf.compile`` + first call) of every spec in ``specs/``, each in
  a fresh process.

Modes: ``default`` (the reference's defaults: fixed pre-activations, data angle x; our
``pz`` ansatz) and ``like`` (trainable pre-activations w·x + b on both sides:
``preact_trainable=True``, our ``daruan`` ansatz). Run::

    python benchmarks/compare_qkan.py            # the full run (writes RESULTS.md and JSON)
    python benchmarks/compare_qkan.py --quick    # fewer repeats and configurations, printed
                                                 # (and compare_qkan.quick.json), RESULTS.md untouched

The reference's virtual environment is created on first use under
``benchmarks/.venv-qkan`` (``pip install torch==2.13.0 qkan==0.2.3``, a CPU build of torch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _timing import median_ms  # noqa: E402 - benchmarks/ is the script directory

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv-qkan"
WORKER = HERE / "_qkan_worker.py"
RESULTS_MD = HERE / "RESULTS.md"
RESULTS_JSON = HERE / "compare_qkan.json"
QUICK_JSON = HERE / "compare_qkan.quick.json"
MARK = "<!-- compare_qkan -->"
REFERENCE_PINS = ("torch==2.13.0", "qkan==0.2.3")

#: (batch, widths, reps): the configurations of DESIGN.md section 4
CONFIGS = [
    (1024, [16, 16], 3),
    (256, [64, 64], 3),
    (4096, [2, 5, 1], 3),
    (512, [32, 32, 32], 5),
]
MODES = ("default", "like")
#: the ansatz of each mode: fixed pre-activations (x) / trainable ones (w x + b)
ANSATZ = {"default": "pz", "like": "daruan"}


# ----------------------------------------------------------------------------- timing


def sincos_pairs(batch, widths, reps) -> int:
    """B·in·out·L summed over layers: the number of data angles a layer evaluates."""
    return sum(batch * i * o * reps for i, o in zip(widths, widths[1:]))


def sincos_floor_ms(n: int, repeats: int) -> float:
    """numpy's vectorised float32 sin + cos of ``n`` angles in [-1, 1] (one thread)."""
    a = np.random.default_rng(0).uniform(-1, 1, n).astype(np.float32)
    s, c = np.empty_like(a), np.empty_like(a)

    def run():
        np.sin(a, out=s)
        np.cos(a, out=c)

    return median_ms(run, repeats)


# ----------------------------------------------------------------------------- our side


def model_text(widths, reps, mode) -> str:
    ansatz = ANSATZ[mode]
    spec = (ROOT / "specs" / "ansatz" / f"{ansatz}.qvaf").read_text()
    layers = "\n".join(f"    kan {w} using {ansatz}(reps = {reps})" for w in widths[1:])
    return spec + f"\nmodel bench {{\n    input {widths[0]}\n{layers}\n}}\n"


def train_step_fn(model, optimizer):
    """``step(trainable, fixed, opt_state, x, y) -> (loss, trainable, opt_state)``: MSE,
    value_and_grad over the trainable arrays, one optimizer update."""
    import jax
    import jax.numpy as jnp
    import optax

    def merge(trainable, fixed):
        return {k: {**trainable.get(k, {}), **fixed.get(k, {})} for k in {*trainable, *fixed}}

    def loss(trainable, fixed, x, y):
        return jnp.mean((model.apply(merge(trainable, fixed), x) - y) ** 2)

    def step(trainable, fixed, opt_state, x, y):
        value, grads = jax.value_and_grad(loss)(trainable, fixed, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return value, optax.apply_updates(trainable, updates), opt_state

    return jax.jit(step)


def split_params(model, params):
    marks = model.trainable
    trainable = {k: {n: a for n, a in v.items() if marks[k][n]} for k, v in params.items()}
    fixed = {k: {n: a for n, a in v.items() if not marks[k][n]} for k, v in params.items()}
    return trainable, fixed


def step_memory_bytes(compiled) -> dict:
    """XLA's buffer assignment of a compiled step: the bytes it allocates beyond its
    arguments (temporaries + outputs not aliased to an argument) and the arguments."""
    m = compiled.memory_analysis()
    extra = m.temp_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
    return {"step_bytes": int(extra), "argument_bytes": int(m.argument_size_in_bytes)}


def ours(batch, widths, reps, mode, repeats) -> dict:
    import jax
    import jax.numpy as jnp
    import optax

    import qvaf
    from qvaf.dsl import program_from_text

    model = qvaf.compile(program_from_text(model_text(widths, reps, mode)), dtype="float32")
    params = model.init(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-1, 1, (batch, widths[0])), jnp.float32)
    y = jnp.asarray(rng.uniform(-1, 1, (batch, widths[-1])), jnp.float32)
    optimizer = optax.adam(jnp.float32(1e-3))
    trainable, fixed = split_params(model, params)
    opt_state = optimizer.init(trainable)

    forward = jax.jit(model.apply)
    step = train_step_fn(model, optimizer)
    t0 = time.perf_counter()
    jax.block_until_ready(forward(params, x))
    compile_fwd = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(step(trainable, fixed, opt_state, x, y))
    compile_step = time.perf_counter() - t0
    memory = step_memory_bytes(step.lower(trainable, fixed, opt_state, x, y).compile())

    fwd = median_ms(lambda: jax.block_until_ready(forward(params, x)), repeats)
    state = [trainable, opt_state]

    def one_step():
        _, state[0], state[1] = jax.block_until_ready(step(state[0], fixed, state[1], x, y))

    train = median_ms(one_step, repeats)
    return {"forward_ms": fwd, "train_ms": train, "compile_forward_s": compile_fwd,
            "compile_step_s": compile_step, **memory, "params": model.param_count}


# ----------------------------------------------------------------------------- reference side


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_reference_venv() -> None:
    """Create ``benchmarks/.venv-qkan`` with the pinned reference packages if it lacks them."""
    py = venv_python()
    probe = "import torch, qkan, importlib.metadata as m; print(torch.__version__, m.version('qkan'))"
    if py.exists():
        done = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
        if done.returncode == 0:
            return
    print(f"creating {VENV.relative_to(ROOT)} with {' '.join(REFERENCE_PINS)} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *REFERENCE_PINS], check=True)
    subprocess.run([str(py), "-c", probe], check=True)


class Reference:
    """The reference worker: one subprocess in the reference venv, one JSON line each way."""

    def __init__(self):
        self.log = open(VENV / "worker.log", "w")
        self.proc = subprocess.Popen([str(venv_python()), str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=str(HERE))
        self.info = self.ask({"op": "info"})

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the reference worker died on {request}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the reference worker failed on {request}: {answer['error']}")
        return answer

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


# ----------------------------------------------------------------------------- compile latency


def spec_files() -> list[Path]:
    return sorted((ROOT / "specs").rglob("*.qvaf"))


def compile_one(path: str) -> dict:
    """``qvaf.compile(path)`` + the first call of ``apply`` on 8 samples, in this process
    (JAX's backend started first, so its one-off start-up is not counted)."""
    import jax
    import jax.numpy as jnp

    import qvaf

    jax.block_until_ready(jnp.zeros(1) + 1)
    t0 = time.perf_counter()
    model = qvaf.compile(path)
    t1 = time.perf_counter()
    params = model.init(0)
    x = jnp.zeros((8, model.in_width), jnp.float32) + 0.25
    jax.block_until_ready(model.apply(params, x))
    t2 = time.perf_counter()
    return {"compile_s": t1 - t0, "first_call_s": t2 - t1, "total_s": t2 - t0}


def compile_latencies() -> dict:
    out = {}
    for path in spec_files():
        done = subprocess.run([sys.executable, __file__, "--compile-one", str(path)],
                              capture_output=True, text=True, cwd=str(ROOT))
        name = str(path.relative_to(ROOT))
        if done.returncode != 0:
            out[name] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
        else:
            out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


# ----------------------------------------------------------------------------- the run


def machine() -> dict:
    import jax
    import optax

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "load_start": load, "python": platform.python_version(),
            "jax": jax.__version__, "optax": optax.__version__, "numpy": np.__version__,
            "jax_device": jax.devices()[0].device_kind}


def best_reference(ref: dict, key: str) -> tuple[float, str]:
    """The reference's fastest solver/readout for ``key`` (forward_ms or train_ms)."""
    name, value = min(((k, v[key]) for k, v in ref["variants"].items() if v.get(key) is not None),
                      key=lambda kv: kv[1])
    return value, name


def run(quick: bool) -> dict:
    repeats = 5 if quick else 15
    configs = CONFIGS[:1] + CONFIGS[2:3] if quick else CONFIGS
    load_start = os.getloadavg()
    ensure_reference_venv()
    ref = Reference()
    rows = []
    try:
        for batch, widths, reps in configs:
            for mode in MODES:
                label = f"{batch}, {widths}, {reps} / {mode}"
                print(f"{label}: qvaf ...", file=sys.stderr, flush=True)
                mine = ours(batch, widths, reps, mode, repeats)
                print(f"{label}: qkan ...", file=sys.stderr, flush=True)
                theirs = ref.ask({"op": "bench", "batch": batch, "widths": widths, "reps": reps,
                                  "preact_trainable": mode == "like", "repeats": repeats})
                n = sincos_pairs(batch, widths, reps)
                floor = sincos_floor_ms(n, repeats)
                rows.append({"batch": batch, "widths": widths, "reps": reps, "mode": mode,
                             "qvaf": mine, "qkan": theirs, "sincos_pairs": n, "sincos_floor_ms": floor})
    finally:
        ref.close()
    print("compile latency ...", file=sys.stderr, flush=True)
    latency = compile_latencies()
    info = machine()
    info["load_start"], info["load_end"] = load_start, os.getloadavg()
    return {"command": "python benchmarks/compare_qkan.py" + (" --quick" if quick else ""),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "repeats": repeats,
            "machine": info, "reference": ref.info, "rows": rows, "compile_latency": latency}


# ----------------------------------------------------------------------------- report


def _mb(b) -> str:
    return f"{b / 2**20:.1f}"


def report(result: dict) -> str:
    m, r = result["machine"], result["reference"]
    lines = [
        MARK,
        "## 5. Side by side with the reference qkan and the sincos floor",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"Run {result['date']} on {m['cpu']} ({m['cpu_count']} cores, no GPU); 1-minute load average "
        f"{m['load_start'][0]:.1f} at the start and {m['load_end'][0]:.1f} at the end "
        "(above 1 means other jobs shared the cores and the absolute times are pessimistic); both "
        "sides were measured interleaved per row, so the ratios are the numbers to read. "
        f"qvaf: JAX {m['jax']}, optax {m['optax']}, float32, jitted. Reference: qkan {r['qkan']}, "
        f"torch {r['torch']} (CPU build), float32, `torch.set_num_threads({r['threads']})`. "
        f"Medians of {result['repeats']} after warm-up; train step = value_and_grad (backward) + Adam update.",
        "",
        "| config (batch, widths, reps) | mode | qvaf fwd / train (ms) | qkan best fwd / train (ms) "
        "| train speed-up | qvaf train / fwd | sincos floor (ms) | qvaf fwd / floor | train-step memory qvaf / qkan (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        q, ref = row["qvaf"], row["qkan"]
        bf, nf = best_reference(ref, "forward_ms")
        bt, nt = best_reference(ref, "train_ms")
        mem_ref = min(v["step_peak_bytes"] for v in ref["variants"].values() if v.get("step_peak_bytes") is not None)
        lines.append(
            f"| {row['batch']}, {row['widths']}, {row['reps']} | {row['mode']} | {q['forward_ms']:.2f} / "
            f"{q['train_ms']:.2f} | {bf:.1f} / {bt:.1f} ({nt}) | {bt / q['train_ms']:.1f}× | "
            f"{q['train_ms'] / q['forward_ms']:.1f}× | {row['sincos_floor_ms']:.2f} | "
            f"{q['forward_ms'] / row['sincos_floor_ms']:.2f}× | {_mb(q['step_bytes'])} / {_mb(mem_ref)} |")
    lines += [
        "",
        "\"qkan best\" is the fastest of its solvers exact and cutn with either readout "
        "(`fast_measure` True = |α|−|β|, False = ⟨Z⟩); the train-step variant it came from is in brackets. "
        "Memory: for qvaf, XLA's buffer assignment of the compiled step (temporaries + outputs not "
        "aliased to inputs); for qkan, the peak of the bytes allocated during one step above those "
        "live before it (torch profiler, `profile_memory=True`), the lowest over its variants. "
        "Neither counts the parameters, optimizer state and batch that exist before the step.",
        "",
        "Every reference variant (forward / train step in ms, step memory in MiB):",
        "",
        "| config | mode | " + " | ".join(sorted(result["rows"][0]["qkan"]["variants"])) + " |",
        "|---|---|" + "---|" * len(result["rows"][0]["qkan"]["variants"]),
    ]
    for row in result["rows"]:
        cells = []
        for name in sorted(row["qkan"]["variants"]):
            v = row["qkan"]["variants"][name]
            if v.get("error"):
                cells.append(f"failed: {v['error'][:40]}")
            else:
                cells.append(f"{v['forward_ms']:.1f} / {v['train_ms']:.1f} ({_mb(v['step_peak_bytes'])})")
        lines.append(f"| {row['batch']}, {row['widths']}, {row['reps']} | {row['mode']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Compile latency (`qvaf.compile(path)` + `init` + the first `apply` on 8 samples, float32, each spec "
        "in a fresh process with JAX's backend already started):",
        "",
        "| spec | compile (s) | first call (s) | total (s) |",
        "|---|---|---|---|",
    ]
    for name, v in result["compile_latency"].items():
        if "error" in v:
            lines.append(f"| {name} | failed: {v['error']} | | |")
        else:
            lines.append(f"| {name} | {v['compile_s']:.2f} | {v['first_call_s']:.2f} | {v['total_s']:.2f} |")
    lines += ["", "Raw numbers: `benchmarks/compare_qkan.json`.", MARK]
    return "\n".join(lines) + "\n"


def write_results(result: dict, md_path: Path = RESULTS_MD, json_path: Path = RESULTS_JSON) -> None:
    """Write the JSON and replace (or append) the marked section of RESULTS.md, atomically."""
    section = report(result)
    text = md_path.read_text() if md_path.exists() else ""
    pattern = re.compile(re.escape(MARK) + r".*?" + re.escape(MARK) + r"\n?", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    for path, content in ((md_path, text), (json_path, json.dumps(result, indent=1) + "\n")):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(content)
        os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two configurations, 5 repeats (development)")
    parser.add_argument("--compile-one", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compile_one:
        print(json.dumps(compile_one(args.compile_one)))
        return 0
    result = run(args.quick)
    if args.quick:  # a development run never replaces the recorded one
        QUICK_JSON.write_text(json.dumps(result, indent=1) + "\n")
    else:
        write_results(result)
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
