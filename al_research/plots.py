"""Figures logged to MLflow: confidence histograms, learning curves, centroids, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

N_BINS = 20


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a figure to an RGB uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


class ConfidenceHistogram:
    """The unlabelled pool's max-softmax confidence, one image per round.

    One figure is drawn once and its bars are updated each round: a round costs one render.
    """

    def __init__(self) -> None:
        self.edges = np.linspace(0.0, 1.0, N_BINS + 1)
        self.fig, self.ax = plt.subplots(figsize=(4.8, 3.2), dpi=80)
        widths = np.diff(self.edges)
        self.bars = self.ax.bar(self.edges[:-1], np.zeros(N_BINS), width=widths, align="edge",
                                color="tab:blue", edgecolor="white")
        self.ax.set_xlim(0, 1)
        self.ax.set_xlabel("max softmax probability")
        self.ax.set_ylabel("unlabelled items")
        self.fig.tight_layout()

    def render(self, confidence: np.ndarray, n_labelled: int) -> np.ndarray:
        counts, _ = np.histogram(confidence, bins=self.edges)
        for bar, count in zip(self.bars, counts, strict=True):
            bar.set_height(count)
        self.ax.set_ylim(0, max(1, counts.max()) * 1.1)
        mean = float(np.mean(confidence)) if len(confidence) else float("nan")
        self.ax.set_title(f"{n_labelled} labelled: mean confidence {mean:.3f}", fontsize=10)
        return figure_to_array(self.fig)

    def close(self) -> None:
        plt.close(self.fig)


def learning_curve(
    steps: Sequence[int],
    curves: dict[str, Sequence[float]],
    title: str,
    reference: dict[str, float] | None = None,
) -> Figure:
    """Accuracy against labels spent, one line per curve, horizontal lines for references."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for name, values in curves.items():
        ax.plot(steps, values, marker=".", label=name)
    for name, value in (reference or {}).items():
        ax.axhline(value, linestyle="--", color="gray", linewidth=1)
        ax.annotate(f"{name} {value:.3f}", (ax.get_xlim()[0], value), fontsize=8,
                    color="gray", va="bottom")
    ax.set_xlabel("labelled pool items")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def centroid_grid(centroids: np.ndarray, titles: Sequence[str], shape=(28, 28)) -> Figure:
    """k centroid images on a grid of 2 rows, each titled (e.g. with its majority class)."""
    k = len(centroids)
    cols = int(np.ceil(k / 2))
    fig, axes = plt.subplots(2, cols, figsize=(1.6 * cols, 3.6), dpi=100, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < k:
            ax.imshow(centroids[i].reshape(shape), cmap="gray_r")
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def confusion_matrix_figure(matrix: np.ndarray, title: str) -> Figure:
    """A confusion matrix (rows: true class, columns: assigned class) with counts."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    n = matrix.shape[0]
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > threshold else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("pseudo-label")
    ax.set_ylabel("true label")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
