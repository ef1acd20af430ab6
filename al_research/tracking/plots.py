"""Figures logged to MLflow: learning curves, centroids, confusion (the rounds' histograms:
`histograms.py`)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


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


class _CurveAxes:
    """A learning curve's figure for one set of curves and axis limits: everything but the
    lines and the title drawn once and kept (`background`); the legend, opaque over the lines,
    kept as its own pixels (`legend_pixels`) and put back over each run's lines; the title
    (each run's own) drawn with PIL where matplotlib puts it (`title_at`: its baseline's
    middle), ~0.1 ms instead of ~3."""

    def __init__(self, names: tuple[str, ...], xlim: tuple[float, float],
                 ylim: tuple[float, float]) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.fig = Figure(figsize=(6.4, 4.2), dpi=100)
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.1, 0.11, 0.87, 0.81))
        self.lines = [self.ax.plot([], [], marker=".", label=name, animated=True)[0]
                      for name in names]
        self.ax.set_xlim(*xlim)
        self.ax.set_ylim(*ylim)
        self.ax.set_xlabel("labelled pool items")
        self.ax.set_ylabel("accuracy")
        self.ax.grid(alpha=0.3)
        self.legend = self.ax.legend(loc="lower right", framealpha=1.0)  # over the lines
        self.legend.set_animated(True)
        self.fig.canvas.draw()
        self.background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        self.ax.draw_artist(self.legend)  # opaque: its pixels do not depend on the lines
        self.legend_pixels = self.fig.canvas.copy_from_bbox(
            self.legend.get_window_extent().padded(1))
        box, height = self.ax.bbox, self.fig.canvas.get_width_height()[1]
        pad = matplotlib.rcParams["axes.titlepad"] * self.fig.dpi / 72
        self.title_at = ((box.x0 + box.x1) / 2, height - box.y1 - pad)


_CURVES: dict[tuple, _CurveAxes] = {}  # a process's figures, by curves and limits


def curve_limits(steps: Sequence[int], curves: dict[str, Sequence[float]]
                 ) -> tuple[tuple[float, float], tuple[float, float]]:
    """(x, y) limits: labels from 0 to the last step (3% margin); accuracy from the tenth
    below the lowest value to 1, so a sweep's runs share a handful of figures."""
    values = np.asarray([v for c in curves.values() for v in c], np.float64)
    values = values[np.isfinite(values)]
    low = float(np.floor(values.min() * 10) / 10) if len(values) else 0.0
    last = max(steps) if len(steps) else 1
    return (0.0, last * 1.03), (max(0.0, min(low, 0.9)), 1.0)


def learning_curve_image(steps: Sequence[int], curves: dict[str, Sequence[float]],
                         title: str) -> np.ndarray:
    """Accuracy against labels spent, one line per curve, as (height, width, 3) pixels: the
    axes, grid and legend drawn once per process for a set of curves and limits
    (`curve_limits`), each run's lines and title drawn over a copy (~4 ms, not ~40 ms)."""
    xlim, ylim = curve_limits(steps, curves)
    key = (tuple(curves), xlim, ylim)
    figure = _CURVES.get(key)
    if figure is None:
        figure = _CURVES[key] = _CurveAxes(tuple(curves), xlim, ylim)
    canvas = figure.fig.canvas
    canvas.restore_region(figure.background)
    for line, values in zip(figure.lines, curves.values(), strict=True):
        line.set_data(steps, values)
        figure.ax.draw_artist(line)
    canvas.restore_region(figure.legend_pixels)
    from PIL import Image, ImageDraw

    picture = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
    ImageDraw.Draw(picture).text(figure.title_at, title, font=font(10, figure.fig.dpi),
                                 fill=(0, 0, 0), anchor="ms")
    return np.asarray(picture)


@functools.lru_cache(maxsize=8)
def font(points: float, dpi: float):
    """matplotlib's own font (DejaVu Sans) at `points` on a `dpi` figure, for PIL."""
    from matplotlib import font_manager
    from PIL import ImageFont

    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    return ImageFont.truetype(path, size=round(points * dpi / 72))


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
