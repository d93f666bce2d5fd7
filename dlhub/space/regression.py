"""Tab "Regression" (course Task 1): the model chosen (the default, bundled, or any on the Hub), and live refits of IRLS
and logistic regression.

The course's .npz files are not shipped: the tab starts on example data in their layout, and a user can upload
their own Task1_1.npz / Task1_2.npz.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import gradio as gr
import numpy as np

from dlhub.data.task1 import read_classification_npz, read_regression_npz
from dlhub.errors import DLHubError
from dlhub.hub import read_metrics
from dlhub.regression import (irls, make_task1_example, plot_decision_boundary, plot_irls_diagnostics, plot_logistic_curves,
                              plot_regression, select_sigma, train_logistic)
from dlhub.metrics.intervals import estimate
from dlhub.space import models
from dlhub.space.common import CheckedFile, CheckedSlider, clear_on_failure, handler, user_error, without_paths

TITLE = "Regression"
SIGMA_MIN, SIGMA_MAX = 0.1, 300.0
EPOCHS, LR, DECAY = 10_000, 1.0, 0.001
# requests computed at once, from benchmarks/concurrency.py (README: "A whole class at once")
CONCURRENCY = {"refit": 1, "choose": 1, "train": 1}


FIGURES = [("regression_fit.png", "1.1 fits"), ("decision_boundary.png", "1.2 decision boundary"),
           ("training_curves.png", "1.2 training curves"), ("irls_diagnostics.png", "1.1 weights & error")]


def model(choice: str = models.DEFAULT):
    """The model `choice` names (the tab's default when left out), loaded once and kept."""
    return models.get_model("regression", choice)


def bundled_model():
    """The tab's default model: the configured Hub repo, or the bundled checkpoint."""
    return model(models.DEFAULT)


def model_name(m) -> str:
    """The model's name in a plot's legend."""
    return "bundled model" if m.origin.kind == "bundled" or "bundled checkpoint" in models.answered_by(m) else \
        (m.origin.repo_id or m.origin.folder_name or "model")


EXAMPLE = "example data (generated in the course's layout)"
# each part of the tab (1.1, 1.2) and the reader of the file a visitor may upload for it: a file fills its own part only
READERS = {"reg": read_regression_npz, "clf": read_classification_npz}


def example_data() -> dict:
    """Both parts on example data: {"reg": arrays, "clf": arrays, "sources": {part: uploaded file's name}}."""
    reg, clf = make_task1_example(seed=0)
    return {"reg": {k: v.reshape(-1) for k, v in reg.items()},
            "clf": {"X_train": clf["arr_0"], "X_test": clf["arr_1"], "y_train": clf["arr_2"].reshape(-1),
                    "y_test": clf["arr_3"].reshape(-1)},
            "sources": {}}


def load_part(part: str, path: str | None, data: dict | None) -> dict:
    """`data` with one part ("reg" or "clf") read from the upload at `path`, or back on example data when the upload
    was removed; the other part keeps what it shows. A bad file is a gr.Error naming it, and changes nothing."""
    data = dict(data or example_data())
    data["sources"] = dict(data.get("sources", {}))
    if path:
        try:
            data[part] = READERS[part](path)
        except DLHubError as err:
            message = without_paths(str(err))
            raise user_error(message if message.endswith(".") else f"{message}.") from None
        data["sources"][part] = Path(path).name
    else:
        data[part] = example_data()[part]
        data["sources"].pop(part, None)
    return data


def load_regression_file(path: str | None, data: dict | None = None) -> dict:
    """An upload of Task1_1.npz (X_trn, Y_trn, X_val, Y_val): part 1.1's data."""
    return load_part("reg", path, data)


def load_classification_file(path: str | None, data: dict | None = None) -> dict:
    """An upload of Task1_2.npz (arr_0 … arr_3): part 1.2's data."""
    return load_part("clf", path, data)


def uploaded(data: dict, part: str) -> bool:
    return part in data.get("sources", {})


def data_name(data: dict, part: str) -> str:
    """Where a part's data came from, for its summary."""
    return f"uploaded {data['sources'][part]}" if uploaded(data, part) else EXAMPLE


def _key(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


_LOGISTIC_RUNS: dict[str, tuple] = {}  # data hash → (constant-lr fit, decayed fit): each data set trains once
_RUNS_LOCK = threading.Lock()  # guards _LOGISTIC_RUNS and _TRAINING
_TRAINING: dict[str, threading.Lock] = {}  # data hash → held while that data set trains: a second request waits


def logistic_runs(X_train, y_train, X_test, y_test, on_progress=None):
    key = _key(X_train, y_train, X_test, y_test)
    with _RUNS_LOCK:
        if key in _LOGISTIC_RUNS:
            return _LOGISTIC_RUNS[key]
        training = _TRAINING.setdefault(key, threading.Lock())
    with training:
        with _RUNS_LOCK:
            if key in _LOGISTIC_RUNS:  # trained by the request this one waited for
                return _LOGISTIC_RUNS[key]
        report = on_progress or (lambda fraction: None)
        runs = (train_logistic(X_train, y_train, X_test, y_test, lr=LR, epochs=EPOCHS,
                               on_progress=lambda f: report(f / 2)),
                train_logistic(X_train, y_train, X_test, y_test, lr=LR, epochs=EPOCHS, decay=DECAY,
                               on_progress=lambda f: report(0.5 + f / 2)))
        with _RUNS_LOCK:
            if len(_LOGISTIC_RUNS) >= 16:
                _LOGISTIC_RUNS.pop(next(iter(_LOGISTIC_RUNS)))
            _LOGISTIC_RUNS[key] = runs
            _TRAINING.pop(key, None)
    return runs


def refit(data: dict, sigma: float, model: str | None = models.DEFAULT):
    """/regression_refit: `model` is the model chosen (the tab's default when left out)."""
    if data is None:
        data = example_data()
    if sigma is None or not sigma > 0:
        raise user_error(f"σ must be a positive number, got {sigma}")
    chosen_model = models.get_model("regression", model)
    r = data["reg"]
    fit = irls(r["X_trn"], r["Y_trn"], r["X_val"], r["Y_val"], float(sigma))
    reference = {}
    if uploaded(data, "reg"):
        reference = {f"{model_name(chosen_model)} (σ = {chosen_model.sigma:.3g})": chosen_model.weights()["robust"]}
    chosen = data.get("chosen_sigma")
    if chosen is not None and abs(float(sigma) - chosen) < 1e-9:
        how = "chosen on this data's validation set" + (
            f", at the slider's end ({SIGMA_MIN:g} to {SIGMA_MAX:g}): the best σ on this data may lie beyond it"
            if chosen in (SIGMA_MIN, SIGMA_MAX) else "")
    elif not uploaded(data, "reg") and abs(float(sigma) - default_sigma()) < 1e-9:
        how = "the bundled model's, chosen on the course's data, not on this data: press *Choose σ*"
    else:
        how = "set by hand; *Choose σ* picks it on this data's validation set"
    summary = (f"**{data_name(data, 'reg')}**: {len(r['X_trn'])} training and {len(r['X_val'])} validation samples.  \n"
               f"OLS validation MSE **{fit.val_mse[0]:.5f}**; reweighted (σ = {fit.sigma:.4g}, kept iteration "
               f"{fit.best_iteration} of {len(fit.val_mse) - 1}) **{fit.val_mse[fit.best_iteration]:.5f}**.  \n"
               f"σ = {fit.sigma:.4g} is {how}.  \n"
               f"*Model: {models.answered_by(chosen_model)} (σ = {chosen_model.sigma:.4g})"
               f"{': its fit is drawn beside this one' if reference else ''}.*")
    return (plot_regression(r["X_trn"], r["Y_trn"], r["X_val"], r["Y_val"], fit, reference),
            plot_irls_diagnostics(r["X_trn"], fit), summary)


def default_sigma() -> float:
    """The slider's start: the bundled model's σ (chosen on the course's validation set)."""
    try:
        return round(bundled_model().sigma, 1)
    except gr.Error:  # no model at all: the tab still refits, from a middle value
        return 45.0


def choose_sigma(data: dict):
    """σ with the lowest validation MSE on the data shown (rounded to the slider's step); the data remembers it."""
    data = dict(data or example_data())
    r = data["reg"]
    fit = select_sigma(r["X_trn"], r["Y_trn"], r["X_val"], r["Y_val"])
    data["chosen_sigma"] = float(np.clip(round(fit.sigma, 1), SIGMA_MIN, SIGMA_MAX))
    return data["chosen_sigma"], data


def train(data: dict, model: str | None = models.DEFAULT, progress=gr.Progress()):
    data = data or example_data()
    chosen_model = models.get_model("regression", model)
    c = data["clf"]
    progress(0.0, desc=f"gradient descent, 2 × {EPOCHS:,} epochs")
    plain, decayed = logistic_runs(c["X_train"], c["y_train"], c["X_test"], c["y_test"],
                                   on_progress=lambda f: progress(f, desc=f"gradient descent, 2 × {EPOCHS:,} epochs"))
    classifiers = {f"lr decay {DECAY}": decayed.weights, "constant lr": plain.weights}
    if uploaded(data, "clf"):
        classifiers[model_name(chosen_model)] = chosen_model.weights()["logistic_decay"]
    rows = "\n".join(f"| {name} | {fit.history['train_accuracy'][-1]:.4f} | {fit.history['test_accuracy'][-1]:.4f} |"
                     for name, fit in (("constant lr 1.0", plain), (f"lr ← (1 − {DECAY})·lr", decayed)))
    summary = (f"**{data_name(data, 'clf')}**: {len(c['X_train'])} training and {len(c['X_test'])} test points; features "
               f"[x1, x2, x1², x2², x1·x2, 1], lr {LR}, {EPOCHS:,} epochs, seed 0.\n\n"
               f"| run | train accuracy | test accuracy |\n|---|---|---|\n{rows}")
    if plain.history["test_accuracy"][-1] == decayed.history["test_accuracy"][-1]:
        summary += ("\n\nBoth runs reach the same accuracy on this data: the loss has settled long before the decayed "
                    "learning rate becomes small, so decay changes nothing here." + course_decay_note(chosen_model))
    summary += f"\n\n*Model: {models.answered_by(chosen_model)}.*"
    return (plot_decision_boundary(c["X_test"], c["y_test"], classifiers, "decision boundary on the test data"),
            plot_logistic_curves({"constant lr": plain, f"decay {DECAY}": decayed}), summary)


def course_decay_note(chosen_model=None) -> str:
    """What decay did on the course's own data, from the model's metrics.json."""
    try:
        chosen_model = chosen_model or bundled_model()
    except gr.Error:
        return ""
    m = read_metrics(chosen_model)
    if not {"logistic_test_accuracy", "logistic_decay_test_accuracy"} <= set(m):
        return ""
    return (f" On the course's own data, which {model_name(chosen_model)} was trained on, it does: test accuracy "
            f"{m['logistic_test_accuracy']:.3f} with a constant lr, {m['logistic_decay_test_accuracy']:.3f} with decay.")


def model_summary(choice: str = models.DEFAULT) -> str:
    try:
        chosen_model = model(choice)
    except gr.Error as err:
        return f"⚠️ No model could be loaded: {err.message}"
    return f"{models.model_summary_line('regression', chosen_model)}\n\n{describe(chosen_model, read_metrics(chosen_model))}"


def describe(model, m: dict) -> str:
    """The tab's header: the loaded model's figures, with their 95% intervals and n when metrics.json has them."""
    lines = [f"Trained on the course's Task 1 data; σ = {model.sigma:.4g}, kept IRLS iteration {model.irls_iteration}."]
    rows = (("OLS validation MSE", "ols_val_mse", 5, True), ("reweighted validation MSE", "irls_val_mse", 5, True),
            ("logistic test accuracy, constant lr", "logistic_test_accuracy", 3, False),
            ("logistic test accuracy, lr decay", "logistic_decay_test_accuracy", 3, False))
    if {key for _, key, _, _ in rows} <= set(m):
        found = {key: estimate(m, key, mean=mean) for _, key, _, mean in rows}
        if all(found.values()):
            lines.append("\n| metric | value | 95% CI | n |\n|---|---|---|---|\n" + "\n".join(
                f"| {name} | {m[key]:.{d}f} | {found[key].low:.{d}f}–{found[key].high:.{d}f} | {found[key].n} |"
                for name, key, d, _ in rows))
        else:
            lines.append("\n| metric | value |\n|---|---|\n" + "\n".join(
                f"| {name} | {m[key]:.{d}f} |" for name, key, d, _ in rows))
    return "\n".join(lines)


def model_figures(choice: str = models.DEFAULT) -> list[tuple[str, str]]:
    try:
        folder = model(choice).folder
    except gr.Error:
        return []
    return [(str(folder / f), caption) for f, caption in FIGURES if (folder / f).is_file()]


def figure_slots(choice: str = models.DEFAULT) -> list:
    """For each of FIGURES: whether its slot shows, and the model's image (a model may not have them all)."""
    shown = dict((Path(path).name, path) for path, _ in model_figures(choice))
    updates = []
    for name, _ in FIGURES:
        updates += [gr.Column(visible=name in shown), shown.get(name)]
    return updates


def after_choice(fit_data: dict, train_data: dict, sigma: float, model: str):
    """Everything the model shows in this tab, with the model just chosen: its figures and the two comparisons."""
    return (*refit(fit_data, sigma, model), *train(train_data, model, progress=lambda *a, **k: None),
            *figure_slots(model))


def build(demo: gr.Blocks) -> models.ModelChoice:
    gr.Markdown(
        "### Task 1: robust regression and logistic regression\n"
        "**1.1** fits y on [1, x, x², 1/x]. Ordinary least squares is pulled by outliers; iteratively reweighted "
        "least squares weights each sample by aᵢ = exp(−σ·rᵢ²), solves w* = (XᵀAX)⁻¹XᵀAY, and keeps the iterate "
        "with the lowest validation error. **1.2** trains a logistic regression on [x1, x2, x1², x2², x1·x2, 1] "
        "by gradient descent, with and without learning-rate decay.")
    with gr.Accordion("The model", open=True):
        choice = models.ModelChoice("regression", TITLE, "regression", describe)
        shown = dict((Path(path).name, path) for path, _ in model_figures())
        slots = []
        for row in range(0, len(FIGURES), 2):  # whole figures, two a row, each captioned above (a label badge
            with gr.Row():                     # would cover the figure's own title)
                for name, caption in FIGURES[row:row + 2]:
                    with gr.Column(visible=name in shown) as column:
                        gr.Markdown(f"**{caption}**")
                        image = gr.Image(shown.get(name), interactive=False, buttons=["fullscreen"], show_label=False)
                    slots += [column, image]
    gr.Markdown("#### Your data\nThe tab starts on example data in the course's layout. Upload the course's "
                "`Task1_1.npz` and/or `Task1_2.npz` (or any file with the same keys) to refit on them.")
    with gr.Row():
        regression_file = CheckedFile(label="Task1_1.npz (X_trn, Y_trn, X_val, Y_val)", file_types=[".npz"],
                                      type="filepath", elem_id="regression-file")
        classification_file = CheckedFile(label="Task1_2.npz (arr_0 … arr_3)", file_types=[".npz"], type="filepath",
                                          elem_id="classification-file")
    # each part's data in its own State: no handler of one part ever writes the other's (events of one page run at once)
    fit_data, train_data = gr.State(None), gr.State(None)

    gr.Markdown("#### 1.1 Iteratively reweighted least squares")
    with gr.Row():
        sigma = CheckedSlider(SIGMA_MIN, SIGMA_MAX, value=default_sigma(), step=0.1, label="σ (refits as you move it)",
                          elem_id="sigma-slider", scale=4)
        choose = gr.Button("Choose σ on the validation set", scale=1)
    fit_summary = gr.Markdown(elem_id="fit-summary")
    with gr.Row():
        fit_plot = gr.Plot(show_label=False, elem_id="fit-plot")
        diagnostics_plot = gr.Plot(show_label=False, elem_id="diagnostics-plot")

    gr.Markdown("#### 1.2 Logistic regression by gradient descent")
    with gr.Row():
        boundary_plot = gr.Plot(show_label=False, elem_id="boundary-plot", scale=1)
        train_summary = gr.Markdown(elem_id="train-summary")
    curves_plot = gr.Plot(show_label=False, elem_id="curves-plot")

    fit_outputs = [fit_plot, diagnostics_plot, fit_summary]
    train_outputs = [boundary_plot, curves_plot, train_summary]
    refit_, train_, choose_ = handler(refit), handler(train), handler(choose_sigma)
    model_choice = choice.value  # the model chosen: /regression_refit's optional last parameter `model`
    demo.load(refit_, [fit_data, sigma, model_choice], fit_outputs, api_visibility="undocumented",
              concurrency_id="regression_refit").then(
        train_, [train_data, model_choice], train_outputs, api_visibility="undocumented",
        concurrency_limit=CONCURRENCY["train"], concurrency_id="regression_train")
    # .input: only the person moving the slider refits here; a σ set by Choose or an upload refits in its own chain.
    # A refused σ (out of range) keeps the last fit on the page: it names its own σ
    sigma.input(refit_, [fit_data, sigma, model_choice], fit_outputs, show_progress="hidden",
                trigger_mode="always_last", concurrency_limit=CONCURRENCY["refit"], api_name="regression_refit",
                concurrency_id="regression_refit")
    choose.click(choose_, [fit_data], [sigma, fit_data], api_name="choose_sigma",
                 concurrency_limit=CONCURRENCY["choose"]).success(
        refit_, [fit_data, sigma, model_choice], fit_outputs, api_visibility="undocumented")
    # each file fills its own part: a bad one is refused and taken out of its box, so that part goes back to example
    # data (the box's change runs again, with no file); the other part keeps working
    loaded = regression_file.change(handler(load_regression_file), [regression_file, fit_data], [fit_data],
                                    api_visibility="undocumented")
    clear_on_failure(loaded, fit_outputs + [regression_file])
    loaded.success(choose_, [fit_data], [sigma, fit_data], api_visibility="undocumented").success(
        refit_, [fit_data, sigma, model_choice], fit_outputs, api_visibility="undocumented")
    loaded = classification_file.change(handler(load_classification_file), [classification_file, train_data],
                                        [train_data], api_visibility="undocumented")
    clear_on_failure(loaded, train_outputs + [classification_file])
    loaded.success(train_, [train_data, model_choice], train_outputs, api_visibility="undocumented",
                   concurrency_id="regression_train")
    # a model chosen: its figures, and both parts again (its fits are drawn beside uploaded data's)
    choice.on_change(after_choice, [fit_data, train_data, sigma], fit_outputs + train_outputs + slots,
                     concurrency_id="regression_train")
    return choice
