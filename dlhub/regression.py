"""Course Task 1: robust regression by iteratively reweighted least squares (1.1) and logistic regression (1.2).

1.1  Features [1, x, x², 1/x]. Start from ordinary least squares; each iteration weights sample i by
     a_i = exp(-σ·r_i²) (r_i its current residual) and solves w* = (XᵀAX)⁻¹XᵀAY. The iterate (and σ) with the lowest
     validation MSE is kept.
1.2  Features [x1, x2, x1², x2², x1·x2, 1] (the constant is the bias), full-batch gradient descent on the binary
     cross-entropy, lr 1.0, 10,000 epochs, seed 0; optionally lr ← (1 − decay)·lr after each epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from dlhub.errors import DataError
from dlhub.modeling import HubModel

REGRESSION_FEATURES = ("1", "x", "x^2", "1/x")
CLASSIFICATION_FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "1")
SIGMA_GRID = tuple(float(s) for s in np.geomspace(0.5, 500, 61))


def regression_features(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if np.any(x == 0):
        raise DataError("x = 0 has no 1/x feature: remove those samples")
    return np.stack([np.ones_like(x), x, x**2, 1.0 / x], axis=1)


def classification_features(points) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x1, x2 = p[:, 0], p[:, 1]
    return np.stack([x1, x2, x1**2, x2**2, x1 * x2, np.ones_like(x1)], axis=1)


def weighted_least_squares(X: np.ndarray, y: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
    """w* = (XᵀAX)⁻¹XᵀAY, solved as least squares on √a-scaled rows (same answer, better conditioned)."""
    root = np.ones(len(X)) if a is None else np.sqrt(a)
    return np.linalg.lstsq(X * root[:, None], y * root, rcond=None)[0]


def mse(pred, target) -> float:
    return float(np.mean((np.asarray(pred) - np.asarray(target)) ** 2))


@dataclass
class IRLSFit:
    sigma: float
    weights: np.ndarray  # (4,) the iterate with the lowest validation MSE
    best_iteration: int  # 0 is the OLS start
    val_mse: np.ndarray  # validation MSE of every iterate, [0] = OLS
    sample_weights: np.ndarray  # the a_i that produced `weights` (all ones for OLS)
    ols_weights: np.ndarray


def irls(x, y, x_val, y_val, sigma: float, n_iter: int = 50) -> IRLSFit:
    if not np.isfinite(sigma) or sigma <= 0:
        raise DataError(f"sigma must be a positive number, got {sigma}")
    X, X_val = regression_features(x), regression_features(x_val)
    y, y_val = np.asarray(y, np.float64).reshape(-1), np.asarray(y_val, np.float64).reshape(-1)
    w = ols = weighted_least_squares(X, y)
    a = np.ones(len(y))
    history, best = [mse(X_val @ w, y_val)], (mse(X_val @ w, y_val), 0, w, a)
    for it in range(1, n_iter + 1):
        a = np.exp(-sigma * (X @ w - y) ** 2)
        if np.count_nonzero(a > 1e-12) < X.shape[1]:  # σ so large that too few samples keep any weight
            break
        w = weighted_least_squares(X, y, a)
        history.append(mse(X_val @ w, y_val))
        if history[-1] < best[0]:
            best = (history[-1], it, w, a)
    return IRLSFit(float(sigma), best[2], best[1], np.array(history), best[3], ols)


def select_sigma(x, y, x_val, y_val, sigmas=SIGMA_GRID, n_iter: int = 50) -> IRLSFit:
    """The IRLS fit (σ and iterate) with the lowest validation MSE over a grid of σ."""
    fits = [irls(x, y, x_val, y_val, s, n_iter) for s in sigmas]
    return min(fits, key=lambda f: f.val_mse[f.best_iteration])


@dataclass
class LogisticFit:
    weights: np.ndarray  # (6,) over CLASSIFICATION_FEATURES
    history: dict[str, np.ndarray]  # per epoch: train_loss, train_accuracy, test_loss, test_accuracy, lr


def train_logistic(points, labels, test_points=None, test_labels=None, *, lr: float = 1.0, epochs: int = 10_000,
                   decay: float = 0.0, seed: int = 0, accelerator=None, on_progress=None) -> LogisticFit:
    """Full-batch gradient descent on the BCE of a linear model over the quadratic features (a plain torch loop).
    `on_progress(fraction)` is called every 200 epochs (the Space's progress bar)."""
    device = accelerator.device if accelerator else torch.device("cpu")
    F = torch.as_tensor(classification_features(points), device=device)
    y = torch.as_tensor(np.asarray(labels, np.float64).reshape(-1, 1), device=device)
    torch.manual_seed(seed)
    model = nn.Linear(F.shape[1], 1, bias=False, dtype=torch.float64, device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    if accelerator:
        model, optimizer = accelerator.prepare(model, optimizer)
    trajectory = torch.empty(epochs, F.shape[1], dtype=torch.float64, device=device)
    for epoch in range(epochs):
        for group in optimizer.param_groups:  # lr ← (1 − decay)·lr after each epoch
            group["lr"] = lr * (1.0 - decay) ** epoch
        loss = nn.functional.binary_cross_entropy_with_logits(model(F), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        trajectory[epoch] = (accelerator.unwrap_model(model) if accelerator else model).weight.detach()[0]
        if on_progress is not None and (epoch + 1) % 200 == 0:
            on_progress((epoch + 1) / epochs)
    # Curves after each epoch, computed in one pass from the weight trajectory (cheaper than per-epoch bookkeeping).
    trajectory = trajectory.cpu().numpy()
    history = {"lr": lr * (1.0 - decay) ** np.arange(epochs)}
    splits = [("train", points, labels)] + ([("test", test_points, test_labels)] if test_points is not None else [])
    for split, p, t in splits:
        history[f"{split}_loss"], history[f"{split}_accuracy"] = logistic_curves(trajectory, p, t)
    return LogisticFit(trajectory[-1].copy(), history)


def logistic_curves(trajectory: np.ndarray, points, labels) -> tuple[np.ndarray, np.ndarray]:
    """BCE loss and accuracy of every weight vector in `trajectory` (epochs, 6) on the given points."""
    logits = classification_features(points) @ trajectory.T  # (n, epochs)
    y = np.asarray(labels, np.float64).reshape(-1, 1)
    loss = np.mean(np.logaddexp(0.0, logits) - y * logits, axis=0)  # stable BCE with logits
    accuracy = np.mean((logits > 0) == (y > 0.5), axis=0)
    return loss, accuracy


class RegressionModel(HubModel):
    """The fitted Task 1 models: OLS and robust (IRLS) curves, logistic classifiers without and with lr decay."""

    def __init__(self, sigma: float = 1.0, irls_iteration: int = 0, regression_features=REGRESSION_FEATURES,
                 classification_features=CLASSIFICATION_FEATURES, labels=("0", "1"), x_range=(-5.0, 5.0)):
        super().__init__()
        self.sigma, self.irls_iteration = float(sigma), int(irls_iteration)
        self.labels, self.x_range = list(labels), tuple(x_range)
        linear = lambda n: nn.Linear(n, 1, bias=False, dtype=torch.float64)  # noqa: E731
        self.ols, self.robust = linear(len(regression_features)), linear(len(regression_features))
        self.logistic, self.logistic_decay = linear(len(classification_features)), linear(len(classification_features))

    @classmethod
    def from_fits(cls, irls_fit: IRLSFit, logistic: LogisticFit, logistic_decay: LogisticFit,
                  x_range) -> "RegressionModel":
        model = cls(sigma=irls_fit.sigma, irls_iteration=irls_fit.best_iteration,
                    x_range=[float(x_range[0]), float(x_range[1])])
        with torch.no_grad():
            for layer, w in [(model.ols, irls_fit.ols_weights), (model.robust, irls_fit.weights),
                             (model.logistic, logistic.weights), (model.logistic_decay, logistic_decay.weights)]:
                layer.weight.copy_(torch.as_tensor(np.asarray(w, np.float64)).reshape(1, -1))
        return model.eval()

    def _apply(self, layer: nn.Linear, features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return layer(torch.as_tensor(features, dtype=torch.float64)).reshape(-1).numpy()

    def predict(self, x) -> np.ndarray:
        """Robust (IRLS) regression curve at x; returns an array of shape (n,)."""
        return self._apply(self.robust, regression_features(x))

    def predict_ols(self, x) -> np.ndarray:
        return self._apply(self.ols, regression_features(x))

    def predict_proba(self, points, decay: bool = True) -> np.ndarray:
        """P(label 1) for (n, 2) points, from the classifier trained with (default) or without lr decay."""
        logits = self._apply(self.logistic_decay if decay else self.logistic, classification_features(points))
        return 1.0 / (1.0 + np.exp(-logits))

    def classify(self, points, decay: bool = True) -> np.ndarray:
        return (self.predict_proba(points, decay) > 0.5).astype(np.int64)

    def weights(self) -> dict[str, np.ndarray]:
        return {name: layer.weight.detach().numpy().reshape(-1).copy()
                for name, layer in [("ols", self.ols), ("robust", self.robust), ("logistic", self.logistic),
                                    ("logistic_decay", self.logistic_decay)]}


def make_task1_example(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Synthetic data in the course's Task1_1.npz / Task1_2.npz layouts (same keys, shapes and ranges).

    Regression: a smooth curve over [1, x, x², 1/x] (|x| ≥ 0.5) with Gaussian noise and 30% gross outliers in
    training; a clean validation set. Classification: points inside a tilted ellipse are class 1, 8% of labels flipped.
    """
    rng = np.random.default_rng(seed)
    true_w = np.array([0.08, 0.1, 0.012, -0.02])

    def xs(n):
        x = rng.uniform(-5, 5, n)
        return np.where(np.abs(x) < 0.5, x + 0.5 * np.sign(x + 1e-12), x)  # keep away from the 1/x pole

    x_trn, x_val = xs(30), xs(10)
    y_trn = regression_features(x_trn) @ true_w + rng.normal(0, 0.05, 30)
    outliers = rng.choice(30, 9, replace=False)
    y_trn[outliers] += rng.choice([-1, 1], 9) * rng.uniform(0.25, 0.6, 9)
    regression = {"X_trn": x_trn[:, None], "Y_trn": y_trn[:, None], "X_val": x_val[:, None],
                  "Y_val": (regression_features(x_val) @ true_w)[:, None]}

    def classes(n):
        p = rng.uniform(-1.5, 1.5, (n, 2))
        inside = p[:, 0] ** 2 + 1.6 * p[:, 1] ** 2 - 0.8 * p[:, 0] * p[:, 1] + 0.3 * p[:, 0] < 1.2
        flip = rng.random(n) < 0.08
        return p, (inside ^ flip).astype(np.int64)[:, None]

    (p_train, l_train), (p_test, l_test) = classes(600), classes(400)
    classification = {"arr_0": p_train, "arr_1": p_test, "arr_2": l_train, "arr_3": l_test}
    return regression, classification


# Figures (matplotlib's Figure directly, never pyplot: no global state, safe in the Space's worker threads)

OLS_COLOR, IRLS_COLOR, REF_COLOR = "#d62728", "#1f77b4", "#7f7f7f"


def _curve_x(*arrays) -> np.ndarray:
    lo = min(float(np.min(a)) for a in arrays)
    hi = max(float(np.max(a)) for a in arrays)
    xs = np.linspace(lo, hi, 400)
    # 1/x explodes at 0: leave a gap there instead of drawing a vertical spike
    return np.where(np.abs(xs) < 0.05 * (hi - lo) / 10, np.nan, xs)


def plot_regression(x, y, x_val, y_val, fit: IRLSFit, reference: dict[str, np.ndarray] | None = None) -> Figure:
    """Training data (coloured by final IRLS weight a_i), validation data, the OLS and reweighted fits."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    xs = _curve_x(x, x_val)
    feats = regression_features(np.nan_to_num(xs, nan=1.0))
    feats[np.isnan(xs)] = np.nan
    points = ax.scatter(x, y, c=fit.sample_weights, cmap="viridis", vmin=0, vmax=1, edgecolor="k", s=40,
                        label="training (colour = weight aᵢ)", zorder=3)
    ax.scatter(x_val, y_val, marker="s", facecolor="none", edgecolor="k", s=45, label="validation", zorder=3)
    ax.plot(xs, feats @ fit.ols_weights, color=OLS_COLOR, lw=2, label=f"OLS (val MSE {fit.val_mse[0]:.4f})")
    ax.plot(xs, feats @ fit.weights, color=IRLS_COLOR, lw=2,
            label=f"reweighted, σ={fit.sigma:.3g}, iteration {fit.best_iteration} "
                  f"(val MSE {fit.val_mse[fit.best_iteration]:.4f})")
    for name, w in (reference or {}).items():
        ax.plot(xs, feats @ w, color=REF_COLOR, lw=1.5, ls="--", label=name)
    lo, hi = np.percentile(np.concatenate([y, y_val]), [0, 100])
    pad = 0.15 * (hi - lo + 1e-9)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Task 1.1: least squares vs iteratively reweighted least squares")
    ax.legend(fontsize=8, loc="best")
    fig.colorbar(points, ax=ax, label="sample weight aᵢ = exp(−σ rᵢ²)")
    fig.tight_layout()
    return fig


def plot_irls_diagnostics(x, fit: IRLSFit) -> Figure:
    """Left: the weight aᵢ of each training sample. Right: validation MSE after each iteration."""
    fig = Figure(figsize=(8, 3.2))
    left, right = fig.subplots(1, 2)
    order = np.argsort(x)
    left.stem(np.asarray(x)[order], fit.sample_weights[order], basefmt=" ")
    left.set_ylim(0, 1.05)
    left.set_xlabel("x")
    left.set_ylabel("aᵢ")
    left.set_title("sample weights of the kept iterate")
    right.plot(np.arange(len(fit.val_mse)), fit.val_mse, marker="o", ms=3, color=IRLS_COLOR)
    right.axhline(fit.val_mse[0], color=OLS_COLOR, ls=":", label="OLS")
    right.scatter([fit.best_iteration], [fit.val_mse[fit.best_iteration]], color="k", zorder=3, label="kept")
    right.set_xlabel("iteration (0 = OLS)")
    right.set_ylabel("validation MSE")
    right.set_title(f"validation error per iteration (σ = {fit.sigma:.3g})")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_decision_boundary(points, labels, classifiers: dict[str, np.ndarray], title: str) -> Figure:
    """Points coloured by class, with the p = 0.5 boundary of each classifier (name → weights over 6 features)."""
    points, labels = np.asarray(points), np.asarray(labels).reshape(-1)
    fig = Figure(figsize=(5.5, 4.8))
    ax = fig.add_subplot()
    pad = 0.2
    g1, g2 = np.meshgrid(np.linspace(points[:, 0].min() - pad, points[:, 0].max() + pad, 300),
                         np.linspace(points[:, 1].min() - pad, points[:, 1].max() + pad, 300))
    grid = classification_features(np.stack([g1.ravel(), g2.ravel()], 1))
    first = next(iter(classifiers.values()))
    prob = 1 / (1 + np.exp(-(grid @ first))).reshape(g1.shape)
    ax.contourf(g1, g2, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.25)
    styles = ["-", "--", ":"]
    for (name, w), ls in zip(classifiers.items(), styles):
        ax.contour(g1, g2, (grid @ w).reshape(g1.shape), levels=[0], colors="k", linestyles=ls)
        ax.plot([], [], color="k", ls=ls, label=name)
    for cls, color in ((0, "#1f77b4"), (1, "#d62728")):
        mask = labels == cls
        ax.scatter(points[mask, 0], points[mask, 1], s=12, color=color, edgecolor="white", lw=0.3,
                   label=f"class {cls}")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def plot_logistic_curves(fits: dict[str, LogisticFit]) -> Figure:
    """Loss and accuracy per epoch (train solid, test dashed) for each run (name → fit)."""
    fig = Figure(figsize=(11, 4.6))
    loss_ax, acc_ax = fig.subplots(1, 2)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    for (name, fit), color in zip(fits.items(), colors):
        epochs = np.arange(1, len(fit.history["train_loss"]) + 1)
        for split, ls in (("train", "-"), ("test", "--")):
            if f"{split}_loss" in fit.history:
                loss_ax.plot(epochs, fit.history[f"{split}_loss"], color=color, ls=ls, label=f"{name} {split}")
                acc_ax.plot(epochs, fit.history[f"{split}_accuracy"], color=color, ls=ls, label=f"{name} {split}")
    for ax, label in ((loss_ax, "BCE loss"), (acc_ax, "accuracy")):
        ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(fontsize=9)
    acc_ax.set_ylim(0.5, 1.0)
    loss_ax.set_title("loss")
    acc_ax.set_title("accuracy")
    fig.tight_layout()
    return fig
