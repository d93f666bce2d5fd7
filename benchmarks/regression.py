"""Robust regression (course Task 1): the bundled reweighted fit's validation MSE beside ordinary least squares (the
reference), the logistic model's test accuracy, and the latency of `predict` on 1,000 points.

    python benchmarks/regression.py                       # prints a Markdown table
    python benchmarks/regression.py --json results.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from timing import Report, add_card_argument, latency_ms  # benchmarks/timing.py (run from its folder)

import dlhub
from dlhub.data.task1 import read_task1_dir
from dlhub.regression import mse

ROOT = Path(__file__).resolve().parent.parent


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a model folder or Hub repo id (default: dlhub.load('regression'))")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "task1"))
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--json", default=None)
    add_card_argument(p)
    args = p.parse_args()
    report = Report("regression.py")
    model = dlhub.load("regression", args.model)
    reg, clf = read_task1_dir(args.data_dir)
    x_val, y_val = reg["X_val"].ravel(), reg["Y_val"].ravel()
    points = np.linspace(x_val.min(), x_val.max(), 1000)
    results = {"val_mse_irls": mse(model.predict(x_val), y_val), "val_mse_ols": mse(model.predict_ols(x_val), y_val),
               "test_accuracy_logistic_decay": float((model.classify(clf["X_test"]) == clf["y_test"]).mean())}
    results["mse_ratio_ols_over_irls"] = results["val_mse_ols"] / results["val_mse_irls"]
    results["latency_ms"], results["latency_p95_ms"] = latency_ms(lambda: model.predict(points), args.repeats)
    report("Robust regression, course Task 1 validation data\n")
    report("| fit | validation MSE | latency, 1,000 points (ms) |\n|---|---|---|")
    report(f"| bundled reweighted least squares (σ = {model.sigma:.2f}) | {results['val_mse_irls']:.5f} | "
          f"{results['latency_ms']:.3f} |")
    report(f"| ordinary least squares | {results['val_mse_ols']:.5f} | |")
    report(f"\nOLS / reweighted MSE: {results['mse_ratio_ols_over_irls']:.2f}×; logistic regression (lr decay) test "
          f"accuracy {results['test_accuracy_logistic_decay']:.3f}")
    return report.finish(args.card, args.json, results)


if __name__ == "__main__":
    main()
