"""Forward and train-step timings of the JAX backend on the configurations of DESIGN.md §4.

Each configuration is a QKAN of pz layers (the reference's default ansatz: fixed
pre-activations, so the data angle is exactly x) compiled in float32. Timings are medians
over repeats of the jitted, warmed-up function (``block_until_ready``):

* forward: ``model.apply(params, x)``
* train step: ``jax.value_and_grad`` of the mean squared error w.r.t. all parameters

The last columns give the sincos floor of DESIGN.md §4 (1.3 ns per sin/cos pair) for
B * in * out * reps pairs, and for B * in * reps pairs when the sincos is hoisted out of the
output index (what the kernel does here). Run::

    python benchmarks/bench_forward.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _timing import median_ms  # noqa: E402 - benchmarks/ is the script directory

#: (batch, widths, reps) from DESIGN.md §4
CONFIGS = [
    (1024, [16, 16], 3),
    (256, [64, 64], 3),
    (4096, [2, 5, 1], 3),
    (512, [32, 32, 32], 5),
]

PZ = Path(__file__).resolve().parents[1] / "specs" / "ansatz" / "pz.qvaf"


def model_text(widths, reps):
    layers = "\n".join(f"    kan {w} using pz(reps = {reps})" for w in widths[1:])
    return PZ.read_text() + f"\nmodel bench {{\n    input {widths[0]}\n{layers}\n}}\n"


def run(repeats: int):
    import jax
    import jax.numpy as jnp

    import qvaf
    from qvaf.dsl import program_from_text

    rows = []
    for batch, widths, reps in CONFIGS:
        model = qvaf.compile(program_from_text(model_text(widths, reps)), dtype="float32")
        params = model.init(jax.random.PRNGKey(0))
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.uniform(-1, 1, (batch, widths[0])), jnp.float32)
        y = jnp.asarray(rng.uniform(-1, 1, (batch, widths[-1])), jnp.float32)

        forward = jax.jit(model.apply)
        step = jax.jit(jax.value_and_grad(lambda p: jnp.mean((model.apply(p, x) - y) ** 2)))
        t0 = time.perf_counter()
        jax.block_until_ready(forward(params, x))
        t_fwd_compile = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(step(params))
        t_step_compile = time.perf_counter() - t0

        fwd = median_ms(lambda: jax.block_until_ready(forward(params, x)), repeats)
        trn = median_ms(lambda: jax.block_until_ready(step(params)), repeats)
        pairs = sum(batch * i * o * reps for i, o in zip(widths, widths[1:]))
        hoisted = sum(batch * i * reps for i in widths[:-1])
        rows.append((batch, widths, reps, fwd, trn, 1.3e-6 * pairs, 1.3e-6 * hoisted,
                     t_fwd_compile, t_step_compile))

    print(f"jax {jax.__version__}, device {jax.devices()[0].device_kind}, float32, median of {repeats}\n")
    print("| config (batch, widths, reps) | forward (ms) | train step (ms) | sincos floor B·in·out·L (ms) "
          "| hoisted floor B·in·L (ms) | compile fwd / step (s) |")
    print("|---|---|---|---|---|---|")
    for batch, widths, reps, fwd, trn, floor, hfloor, cf, cs in rows:
        print(f"| {batch}, {widths}, {reps} | {fwd:.2f} | {trn:.2f} | {floor:.2f} | {hfloor:.3f} | {cf:.1f} / {cs:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    run(parser.parse_args().repeats)


if __name__ == "__main__":
    main()
