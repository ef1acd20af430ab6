"""Each arm against the random arm of the same configuration, paired by seed: the final
difference with its CI, wins/ties/losses, Wilcoxon and Holm; the difference at every labelled
count (table, CSV, plot); and one panel per arm beside its random arm."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from al_research.report import figures
from al_research.report.arms import BASELINE, Arm, baseline_for, paired
from al_research.report.runs import FINAL_METRIC, SELF_TRAINING_FINAL, RunRecord
from al_research.report.section import Report, Section, Table
from al_research.report.stats import (
    CONFIDENCE,
    PERMUTATION_MAX_N,
    Estimate,
    SignedRankTest,
    holm,
    t_estimate,
    wilcoxon_test,
)
from al_research.report.text import interval_text, md_table, p_text, percent
from al_research.tracking.names import Metric

SELF_TRAINING_SUFFIX = " + self-training"  # comparison rows and plot labels
FRESH_SUFFIX = " (fresh model)"  # comparison rows on the label-fair score
FRESH_METRIC = Metric.FRESH_TEST_ACCURACY
SMALL_MULTIPLES_FROM = 3  # arms besides random: from this many on, one panel each


@dataclass
class Comparison:
    """One arm against its random baseline, paired by seed, on one final metric."""

    arm: str
    baseline: str
    metric: str
    seeds: list[str]
    difference: Estimate
    wins: int
    ties: int
    losses: int
    test: SignedRankTest
    p_holm: float = math.nan
    note: str = ""

    @property
    def p(self) -> float:
        return self.test.p


@dataclass
class Paired:
    comparisons: list[Comparison]
    differences: dict[str, dict[int, Estimate]]  # arm label -> step -> difference from random


def final_of(r: RunRecord) -> float:
    return r.final


def self_training_of(r: RunRecord) -> float | None:
    return r.self_training_final


def fresh_of(r: RunRecord) -> float | None:
    return r.metrics.get(FRESH_METRIC)


def compare(arm: Arm, baseline: Arm, metric: str = FINAL_METRIC, note: str = "") -> Comparison:
    """`arm` against `baseline` on one metric, paired by seed. The self-training metric is
    compared with the baseline's final accuracy (what self-training adds to the same labels)."""
    value, suffix, base_value = {
        FINAL_METRIC: (final_of, "", final_of),
        SELF_TRAINING_FINAL: (self_training_of, SELF_TRAINING_SUFFIX, final_of),
        FRESH_METRIC: (fresh_of, FRESH_SUFFIX, fresh_of),
    }[metric]
    seeds, diffs, unpaired = paired(arm, baseline, value, base_value)
    tie = np.isclose(diffs, 0.0, atol=1e-9)
    test = wilcoxon_test(diffs)
    notes = [note, test.note]
    if unpaired:
        notes.append(f"{unpaired} unpaired seed(s) left out")
    return Comparison(arm.label + suffix, baseline.label, metric, seeds, t_estimate(diffs),
                      int(np.sum((diffs > 0) & ~tie)), int(np.sum(tie)),
                      int(np.sum((diffs < 0) & ~tie)), test,
                      note="; ".join(filter(None, notes)))


def step_differences(arm: Arm, baseline: Arm) -> dict[int, Estimate]:
    """Per labelled count: the mean paired (by seed) difference from the baseline, with CI."""
    base = baseline.by_seed()
    out: dict[int, Estimate] = {}
    for step in arm.steps():
        diffs = [r.curve[step] - base[r.seed].curve[step] for r in arm.runs
                 if r.seed in base and step in r.curve and step in base[r.seed].curve]
        if diffs:
            out[step] = t_estimate(diffs)
    return out


def holm_notes(comparisons: Sequence[Comparison], alpha: float = 0.05) -> list[str]:
    """A note when the family is so large, for its n, that no Holm-adjusted p can reach alpha."""
    tested = [c for c in comparisons if math.isfinite(c.p)]
    m = len(tested)
    if m < 2:
        return []
    best = min(c.test.min_p for c in tested) * m
    if best > alpha:
        return [f"Holm over {m} comparisons: with these numbers of pairs the smallest possible "
                f"adjusted p is {min(best, 1.0):.3g}, so no comparison can reach {alpha:g}"]
    return []


def paired_with_random(report: Report) -> Paired:
    """Every arm but random and the ground truth against its random arm; a note for each arm
    without one, and for a family too large for Holm."""
    comparisons: list[Comparison] = []
    differences: dict[str, dict[int, Estimate]] = {}
    for arm in report.arms:
        if arm.strategy == BASELINE or arm.ground_truth:
            continue
        baseline, why = baseline_for(arm, report.arms)
        if baseline is None:
            report.notes.append(f"{arm.name}: {why}")
            continue
        comparisons.append(compare(arm, baseline, note=why))
        if arm.self_training_runs():
            comparisons.append(compare(arm, baseline, SELF_TRAINING_FINAL, note=why))
        if arm.metric_runs(FRESH_METRIC) and baseline.metric_runs(FRESH_METRIC):
            comparisons.append(compare(arm, baseline, FRESH_METRIC, note=why))
        differences[arm.label] = step_differences(arm, baseline)
    for c, adjusted in zip(comparisons, holm([c.p for c in comparisons]), strict=True):
        c.p_holm = adjusted
    report.notes.extend(holm_notes(comparisons))
    return Paired(comparisons, differences)


def comparisons(report: Report) -> list[Comparison]:
    return report.results[SECTION.name].comparisons


def differences(report: Report) -> dict[str, dict[int, Estimate]]:
    return report.results[SECTION.name].differences


def comparison_table(report: Report) -> str:
    rows_of = comparisons(report)
    if not rows_of:
        return "_No comparison: no arm other than random with random runs beside it._"
    rows = [[c.arm, c.baseline, len(c.seeds), interval_text(c.difference),
             f"{c.wins}/{c.ties}/{c.losses}", p_text(c.p), c.test.method or "—",
             p_text(c.p_holm), c.note or ""]
            for c in rows_of]
    return md_table(["arm", "vs", "paired seeds", f"mean difference [{percent(CONFIDENCE)} CI]",
                     "wins/ties/losses", "Wilcoxon p", "p computed by", "Holm p", "note"], rows)


def plot_differences(report: Report, path: Path) -> str:
    """Paired differences from random with CI bands; returns the plot's title."""
    plt = figures.pyplot()
    by_arm = differences(report)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colors = iter(figures.colors(plt, len(by_arm) + 1)[1:])
    ax.axhline(0.0, color="black", linewidth=1)
    for name, by_step in by_arm.items():
        color = next(colors)
        steps = sorted(by_step)
        ax.plot(steps, [by_step[s].mean for s in steps], color=color,
                label=f"{name} − random (n={max(e.n for e in by_step.values())})")
        figures.band(ax, steps, [by_step[s] for s in steps], color, (-1.0, 1.0))
    if not by_arm:
        ax.text(0.5, 0.5, "no strategy with paired random runs", ha="center",
                transform=ax.transAxes)
    else:
        figures.legend(fig, ax, "best")
    return figures.finish(plt, fig, ax, path, report, "test accuracy difference from random",
                          f"Paired difference from random (same seed), {percent(CONFIDENCE)} CI")


def plot_small_multiples(report: Report, path: Path) -> str | None:
    """One panel per arm (random and ground truth aside): its mean curve with the CI band over
    the random arm it is paired with, in grey, on shared axes. Readable with nine strategies
    and two models, where one plot of every curve is not. None when there are too few arms."""
    arms = [a for a in report.arms if not a.ground_truth and a.strategy != BASELINE]
    if len(arms) < SMALL_MULTIPLES_FROM:
        return None
    plt = figures.pyplot()
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
            figures.band(ax, steps, [est[s] for s in steps], color, (0.0, 1.0))
        final = t_estimate(r.final for r in arm.runs)
        ax.set_title(f"{arm.label}\nfinal {final.mean:.3f} (n={final.n})", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(arms):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    title = (f"Each arm (blue) against its random arm (grey): mean test accuracy, "
             f"{percent(CONFIDENCE)} CI{figures.flag(report)}")
    fig.suptitle(title, fontsize=10)
    fig.supxlabel("labelled pool items", fontsize=9)
    fig.supylabel("test accuracy", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return title


class PairedComparison(Section):
    name = "comparison"

    def compute(self, report: Report) -> Paired:
        return paired_with_random(report)

    def markdown(self, report: Report) -> str:
        return "\n".join([
            "## Paired comparison with random (final test accuracy)", "",
            comparison_table(report), "",
            "Differences are the arm minus the random arm of the same configuration on the "
            "same seed (same split and initial set). Wilcoxon signed-rank, two-sided, zero "
            "differences dropped: exact without ties, an exact permutation over every sign "
            f"flip with ties (up to {PERMUTATION_MAX_N} pairs), else the normal approximation; "
            "Holm-adjusted across the rows. `+ self-training` rows compare with random's final "
            "accuracy; `(fresh model)` rows compare models trained from scratch on each arm's "
            "final labelled set.", ""])

    def csvs(self, report: Report) -> dict[str, Table]:
        return {
            "comparison.csv": (
                ["arm", "baseline", "metric", "n_pairs", "seeds", "mean_difference", "ci_low",
                 "ci_high", "wins", "ties", "losses", "wilcoxon_p", "wilcoxon_method",
                 "holm_p", "note"],
                ([c.arm, c.baseline, c.metric, len(c.seeds), " ".join(c.seeds),
                  c.difference.mean, c.difference.low, c.difference.high, c.wins, c.ties,
                  c.losses, c.p, c.test.method, c.p_holm, c.note]
                 for c in comparisons(report))),
            "difference_from_random.csv": (
                ["arm", "n_labelled", "mean_difference", "std", "n", "ci_low", "ci_high"],
                ([name, step, e.mean, e.std, e.n, e.low, e.high]
                 for name, by_step in differences(report).items()
                 for step, e in by_step.items())),
        }

    def figures(self, report: Report, out: Path) -> list[Path]:
        plot_differences(report, out / "difference_from_random.png")
        drawn = [out / "difference_from_random.png"]
        if plot_small_multiples(report, out / "learning_curves_by_arm.png") is not None:
            drawn.append(out / "learning_curves_by_arm.png")
        return drawn

    def main_table(self, report: Report) -> str:
        return comparison_table(report)


SECTION = PairedComparison()
