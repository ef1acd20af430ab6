"""Everything the report shows, computed from the arms: summaries, paired comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from al_research.report.arms import BASELINE, Arm, baseline_for, group_arms, pairing_notes
from al_research.report.article import ArticleRow, article_table, is_article
from al_research.report.runs import (
    FINAL_METRIC,
    SELF_TRAINING_FINAL,
    RunRecord,
    Selection,
    seed_key,
)
from al_research.report.stats import (
    Estimate,
    holm,
    labels_to_reach,
    normalised_aulc,
    t_estimate,
    wilcoxon_p,
)

SELF_TRAINING_SUFFIX = " + self-training"  # comparison rows and plot labels


@dataclass
class ArmSummary:
    arm: str
    strategy: str
    ground_truth: bool
    n_runs: int
    seeds: list[str]
    final_steps: list[int]
    final: Estimate
    aulc: Estimate  # per-run normalised AULC, mean ± CI over seeds
    labels_to_target: int | None
    self_training: Estimate | None


@dataclass
class Comparison:
    """One arm against its random baseline, paired by seed, on final test accuracy."""

    arm: str
    baseline: str
    metric: str
    seeds: list[str]
    difference: Estimate
    wins: int
    ties: int
    losses: int
    p: float
    p_holm: float = math.nan
    note: str = ""


@dataclass
class Report:
    selection: Selection
    target: float
    arms: list[Arm]
    summaries: list[ArmSummary]
    comparisons: list[Comparison]
    differences: dict[str, dict[int, Estimate]]  # arm -> step -> paired difference from random
    article: list[ArticleRow] | None
    notes: list[str] = field(default_factory=list)
    out_dir: Path | None = None
    summary_run_id: str | None = None

    @property
    def n_runs(self) -> int:
        return sum(len(a.runs) for a in self.arms)


def summarise(arm: Arm, target: float) -> ArmSummary:
    final = t_estimate(r.final for r in arm.runs)
    st_runs = arm.self_training_runs()
    st = t_estimate(r.self_training_final for r in st_runs) if st_runs else None
    if arm.ground_truth:
        return ArmSummary(arm.name, arm.strategy, True, len(arm.runs), arm.seeds,
                          sorted({r.final_step for r in arm.runs}), final,
                          t_estimate([]), None, st)
    steps = arm.common_steps()
    means = [float(np.mean([r.curve[s] for r in arm.runs if s in r.curve])) for s in steps]
    aulc = t_estimate(normalised_aulc(r.steps, r.values()) for r in arm.runs)
    return ArmSummary(arm.name, arm.strategy, False, len(arm.runs), arm.seeds,
                      sorted({r.final_step for r in arm.runs}), final, aulc,
                      labels_to_reach(steps, means, target), st)


def compare(arm: Arm, baseline: Arm, self_training: bool = False) -> Comparison:
    ours = {s: r.self_training_final if self_training else r.final
            for s, r in arm.by_seed().items()
            if not self_training or r.self_training_final is not None}
    base = {s: r.final for s, r in baseline.by_seed().items()}
    seeds = sorted(set(ours) & set(base), key=seed_key)
    diffs = np.array([ours[s] - base[s] for s in seeds], dtype=float)
    tie = np.isclose(diffs, 0.0, atol=1e-9)
    p, note = wilcoxon_p(diffs)
    unpaired = len(set(ours) ^ set(base))
    if unpaired:
        note = "; ".join(filter(None, [note, f"{unpaired} unpaired seed(s) left out"]))
    name = arm.name + (SELF_TRAINING_SUFFIX if self_training else "")
    metric = SELF_TRAINING_FINAL if self_training else FINAL_METRIC
    return Comparison(name, baseline.name, metric, seeds, t_estimate(diffs),
                      int(np.sum((diffs > 0) & ~tie)),
                      int(np.sum(tie)), int(np.sum((diffs < 0) & ~tie)), p, note=note)


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


def analyse(selection: Selection, records: Sequence[RunRecord], target: float,
            notes: Sequence[str]) -> Report:
    """Everything the report shows, computed from the runs."""
    arms = group_arms(records)
    notes = [*notes, *pairing_notes(arms)]
    summaries = [summarise(a, target) for a in arms]
    comparisons: list[Comparison] = []
    differences: dict[str, dict[int, Estimate]] = {}
    for arm in arms:
        if arm.strategy == BASELINE or arm.ground_truth:
            continue
        baseline = baseline_for(arm, arms)
        if baseline is None:
            notes.append(f"{arm.name}: no random runs on the same model and data to compare with")
            continue
        comparisons.append(compare(arm, baseline))
        if arm.self_training_runs():
            comparisons.append(compare(arm, baseline, self_training=True))
        differences[arm.name] = step_differences(arm, baseline)
    for c, adjusted in zip(comparisons, holm([c.p for c in comparisons]), strict=True):
        c.p_holm = adjusted
    article = article_table(arms) if is_article(records) else None
    return Report(selection, target, arms, summaries, comparisons, differences, article, notes)
