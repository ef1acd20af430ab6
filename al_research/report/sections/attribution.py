"""Attribution: what each factor of a sweep does, and how much of the article's lead it explains.

The reference configuration (every factor at its reference value: in `experiment=
article_ablation`, the honest replication) is compared, seed by seed, with every configuration
that leaves it: for each, the paired effect on the active strategy's final accuracy, on random's,
on their gap, on the active strategy after self-training, and on the ground truth where there is
one. For the article's strategy, each effect is also given as a share of the distance between the
article's figure and ours (reference configuration): +100% would close the distance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from al_research.report.arms import BASELINE, SEPARATOR, TEST_SELECTED_MARK, Arm, Factors, paired
from al_research.report.runs import RunRecord
from al_research.report.section import Report, Section, Table
from al_research.report.sections.article import ARTICLE_LINES, is_article
from al_research.report.stats import CONFIDENCE, Estimate, t_estimate
from al_research.report.text import interval_text, md_table, percent

GROUND_TRUTH_KEY = "(ground truth)"  # the ground-truth arms, among the strategies of a config
ARTICLE_STRATEGY = "least_confident"  # the strategy the article's active-learning rows used


@dataclass(frozen=True)
class Share:
    """An effect as a fraction of a distance: mean and the effect's CI bounds, both divided."""

    mean: float
    low: float
    high: float


@dataclass
class AttributionRow:
    change: str  # the configuration's deviations from the reference, e.g. `initial=first`
    deviations: dict[str, str]
    test_selected: bool
    active: Estimate | None  # paired effect on the active strategy's final test accuracy
    random: Estimate | None  # ... on random's
    gap: Estimate | None  # ... on active − random (seeds present in all four arms)
    active_self_training: Estimate | None  # ... on the active strategy after self-training
    ground_truth: Estimate | None  # ... on the ground-truth arm's accuracy
    explains: dict[str, Share] = field(default_factory=dict)  # article line -> share

    @property
    def label(self) -> str:
        return self.change + (TEST_SELECTED_MARK if self.test_selected else "")


@dataclass
class Attribution:
    strategy: str
    reference: dict[str, str]
    ours: dict[str, Estimate]  # article line -> our figure in the reference configuration
    distances: dict[str, float]  # article line -> the article's figure − our mean
    rows: list[AttributionRow]


def _final(r: RunRecord) -> float:
    return r.final


def _self_training(r: RunRecord) -> float | None:
    return r.self_training_final


def effect(flipped: Arm | None, reference: Arm | None,
           value: Callable[[RunRecord], float | None] = _final) -> Estimate | None:
    """flipped − reference on the same seeds, with its CI; None without both arms or pairs."""
    if flipped is None or reference is None:
        return None
    seeds, diffs, _ = paired(flipped, reference, value)
    return t_estimate(diffs) if seeds else None


def gap_effect(active: Arm | None, random: Arm | None, ref_active: Arm | None,
               ref_random: Arm | None) -> Estimate | None:
    """Per seed: (active − random) in the flipped configuration minus the same in the reference."""
    arms = (active, random, ref_active, ref_random)
    if any(a is None for a in arms):
        return None
    by_seed = [a.by_seed() for a in arms]  # type: ignore[union-attr]
    seeds = set.intersection(*(set(b) for b in by_seed))
    if not seeds:
        return None
    f_a, f_r, r_a, r_r = by_seed
    return t_estimate((f_a[s].final - f_r[s].final) - (r_a[s].final - r_r[s].final)
                      for s in seeds)


def _configurations(arms: Sequence[Arm]) -> dict[tuple[tuple[str, str], ...], dict[str, Arm]]:
    configs: dict[tuple[tuple[str, str], ...], dict[str, Arm]] = {}
    for a in arms:
        key = tuple(sorted(a.deviations.items()))
        configs.setdefault(key, {})[GROUND_TRUTH_KEY if a.ground_truth else a.strategy] = a
    return configs


def _mean(arm: Arm | None, value: Callable[[RunRecord], float | None]) -> Estimate | None:
    if arm is None:
        return None
    values = [v for r in arm.runs if (v := value(r)) is not None]
    return t_estimate(values) if values else None


def attribution_table(arms: Sequence[Arm], factors: Factors,
                      article: bool = False) -> list[Attribution]:
    """One attribution per active strategy present in the reference configuration; empty when
    no factor varies or the reference configuration has no random arm."""
    if not factors.keys:
        return []
    configs = _configurations(arms)
    reference = configs.get(())
    if not reference or BASELINE not in reference:
        return []
    strategies = sorted(s for s in reference if s not in (BASELINE, GROUND_TRUTH_KEY))
    out = []
    for strategy in strategies:
        ours: dict[str, Estimate] = {}
        distances: dict[str, float] = {}
        # article line -> the row field it is explained by, and how our figure is read
        lines: dict[str, tuple[str, Callable[[RunRecord], float | None], Arm | None]] = {}
        if article and strategy == ARTICLE_STRATEGY:
            for line, line_strategy, st, figure, _ in ARTICLE_LINES:
                if line_strategy is None:
                    field_name, arm = "ground_truth", reference.get(GROUND_TRUTH_KEY)
                elif line_strategy == BASELINE:
                    field_name, arm = "random", reference.get(BASELINE)
                else:
                    field_name, arm = ("active_self_training" if st else "active",
                                       reference.get(strategy))
                value = _self_training if st else _final
                estimate = _mean(arm, value)
                if estimate is not None:
                    ours[line] = estimate
                    distances[line] = figure - estimate.mean
                    lines[line] = (field_name, value, arm)
        rows = []
        for key, by_strategy in sorted(configs.items(), key=lambda kv: (len(kv[0]), kv[0])):
            if not key or (strategy not in by_strategy and BASELINE not in by_strategy):
                continue
            flipped, flipped_random = by_strategy.get(strategy), by_strategy.get(BASELINE)
            row = AttributionRow(
                change=SEPARATOR.join(f"{k}={v}" for k, v in key),
                deviations=dict(key),
                test_selected=any(a.test_selected for a in by_strategy.values()),
                active=effect(flipped, reference.get(strategy)),
                random=effect(flipped_random, reference.get(BASELINE)),
                gap=gap_effect(flipped, flipped_random, reference.get(strategy),
                               reference.get(BASELINE)),
                active_self_training=effect(flipped, reference.get(strategy), _self_training),
                ground_truth=effect(by_strategy.get(GROUND_TRUTH_KEY),
                                    reference.get(GROUND_TRUTH_KEY)))
            for line, (field_name, _, _) in lines.items():
                e: Estimate | None = getattr(row, field_name)
                distance = distances[line]
                if e is None or e.n == 0 or abs(distance) < 1e-12:
                    continue
                bounds = sorted((e.low / distance, e.high / distance))
                row.explains[line] = Share(e.mean / distance, bounds[0], bounds[1])
            rows.append(row)
        out.append(Attribution(strategy, dict(factors.reference), ours, distances, rows))
    return out


def share_text(share: Share | None) -> str:
    if share is None or not math.isfinite(share.mean):
        return "—"
    if not (math.isfinite(share.low) and math.isfinite(share.high)):
        return f"{share.mean:+.0%}"
    return f"{share.mean:+.0%} [{share.low:+.0%}, {share.high:+.0%}]"


def attribution_markdown(attribution: Attribution) -> str:
    lines = [line for line in attribution.distances
             if any(line in r.explains for r in attribution.rows)]
    st = any(r.active_self_training for r in attribution.rows)
    gt = any(r.ground_truth for r in attribution.rows)
    headers = ["configuration (vs the reference)", f"{attribution.strategy} final",
               "random final", f"gap ({attribution.strategy} − random)",
               *([f"{attribution.strategy} + self-training"] if st else []),
               *(["ground truth"] if gt else []),
               *(f"share of the distance to the article: {line}" for line in lines)]
    rows = [[r.label, interval_text(r.active), interval_text(r.random), interval_text(r.gap),
             *([interval_text(r.active_self_training)] if st else []),
             *([interval_text(r.ground_truth)] if gt else []),
             *(share_text(r.explains.get(line)) for line in lines)]
            for r in attribution.rows]
    table = md_table(headers, rows)
    if not attribution.distances:
        return table
    distance = md_table(
        ["article", "ours (reference configuration)", "article − ours"],
        [[line, attribution.ours[line].text(), f"{d:+.4f}"]
         for line, d in attribution.distances.items()])
    return f"{table}\n\n{distance}"


def _csv_rows(attributions: Sequence[Attribution]) -> Iterator[list[object]]:
    for a in attributions:
        for r in a.rows:
            for name, e in (("active", r.active), ("random", r.random), ("gap", r.gap),
                            ("active_self_training", r.active_self_training),
                            ("ground_truth", r.ground_truth)):
                if e is not None:
                    yield [a.strategy, r.change, r.test_selected, name, e.n, e.mean, e.low,
                           e.high, "", "", "", ""]
            for line, s in r.explains.items():
                yield [a.strategy, r.change, r.test_selected, "article_distance", "", "", "",
                       "", line, s.mean, s.low, s.high]


def attributions(report: Report) -> list[Attribution]:
    return report.results[SECTION.name]


class AttributionTables(Section):
    name = "attribution"

    def compute(self, report: Report) -> list[Attribution]:
        return attribution_table(report.arms, report.factors, is_article(report.runs))

    def applies(self, report: Report) -> bool:
        return bool(attributions(report))

    def markdown(self, report: Report) -> str:
        parts: list[str] = []
        for attribution in attributions(report):
            parts += [f"## Attribution: what each factor changes ({attribution.strategy})", "",
                      attribution_markdown(attribution), "",
                      "Each row flips the factors named from the reference configuration "
                      f"({report.factors.text()}) and gives the paired effect (same seeds), "
                      f"mean [{percent(CONFIDENCE)} CI]. A share of +100% would close the "
                      "distance between our reference figure and the article's; the bounds are "
                      "the effect's CI divided by that distance. One factor at a time: effects "
                      "need not add up.", ""]
        return "\n".join(parts)

    def csvs(self, report: Report) -> dict[str, Table]:
        return {"attribution.csv": (
            ["strategy", "configuration", "test_selected", "effect_on", "n", "mean", "ci_low",
             "ci_high", "article_line", "share", "share_low", "share_high"],
            _csv_rows(attributions(report)))}

    def main_table(self, report: Report) -> str:
        return "\n\n".join(f"Attribution ({a.strategy}; reference: {report.factors.text()}):"
                            f"\n\n{attribution_markdown(a)}" for a in attributions(report))


SECTION = AttributionTables()
