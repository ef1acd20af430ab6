"""Along a numeric factor: how each strategy's lead over random changes as a numeric config key
(`batch_size` in `experiment=batch_sizes`; `budget`, `initial_size`, ...) varies.

For each factor whose values are all numbers, the arms are grouped by strategy and by their
other deviations from the reference (so `model=mlp` and `model=softmax` stay apart). Per value v
of the factor, in numeric order: the arm's final test accuracy (mean and CI over seeds) and its
*gain*: the final accuracy minus that of the random arm of the same configuration (same v, same
other deviations), paired by seed. From the smallest value v0 on, the *change* of the gain,
paired by seed over the seeds present in all four arms:

    change_v = (strategy_v - random_v) - (strategy_v0 - random_v0)

negative: the strategy loses (part of) its lead over random as the factor grows. A strategy
*holds* at v when the change's CI reaches 0 or above, *degrades* when it lies below 0. Gains and
changes are in points (accuracy x 100).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from al_research.report import figures
from al_research.report.arms import (
    ABSENT,
    BASELINE,
    SEPARATOR,
    STRATEGY_PREFIX,
    Arm,
    deviation_texts,
)
from al_research.report.section import Report, Section, Table
from al_research.report.stats import CONFIDENCE, Estimate, t_estimate
from al_research.report.text import interval_text, md_table, percent

POINTS = 100.0


@dataclass(frozen=True)
class Cell:
    """One strategy's arm at one value of the factor."""

    value: str
    accuracy: Estimate
    gain: Estimate | None  # points: minus random of the same configuration, paired by seed
    change: Estimate | None  # points: the gain's change from the smallest value, paired


@dataclass(frozen=True)
class TrendRow:
    strategy: str
    other: str  # the arm's other deviations, `key=value · ...` ("" at the reference)
    cells: dict[str, Cell]  # value -> cell

    @property
    def label(self) -> str:
        return SEPARATOR.join(filter(None, [self.strategy, self.other]))


@dataclass(frozen=True)
class Trend:
    factor: str
    values: list[str]  # in numeric order
    rows: list[TrendRow]

    def verdicts(self) -> dict[str, tuple[list[str], list[str]]]:
        """Per value above the smallest: the strategies that hold and those that degrade there."""
        out: dict[str, tuple[list[str], list[str]]] = {}
        for value in self.values[1:]:
            holds, degrades = [], []
            for row in self.rows:
                if row.strategy == BASELINE:
                    continue
                cell = row.cells.get(value)
                if cell is None or cell.change is None or not math.isfinite(cell.change.high):
                    continue
                (degrades if cell.change.high < 0 else holds).append(row.label)
            out[value] = (holds, degrades)
        return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def value_of(arm: Arm, factor: str, report: Report) -> str:
    return arm.deviations.get(factor, report.factors.reference[factor])


def numeric_factors(report: Report) -> list[str]:
    """Factors (not a strategy's own keys) whose values, over the arms, are all numbers."""
    out = []
    for factor in report.factors.keys:
        if factor.startswith(STRATEGY_PREFIX):
            continue
        values = {value_of(a, factor, report) for a in report.arms if not a.ground_truth}
        if len(values) > 1 and ABSENT not in values and all(_number(v) is not None
                                                             for v in values):
            out.append(factor)
    return out


def _finals(arm: Arm) -> dict[str, float]:
    return {r.seed: r.final for r in arm.runs}


def _gains(arm: Arm, base: Arm | None) -> dict[str, float]:
    if base is None:
        return {}
    theirs = _finals(base)
    return {s: (v - theirs[s]) * POINTS for s, v in _finals(arm).items() if s in theirs}


def trend(report: Report, factor: str) -> Trend:
    """The factor's table: a row per strategy and other configuration, random first."""
    values = sorted({value_of(a, factor, report) for a in report.arms if not a.ground_truth},
                    key=lambda v: _number(v) or 0.0)
    groups: dict[tuple[str, str], dict[str, Arm]] = defaultdict(dict)
    for arm in report.arms:
        if arm.ground_truth:
            continue
        other = SEPARATOR.join(deviation_texts(
            {k: v for k, v in sorted(arm.deviations.items()) if k != factor}))
        groups[(arm.strategy, other)][value_of(arm, factor, report)] = arm
    rows = []
    for (strategy, other), by_value in groups.items():
        randoms = groups.get((BASELINE, other), {})
        gains = {v: _gains(a, randoms.get(v)) for v, a in by_value.items()}
        first = gains.get(values[0], {})
        cells = {}
        for value, arm in by_value.items():
            gain = gains[value]
            change = None
            if value != values[0] and gain and first:
                change = t_estimate(gain[s] - first[s] for s in gain if s in first)
            cells[value] = Cell(value, t_estimate(_finals(arm).values()),
                                t_estimate(gain.values()) if gain else None, change)
        rows.append(TrendRow(strategy, other, cells))
    rows.sort(key=lambda r: (r.other, r.strategy != BASELINE, r.strategy))
    return Trend(factor, values, rows)


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "—"
    accuracy = f"{cell.accuracy.mean:.4f}"
    if cell.gain is None:
        return accuracy
    return f"{accuracy} ({interval_text(cell.gain, digits=1)})"


def trend_table(t: Trend) -> str:
    first = t.values[0]
    headers = ["arm", *(f"{t.factor}={v}" for v in t.values),
               *(f"gain change {first}→{v}" for v in t.values[1:])]
    return md_table(headers, ([
        row.label, *(_cell_text(row.cells.get(v)) for v in t.values),
        *(interval_text(c.change, digits=1) if (c := row.cells.get(v)) and c.change else "—"
          for v in t.values[1:])] for row in t.rows))


def verdict_lines(t: Trend) -> list[str]:
    lines = []
    for value, (holds, degrades) in t.verdicts().items():
        lines.append(f"- `{t.factor}={value}` against `{t.factor}={t.values[0]}`: "
                     f"degrade: {', '.join(degrades) or 'none'}; hold: "
                     f"{', '.join(holds) or 'none'}.")
    return lines


def trends_of(report: Report) -> list[Trend]:
    return report.results[SECTION.name]


def plot_trend(report: Report, t: Trend, path: Path) -> None:
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    x = np.array([_number(v) or 0.0 for v in t.values])
    active = [r for r in t.rows if r.strategy != BASELINE]
    for row, color in zip(active, figures.colors(plt, len(active)), strict=False):
        points = [(xv, c.gain) for xv, v in zip(x, t.values, strict=True)
                  if (c := row.cells.get(v)) is not None and c.gain is not None]
        if not points:
            continue
        xs = [p[0] for p in points]
        means = [p[1].mean for p in points]
        err = [[e.mean - e.low if math.isfinite(e.low) else 0.0 for _, e in points],
               [e.high - e.mean if math.isfinite(e.high) else 0.0 for _, e in points]]
        ax.errorbar(xs, means, yerr=err, color=color, marker="o", capsize=3, label=row.label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    if x.min() > 0 and x.max() / x.min() >= 10:
        ax.set_xscale("log")
    ax.set_xticks(x, t.values)
    figures.legend(fig, ax, "best")
    ax.set_xlabel(t.factor)
    ax.set_ylabel("final test accuracy − random's (points)")
    ax.set_title(f"Gain over random along {t.factor}: mean over seeds with "
                 f"{percent(CONFIDENCE)} CI{figures.flag(report)}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def file_stem(factor: str) -> str:
    return "trend_" + "".join(c if c.isalnum() or c in "_-" else "_" for c in factor)


class Along(Section):
    name = "trend"

    def compute(self, report: Report) -> list[Trend]:
        return [trend(report, f) for f in numeric_factors(report)]

    def applies(self, report: Report) -> bool:
        return bool(trends_of(report))

    def _tables(self, report: Report) -> list[str]:
        out = []
        for t in trends_of(report):
            out += [f"## Along `{t.factor}`", "", trend_table(t), "", *verdict_lines(t), ""]
        return out

    def markdown(self, report: Report) -> str:
        return "\n".join([
            *self._tables(report),
            "Each cell: the final test accuracy (mean over seeds) and, in brackets, the gain "
            "over the random arm of the same configuration in points, paired by seed, with its "
            f"{percent(CONFIDENCE)} t-interval. *Gain change*: per seed, the gain at that value "
            "minus the gain at the smallest one (seeds present in all four arms); below 0 the "
            "strategy loses its lead over random as the factor grows. *Degrade*: the change's "
            "interval lies below 0; *hold*: it reaches 0 or above.", ""])

    def csvs(self, report: Report) -> dict[str, Table]:
        def est(e: Estimate | None) -> list[float]:
            return [math.nan] * 4 if e is None else [e.mean, e.low, e.high, e.n]

        return {f"{file_stem(t.factor)}.csv": (
            ["factor", "value", "strategy", "other", "accuracy_mean", "accuracy_ci_low",
             "accuracy_ci_high", "runs", "gain_points_mean", "gain_ci_low", "gain_ci_high",
             "gain_seeds", "gain_change_points_mean", "gain_change_ci_low",
             "gain_change_ci_high", "gain_change_seeds"],
            ([t.factor, c.value, row.strategy, row.other, *est(c.accuracy), *est(c.gain),
              *est(c.change)] for row in t.rows for c in row.cells.values()))
            for t in trends_of(report)}

    def figures(self, report: Report, out: Path) -> list[Path]:
        paths = []
        for t in trends_of(report):
            path = out / f"{file_stem(t.factor)}.png"
            plot_trend(report, t, path)
            paths.append(path)
        return paths

    def main_table(self, report: Report) -> str:
        return "\n".join(self._tables(report)).rstrip()


SECTION = Along()

