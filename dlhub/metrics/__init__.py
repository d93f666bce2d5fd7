"""Metric modules for `evaluate`, shipped with the project and loaded by path, so they work without the Hub.

    from dlhub.metrics import load_metric
    load_metric("accuracy").compute(predictions=[1, 0], references=[1, 1])  # {"accuracy": 0.5}
"""

from __future__ import annotations

from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent
AVAILABLE = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())


def load_metric(name: str):
    import evaluate

    if name not in AVAILABLE:
        raise ValueError(f"unknown metric {name!r}: dlhub ships {AVAILABLE}")
    return evaluate.load(str(METRICS_DIR / name))
