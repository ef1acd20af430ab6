"""Ranking arms within each configuration: mean rank over seeds by final accuracy and by AULC.

With nine strategies a table of means hides how often each one wins; ranks per seed (1 = best,
ties share the mean rank) averaged over the seeds every arm of the configuration has, say it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from al_research.report.arms import Arm
from al_research.report.section import Report, Section, Table
from al_research.report.stats import normalised_aulc


@dataclass(frozen=True)
class RankRow:
    configuration: str  # the keys where the arms leave the reference ("reference": none)
    arm: str
    seeds: int
    rank_final: float  # mean over seeds of the arm's rank by final test accuracy
    rank_aulc: float  # the same, by normalised AULC
    final: float  # mean final test accuracy over those seeds
    aulc: float


def _configuration(arm: Arm) -> str:
    return " · ".join(f"{k}={v}" for k, v in sorted(arm.deviations.items())) or "reference"


def ranking_table(arms: Sequence[Arm]) -> list[RankRow]:
    """Rows per configuration with at least two active-learning arms, best mean rank first."""
    groups: dict[str, list[Arm]] = defaultdict(list)
    for arm in arms:
        if not arm.ground_truth:
            groups[_configuration(arm)].append(arm)
    rows: list[RankRow] = []
    for configuration, members in groups.items():
        if len(members) < 2:
            continue
        by_seed = [arm.by_seed() for arm in members]
        seeds = sorted(set.intersection(*(set(b) for b in by_seed)))
        if not seeds:
            continue
        final = np.array([[b[s].final for s in seeds] for b in by_seed])  # arms x seeds
        aulc = np.array([[normalised_aulc(b[s].steps, b[s].values()) for s in seeds]
                         for b in by_seed])
        rank_final = rankdata(-final, axis=0).mean(axis=1)  # rank 1: the best on that seed
        rank_aulc = rankdata(-aulc, axis=0).mean(axis=1)
        group = [RankRow(configuration, arm.label, len(seeds), float(rank_final[i]),
                         float(rank_aulc[i]), float(final[i].mean()), float(aulc[i].mean()))
                 for i, arm in enumerate(members)]
        rows += sorted(group, key=lambda r: (r.rank_final, r.rank_aulc))
    return rows


def ranking_markdown(rows: Sequence[RankRow]) -> str:
    lines = ["| configuration | arm | seeds | mean rank (final accuracy) | mean rank (AULC) | "
             "final accuracy | AULC |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.configuration} | {r.arm} | {r.seeds} | {r.rank_final:.2f} | "
                     f"{r.rank_aulc:.2f} | {_num(r.final)} | {_num(r.aulc)} |")
    return "\n".join(lines)


def _num(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "—"


def ranking_rows(report: Report) -> list[RankRow]:
    return report.results[SECTION.name]


class Ranking(Section):
    name = "ranking"

    def compute(self, report: Report) -> list[RankRow]:
        return ranking_table(report.arms)

    def applies(self, report: Report) -> bool:
        return bool(ranking_rows(report))

    def markdown(self, report: Report) -> str:
        return "\n".join([
            "## Ranking within each configuration", "", ranking_markdown(ranking_rows(report)),
            "", "Each seed ranks the configuration's arms (1: the best; ties share the mean "
            "rank) by final test accuracy and by AULC; the ranks are averaged over the seeds "
            "that every arm of the configuration has.", ""])

    def csvs(self, report: Report) -> dict[str, Table]:
        return {"ranking.csv": (
            ["configuration", "arm", "seeds", "mean_rank_final", "mean_rank_aulc",
             "final_test_accuracy", "aulc"],
            ([r.configuration, r.arm, r.seeds, r.rank_final, r.rank_aulc, r.final, r.aulc]
             for r in ranking_rows(report)))}


SECTION = Ranking()
