"""Figures logged to MLflow: confidence histograms, learning curves, centroids, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

N_BINS = 20


class _HistogramFigure:
    """The histogram's figure, its per-round artists and its cached backgrounds."""

    def __init__(self, edges: np.ndarray, title: str, xlabel: str, color: str) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.fig = Figure(figsize=(3.2, 2.2), dpi=80)
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.17, 0.2, 0.79, 0.69))
        # one filled step patch for the 20 bins: one artist to draw per round, not 20
        self.bars = self.ax.stairs(np.zeros(len(edges) - 1), edges, fill=True,
                                   color=color, animated=True)
        self.mean = self.ax.axvline(0.5, color="tab:orange", linestyle="--", linewidth=1.2,
                                    animated=True)
        self.label = self.ax.text(0.03, 0.95, "", transform=self.ax.transAxes, fontsize=8,
                                  va="top", animated=True)
        self.ax.set_xlim(0, 1)
        self.ax.set_title(title, fontsize=8)
        self.ax.set_xlabel(xlabel, fontsize=8, labelpad=1)
        self.ax.set_ylabel("share of unlabelled", fontsize=8, labelpad=1)
        self.ax.tick_params(labelsize=7)
        self.backgrounds: dict[float, object] = {}

    def background(self, top: float):
        if self.ax.get_ylim()[1] != top:
            self.ax.set_ylim(0, top)  # the bars' transform follows the limits
        if top not in self.backgrounds:
            self.fig.canvas.draw()
            self.backgrounds[top] = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        return self.backgrounds[top]


class _BlitHistogram:
    """A histogram of values in [0, 1] over the unlabelled pool, one small image per round.

    A round costs a blit, not a render (~1 ms instead of ~20 ms): the axes, ticks and labels
    are drawn once per y-range and kept as a background; each round restores it and draws only
    its own artists: the bars, a line at the mean, and a caption. The y-axis is the share of the
    unlabelled items, so rounds compare although the pool shrinks; its upper limit steps through
    `Y_LIMITS`, so at most four backgrounds are ever drawn, and a process keeps them for its
    next experiment (a sweep's jobs, a worker's next job): `close()` hands the figure back
    instead of destroying it. The figure is pyplot-free with a fixed layout (no tight_layout
    pass), and 256 pixels wide: the size of the thumbnail MLflow keeps beside each image, so the
    UI shows it unscaled.
    """

    Y_LIMITS = (0.1, 0.25, 0.5, 1.0)
    TITLE = XLABEL = ""
    COLOR = "tab:blue"
    _spare: dict[str, list[_HistogramFigure]] = {}  # figures closed by earlier experiments

    def __init__(self) -> None:
        self.edges = np.linspace(0.0, 1.0, N_BINS + 1)
        spare = self._spare.setdefault(type(self).__name__, [])
        self._figure: _HistogramFigure | None = (
            spare.pop() if spare else
            _HistogramFigure(self.edges, self.TITLE, self.XLABEL, self.COLOR))

    @property
    def fig(self) -> Figure:
        return self._figure.fig

    def _render(self, values: np.ndarray, caption: str) -> np.ndarray:
        if self._figure is None:
            raise RuntimeError("render() after close()")
        f = self._figure
        counts, _ = np.histogram(values, bins=self.edges)
        share = counts / max(1, len(values))
        top = next(lim for lim in self.Y_LIMITS if share.max() <= lim * 0.98 or lim == 1.0)
        canvas = f.fig.canvas
        canvas.restore_region(f.background(top))
        f.bars.set_data(share)
        mean = float(np.mean(values)) if len(values) else float("nan")
        f.mean.set_xdata([mean, mean])
        f.label.set_text(caption)
        for artist in (f.bars, f.mean, f.label):
            f.ax.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def close(self) -> None:
        if self._figure is not None:
            self._spare[type(self).__name__].append(self._figure)
            self._figure = None


class ConfidenceHistogram(_BlitHistogram):
    """The unlabelled pool's max-softmax confidence, one small image per round."""

    TITLE = "unlabelled pool confidence (dashed: mean)"
    XLABEL = "max softmax probability"

    def render(self, confidence: np.ndarray, n_labelled: int) -> np.ndarray:
        return self._render(confidence, f"{n_labelled} labels")


class ScoreHistogram(_BlitHistogram):
    """The strategy's utility over the unlabelled pool (margin, entropy, mutual information,
    distance...), one small image per round. Utilities have any range, so each round's are
    scaled to [0, 1] (0: the round's lowest, 1: its highest) and the caption gives the range."""

    TITLE = "strategy score, scaled to the round's range"
    XLABEL = "score (0: lowest, 1: highest, labelled first)"
    COLOR = "tab:green"

    def render(self, scores: np.ndarray, n_labelled: int, name: str) -> np.ndarray:
        values = np.asarray(scores, dtype=np.float64)
        values = values[np.isfinite(values)]
        low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        return self._render(np.clip(scaled, 0.0, 1.0),
                            f"{n_labelled} labels\n{name} in [{low:.3g}, {high:.3g}]")


def learning_curve(
    steps: Sequence[int],
    curves: dict[str, Sequence[float]],
    title: str,
    reference: dict[str, float] | None = None,
) -> Figure:
    """Accuracy against labels spent, one line per curve, horizontal lines for references.

    Pyplot-free with a fixed layout: no tight_layout pass (~20 ms of text measuring).
    """
    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    ax = fig.add_axes((0.1, 0.11, 0.87, 0.81))
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
    return fig


GRID_SCALE = 4  # each centroid pixel as a 4 x 4 block
TITLE_HEIGHT = 14  # pixels above each tile for its title


def centroid_grid(centroids: np.ndarray, titles: Sequence[str], shape=(28, 28)) -> np.ndarray:
    """k centroid images on a grid of 2 rows, each titled (e.g. with its majority class), as
    an 8-bit grayscale image (dark strokes on white, as matplotlib's gray_r): drawn with PIL
    in milliseconds (a matplotlib figure of the same took ~0.2 s per run)."""
    from PIL import Image, ImageDraw

    k = len(centroids)
    cols = int(np.ceil(k / 2))
    tiles = [np.clip(np.asarray(c, np.float32).reshape(shape), 0, 1) for c in centroids]
    if tiles and tiles[0].ndim == 3:  # colour images: their mean channel
        tiles = [t.mean(axis=2) for t in tiles]
    h, w = (tiles[0].shape if tiles else shape[:2])
    tile_w, tile_h = w * GRID_SCALE, h * GRID_SCALE + TITLE_HEIGHT
    pad = 6
    canvas = Image.new("L", (cols * (tile_w + pad) + pad, 2 * (tile_h + pad) + pad), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (tile, title) in enumerate(zip(tiles, titles, strict=False)):
        x = pad + (i % cols) * (tile_w + pad)
        y = pad + (i // cols) * (tile_h + pad)
        pixels = np.kron(255 - (tile * 255).astype(np.uint8),
                         np.ones((GRID_SCALE, GRID_SCALE), np.uint8))
        canvas.paste(Image.fromarray(pixels), (x, y + TITLE_HEIGHT))
        draw.text((x + 2, y + 1), str(title), fill=0)
    return np.asarray(canvas)


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
