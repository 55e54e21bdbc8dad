"""Train-step time of data-parallel training at 1 and 2 devices (``fit(..., devices=N)``).

On a CPU the devices are host-platform devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``, set here before JAX starts): they
share the machine's cores, so this measures what the sharded program costs on top of the
unsharded one (partitioning, all-reduce, padding), not a speed-up; on a machine with several
GPUs the same script measures the speed-up. Each timing is the median over ``--repeats`` runs
of ``fit`` for ``--steps`` Adam steps after a warm-up run that compiles (the compiled chunk is
kept on the model), divided by the steps; the device counts' runs alternate. Writes benchmarks/sharding.json and
benchmarks/SHARDING.md. Run::

    python benchmarks/sharding.py [--devices 1,2] [--repeats 7] [--steps 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PZ = HERE.parent / "specs" / "ansatz" / "pz.qvaf"

#: (batch, widths, reps): two of the configurations of benchmarks/bench_forward.py
CONFIGS = [(1024, [16, 16], 3), (4096, [2, 5, 1], 3)]


def model_text(widths, reps):
    layers = "\n".join(f"    kan {w} using pz(reps = {reps})" for w in widths[1:])
    return PZ.read_text() + f"\nmodel bench {{\n    input {widths[0]}\n{layers}\n}}\n"


def step_ms(batch, widths, reps, counts, steps, repeats) -> dict[int, float]:
    """Median ms per step for each device count, the counts' runs interleaved (so that a change
    of the machine's load during the measurement falls on all of them alike)."""
    import jax
    import numpy as np

    import qvaf
    from qvaf.dsl import program_from_text
    from qvaf.runtime.data import Dataset
    from qvaf.runtime.train import TrainConfig

    model = qvaf.compile(program_from_text(model_text(widths, reps)), dtype="float32")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4 * batch, widths[0]))
    y = rng.uniform(-1, 1, (4 * batch, widths[-1]))
    data = Dataset("bench", "regression", x, y, x[:0], y[:0], x[:8], y[:8])
    config = TrainConfig(steps=steps, batch_size=batch, eval_every=steps, log_every=steps)
    params = model.init(jax.random.PRNGKey(0))
    for n in counts:
        qvaf.fit(model, params, data, config, devices=n)  # compile
    times = {n: [] for n in counts}
    for _ in range(repeats):
        for n in counts:
            t0 = time.perf_counter()
            qvaf.fit(model, params, data, config, devices=n)
            times[n].append(time.perf_counter() - t0)
    return {n: 1e3 * statistics.median(t) / steps for n, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,2")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    counts = [int(d) for d in args.devices.split(",")]
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={max(counts)}")
    import jax

    rows = []
    for batch, widths, reps in CONFIGS:
        row = {"batch": batch, "widths": widths, "reps": reps}
        for n, ms in step_ms(batch, widths, reps, counts, args.steps, args.repeats).items():
            row[f"ms_{n}"] = ms
        rows.append(row)
        print(json.dumps(row), flush=True)
    load = os.getloadavg()
    meta = {"command": "python benchmarks/sharding.py " + " ".join(sys.argv[1:]), "jax": jax.__version__,
            "devices": [str(d) for d in jax.devices()], "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "load_average": load, "steps": args.steps, "repeats": args.repeats}
    (HERE / "sharding.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    head = "| batch, widths, reps | " + " | ".join(f"{n} device{'s' if n > 1 else ''} (ms/step)" for n in counts)
    head += " | " + " | ".join(f"{n} / 1" for n in counts[1:]) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(counts) - 1)]
    for r in rows:
        lines.append(f"| {r['batch']}, {r['widths']}, {r['reps']} | "
                     + " | ".join(f"{r[f'ms_{n}']:.2f}" for n in counts) + " | "
                     + " | ".join(f"{r[f'ms_{n}'] / r['ms_1']:.2f}" for n in counts[1:]) + " |")
    text = f"""# Data-parallel train steps at {', '.join(map(str, counts))} devices

`{meta['command']}` (jax {meta['jax']}, {meta['cpu_count']} CPU cores, {meta['platform']}).

The devices are host-platform CPU devices sharing the machine's {meta['cpu_count']} cores, so no
speed-up is expected: the ratio is the cost of the sharded program (partitioned step, gradient
all-reduce, host round trip of the state per chunk of {args.steps} steps) on the same cores. The
machine was shared with other jobs during the run (load average {load[0]:.1f}, {load[1]:.1f},
{load[2]:.1f} over 1, 5, 15 minutes). Float32 Adam steps, median of {args.repeats} runs of
{args.steps} steps after a compiling warm-up, the device counts' runs interleaved.

{chr(10).join(lines)}
"""
    (HERE / "SHARDING.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
