"""The catalyst backend's cost per circuit next to the JAX backend's, on one configuration.

The regression spec (``specs/models/regression.qvaf``: [2, 5, 1], pz edges with reps 3, 15
edge circuits per sample) on a batch of 256, so one network evaluation runs 256 * 15 = 3840
edge circuits. Both backends compute in float64 (lightning.qubit's precision); the JAX
backend also in float32, its training precision. Timed, as medians of ``--repeats`` calls
after a warm-up call (compilation excluded, ``block_until_ready``):

* value: the jitted ``model.apply(params, x)``;
* value+grad: the jitted ``jax.value_and_grad`` of the mean squared error w.r.t. every
  parameter (for catalyst: one ``value_and_grad`` program run plus the chain rule in JAX);
* program: for catalyst, its compiled value program alone on the 3840 rows (no JAX around it).

Per circuit = time / 3840. Results go to ``benchmarks/catalyst_cost.json`` and to their own
section of ``benchmarks/RESULTS.md`` (between ``<!-- catalyst_cost -->`` markers). Run::

    python benchmarks/catalyst_cost.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent / "specs" / "models" / "regression.qvaf"
BATCH = 256
BEGIN, END = "<!-- catalyst_cost -->", "<!-- /catalyst_cost -->"
COMMAND = "python benchmarks/catalyst_cost.py"


def median_s(fn, repeats: int) -> float:
    fn()  # warm-up (compiled already by the caller's first call)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(repeats: int) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)  # a program that wants float64 turns the mode on
    import jax.numpy as jnp

    import qvaf
    from qvaf.compiler.backends import catalyst_backend

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (BATCH, 2))
    y = np.sin(np.pi * x[:, :1]) * np.cos(np.pi * x[:, 1:])
    rows = {}
    for name, backend, dtype in (("jax float32", "jax", "float32"), ("jax float64", "jax", "float64"),
                                 ("catalyst float64", "catalyst", "float64")):
        model = qvaf.compile(SPEC, backend=backend, dtype=dtype)
        params = model.init(jax.random.PRNGKey(0))
        xs, ys = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
        apply = jax.jit(model.apply)
        step = jax.jit(jax.value_and_grad(lambda p: jnp.mean((model.apply(p, xs) - ys) ** 2)))
        t0 = time.perf_counter()
        jax.block_until_ready(apply(params, xs))
        jax.block_until_ready(step(params))
        compile_s = time.perf_counter() - t0
        circuits = BATCH * sum(model.ir.nodes[n]["op"].edges for n in model.layers)
        row = {"circuits": circuits, "first_calls_s": compile_s,
               "value_s": median_s(lambda: jax.block_until_ready(apply(params, xs)), repeats),
               "value_grad_s": median_s(lambda: jax.block_until_ready(step(params)), repeats)}
        if backend == "catalyst":
            node = model.ir.nodes["layer0"]["op"]
            prog = catalyst_backend.program(catalyst_backend.signature(node.kernel))
            table = np.random.default_rng(1).uniform(-np.pi, np.pi, (circuits, prog.width))
            prog(table)
            row["program_s"] = median_s(lambda: prog(table), repeats)
            row["compilations"] = catalyst_backend.compile_count()
        for k in ("value_s", "value_grad_s", "program_s"):
            if k in row:
                row[k.replace("_s", "_us_per_circuit")] = 1e6 * row[k] / circuits
        rows[name] = row
    cat, ref = rows["catalyst float64"], rows["jax float64"]
    return {"command": COMMAND, "spec": "specs/models/regression.qvaf", "batch": BATCH, "repeats": repeats,
            "load_average": [round(v, 2) for v in os.getloadavg()], "cpu_count": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows,
            "ratio_value": cat["value_s"] / ref["value_s"], "ratio_value_grad": cat["value_grad_s"] / ref["value_grad_s"]}


def section(result: dict) -> str:
    lines = [BEGIN, "## Catalyst backend: cost per circuit", "",
             "```", result["command"] + f" --repeats {result['repeats']}", "```", "",
             f"Regression spec ([2, 5, 1], pz reps 3), batch {result['batch']}: "
             f"{result['rows']['jax float64']['circuits']} edge circuits per evaluation. Medians of "
             f"{result['repeats']} calls after a warm-up; measured {result['date']} on the shared "
             f"{result['cpu_count']}-core machine, **loaded by other jobs** (load average "
             f"{', '.join(str(v) for v in result['load_average'])}): absolute times are pessimistic, the ratio is "
             "the number to read.", "",
             "| backend | value | value+grad | value per circuit | value+grad per circuit | first calls (compile) |",
             "|---|---|---|---|---|---|"]
    for name, row in result["rows"].items():
        lines.append(f"| {name} | {1e3 * row['value_s']:.3g} ms | {1e3 * row['value_grad_s']:.3g} ms | "
                     f"{row['value_us_per_circuit']:.3g} µs | {row['value_grad_us_per_circuit']:.3g} µs | "
                     f"{row['first_calls_s']:.2f} s |")
    cat = result["rows"]["catalyst float64"]
    lines += ["", f"Catalyst / JAX (float64): **{result['ratio_value']:.0f}×** the time for values, "
                  f"**{result['ratio_value_grad']:.0f}×** for value+grad. The catalyst value program alone "
                  f"(no JAX around it) takes {cat['program_us_per_circuit']:.3g} µs per circuit; "
                  f"{cat['compilations']} compilations in all (value and value_and_grad programs of the one "
                  "circuit both layers share).", END]
    return "\n".join(lines)


def write(result: dict) -> None:
    """The JSON file and this script's own section of RESULTS.md, each replaced atomically."""
    def atomic(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    atomic(HERE / "catalyst_cost.json", json.dumps(result, indent=2) + "\n")
    results = HERE / "RESULTS.md"
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section(result) + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section(result) + "\n"
    atomic(results, text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--no-write", action="store_true", help="print the JSON only")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    result = measure(args.repeats)
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
