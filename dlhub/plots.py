"""Generic figures shared by the training scripts (saved as PNG for the model card) and the Space (gr.Plot): training
curves, image grids, confusion matrices. The regression and exercise figures live beside their maths.

Built on matplotlib's `Figure` directly, never pyplot: no global state, safe in Gradio's worker threads.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

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
