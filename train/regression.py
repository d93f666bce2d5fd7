"""Course Task 1: robust regression (IRLS) and logistic regression, fitted, evaluated, saved and published.

    accelerate launch train/regression.py --dataset ../shared/data/task1 --output_dir outputs/regression
    accelerate launch train/regression.py --dataset ../shared/data/task1 --push_to_hub --hub_model_id ORG/NAME

--dataset holds the course's Task1_1.npz (X_trn, Y_trn, X_val, Y_val) and Task1_2.npz (arr_0..arr_3).
Writes model.safetensors, config.json, README.md (model card), metrics.json and the plots to --output_dir.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from accelerate import Accelerator

from dlhub.cards import render_model_card
from dlhub.cli import (add_data_arguments, add_hub_arguments, check_hub_arguments, command_line, one_line_errors,
                       setup_logging)
from dlhub.data import to_numpy
from dlhub.data.task1 import load_task1
from dlhub.errors import DataError
from dlhub.evaluation import regression_test
from dlhub.regression import (SIGMA_GRID, RegressionModel, irls, plot_decision_boundary, plot_irls_diagnostics,
                              plot_logistic_curves, plot_regression, select_sigma, train_logistic)
from dlhub.training import save_and_push


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, required=True, output_dir="outputs/regression",
                       dataset_help="folder with Task1_1.npz and Task1_2.npz")
    p.add_argument("--sigma", type=float, default=None,
                   help="IRLS σ in a_i = exp(-σ r_i²); default: the σ with the lowest validation MSE on a grid")
    p.add_argument("--irls_iterations", type=int, default=50)
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=10_000)
    p.add_argument("--lr_decay", type=float, default=0.001, help="lr ← (1 − decay)·lr each epoch, second run")
    p.add_argument("--seed", type=int, default=0)
    add_hub_arguments(p, "model")
    args = p.parse_args(argv)
    if args.sigma is not None and not args.sigma > 0:
        raise DataError(f"--sigma must be a positive number, got {args.sigma}")
    if args.epochs < 1 or args.irls_iterations < 1:
        raise DataError("--epochs and --irls_iterations must be at least 1")
    check_hub_arguments(args, "model")
    return args


def main(args: argparse.Namespace) -> dict:
    accelerator = Accelerator()
    setup_logging(accelerator.is_main_process)
    start = time.time()

    # Data: the course's .npz files as HF datasets
    regression, classification = load_task1(args.dataset)
    reg = {split: to_numpy(regression[split]) for split in regression}
    x, y, x_val, y_val = reg["train"]["x"], reg["train"]["y"], reg["validation"]["x"], reg["validation"]["y"]
    clf = {split: to_numpy(classification[split]) for split in classification}
    points = {s: np.stack([clf[s]["x1"], clf[s]["x2"]], 1) for s in clf}
    labels = {s: clf[s]["label"] for s in clf}

    # 1.1 Robust regression: start at OLS, reweight, keep the iterate (and σ) with the lowest validation MSE
    if args.sigma is None:
        fit = select_sigma(x, y, x_val, y_val, n_iter=args.irls_iterations)
    else:
        fit = irls(x, y, x_val, y_val, args.sigma, n_iter=args.irls_iterations)

    # 1.2 Logistic regression by full-batch gradient descent, without and with learning-rate decay
    common = dict(lr=args.lr, epochs=args.epochs, seed=args.seed, accelerator=accelerator)
    plain = train_logistic(points["train"], labels["train"], points["test"], labels["test"], **common)
    decayed = train_logistic(points["train"], labels["train"], points["test"], labels["test"],
                             decay=args.lr_decay, **common)
    model = RegressionModel.from_fits(fit, plain, decayed, x_range=(min(x.min(), x_val.min()),
                                                                    max(x.max(), x_val.max())))

    # Evaluate with the project's own evaluate modules (they load from a path, offline), as `python -m dlhub.evaluate
    # regression` does
    metrics = {**regression_test(model, regression, classification, ("train", "test")), "irls_sigma": fit.sigma,
               "irls_iteration": fit.best_iteration}
    metrics["wall_time_s"] = round(time.time() - start, 2)
    accelerator.print({k: round(v, 5) if isinstance(v, float) else v for k, v in metrics.items()})

    # Save (atomically) and publish
    if accelerator.is_main_process:
        figures = {
            "regression_fit.png": plot_regression(x, y, x_val, y_val, fit),
            "irls_diagnostics.png": plot_irls_diagnostics(x, fit),
            "decision_boundary.png": plot_decision_boundary(
                points["test"], labels["test"],
                {f"lr decay {args.lr_decay}": decayed.weights, "constant lr": plain.weights},
                "Task 1.2: decision boundary on the test data"),
            "training_curves.png": plot_logistic_curves({"constant lr": plain, f"decay {args.lr_decay}": decayed}),
        }
        card = model_card(args, metrics, regression, classification)
        save_and_push(accelerator, model, args, card, metrics, figures)
    accelerator.wait_for_everyone()
    return metrics


def model_card(args, metrics: dict, regression, classification, training_command: str | None = None):
    """regression, classification: the DatasetDicts of Task1_1.npz and Task1_2.npz the model was fitted on."""
    return render_model_card(
        "regression", args=args, metrics=metrics, training_command=training_command or command_line(),
        regression_rows={split: regression[split].num_rows for split in regression},
        classification_rows={split: classification[split].num_rows for split in classification},
        sigma_grid=SIGMA_GRID if args.sigma is None else None)


if __name__ == "__main__":
    with one_line_errors(__file__):
        main(parse_args())
