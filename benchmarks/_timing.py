"""The one timing helper of the benchmark scripts (standard library only, so the reference
worker in its own virtual environment imports it too)."""

from __future__ import annotations

import statistics
import time


def median_ms(fn, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in ms over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)
