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
    """The histogram's axes, drawn once per y-range by matplotlib and kept as pixels, with the
    pixel geometry a round needs: where each bin's columns lie, where a share falls."""

    def __init__(self, edges: np.ndarray, title: str, xlabel: str, color: str) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import to_rgb

        self.fig = Figure(figsize=(3.2, 2.2), dpi=80)
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.17, 0.2, 0.79, 0.69))
        self.ax.set_xlim(0, 1)
        self.ax.set_title(title, fontsize=8)
        self.ax.set_xlabel(xlabel, fontsize=8, labelpad=1)
        self.ax.set_ylabel("share of unlabelled", fontsize=8, labelpad=1)
        self.ax.tick_params(labelsize=7)
        self.edges = edges
        self.color = np.array([round(255 * c) for c in to_rgb(color)], np.uint8)
        self.line = np.array([round(255 * c) for c in to_rgb("tab:orange")], np.uint8)
        self.backgrounds: dict[float, tuple[np.ndarray, list[int]]] = {}
        self.width, self.height = (int(v) for v in self.fig.canvas.get_width_height())
        # the axes' box in pixels (fixed layout) and each pixel column's bin (-1: outside)
        self.box = tuple(float(v) for v in self.ax.get_window_extent().get_points().ravel())
        lefts = self.column(edges)
        columns = np.arange(self.width)
        self.column_bins = np.searchsorted(lefts, columns, side="right") - 1
        self.column_bins[(columns < lefts[0]) | (columns >= lefts[-1])] = -1

    # palette entries of a round's own marks, after the background's 13 colours
    BAR, LINE, INK = 13, 14, 15

    def background(self, top: float) -> tuple[np.ndarray, list[int]]:
        """The empty axes with y up to `top` as a 16-colour image, drawn and quantised once:
        (height, width) palette indices, the palette (the bars', line's and text's colours
        last)."""
        if top not in self.backgrounds:
            from PIL import Image

            self.ax.set_ylim(0, top)
            self.fig.canvas.draw()
            rgb = np.asarray(self.fig.canvas.buffer_rgba())[..., :3]
            quantised = Image.fromarray(rgb).quantize(self.BAR, method=Image.Quantize.FASTOCTREE)
            palette = (quantised.getpalette() or [])[: 3 * self.BAR]
            palette += [0] * (3 * self.BAR - len(palette))
            palette += [*self.color.tolist(), *self.line.tolist(), 0, 0, 0]
            self.backgrounds[top] = (np.asarray(quantised).copy(), palette)
        return self.backgrounds[top]

    def row(self, share: np.ndarray | float, top: float) -> np.ndarray:
        """The pixel row (from the image's top) of a share on the y-axis going up to `top`."""
        _, y0, _, y1 = self.box
        y = y0 + np.asarray(share, np.float64) / top * (y1 - y0)
        return np.rint(self.height - y).astype(np.int64)

    def column(self, value: np.ndarray | float) -> np.ndarray:
        """The pixel column of a value on the x-axis ([0, 1])."""
        x0, _, x1, _ = self.box
        return np.rint(x0 + np.asarray(value, np.float64) * (x1 - x0)).astype(np.int64)


class _KeptAxesHistogram:
    """A histogram of values in [0, 1] over the unlabelled pool, one small image per round.

    A round costs a few array operations, not a render (~0.3 ms instead of ~2 ms): the axes,
    ticks and labels are drawn by matplotlib once per y-range and kept as a 16-colour image;
    each round copies its palette indices and paints its own marks: the bars (filled columns), a
    dashed line at the mean and a caption (PIL, in matplotlib's font); the result is the palette
    image MLflow gets (no quantising per round). The y-axis is the share of the unlabelled
    items, so rounds compare although the pool shrinks; its upper limit steps through
    `Y_LIMITS`, so at most four backgrounds are ever drawn, and a process keeps them for its
    next experiment (a sweep's jobs, a worker's next job): `close()` hands the figure back
    instead of destroying it. The figure is pyplot-free with a fixed layout, and 256 pixels
    wide: the size of the thumbnail MLflow keeps beside each image, so the UI shows it unscaled.
    """

    Y_LIMITS = (0.1, 0.25, 0.5, 1.0)
    TITLE = XLABEL = ""
    COLOR = "tab:blue"
    DASH = (5, 2)  # the mean line's pixels on and off (matplotlib's "--" at 80 dpi)
    _spare: dict[str, list[_HistogramFigure]] = {}  # figures closed by earlier experiments
    _font: list = []

    def __init__(self) -> None:
        self.edges = np.linspace(0.0, 1.0, N_BINS + 1)
        spare = self._spare.setdefault(type(self).__name__, [])
        self._figure: _HistogramFigure | None = (
            spare.pop() if spare else
            _HistogramFigure(self.edges, self.TITLE, self.XLABEL, self.COLOR))

    @classmethod
    def font(cls):
        """matplotlib's own font at the captions' size (8 points at 80 dpi), for PIL."""
        if not cls._font:
            from matplotlib import font_manager
            from PIL import ImageFont

            path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
            cls._font.append(ImageFont.truetype(path, size=round(8 * 80 / 72)))
        return cls._font[0]

    def _render(self, values: np.ndarray, caption: str):
        """The round's image: a 16-colour PIL image (what MLflow is given, no quantising)."""
        from PIL import Image, ImageDraw

        if self._figure is None:
            raise RuntimeError("render() after close()")
        f = self._figure
        counts, _ = np.histogram(values, bins=self.edges)
        share = counts / max(1, len(values))
        top = next(lim for lim in self.Y_LIMITS if share.max() <= lim * 0.98 or lim == 1.0)
        indices, palette = f.background(top)
        image = indices.copy()
        bottom = int(f.row(0.0, top))
        bins = f.column_bins  # the row each pixel column's bar starts at
        starts = np.where(bins >= 0, f.row(share, top)[np.clip(bins, 0, N_BINS - 1)], bottom)
        rows = np.arange(f.height)[:, None]
        image[(rows >= starts[None, :]) & (rows < bottom)] = f.BAR
        mean = float(np.mean(values)) if len(values) else float("nan")
        if np.isfinite(mean):
            column = int(f.column(mean))
            line = np.arange(int(f.row(top, top)), bottom)
            on, off = self.DASH
            line = line[(line - line[0]) % (on + off) < on] if len(line) else line
            image[line, column] = f.LINE
        picture = Image.fromarray(image, mode="P")
        picture.putpalette(palette)
        x0, y0, x1, y1 = f.box
        ImageDraw.Draw(picture).multiline_text(
            (x0 + 0.03 * (x1 - x0), f.height - (y0 + 0.95 * (y1 - y0))), caption,
            font=self.font(), fill=f.INK, spacing=1)
        return picture

    def close(self) -> None:
        if self._figure is not None:
            self._spare[type(self).__name__].append(self._figure)
            self._figure = None


class ConfidenceHistogram(_KeptAxesHistogram):
    """The unlabelled pool's max-softmax confidence, one small image per round."""

    TITLE = "unlabelled pool confidence (dashed: mean)"
    XLABEL = "max softmax probability"

    def render(self, confidence: np.ndarray, n_labelled: int):
        return self._render(confidence, f"{n_labelled} labels")


class ScoreHistogram(_KeptAxesHistogram):
    """The strategy's utility over the unlabelled pool (margin, entropy, mutual information,
    distance...), one small image per round. Utilities have any range, so each round's are
    scaled to [0, 1] (0: the round's lowest, 1: its highest) and the caption gives the range."""

    TITLE = "strategy score, scaled to the round's range"
    XLABEL = "score (0: lowest, 1: highest, labelled first)"
    COLOR = "tab:green"

    def render(self, scores: np.ndarray, n_labelled: int, name: str):
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


class _CurveAxes:
    """A learning curve's figure for one set of curves and axis limits: everything but the
    lines, the legend over them and the title drawn once and kept (`background`)."""

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
        self.legend = self.ax.legend(loc="lower right")  # drawn over the lines, as before
        self.legend.set_animated(True)
        self.title = self.ax.set_title("", fontsize=10)
        self.title.set_animated(True)
        self.fig.canvas.draw()
        self.background = self.fig.canvas.copy_from_bbox(self.fig.bbox)


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
    (`curve_limits`), each run's lines and title drawn over a copy (~5 ms, not ~40 ms)."""
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
    figure.ax.draw_artist(figure.legend)
    figure.title.set_text(title)
    figure.ax.draw_artist(figure.title)
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


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
