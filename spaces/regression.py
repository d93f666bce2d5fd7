"""Tab "Regression" (course Task 1): the bundled model, and live refits of IRLS and logistic regression.

The course's .npz files are not shipped: the tab starts on example data in their layout, and a user can upload
their own Task1_1.npz / Task1_2.npz.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import gradio as gr
import numpy as np

import dlhub
from dlhub.data.task1 import read_classification_npz, read_regression_npz
from dlhub.errors import DLHubError
from dlhub.hub import read_metrics
from dlhub.plots import plot_decision_boundary, plot_irls_diagnostics, plot_logistic_curves, plot_regression
from dlhub.regression import irls, make_task1_example, select_sigma, train_logistic
from spaces.common import user_error

TITLE = "Regression"
SIGMA_MIN, SIGMA_MAX = 0.1, 300.0
EPOCHS, LR, DECAY = 10_000, 1.0, 0.001


@functools.cache
def bundled_model():
    return dlhub.load("regression")


def example_data() -> dict:
    reg, clf = make_task1_example(seed=0)
    return {"name": "example data (generated in the course's layout)",
            "reg": {k: v.reshape(-1) for k, v in reg.items()},
            "clf": {"X_train": clf["arr_0"], "X_test": clf["arr_1"], "y_train": clf["arr_2"].reshape(-1),
                    "y_test": clf["arr_3"].reshape(-1)}}


def load_data(regression_file, classification_file) -> dict:
    data = example_data()
    names = []
    try:
        if regression_file:
            data["reg"] = read_regression_npz(regression_file)
            names.append(Path(regression_file).name)
        if classification_file:
            data["clf"] = read_classification_npz(classification_file)
            names.append(Path(classification_file).name)
    except DLHubError as err:
        raise user_error(str(err)) from None
    if names:
        data["name"] = "uploaded " + " and ".join(names) + (" (example data for the other part)" if
                                                             len(names) == 1 else "")
    data["uploaded"] = bool(names)
    return data


def _key(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


_LOGISTIC_RUNS: dict[str, tuple] = {}  # data hash → (constant-lr fit, decayed fit): each data set trains once


def logistic_runs(X_train, y_train, X_test, y_test):
    key = _key(X_train, y_train, X_test, y_test)
    if key not in _LOGISTIC_RUNS:
        if len(_LOGISTIC_RUNS) >= 16:
            _LOGISTIC_RUNS.pop(next(iter(_LOGISTIC_RUNS)))
        _LOGISTIC_RUNS[key] = (train_logistic(X_train, y_train, X_test, y_test, lr=LR, epochs=EPOCHS),
                               train_logistic(X_train, y_train, X_test, y_test, lr=LR, epochs=EPOCHS, decay=DECAY))
    return _LOGISTIC_RUNS[key]


def refit(data: dict, sigma: float):
    if data is None:
        data = example_data()
    if sigma is None or not sigma > 0:
        raise user_error(f"σ must be a positive number, got {sigma}")
    r = data["reg"]
    fit = irls(r["X_trn"], r["Y_trn"], r["X_val"], r["Y_val"], float(sigma))
    reference = {}
    if data.get("uploaded"):
        model = bundled_model()
        reference = {f"bundled model (σ = {model.sigma:.3g})": model.weights()["robust"]}
    summary = (f"**{data['name']}**: {len(r['X_trn'])} training and {len(r['X_val'])} validation samples.  \n"
               f"OLS validation MSE **{fit.val_mse[0]:.5f}**; reweighted (σ = {fit.sigma:.4g}, kept iteration "
               f"{fit.best_iteration} of {len(fit.val_mse) - 1}) **{fit.val_mse[fit.best_iteration]:.5f}**.")
    return (plot_regression(r["X_trn"], r["Y_trn"], r["X_val"], r["Y_val"], fit, reference),
            plot_irls_diagnostics(r["X_trn"], fit), summary)


def choose_sigma(data: dict):
    r = (data or example_data())["reg"]
    fit = select_sigma(r["X_trn"], r["Y_trn"], r["X_val"], r["Y_val"])
    return float(np.clip(round(fit.sigma, 1), SIGMA_MIN, SIGMA_MAX))


def train(data: dict, progress=gr.Progress()):
    data = data or example_data()
    c = data["clf"]
    progress(0.1, desc=f"gradient descent, 2 × {EPOCHS:,} epochs")
    plain, decayed = logistic_runs(c["X_train"], c["y_train"], c["X_test"], c["y_test"])
    classifiers = {f"lr decay {DECAY}": decayed.weights, "constant lr": plain.weights}
    if data.get("uploaded"):
        classifiers["bundled model"] = bundled_model().weights()["logistic_decay"]
    rows = "\n".join(f"| {name} | {fit.history['train_accuracy'][-1]:.4f} | {fit.history['test_accuracy'][-1]:.4f} |"
                     for name, fit in (("constant lr 1.0", plain), (f"lr ← (1 − {DECAY})·lr", decayed)))
    summary = (f"**{data['name']}**: {len(c['X_train'])} training and {len(c['X_test'])} test points; features "
               f"[x1, x2, x1², x2², x1·x2, 1], lr {LR}, {EPOCHS:,} epochs, seed 0.\n\n"
               f"| run | train accuracy | test accuracy |\n|---|---|---|\n{rows}")
    return (plot_decision_boundary(c["X_test"], c["y_test"], classifiers, "decision boundary on the test data"),
            plot_logistic_curves({"constant lr": plain, f"decay {DECAY}": decayed}), summary)


def model_summary() -> str:
    try:
        model = bundled_model()
    except DLHubError as err:
        return f"⚠️ No regression model could be loaded: {err}"
    m = read_metrics(model)
    lines = [f"**Model**: loaded from {model.source}.",
             f"Trained on the course's Task 1 data; σ = {model.sigma:.4g}, kept IRLS iteration {model.irls_iteration}."]
    if m:
        lines.append(
            "\n| metric | value |\n|---|---|\n"
            f"| OLS validation MSE | {m['ols_val_mse']:.5f} |\n"
            f"| reweighted validation MSE | {m['irls_val_mse']:.5f} |\n"
            f"| logistic test accuracy, constant lr | {m['logistic_test_accuracy']:.3f} |\n"
            f"| logistic test accuracy, lr decay | {m['logistic_decay_test_accuracy']:.3f} |")
    return "\n".join(lines)


def model_figures() -> list[tuple[str, str]]:
    try:
        folder = bundled_model().folder
    except DLHubError:
        return []
    names = [("regression_fit.png", "1.1 fits"), ("decision_boundary.png", "1.2 decision boundary"),
             ("training_curves.png", "1.2 training curves"), ("irls_diagnostics.png", "1.1 weights & error")]
    return [(str(folder / f), caption) for f, caption in names if (folder / f).is_file()]


def build(demo: gr.Blocks) -> None:
    gr.Markdown(
        "### Task 1: robust regression and logistic regression\n"
        "**1.1** fits y on [1, x, x², 1/x]. Ordinary least squares is pulled by outliers; iteratively reweighted "
        "least squares weights each sample by aᵢ = exp(−σ·rᵢ²), solves w* = (XᵀAX)⁻¹XᵀAY, and keeps the iterate "
        "with the lowest validation error. **1.2** trains a logistic regression on [x1, x2, x1², x2², x1·x2, 1] "
        "by gradient descent, with and without learning-rate decay.")
    with gr.Accordion("The published model", open=True):
        gr.Markdown(model_summary())
        figures = model_figures()
        if figures:
            gr.Gallery(figures, columns=4, height="auto", label="figures saved with the model")
    gr.Markdown("#### Your data\nThe tab starts on example data in the course's layout. Upload the course's "
                "`Task1_1.npz` and/or `Task1_2.npz` (or any file with the same keys) to refit on them.")
    with gr.Row():
        regression_file = gr.File(label="Task1_1.npz (X_trn, Y_trn, X_val, Y_val)", file_types=[".npz"],
                                  type="filepath", elem_id="regression-file")
        classification_file = gr.File(label="Task1_2.npz (arr_0 … arr_3)", file_types=[".npz"], type="filepath",
                                      elem_id="classification-file")
    data = gr.State(None)

    gr.Markdown("#### 1.1 Iteratively reweighted least squares")
    with gr.Row():
        default_sigma = 45.0
        try:
            default_sigma = round(bundled_model().sigma, 1)
        except DLHubError:
            pass
        sigma = gr.Slider(SIGMA_MIN, SIGMA_MAX, value=default_sigma, step=0.1, label="σ (refits as you move it)",
                          elem_id="sigma-slider", scale=4)
        choose = gr.Button("Choose σ on the validation set", scale=1)
    fit_summary = gr.Markdown(elem_id="fit-summary")
    with gr.Row():
        fit_plot = gr.Plot(show_label=False, elem_id="fit-plot")
        diagnostics_plot = gr.Plot(show_label=False, elem_id="diagnostics-plot")

    gr.Markdown("#### 1.2 Logistic regression by gradient descent")
    train_summary = gr.Markdown(elem_id="train-summary")
    with gr.Row():
        boundary_plot = gr.Plot(show_label=False, elem_id="boundary-plot")
        curves_plot = gr.Plot(show_label=False, elem_id="curves-plot")

    fit_outputs = [fit_plot, diagnostics_plot, fit_summary]
    train_outputs = [boundary_plot, curves_plot, train_summary]
    demo.load(refit, [data, sigma], fit_outputs, api_visibility="undocumented").then(
        train, [data], train_outputs, api_visibility="undocumented")
    sigma.change(refit, [data, sigma], fit_outputs, show_progress="hidden", trigger_mode="always_last",
                 concurrency_limit=4, api_name="regression_refit")
    choose.click(choose_sigma, [data], [sigma], api_name="choose_sigma")
    for upload in (regression_file, classification_file):
        upload.change(load_data, [regression_file, classification_file], [data], api_visibility="undocumented").then(
            refit, [data, sigma], fit_outputs, api_visibility="undocumented").then(
            train, [data], train_outputs, api_visibility="undocumented")
