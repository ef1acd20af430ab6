"""Drawing the report's plots: matplotlib, the test-selected warning in titles, legends, CI
bands and colours, shared by the sections that draw (each section draws its own plots)."""

from __future__ import annotations

import numpy as np

from al_research.report.section import Report


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def flag(report: Report) -> str:
    """The title's warning when some runs early-stopped on the test set."""
    n = report.test_selected_runs
    return (f"\n{n} run(s) TEST-SELECTED (early stopping on the test set): optimistic"
            if n else "")


LEGEND_INSIDE = 8  # more entries than this (ablation sweeps), or longer labels, go below
LEGEND_LABEL = 60


def legend(fig, ax, inside: str) -> None:
    """The legend inside the axes when it is short, else below them, growing the figure."""
    labels = ax.get_legend_handles_labels()[1]
    entries = len(labels)
    if entries <= LEGEND_INSIDE and max(map(len, labels), default=0) <= LEGEND_LABEL:
        ax.legend(loc=inside, fontsize=8)
        return
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + 0.17 * entries)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize=7, frameon=False)


def finish(plt, fig, ax, path, report: Report, ylabel: str, title: str) -> str:
    """Label the axes (x: labelled pool items), title the plot (with the test-selected warning),
    grid it, save it to `path` and close it; returns the whole title."""
    ax.set_xlabel("labelled pool items")
    ax.set_ylabel(ylabel)
    title = f"{title}{flag(report)}"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return title


def band(ax, steps, estimates, color, bounds: tuple[float, float]) -> None:
    """The CI as a shaded band, clipped to what the quantity can be (accuracy: [0, 1])."""
    low = np.clip([e.low for e in estimates], *bounds)
    high = np.clip([e.high for e in estimates], *bounds)
    ok = np.isfinite(low) & np.isfinite(high)
    if ok.any():
        ax.fill_between(np.asarray(steps)[ok], low[ok], high[ok], color=color, alpha=0.2,
                        linewidth=0)


def colors(plt, n: int) -> list:
    """The default cycle, or 20 distinct colours for sweeps with many arms."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if n > len(cycle):
        cycle = [plt.get_cmap("tab20")(i) for i in range(20)]
    return cycle * (n // len(cycle) + 1)
