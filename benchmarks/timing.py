"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from pathlib import Path


@contextlib.contextmanager
def in_pytorch():
    """Inside: dlhub runs its models in PyTorch (DLHUB_ONNX=0), to measure what ONNX Runtime saves; the variable is
    restored after."""
    before = os.environ.get("DLHUB_ONNX")
    os.environ["DLHUB_ONNX"] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["DLHUB_ONNX"]
        else:
            os.environ["DLHUB_ONNX"] = before


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


class Report:
    """The Markdown a benchmark prints. `save` also writes it into the script's own block of a model card (the card
    of the model that was measured), so the card's numbers come from this run, never from a hand copy."""

    def __init__(self, script: str):
        self.script, self.lines = script, []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)  # long benchmarks show each row as it is measured
        self.lines.append(text)

    def finish(self, card_folder: str | None, json_path: str | None, results: dict) -> dict:
        """Write the report into the model card in `card_folder` and the numbers to `json_path`, each when given."""
        if card_folder:
            from dlhub.cards import fill_card_block

            path = fill_card_block(card_folder, f"benchmarks/{self.script}", "\n".join(self.lines) + "\n")
            print(f"\nwritten into {path}")
        if json_path:
            Path(json_path).write_text(json.dumps(results, indent=2))
        return results


def add_card_argument(parser) -> None:
    parser.add_argument("--card", default=None, metavar="FOLDER",
                        help="also write the report into the model card in FOLDER (e.g. checkpoints/<task>)")
