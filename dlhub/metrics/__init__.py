"""Metric modules for `evaluate`, shipped with the project and loaded by path, so they work without the Hub.

    from dlhub.metrics import load_metric
    load_metric("accuracy").compute(predictions=[1, 0], references=[1, 1])  # {"accuracy": 0.5}
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

METRICS_DIR = Path(__file__).resolve().parent
AVAILABLE = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())


@functools.cache
def load_metric(name: str):
    """The metric module, loaded once per process and kept in memory (nothing written to the cache folder)."""
    import evaluate

    if name not in AVAILABLE:
        raise ValueError(f"unknown metric {name!r}: dlhub ships {AVAILABLE}")
    return evaluate.load(str(METRICS_DIR / name), keep_in_memory=True)


def psnr(predictions, references, data_range: float = 1.0) -> dict:
    """{"psnr": mean dB, "psnr_per_image": [...]} for lists of images (arrays of any shape, in [0, data_range])."""
    flat = lambda images: [np.asarray(x, np.float32).reshape(-1) for x in images]  # noqa: E731
    return load_metric("psnr").compute(predictions=flat(predictions), references=flat(references),
                                       data_range=data_range)
