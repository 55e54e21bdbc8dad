"""Start-up of ``qvaf train`` and ``qvaf eval`` with and without the persistent compilation cache.

Each command is a fresh process, timed wall clock from start to exit (interpreter start, JAX
import and compilation included): ``--repeats`` times with the cache off
(``QVAF_COMPILE_CACHE=off``), once to fill an empty cache folder, then ``--repeats`` times
with that folder warm. Medians are printed as a Markdown table. Run::

    python benchmarks/compile_cache.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: (label, spec, train arguments)
CASES = [
    ("regression [2, 5, 1], pz reps 3, 20 steps", "regression", ["--task", "toy_sin2", "--steps", "20"]),
    ("tests/data/tiny.qvaf [2, 1], 20 steps", str(ROOT / "tests" / "data" / "tiny.qvaf"),
     ["--task", "toy_sin2", "--steps", "20"]),
]


def _seconds(argv, cache) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT"))}
    env["QVAF_COMPILE_CACHE"] = str(cache)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qvaf", *argv], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(repeats: int) -> list[tuple[str, str, float, float, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (label, spec, train) in enumerate(CASES):
            cache = Path(tmp) / f"cache{n}"
            for command in ("train", "eval"):
                def argv(k, command=command, n=n, spec=spec, train=train):
                    run = str(Path(tmp) / f"run{n}_{k}")
                    if command == "train":
                        return ["train", spec, *train, "--quiet", "--out", run]
                    return ["eval", str(Path(tmp) / f"run{n}_fill")]

                off = [_seconds(argv(f"off{k}"), "off") for k in range(repeats)]
                fill = _seconds(argv("fill"), cache)
                warm = [_seconds(argv(f"warm{k}"), cache) for k in range(repeats)]
                rows.append((label, command, statistics.median(off), fill, statistics.median(warm)))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    print("| model | command | cache off (s) | filling the cache (s) | warm cache (s) | warm / off |")
    print("|---|---|---|---|---|---|")
    for label, command, off, fill, warm in measure(args.repeats):
        print(f"| {label} | {command} | {off:.2f} | {fill:.2f} | {warm:.2f} | {warm / off:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
