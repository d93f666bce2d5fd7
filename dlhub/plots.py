"""Figures shared by the training scripts (saved as PNG for the model card) and the Space (shown with gr.Plot).

Built on matplotlib's `Figure` directly, never pyplot: no global state, safe in Gradio's worker threads.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from dlhub.exercises import Z_FIXED_POINTS, z, z_composed
from dlhub.regression import IRLSFit, LogisticFit, classification_features, regression_features

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


def plot_z(n: int) -> Figure:
    """z and z composed n times on [−3, 3], with the fixed points of z marked."""
    xs = np.linspace(-3, 3, 2001)
    fig = Figure(figsize=(7, 3.8))
    ax = fig.add_subplot()
    ax.plot(xs, xs, color="#bbbbbb", lw=1, label="y = x")
    ax.plot(xs, z(xs), color="#1f77b4", lw=2, label="z(x)")
    ax.plot(xs, z_composed(xs, n), color="#d62728", lw=2, ls="--", label=f"z composed {n} times")
    fixed = np.array(Z_FIXED_POINTS)
    ax.scatter(fixed, fixed, color="k", zorder=3, s=40, label="fixed points z(x) = x")
    ax.set_xlabel("x")
    ax.set_ylim(-2.7, 2.7)
    ax.set_title(f"z(x) = eˣ − e⁻ˣ clamped outside [−1, 1], and z∘…∘z ({n}×)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_history(history: dict[str, list[float]], panels: dict[str, list[str]],
                 best_epoch: int | None = None) -> Figure:
    """Per-epoch curves: one panel per title, each plotting the listed history keys against epoch 1..N."""
    fig = Figure(figsize=(4.5 * len(panels), 3.3))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, keys) in zip(axes, panels.items()):
        for key in keys:
            values = history[key]
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=2.5, label=key.replace("_", " "))
        if best_epoch is not None:
            ax.axvline(best_epoch, color="k", ls=":", lw=1, label=f"kept (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_denoising_grid(clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray, title: str) -> Figure:
    """Rows of clean / noisy / denoised faces ((N, H, W) arrays in [0, 1]), N columns, PSNR under each."""
    from dlhub.metrics import psnr

    n = len(clean)
    fig = Figure(figsize=(n * 0.9, 3.2))
    axes = fig.subplots(3, n, squeeze=False)
    noisy_db = psnr(noisy, clean)["psnr_per_image"]
    denoised_db = psnr(denoised, clean)["psnr_per_image"]
    for j in range(n):
        for i, (row, label) in enumerate(((clean, "clean"), (noisy, f"{noisy_db[j]:.1f}"),
                                          (denoised, f"{denoised_db[j]:.1f}"))):
            ax = axes[i, j]
            ax.imshow(row[j], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(label, fontsize=6, labelpad=1)
        if j == 0:
            for i, name in enumerate(("clean", "noisy", "denoised")):
                axes[i, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


def plot_confusion_matrix(matrix: np.ndarray, labels: list[str], title: str) -> Figure:
    """Row-normalised confusion matrix (true class in rows), log colour scale so rare confusions show."""
    from matplotlib.colors import LogNorm

    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    n = len(labels)
    fig = Figure(figsize=(0.22 * n + 3, 0.22 * n + 2))
    ax = fig.add_subplot()
    shown = ax.imshow(np.where(rates > 0, rates, np.nan), cmap="viridis", norm=LogNorm(vmin=1e-3, vmax=1))
    ax.set_xticks(range(n), [str(i) for i in range(n)], fontsize=6)
    ax.set_yticks(range(n), [f"{i} {name[:28]}" for i, name in enumerate(labels)], fontsize=6)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, label="fraction of the true class", fraction=0.03)
    fig.tight_layout()
    return fig


def plot_image_grid(images: np.ndarray, captions: list[str], colors: list[str], title: str, columns: int = 5,
                    points: list[tuple[np.ndarray, str]] | None = None) -> Figure:
    """(N, H, W, 3) images in [0, 1] (or uint8) with a caption under each (coloured, e.g. green right / red wrong);
    `points`: (array (N, K, 2) in pixels, colour) pairs scattered on the images."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig = Figure(figsize=(columns * 2.1, rows * 2.3))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, image, caption, color) in enumerate(zip(axes.ravel(), images, captions, colors)):
        ax.imshow(image if image.dtype == np.uint8 else np.clip(image, 0, 1))
        for array, point_color in points or []:
            ax.scatter(array[i][:, 0], array[i][:, 1], s=2.5, c=point_color, linewidths=0)
        ax.set_title(caption, fontsize=6.5, color=color, wrap=True)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_landmark_grid(images: np.ndarray, predicted: np.ndarray, true: np.ndarray, captions: list[str],
                       title: str) -> Figure:
    """Faces (N, H, W, 3) with predicted (red) and true (green) points (N, 68, 2) in pixels."""
    return plot_image_grid(images, captions, ["black"] * len(images), title, columns=4,
                           points=[(true, "lime"), (predicted, "red")])


def plot_cumulative_error(errors: np.ndarray, title: str, limit: float = 0.15) -> Figure:
    """Fraction of faces whose normalised mean error is at most x (the cumulative error distribution)."""
    x = np.linspace(0, limit, 301)
    fig = Figure(figsize=(4.8, 3.4))
    ax = fig.add_subplot()
    ax.plot(x, (np.sort(errors)[None, :] <= x[:, None]).mean(1))
    ax.axvline(float(np.mean(errors)), color="k", ls=":", lw=1, label=f"mean NME {np.mean(errors):.4f}")
    ax.set(xlabel="NME (mean point error / outer-eye-corner distance)", ylabel="fraction of faces", title=title,
           xlim=(0, limit), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
