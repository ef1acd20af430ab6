"""Per arm: final accuracy, the fresh model on the same labels, AULC, labels to reach the
target (from the mean curve and per seed), validation labels, and after self-training."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from al_research.report.arms import Arm
from al_research.report.section import Report, RunMetric, Section
from al_research.report.stats import (
    CONFIDENCE,
    Estimate,
    labels_to_reach,
    normalised_aulc,
    t_estimate,
)
from al_research.report.text import counts, md_table, metric_name, percent
from al_research.tracking.names import Metric, Param, SummaryMetric

FRESH_METRIC = Metric.FRESH_TEST_ACCURACY


@dataclass
class ArmSummary:
    arm: str  # the arm's label (test-selected arms marked)
    strategy: str
    ground_truth: bool
    test_selected: bool
    n_runs: int
    seeds: list[str]
    final_steps: list[int]
    final: Estimate
    aulc: Estimate  # per-run normalised AULC, mean ± CI over seeds
    labels_to_target: int | None  # from the mean curve
    labels_to_target_runs: Estimate  # per seed, over the seeds that reached the target
    reached: int  # seeds that reached the target
    self_training: Estimate | None
    fresh: Estimate | None = None  # a fresh model trained on the final labelled set
    validation_labels: str | None = None  # labels spent on the validation set, as text


def labels_to_reach_per_run(arm: Arm, target: float) -> tuple[Estimate, int]:
    """Each seed's first labelled count at or above `target`: mean ± CI over the seeds that
    reached it, and how many did."""
    reached = [labels_to_reach(r.steps, r.values(), target) for r in arm.runs]
    found = [c for c in reached if c is not None]
    return t_estimate(found), len(found)


def validation_labels(arm: Arm) -> str | None:
    """Labels spent on the validation set: the `val_labels` metric, else `data.val_size`; said
    to be unused when early stopping watches the test set or is off."""
    run = arm.runs[0]
    if Metric.VAL_LABELS in run.metrics:
        size: str | None = f"{run.metrics[Metric.VAL_LABELS]:g}"
    else:
        size = arm.param(Param.VAL_SIZE)
        size = None if size in (None, "null") else size
    if size is None:
        return None
    if arm.param(Param.EARLY_STOPPING) == "false":
        return f"{size} (unused: no early stopping)"
    if arm.param(Param.MONITOR) == "test":
        return f"{size} (unused: stops on test)"
    return size


def summarise(arm: Arm, target: float) -> ArmSummary:
    final = t_estimate(r.final for r in arm.runs)
    st_runs = arm.self_training_runs()
    st = t_estimate(r.self_training_final for r in st_runs) if st_runs else None
    fresh_runs = arm.metric_runs(FRESH_METRIC)
    fresh = t_estimate(r.metrics[FRESH_METRIC] for r in fresh_runs) if fresh_runs else None
    common = dict(arm=arm.label, strategy=arm.strategy, ground_truth=arm.ground_truth,
                  test_selected=arm.test_selected, n_runs=len(arm.runs), seeds=arm.seeds,
                  final_steps=sorted({r.final_step for r in arm.runs}), final=final,
                  self_training=st, fresh=fresh, validation_labels=validation_labels(arm))
    if arm.ground_truth:
        return ArmSummary(**common, aulc=t_estimate([]), labels_to_target=None,
                          labels_to_target_runs=t_estimate([]), reached=0)
    steps = arm.common_steps()
    means = [float(np.mean([r.curve[s] for r in arm.runs if s in r.curve])) for s in steps]
    aulc = t_estimate(normalised_aulc(r.steps, r.values()) for r in arm.runs)
    per_run, reached = labels_to_reach_per_run(arm, target)
    return ArmSummary(**common, aulc=aulc, labels_to_target=labels_to_reach(steps, means, target),
                      labels_to_target_runs=per_run, reached=reached)


def summaries(report: Report) -> list[ArmSummary]:
    """One summary per arm, in the order of `report.arms`."""
    return report.results[SECTION.name]


def _reach_text(estimate: Estimate, reached: int, n: int) -> str:
    if reached == 0:
        return f"not reached (0/{n} seeds)"
    text = f"{estimate.mean:.0f}"
    if math.isfinite(estimate.half_width):
        text += f" ± {estimate.half_width:.0f}"
    return f"{text} ({reached}/{n} seeds)"


def summary_table(report: Report) -> str:
    rows_of = summaries(report)
    validation = any(s.validation_labels for s in rows_of)
    fresh = any(s.fresh for s in rows_of)
    headers = ["arm", "runs", "seeds", "labelled (final)",
               *(["validation labels"] if validation else []), "final test accuracy", "std",
               *(["fresh model on the final labels"] if fresh else []), "AULC (normalised)",
               f"labels to reach {report.target:g} (mean curve)",
               f"labels to reach {report.target:g} (per seed)", "after self-training"]
    rows = []
    for s in rows_of:
        curve = not s.ground_truth
        reach = ("—" if not curve else
                 "not reached" if s.labels_to_target is None else str(s.labels_to_target))
        rows.append([
            s.arm + (" (ground truth)" if s.ground_truth else ""), s.n_runs,
            ", ".join(s.seeds), counts(s.final_steps),
            *([s.validation_labels or "—"] if validation else []), s.final.text(),
            "—" if not math.isfinite(s.final.std) else f"{s.final.std:.4f}",
            *([s.fresh.text() if s.fresh else "—"] if fresh else []),
            s.aulc.text() if curve else "—", reach,
            _reach_text(s.labels_to_target_runs, s.reached, s.n_runs) if curve else "—",
            s.self_training.text() if s.self_training else "—",
        ])
    return md_table(headers, rows)


def _unit(value: float) -> float:
    """An accuracy bound clipped to [0, 1] (a t-interval can pass 1); NaN stays NaN."""
    return min(1.0, max(0.0, value)) if value == value else value


class PerArm(Section):
    name = "per_arm"

    def compute(self, report: Report) -> list[ArmSummary]:
        return [summarise(a, report.target) for a in report.arms]

    def markdown(self, report: Report) -> str:
        return "\n".join([
            "## Arms", "", summary_table(report), "",
            "AULC: the area under test accuracy against labelled count divided by the range "
            "of labelled counts (the curve's mean level), per run, then averaged over seeds. "
            "Labels to reach the target per seed: each seed's first labelled count at or "
            f"above it, mean ± {percent(CONFIDENCE)} CI over the seeds that reached it.", ""])

    def main_table(self, report: Report) -> str:
        return summary_table(report)

    def run_metrics(self, report: Report) -> Iterable[RunMetric]:
        for s in summaries(report):
            arm = metric_name(s.arm)
            yield from ((SummaryMetric.FINAL_MEAN.format(arm=arm), s.final.mean, 0),
                        (SummaryMetric.FINAL_CI_LOW.format(arm=arm), _unit(s.final.low), 0),
                        (SummaryMetric.FINAL_CI_HIGH.format(arm=arm), _unit(s.final.high), 0),
                        (SummaryMetric.AULC_MEAN.format(arm=arm), s.aulc.mean, 0),
                        (SummaryMetric.RUNS.format(arm=arm), s.n_runs, 0))


SECTION = PerArm()
