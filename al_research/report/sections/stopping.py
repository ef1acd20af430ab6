"""When to stop: per arm and per stopping criterion (al_research/stopping), over seeds, the labels
the criterion would have spent and the test accuracy stopping there would have given up.

A run records, for each configured criterion, the labelled count at which it first fired (tag
`stopping.<name>`, or "never") and its test accuracy at every labelled count. Per run, the labels
spent are that count (the run's final labelled count if the criterion never fired) and the
accuracy given up is the test accuracy at that count minus the final one (0 if it never fired);
both are averaged over seeds with a t-interval. A run that a criterion ended early
(`stopping.action=stop`, tag `stopped_by`) never saw its full-budget accuracy: it counts in the
labels, not in the accuracy given up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from al_research.report.arms import Arm
from al_research.report.runs import RunRecord
from al_research.report.section import Report, Section, Table
from al_research.report.stats import CONFIDENCE, Estimate, t_estimate
from al_research.report.text import interval_text, md_table, percent
from al_research.tracking.names import NEVER, Tag

POINTS = 100.0  # accuracy differences are shown in points


@dataclass(frozen=True)
class StopRow:
    arm: str
    criterion: str
    runs: int
    fired: int  # runs in which it fired
    labels: Estimate  # the labels it would have spent, per run (never fired: the final count)
    median: float
    low: int  # the fewest and the most labels over the runs
    high: int
    budget: tuple[int, int]  # the runs' final labelled counts (fewest, most)
    given_up: Estimate  # points: test accuracy at the stop minus the final one, per run
    measured: int  # runs that spent their budget: the accuracy given up is known


def criteria_of(runs: Sequence[RunRecord]) -> list[str]:
    """The stopping criteria the runs recorded (tags `stopping.<name>`), sorted."""
    prefix = Tag.STOPPING_PREFIX
    return sorted({k[len(prefix):] for r in runs for k in r.tags if k.startswith(prefix)})


def fired_at(run: RunRecord, criterion: str) -> int | None:
    """The labelled count at which the criterion first fired in the run; None: it never did
    (or the run did not record it)."""
    value = run.tags.get(Tag.STOPPING_PREFIX + criterion)
    if value is None or value == NEVER:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def stopped_early(run: RunRecord) -> bool:
    """A criterion ended the run's loop before its budget (`stopping.action=stop`)."""
    return bool(run.tags.get(Tag.STOPPED_BY))


def stop_row(arm: Arm, criterion: str) -> StopRow | None:
    """The criterion over the arm's runs that recorded it; None if none did."""
    runs = [r for r in arm.runs if Tag.STOPPING_PREFIX + criterion in r.tags]
    if not runs:
        return None
    labels: list[int] = []
    given_up: list[float] = []
    fired = 0
    for run in runs:
        at = fired_at(run, criterion)
        fired += at is not None
        labels.append(run.final_step if at is None else at)
        if stopped_early(run):
            continue  # its full-budget accuracy was never measured
        if at is None:
            given_up.append(0.0)
        elif at in run.curve:
            given_up.append((run.curve[at] - run.final) * POINTS)
    finals = [r.final_step for r in runs]
    return StopRow(arm.label, criterion, len(runs), fired, t_estimate(labels),
                   float(np.median(labels)), min(labels), max(labels), (min(finals), max(finals)),
                   t_estimate(given_up), len(given_up))


def stop_rows(arms: Sequence[Arm]) -> list[StopRow]:
    """A row per active-learning arm and criterion it recorded, arms in the report's order."""
    rows: list[StopRow] = []
    for arm in arms:
        if arm.ground_truth:
            continue
        for criterion in criteria_of(arm.runs):
            row = stop_row(arm, criterion)
            if row is not None:
                rows.append(row)
    return rows


def _labels_text(row: StopRow) -> str:
    e = row.labels
    if not math.isfinite(e.half_width):
        return f"{e.mean:.0f} (n={e.n}, no CI)"
    return f"{e.mean:.0f} ± {e.half_width:.0f}"


def _budget_text(row: StopRow) -> str:
    low, high = row.budget
    return str(low) if low == high else f"{low}–{high}"


def _given_up_text(row: StopRow) -> str:
    if row.measured == 0:
        return "— (ended by the criteria: no full-budget accuracy)"
    text = interval_text(row.given_up, digits=1)
    return text if row.measured == row.runs else f"{text} ({row.measured} of {row.runs} runs)"


def stopping_table(rows: Sequence[StopRow]) -> str:
    headers = ["arm", "criterion", "fired", "labels it would spend", "median [range]",
               "final labels", "test accuracy at the stop − final (points)"]
    return md_table(headers, ([
        r.arm, r.criterion, f"{r.fired}/{r.runs}", _labels_text(r),
        f"{r.median:.0f} [{r.low}–{r.high}]", _budget_text(r), _given_up_text(r)]
        for r in rows))


def rows_of(report: Report) -> list[StopRow]:
    return report.results[SECTION.name]


class Stopping(Section):
    name = "stopping"

    def compute(self, report: Report) -> list[StopRow]:
        return stop_rows(report.arms)

    def applies(self, report: Report) -> bool:
        return bool(rows_of(report))

    def markdown(self, report: Report) -> str:
        return "\n".join([
            "## When to stop", "", stopping_table(rows_of(report)), "",
            "Per run, each stopping criterion's labels are the labelled count at the round it "
            "first fired, or the run's final count where it never fired (counted in *fired*); "
            "the accuracy given up is the test accuracy at that round minus the final one, in "
            "points (negative: lost; 0 where it never fired). Mean ± "
            f"{percent(CONFIDENCE)} t-interval over seeds. Runs that a criterion ended early "
            "(`stopping.action=stop`) count in the labels only: the same configuration with "
            "`stopping.action=record` measures what they gave up.", ""])

    def csvs(self, report: Report) -> dict[str, Table]:
        return {"stopping.csv": (
            ["arm", "criterion", "runs", "fired", "labels_mean", "labels_ci_low",
             "labels_ci_high", "labels_median", "labels_min", "labels_max", "final_labels_min",
             "final_labels_max", "accuracy_given_up_points_mean", "accuracy_given_up_ci_low",
             "accuracy_given_up_ci_high", "accuracy_given_up_runs"],
            ([r.arm, r.criterion, r.runs, r.fired, r.labels.mean, r.labels.low, r.labels.high,
              r.median, r.low, r.high, r.budget[0], r.budget[1], r.given_up.mean,
              r.given_up.low, r.given_up.high, r.measured] for r in rows_of(report)))}

    def main_table(self, report: Report) -> str:
        return stopping_table(rows_of(report))


SECTION = Stopping()
