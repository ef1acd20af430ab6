"""Test accuracy by labelled count: per arm and step, mean ± CI over seeds (a table of a
readable subset of the steps, every step in the CSV, the plot with the article's points)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from al_research.report import figures
from al_research.report.section import Report, RunMetric, Section, Table
from al_research.report.sections.article import (
    ARTICLE_GROUND_TRUTH_LABELS,
    ARTICLE_POINTS,
    is_article,
)
from al_research.report.sections.comparison import SELF_TRAINING_SUFFIX
from al_research.report.stats import CONFIDENCE, t_estimate
from al_research.report.text import counts, md_table, metric_name, percent
from al_research.tracking.names import SummaryMetric


def compact_steps(steps: Sequence[int], max_rows: int = 10) -> list[int]:
    """A readable subset: multiples of a round stride (e.g. every 50 labels), first and last."""
    if len(steps) <= max_rows:
        return list(steps)
    stride = next((s for s in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)
                   if steps[-1] / s <= max_rows), steps[-1])
    return sorted({steps[0], steps[-1], *(s for s in steps if s % stride == 0)})


def curve_table(report: Report) -> str:
    arms = [a for a in report.arms if not a.ground_truth]
    if not arms:
        return "_No learning-curve runs._"
    estimates = {a.label: a.step_estimates() for a in arms}
    steps = compact_steps(sorted(set().union(*(set(e) for e in estimates.values()))))
    rows = [[step, *(estimates[a.label][step].text() if step in estimates[a.label] else "—"
                     for a in arms)] for step in steps]
    return md_table(["labelled", *(a.label for a in arms)], rows)


def plot_learning_curves(report: Report, path: Path) -> str:
    """Mean test-accuracy curves with CI bands; returns the plot's title."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colors = iter(figures.colors(plt, len(report.arms)))
    x_max = 0
    for arm in report.arms:
        color = next(colors)
        est = arm.step_estimates()
        if arm.ground_truth:
            final = t_estimate(r.final for r in arm.runs)
            ax.axhline(final.mean, color=color, linestyle="--", linewidth=1.2,
                       label=f"{arm.label} ({counts(r.final_step for r in arm.runs)} labels, "
                             f"n={final.n}): {final.mean:.4f}")
            if math.isfinite(final.low):
                ax.axhspan(max(final.low, 0.0), min(final.high, 1.0), color=color, alpha=0.1)
            continue
        steps = sorted(est)
        x_max = max(x_max, steps[-1])
        means = [est[s].mean for s in steps]
        n = max(e.n for e in est.values())
        ax.plot(steps, means, color=color, marker="." if len(steps) < 60 else None,
                label=f"{arm.label} (n={n})")
        figures.band(ax, steps, [est[s] for s in steps], color, (0.0, 1.0))
        st_runs = arm.self_training_runs()
        if st_runs:
            st = t_estimate(r.self_training_final for r in st_runs)
            yerr = None if not math.isfinite(st.half_width) else [  # clipped to [0, 1]
                [st.mean - max(st.low, 0.0)], [min(st.high, 1.0) - st.mean]]
            ax.errorbar([steps[-1]], [st.mean], yerr=yerr, color=color, marker="o",
                        markerfacecolor="white", capsize=4, linestyle="none",
                        label=f"{arm.label}{SELF_TRAINING_SUFFIX}: {st.mean:.4f}")
    if is_article(report.runs):  # the article's points; its ground truth at the right edge
        right = max(x_max, *(x for _, x, _, _ in ARTICLE_POINTS if x is not None)) * 1.05
        for label, x, y, marker in ARTICLE_POINTS:
            ax.scatter([right if x is None else x], [y], marker=marker, color="black", s=50,
                       zorder=5, label=f"{label} {y:.4f}")
        ground_truth = next(y for _, x, y, _ in ARTICLE_POINTS if x is None)
        ax.annotate(str(ARTICLE_GROUND_TRUTH_LABELS), (right, ground_truth),
                    textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7)
    figures.legend(fig, ax, "lower right")
    return figures.finish(plt, fig, ax, path, report, "test accuracy",
                          f"Test accuracy: mean over seeds with {percent(CONFIDENCE)} CI")


class Curves(Section):
    name = "curves"

    def markdown(self, report: Report) -> str:
        return "\n".join(["## Test accuracy by labelled count", "", curve_table(report), ""])

    def csvs(self, report: Report) -> dict[str, Table]:
        return {"learning_curves.csv": (
            ["arm", "strategy", "test_selected", "n_labelled", "mean", "std", "n", "ci_low",
             "ci_high"],
            ([arm.name, arm.strategy, arm.test_selected, step, e.mean, e.std, e.n, e.low,
              e.high] for arm in report.arms for step, e in arm.step_estimates().items()))}

    def figures(self, report: Report, out: Path) -> list[Path]:
        plot_learning_curves(report, out / "learning_curves.png")
        return [out / "learning_curves.png"]

    def run_metrics(self, report: Report) -> Iterable[RunMetric]:
        return ((SummaryMetric.MEAN_TEST_ACCURACY.format(arm=metric_name(a.name)), e.mean, step)
                for a in report.arms for step, e in a.step_estimates().items())


SECTION = Curves()
