"""The per-round histogram images: bars, mean line and caption painted on kept axes."""

from __future__ import annotations

import numpy as np

from al_research.tracking import plots


def _rgb(picture) -> np.ndarray:
    assert picture.mode == "P" and len(picture.getcolors()) <= 16  # 16 colours, as logged
    return np.asarray(picture.convert("RGB"))


def _bar_top(image: np.ndarray, figure, value: float, color: np.ndarray) -> int | None:
    """The highest pixel row of the bar over `value` (None: no bar there)."""
    if not isinstance(image, np.ndarray):
        image = _rgb(image)
    column = int(figure.column(value))
    rows = np.flatnonzero((image[:, column] == color).all(axis=1))
    return int(rows.min()) if len(rows) else None


def test_a_histogram_paints_each_bins_share_and_the_mean_on_its_axes():
    histogram = plots.ConfidenceHistogram()
    figure = histogram._figure
    values = np.array([0.12] * 30 + [0.62] * 10)  # shares 0.75 (bin 2) and 0.25 (bin 12)
    image = _rgb(histogram.render(values, 40))
    assert image.shape == (figure.height, figure.width, 3) and image.dtype == np.uint8
    top = 1.0  # the y-limit a largest share of 0.75 takes
    assert _bar_top(image, figure, 0.125, figure.color) == figure.row(0.75, top)
    assert _bar_top(image, figure, 0.625, figure.color) == figure.row(0.25, top)
    assert _bar_top(image, figure, 0.375, figure.color) is None  # an empty bin
    mean_column = int(figure.column(values.mean()))  # 0.245: the dashed line, in orange
    line = np.flatnonzero((image[:, mean_column] == figure.line).all(axis=1))
    assert len(line) > 20 and len(line) < figure.row(0.0, top) - figure.row(top, top)
    # the caption is drawn inside the axes, top left; the empty background stays white there
    (x0, _), (x1, y1) = figure.ax.get_window_extent().get_points()
    corner = image[int(figure.height - y1) + 2:int(figure.height - y1) + 14,
                   int(x0) + 4:int(x0) + 40]
    assert (corner.min(axis=2) < 100).any()
    low = histogram.render(np.repeat([0.11, 0.31, 0.51, 0.71, 0.91], 12), 40)  # shares 0.2
    assert _bar_top(low, figure, 0.325, figure.color) == figure.row(0.2, 0.25)  # y up to 0.25
    assert figure.row(0.2, 0.25) < figure.row(0.2, 1.0)
    assert _bar_top(histogram.render(np.array([0.31] * 3 + [0.51] * 97), 40), figure, 0.325,
                    figure.color) == figure.row(0.03, 1.0)
    histogram.close()


def test_a_histograms_figure_serves_the_next_experiment_and_renders_alike():
    first = plots.ScoreHistogram()
    values = np.linspace(0.0, 3.0, 500)
    image = _rgb(first.render(values, 20, "margin"))
    figure = first._figure
    first.close()
    second = plots.ScoreHistogram()
    assert second._figure is figure  # handed back by close(), taken by the next
    assert np.array_equal(_rgb(second.render(values, 20, "margin")), image)
    assert not np.array_equal(_rgb(second.render(values, 30, "margin")), image)  # caption
    second.close()


def test_a_learning_curve_draws_each_runs_lines_on_shared_axes():
    from matplotlib.colors import to_rgb

    steps = list(range(10, 410, 10))
    test = list(np.linspace(0.42, 0.9, 40))
    curves = {"test": test, "validation": list(np.linspace(0.45, 0.8, 40))}
    assert plots.curve_limits(steps, curves) == ((0.0, 400 * 1.03), (0.4, 1.0))
    plots._CURVES.clear()
    image = plots.learning_curve_image(steps, curves, "a: accuracy by labels spent")
    figure = next(iter(plots._CURVES.values()))
    x, y = figure.ax.transData.transform((200, test[19])).round().astype(int)
    patch = image[figure.fig.canvas.get_width_height()[1] - y - 2:][:5, x - 2:x + 3]
    blue = np.array([round(255 * c) for c in to_rgb("tab:blue")])
    assert (np.abs(patch.astype(int) - blue).sum(axis=2) < 60).any()  # the test line is there
    again = plots.learning_curve_image(steps, {k: v[::-1] for k, v in curves.items()}, "b")
    assert len(plots._CURVES) == 1 and again.shape == image.shape  # the same axes, kept
    assert not np.array_equal(again, image)
    assert np.array_equal(plots.learning_curve_image(steps, curves, "a: accuracy by labels "
                                                     "spent"), image)  # drawn alike again
