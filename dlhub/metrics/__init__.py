"""Metric modules for `evaluate`, shipped with the project and loaded by path, so they work without the Hub.

    from dlhub.metrics import load_metric
    load_metric("accuracy").compute(predictions=[1, 0], references=[1, 1])  # {"accuracy": 0.5}

`load_metric` returns a new metric object on every call: an `evaluate` metric writes its inputs to an Arrow table and
is not safe to share between threads (the Space serves many requests at once). `psnr` is plain numpy, computed per
call; the `psnr` evaluate module calls it, so there is one implementation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

METRICS_DIR = Path(__file__).resolve().parent
AVAILABLE = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())


def load_metric(name: str):
    """A new metric object of the shipped module, kept in memory (nothing written to the cache folder)."""
    import evaluate

    if name not in AVAILABLE:
        raise ValueError(f"unknown metric {name!r}: dlhub ships {AVAILABLE}")
    return evaluate.load(str(METRICS_DIR / name), keep_in_memory=True)


def psnr(predictions, references, data_range: float = 1.0) -> dict:
    """{"psnr": mean dB, "psnr_per_image": [...]} for lists of images (arrays of any shape, in [0, data_range]):
    10·log10(MAX² / MSE) per image (∞ for identical images), then the mean."""
    if len(predictions) == 0:
        raise ValueError("PSNR of an empty set is undefined")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    values = []
    for pred, ref in zip(predictions, references):
        pred, ref = np.asarray(pred, np.float64).reshape(-1), np.asarray(ref, np.float64).reshape(-1)
        if pred.shape != ref.shape:
            raise ValueError(f"prediction has {pred.size} values, its reference {ref.size}")
        mse = np.mean((pred - ref) ** 2)
        values.append(float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse)))
    return {"psnr": float(np.mean(values)), "psnr_per_image": values}
