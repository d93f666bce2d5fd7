"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time


def throughput(fn, batch, seconds: float) -> float:
    """Items per second of `fn(batch)` called repeatedly for about `seconds`."""
    fn(batch)  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(batch)
        done += len(batch)
    return done / (time.perf_counter() - start)


def latency_ms(fn, repeats: int) -> tuple[float, float]:
    """(median, p95) milliseconds of `fn()` over `repeats` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), sorted(times)[int(0.95 * (len(times) - 1))]
