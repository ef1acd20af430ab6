"""The report's plots: mean learning curves with CI bands, paired differences from random."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from al_research.report.analysis import SELF_TRAINING_SUFFIX, Report
from al_research.report.article import ARTICLE_POINTS, counts
from al_research.report.stats import CONFIDENCE, t_estimate


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _flag(report: Report) -> str:
    """The title's warning when some runs early-stopped on the test set."""
    n = report.test_selected_runs
    return (f"\n{n} run(s) TEST-SELECTED (early stopping on the test set): optimistic"
            if n else "")


LEGEND_INSIDE = 8  # more entries than this (ablation sweeps), or longer labels, go below
LEGEND_LABEL = 60


def _legend(fig, ax, inside: str) -> None:
    """The legend inside the axes when it is short, else below them, growing the figure."""
    labels = ax.get_legend_handles_labels()[1]
    entries = len(labels)
    if entries <= LEGEND_INSIDE and max(map(len, labels), default=0) <= LEGEND_LABEL:
        ax.legend(loc=inside, fontsize=8)
        return
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + 0.17 * entries)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize=7, frameon=False)


def _band(ax, steps, estimates, color, bounds: tuple[float, float]) -> None:
    """The CI as a shaded band, clipped to what the quantity can be (accuracy: [0, 1])."""
    low = np.clip([e.low for e in estimates], *bounds)
    high = np.clip([e.high for e in estimates], *bounds)
    ok = np.isfinite(low) & np.isfinite(high)
    if ok.any():
        ax.fill_between(np.asarray(steps)[ok], low[ok], high[ok], color=color, alpha=0.2,
                        linewidth=0)


def _colors(plt, n: int) -> list:
    """The default cycle, or 20 distinct colours for sweeps with many arms."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if n > len(cycle):
        cycle = [plt.get_cmap("tab20")(i) for i in range(20)]
    return cycle * (n // len(cycle) + 1)


def plot_learning_curves(report: Report, path: Path) -> str:
    """Mean test-accuracy curves with CI bands; returns the plot's title."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colors = iter(_colors(plt, len(report.arms)))
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
        _band(ax, steps, [est[s] for s in steps], color, (0.0, 1.0))
        st_runs = arm.self_training_runs()
        if st_runs:
            st = t_estimate(r.self_training_final for r in st_runs)
            yerr = None if not math.isfinite(st.half_width) else [  # clipped to [0, 1]
                [st.mean - max(st.low, 0.0)], [min(st.high, 1.0) - st.mean]]
            ax.errorbar([steps[-1]], [st.mean], yerr=yerr, color=color, marker="o",
                        markerfacecolor="white", capsize=4, linestyle="none",
                        label=f"{arm.label}{SELF_TRAINING_SUFFIX}: {st.mean:.4f}")
    if report.article is not None:
        right = max(x_max, 400) * 1.05  # the 4000-label point, beside the 400-label ones
        for label, x, y, marker in ARTICLE_POINTS:
            ax.scatter([right if x is None else x], [y], marker=marker, color="black", s=50,
                       zorder=5, label=f"{label} {y:.4f}")
        ax.annotate("4000", (right, 0.9225), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=7)
    ax.set_xlabel("labelled pool items")
    ax.set_ylabel("test accuracy")
    title = f"Test accuracy: mean over seeds with {CONFIDENCE:.0%} CI{_flag(report)}"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    _legend(fig, ax, "lower right")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return title


def plot_differences(report: Report, path: Path) -> str:
    """Paired differences from random with CI bands; returns the plot's title."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colors = iter(_colors(plt, len(report.differences) + 1)[1:])
    ax.axhline(0.0, color="black", linewidth=1)
    for name, by_step in report.differences.items():
        color = next(colors)
        steps = sorted(by_step)
        ax.plot(steps, [by_step[s].mean for s in steps], color=color,
                label=f"{name} − random (n={max(e.n for e in by_step.values())})")
        _band(ax, steps, [by_step[s] for s in steps], color, (-1.0, 1.0))
    if not report.differences:
        ax.text(0.5, 0.5, "no strategy with paired random runs", ha="center",
                transform=ax.transAxes)
    else:
        _legend(fig, ax, "best")
    ax.set_xlabel("labelled pool items")
    ax.set_ylabel("test accuracy difference from random")
    title = f"Paired difference from random (same seed), {CONFIDENCE:.0%} CI{_flag(report)}"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return title


SMALL_MULTIPLES_FROM = 3  # arms besides random: from this many on, one panel each


def plot_small_multiples(report: Report, path: Path) -> str | None:
    """One panel per arm (random and ground truth aside): its mean curve with the CI band over
    the random arm it is paired with, in grey, on shared axes. Readable with nine strategies
    and two models, where one plot of every curve is not. None when there are too few arms."""
    from al_research.report.arms import baseline_for

    arms = [a for a in report.arms if not a.ground_truth and a.strategy != "random"]
    if len(arms) < SMALL_MULTIPLES_FROM:
        return None
    plt = _pyplot()
    cols = min(4, len(arms))
    rows = math.ceil(len(arms) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), dpi=100,
                             sharex=True, sharey=True, squeeze=False)
    for ax, arm in zip(axes.flat, arms, strict=False):
        baseline, _ = baseline_for(arm, report.arms)
        for a, color, label in ((baseline, "0.55", "random"), (arm, "tab:blue", "the arm")):
            if a is None:
                continue
            est = a.step_estimates()
            steps = sorted(est)
            ax.plot(steps, [est[s].mean for s in steps], color=color, linewidth=1.4,
                    label=label)
            _band(ax, steps, [est[s] for s in steps], color, (0.0, 1.0))
        final = t_estimate(r.final for r in arm.runs)
        ax.set_title(f"{arm.label}\nfinal {final.mean:.3f} (n={final.n})", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(arms):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    title = (f"Each arm (blue) against its random arm (grey): mean test accuracy, "
             f"{CONFIDENCE:.0%} CI{_flag(report)}")
    fig.suptitle(title, fontsize=10)
    fig.supxlabel("labelled pool items", fontsize=9)
    fig.supylabel("test accuracy", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return title
