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

from dlhub.cards import Metric, render_model_card
from dlhub.cli import (add_data_arguments, add_hub_arguments, check_hub_arguments, command_line, one_line_errors,
                       setup_logging)
from dlhub.data import to_numpy
from dlhub.data.task1 import load_task1
from dlhub.errors import DataError
from dlhub.metrics import load_metric
from dlhub.regression import (RegressionModel, irls, plot_decision_boundary, plot_irls_diagnostics, plot_logistic_curves,
                              plot_regression, select_sigma, train_logistic)
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

    # Evaluate with the project's own evaluate modules (they load from a path, offline)
    mse_metric, accuracy_metric = load_metric("mse"), load_metric("accuracy")
    metrics = {
        "ols_val_mse": mse_metric.compute(predictions=model.predict_ols(x_val), references=y_val)["mse"],
        "irls_val_mse": mse_metric.compute(predictions=model.predict(x_val), references=y_val)["mse"],
        "irls_sigma": fit.sigma,
        "irls_iteration": fit.best_iteration,
    }
    for name, decay in (("logistic", False), ("logistic_decay", True)):
        for split in ("train", "test"):
            metrics[f"{name}_{split}_accuracy"] = accuracy_metric.compute(
                predictions=model.classify(points[split], decay=decay), references=labels[split])["accuracy"]
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
        card = model_card(args, metrics)
        save_and_push(accelerator, model, args, card, metrics, figures)
    accelerator.wait_for_everyone()
    return metrics


def model_card(args, metrics: dict):
    repo_id = args.hub_model_id or "dlhub-course/task1-regression"
    reg_data = dict(dataset_name="Course Task 1.1 (Task1_1.npz)", dataset_type="course-task1-regression",
                    task_type="tabular-regression")
    clf_data = dict(dataset_name="Course Task 1.2 (Task1_2.npz)", dataset_type="course-task1-classification",
                    task_type="tabular-classification")
    return render_model_card(
        task="regression",
        repo_id=repo_id,
        title="Course Task 1: robust regression (IRLS) and logistic regression",
        summary=("Two small models of the course's Task 1. **1.1** fits y on the features [1, x, x², 1/x] by "
                 "iteratively reweighted least squares: start at ordinary least squares, weight each sample by "
                 "aᵢ = exp(−σ·rᵢ²), solve w* = (XᵀAX)⁻¹XᵀAY, and keep the iterate and σ with the lowest validation "
                 "MSE, so gross outliers in the training data stop pulling the curve. **1.2** is a logistic "
                 "regression on [x1, x2, x1², x2², x1·x2, 1] trained by full-batch gradient descent (lr 1.0, "
                 "10,000 epochs, seed 0), once with a constant learning rate and once with lr ← (1 − 0.001)·lr "
                 "after each epoch."),
        usage=("y = model.predict([0.5, 1.0, 2.0])           # robust (IRLS) curve; model.predict_ols for OLS\n"
               "p = model.predict_proba([[0.1, -0.3]])       # P(class 1), decayed-lr classifier\n"
               "labels = model.classify([[0.1, -0.3]], decay=False)"),
        metrics=[
            Metric("validation MSE, OLS", "mse", metrics["ols_val_mse"], "validation", **reg_data),
            Metric("validation MSE, reweighted", "mse", metrics["irls_val_mse"], "validation", **reg_data),
            Metric("train accuracy, constant lr", "accuracy", metrics["logistic_train_accuracy"], "train", **clf_data),
            Metric("test accuracy, constant lr", "accuracy", metrics["logistic_test_accuracy"], "test", **clf_data),
            Metric("test accuracy, lr decay", "accuracy", metrics["logistic_decay_test_accuracy"], "test",
                   **clf_data),
        ],
        data_description=("The course's Task 1 files. `Task1_1.npz`: 30 noisy training samples (X_trn, Y_trn, "
                          "with gross outliers) and 10 clean validation samples (X_val, Y_val). `Task1_2.npz`: 600 "
                          "training and 400 test points in 2-D with 0/1 labels. σ and the kept IRLS iterate are "
                          "chosen on the validation split; the test split of 1.2 is only evaluated."),
        data_licence="course material, for teaching use; not redistributed with this model.",
        training_command=command_line(),
        training_details=(f"Chosen σ = {metrics['irls_sigma']:.4g} (IRLS iteration {metrics['irls_iteration']}), "
                          f"from a grid of 61 values in [0.5, 500] unless `--sigma` is given. "
                          f"Wall time {metrics['wall_time_s']:.1f} s on the machine that trained it."),
        limitations=("With 30 training and 10 validation points, the chosen σ is itself fitted to the validation "
                     "set: expect a higher error on fresh data. The 1/x feature is undefined at x = 0."),
        images=[("regression_fit.png", "OLS and reweighted fits"),
                ("irls_diagnostics.png", "sample weights and validation error per iteration"),
                ("decision_boundary.png", "decision boundary on the test data"),
                ("training_curves.png", "loss and accuracy per epoch, with and without lr decay")],
        tags=["regression", "logistic-regression", "course-task1"],
    )


if __name__ == "__main__":
    with one_line_errors(__file__):
        main(parse_args())
