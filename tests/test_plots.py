"""The per-round histogram images: bars, mean line and caption painted on kept axes."""

from __future__ import annotations

import csv
import io

import numpy as np

from al_research.tracking import histograms, plots


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
    histogram = histograms.ConfidenceHistogram()
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
    first = histograms.ScoreHistogram()
    values = np.linspace(0.0, 3.0, 500)
    image = _rgb(first.render(values, 20, "margin"))
    figure = first._figure
    first.close()
    second = histograms.ScoreHistogram()
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


def test_a_runs_histograms_are_kept_as_counts_and_drawn_as_one_figure():
    from matplotlib import colormaps

    kept = histograms.RoundHistograms()
    kept.add(10, np.array([0.97] * 40))  # every item in the last bin: share 1
    kept.add(20, np.array([0.12] * 15 + [0.62] * 15))  # shares 0.5 (bins 2 and 12)
    kept.add(30, np.array([0.5, 1.0]), np.array([2.0, 4.0, 3.0]), "margin")
    rows = list(csv.reader(io.StringIO(kept.csv_text())))
    header = rows[0]
    assert header[:6] == ["n_labelled", "quantity", "low", "high", "items", "mean"]
    assert header[6] == "[0.00,0.05)" and header[-1] == "[0.95,1.00]"  # 1.0: the last bin
    assert len(rows) == 5  # three rounds of confidence, one of scores
    first = rows[1]
    assert first[:6] == ["10", "confidence", "0", "1", "40", "0.97"]
    assert first[6:] == ["0"] * 19 + ["40"]
    third = [int(c) for c in rows[3][6:]]
    assert third[10] == 1 and third[19] == 1 and sum(third) == 2
    score = rows[4]  # scaled to [0, 1] from its range [2, 4]: 0, 1 and 0.5
    assert score[:6] == ["30", "margin", "2", "4", "3", "0.5"]
    assert [int(c) for c in score[6:]] == [1] + [0] * 9 + [1] + [0] * 8 + [1]

    only = histograms.RoundHistograms()  # no scores: one panel
    only.add(10, np.array([0.97] * 40))
    only.add(20, np.array([0.12] * 15 + [0.62] * 15))
    histograms._HEAT_AXES.clear()
    image = np.asarray(only.image("a run").convert("RGB")).astype(int)
    (figure,) = histograms._HEAT_AXES.values()
    (ax,) = figure.axes
    height = image.shape[0]

    def colour(step: float, value: float) -> np.ndarray:
        x, y = ax.transData.transform((step, value)).round().astype(int)
        return image[height - y, x]

    def expected(share: float) -> np.ndarray:
        return np.array(colormaps["viridis"](figure.norm(share))[:3]) * 255

    for step, value, share in ((7, 0.975, 1.0), (7, 0.5, 0.0), (20, 0.125, 0.5),
                               (20, 0.625, 0.5), (20, 0.975, 0.0)):  # off the mean line
        assert np.abs(colour(step, value) - expected(share)).max() < 24, (step, value)
    assert np.abs(expected(1.0) - expected(0.5)).max() > 60  # the shares tell apart
    both = np.asarray(kept.image("a run").convert("RGB"))
    assert both.shape[0] > height and len(histograms._HEAT_AXES) == 2  # a second panel
    kept.score_name = "entropy"  # the score panel's title: its name, drawn per run
    other = np.asarray(kept.image("a run").convert("RGB"))
    assert other.shape == both.shape and not np.array_equal(other, both)
    assert len(histograms._HEAT_AXES) == 2  # the same axes serve another score
    assert np.array_equal(np.asarray(only.image("a run").convert("RGB")), image)  # alike again
    assert not np.array_equal(np.asarray(only.image("another").convert("RGB")), image)
    assert histograms.RoundHistograms().image("nothing") is None
