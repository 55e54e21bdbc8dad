"""Size, compile time and speed of the forward and train-step programs of a few specs.

For each spec, float32, a batch of 256 uniform inputs in [-1, 1): the jitted forward
``model.apply(params, x)`` and the jitted ``jax.value_and_grad`` of the mean squared output,
each compiled once (wall time of ``.compile()``), then timed as the median of ``--repeats``
calls after a warm-up (``block_until_ready``); "HLO lines" counts the optimised program's
text. Run::

    python benchmarks/train_program.py [--repeats 30] [SPEC ...]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _timing import median_ms  # noqa: E402 - benchmarks/ is the script directory

SPECS = ["regression", "digits", "benchmarks/expsin.qvaf"]


def measure(spec: str, repeats: int) -> list[tuple[str, float, float, int]]:
    import jax
    import jax.numpy as jnp

    import qvaf

    model = qvaf.compile(spec, dtype="float32")
    params = model.init(jax.random.PRNGKey(0))
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (256, model.in_width)), jnp.float32)
    programs = {"forward": lambda p: model.apply(p, x),
                "train step": jax.value_and_grad(lambda p: jnp.mean(model.apply(p, x) ** 2))}
    rows = []
    for name, fn in programs.items():
        lowered = jax.jit(fn).lower(params)
        start = time.perf_counter()
        compiled = lowered.compile()
        seconds = time.perf_counter() - start
        ms = median_ms(lambda: jax.block_until_ready(compiled(params)), repeats)
        rows.append((name, seconds, ms, compiled.as_text().count("\n")))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="*", default=SPECS)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    print("| spec | program | compile (s) | run (ms) | HLO lines |")
    print("|---|---|---|---|---|")
    for spec in args.specs:
        for name, seconds, ms, lines in measure(spec, args.repeats):
            print(f"| {spec} | {name} | {seconds:.2f} | {ms:.3f} | {lines} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
