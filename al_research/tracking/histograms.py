"""The rounds' histograms over the unlabelled pool: the max-softmax confidence and the
strategy's own scores.

Every run keeps each round's counts (`RoundHistograms`) and logs them at its end, once: as
`histograms.csv` and as one figure, `plots/histograms.png` (per round a column, per bin a cell
shaded by its share of the unlabelled pool, the mean as a line): a few milliseconds a run.
A run may also log them as MLflow step images (`ConfidenceHistogram`, `ScoreHistogram`: one
small image per round and key, with a slider in the UI), ~2 ms a round on a loaded machine:
`tracking.step_images` (by default a single run's, not a sweep's jobs').
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from al_research.tracking.plots import font  # noqa: E402

N_BINS = 20
EDGES = np.linspace(0.0, 1.0, N_BINS + 1)  # of [0, 1]: the last bin includes 1
CENTRES = (EDGES[:-1] + EDGES[1:]) / 2


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

    def __init__(self) -> None:
        self.edges = EDGES
        spare = self._spare.setdefault(type(self).__name__, [])
        self._figure: _HistogramFigure | None = (
            spare.pop() if spare else
            _HistogramFigure(self.edges, self.TITLE, self.XLABEL, self.COLOR))

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
            font=font(8, 80), fill=f.INK, spacing=1)
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
        values, low, high = scaled(scores)
        return self._render(values, f"{n_labelled} labels\n{name} in [{low:.3g}, {high:.3g}]")


def scaled(scores: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A round's finite utilities scaled to [0, 1] (0: the round's lowest, 1: its highest),
    with the lowest and highest."""
    values = np.asarray(scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
    share = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return np.clip(share, 0.0, 1.0), low, high


@dataclass
class _Series:
    """One histogram per round of one quantity: (rounds, N_BINS) counts."""

    steps: list[int] = field(default_factory=list)
    counts: list[np.ndarray] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    ranges: list[tuple[float, float]] = field(default_factory=list)  # scores: before scaling

    def add(self, step: int, values: np.ndarray, value_range: tuple[float, float]) -> None:
        counts, _ = np.histogram(values, bins=EDGES)
        self.steps.append(int(step))
        self.counts.append(counts)
        self.means.append(float(np.mean(values)) if len(values) else float("nan"))
        self.ranges.append(value_range)

    def shares(self) -> np.ndarray:
        """(N_BINS, rounds): each round's counts as shares of its unlabelled items."""
        counts = np.asarray(self.counts, np.float64).reshape(len(self.counts), N_BINS)
        return (counts / np.maximum(1.0, counts.sum(axis=1, keepdims=True))).T


class RoundHistograms:
    """Each round's histograms over the unlabelled pool, as counts in `N_BINS` bins of [0, 1]:
    the confidence, and the strategy's scores scaled to the round's range (`scaled`), with
    that range. `csv_text()` and `image()` give them at the run's end."""

    def __init__(self) -> None:
        self.confidence = _Series()
        self.scores = _Series()
        self.score_name = "score"

    def add(self, step: int, confidence: np.ndarray, scores: np.ndarray | None = None,
            score_name: str | None = None) -> None:
        if len(confidence):
            self.confidence.add(step, np.asarray(confidence, np.float64), (0.0, 1.0))
        if scores is not None and len(scores):
            values, low, high = scaled(scores)
            self.scores.add(step, values, (low, high))
            self.score_name = score_name or self.score_name

    def series(self) -> dict[str, _Series]:
        return {name: s for name, s in (("confidence", self.confidence),
                                        (self.score_name, self.scores)) if s.steps}

    def csv_text(self) -> str:
        """A row per round and quantity: its step, name, range (scores: before scaling), items,
        mean (of the scaled values) and counts per bin (the header gives each bin's edges)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["n_labelled", "quantity", "low", "high", "items", "mean",
                         *(f"[{a:.2f},{b:.2f}{']' if b == 1 else ')'}"
                           for a, b in zip(EDGES[:-1], EDGES[1:], strict=True))])
        for name, s in self.series().items():
            for step, counts, mean, (low, high) in zip(s.steps, s.counts, s.means, s.ranges,
                                                       strict=True):
                writer.writerow([step, name, f"{low:.6g}", f"{high:.6g}", int(counts.sum()),
                                 f"{mean:.6g}", *counts.tolist()])
        return out.getvalue()

    def image(self, title: str):
        """The figure as a 64-colour PIL image (None: no round had an unlabelled item)."""
        from PIL import Image

        series = self.series()
        if not series:
            return None
        edges = _edges(np.array(sorted({x for s in series.values() for x in s.steps}), float))
        key = (len(series), float(edges[0]), float(edges[-1]))
        figure = _HEAT_AXES.get(key)
        if figure is None:
            figure = _HEAT_AXES[key] = _HeatAxes(*key)
        return figure.render(series, title).quantize(64, method=Image.Quantize.FASTOCTREE)


class _HeatAxes:
    """The figure's axes, colour bar and labels for a number of panels (the confidence's, then
    the scores') and a range of steps, drawn once per process and kept (a sweep's runs share
    one or two); a run's cells, mean lines, score panel's title and heading are drawn over a
    copy."""

    def __init__(self, panels: int, left: float, right: float) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import PowerNorm
        from matplotlib.image import NonUniformImage

        height = 0.95 + 1.85 * panels
        self.fig = Figure(figsize=(6.4, height), dpi=100)
        FigureCanvasAgg(self.fig)
        self.norm = PowerNorm(0.5, vmin=0.0, vmax=1.0)  # small shares stay visible
        self.cmap = "viridis"
        top, bottom = 1 - 0.55 / height, 0.45 / height
        gap = 0.3 / height
        each = (top - bottom - gap * (panels - 1)) / panels
        self.axes = []
        self.images = []
        self.lines = []
        for i in range(panels):
            ax = self.fig.add_axes((0.09, top - (i + 1) * each - i * gap, 0.76, each))
            ax.set_xlim(left, right)
            ax.set_ylim(0, 1)
            ax.set_ylabel("value", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == panels - 1:
                ax.set_xlabel("labelled pool items", fontsize=8)
            else:
                ax.tick_params(labelbottom=False)
            self.images.append(NonUniformImage(ax, interpolation="nearest", cmap=self.cmap,
                                               norm=self.norm, animated=True))
            self.lines.append(ax.plot([], [], color="tab:orange", linewidth=1.2, linestyle="--",
                                      animated=True)[0])
            if i == 0:  # the scores' panel is titled per run (their name), with PIL
                first = ax.set_title("max-softmax confidence (dashed: mean)", fontsize=9,
                                     loc="left")
            self.axes.append(ax)
        bar = self.fig.add_axes((0.88, bottom, 0.025, top - bottom))
        self.fig.colorbar(ScalarMappable(self.norm, self.cmap), cax=bar)
        bar.set_ylabel("share of the unlabelled pool", fontsize=8)
        bar.tick_params(labelsize=7)
        self.fig.canvas.draw()
        self.background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        # where the texts drawn per run go (pixels from the top left): the heading, and each
        # panel's title as matplotlib places the first's (its top left)
        title = first.get_window_extent(self.fig.canvas.get_renderer())
        above = float(title.y1 - self.axes[0].bbox.y1)  # its top, above its axes' top
        height = float(self.fig.canvas.get_width_height()[1])
        self.title_at = [(float(title.x0), height - float(ax.bbox.y1) - above)
                         for ax in self.axes]
        self.heading_at = (float(title.x0), 6.0)

    def render(self, series: dict[str, _Series], title: str):
        """The run's figure as an RGB PIL image."""
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        for ax, image, line, s in zip(self.axes, self.images, self.lines, series.values(),
                                      strict=True):
            steps = np.asarray(s.steps, np.float64)
            image.set_data(steps, CENTRES, s.shares())  # each cell out to halfway to the next
            ax.draw_artist(image)
            line.set_data(steps, s.means)
            ax.draw_artist(line)
        from PIL import Image, ImageDraw

        picture = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
        draw = ImageDraw.Draw(picture)  # matplotlib draws a text in ~3 ms, PIL in ~0.1
        draw.text(self.heading_at, title, font=font(10, 100), fill=(0, 0, 0))
        for (x, y), name in list(zip(self.title_at, series, strict=True))[1:]:
            draw.text((x, y), f"{name}, scaled to each round's range (dashed: mean)",
                      font=font(9, 100), fill=(0, 0, 0))
        return picture


_HEAT_AXES: dict[tuple, _HeatAxes] = {}


def _edges(steps: np.ndarray) -> np.ndarray:
    """Cell edges around each step: halfway to its neighbours (the ends: half a step out)."""
    if len(steps) == 1:
        return np.array([steps[0] - 5.0, steps[0] + 5.0])
    middle = (steps[:-1] + steps[1:]) / 2
    return np.concatenate([[steps[0] - (middle[0] - steps[0])], middle,
                           [steps[-1] + (steps[-1] - middle[-1])]])
