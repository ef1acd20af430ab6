"""Everything the report shows, computed from the arms: summaries, paired comparisons, the
article's table and the attribution of the article's figures to the factors of a sweep."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from al_research.report.arms import (
    BASELINE,
    Arm,
    Factors,
    baseline_for,
    group_arms,
    paired,
    pairing_notes,
)
from al_research.report.article import ArticleRow, article_table, is_article
from al_research.report.attribution import Attribution, attribution_table
from al_research.report.ranking import RankRow, ranking_table
from al_research.report.runs import (
    FINAL_METRIC,
    SELF_TRAINING_FINAL,
    RunRecord,
    Selection,
)
from al_research.report.stats import (
    Estimate,
    SignedRankTest,
    holm,
    labels_to_reach,
    normalised_aulc,
    t_estimate,
    wilcoxon_test,
)
from al_research.tracking.names import Metric, Param

SELF_TRAINING_SUFFIX = " + self-training"  # comparison rows and plot labels
FRESH_SUFFIX = " (fresh model)"  # comparison rows on the label-fair score
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
class Report:
    selection: Selection
    target: float
    arms: list[Arm]
    summaries: list[ArmSummary]
    comparisons: list[Comparison]
    differences: dict[str, dict[int, Estimate]]  # arm label -> step -> difference from random
    article: list[ArticleRow] | None
    factors: Factors = field(default_factory=lambda: Factors({}))
    attribution: list[Attribution] = field(default_factory=list)
    ranking: list[RankRow] = field(default_factory=list)  # within each configuration
    notes: list[str] = field(default_factory=list)
    out_dir: Path | None = None
    summary_run_id: str | None = None

    @property
    def n_runs(self) -> int:
        return sum(len(a.runs) for a in self.arms)

    @property
    def test_selected_runs(self) -> int:
        return sum(r.test_selected for a in self.arms for r in a.runs)


def labels_to_reach_per_run(arm: Arm, target: float) -> tuple[Estimate, int]:
    """Each seed's first labelled count at or above `target`: mean ± CI over the seeds that
    reached it, and how many did."""
    reached = [labels_to_reach(r.steps, r.values(), target) for r in arm.runs]
    counts = [c for c in reached if c is not None]
    return t_estimate(counts), len(counts)


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


def analyse(selection: Selection, records: Sequence[RunRecord], target: float,
            notes: Sequence[str], factors: Factors | None = None) -> Report:
    """Everything the report shows, computed from the runs."""
    factors = factors or Factors({})
    arms = group_arms(records, factors)
    notes = [*notes, *pairing_notes(arms)]
    flagged = [a.name for a in arms if a.test_selected]
    if flagged:
        notes.insert(0, f"test-selected: {', '.join(flagged)} early-stopped on the TEST set "
                        f"(tag test_selected=true), so their test accuracies are optimistic; "
                        f"marked [test-selected] in every table and plot")
    summaries = [summarise(a, target) for a in arms]
    comparisons: list[Comparison] = []
    differences: dict[str, dict[int, Estimate]] = {}
    for arm in arms:
        if arm.strategy == BASELINE or arm.ground_truth:
            continue
        baseline, why = baseline_for(arm, arms)
        if baseline is None:
            notes.append(f"{arm.name}: {why}")
            continue
        comparisons.append(compare(arm, baseline, note=why))
        if arm.self_training_runs():
            comparisons.append(compare(arm, baseline, SELF_TRAINING_FINAL, note=why))
        if arm.metric_runs(FRESH_METRIC) and baseline.metric_runs(FRESH_METRIC):
            comparisons.append(compare(arm, baseline, FRESH_METRIC, note=why))
        differences[arm.label] = step_differences(arm, baseline)
    for c, adjusted in zip(comparisons, holm([c.p for c in comparisons]), strict=True):
        c.p_holm = adjusted
    notes += holm_notes(comparisons)
    article = article_table(arms) if is_article(records) else None
    attribution = attribution_table(arms, factors, article is not None)
    return Report(selection, target, arms, summaries, comparisons, differences, article,
                  factors, attribution, ranking_table(arms), notes)
