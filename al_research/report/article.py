"""The article's table: each published figure beside ours, with a verdict."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from al_research.report.arms import BASELINE, TEST_SELECTED_MARK, Arm
from al_research.report.runs import RunRecord
from al_research.report.stats import Estimate, prediction_interval, t_estimate
from al_research.tracking.names import Tag

ARTICLE_PROTOCOL = "article"  # the `protocol` tag of the article's experiments
GROUND_TRUTH_ROW = None  # ARTICLE_LINES' strategy for the ground-truth row: any ground-truth arm

ARTICLE_LINES: tuple[tuple[str, str | None, bool, float, str], ...] = (
    # (the article's row, strategy, use the self-training final?, its figure, our row's name)
    ("4000 samples", GROUND_TRUTH_ROW, False, 0.9225, "{n} samples (ground truth)"),
    ("400 random samples", BASELINE, False, 0.8375, "{n} random samples"),
    ("400 active learned samples", "least_confident", False, 0.8975,
     "{n} active learned samples"),
    ("+ auto-labeling", "least_confident", True, 0.9050,
     "{n} active learned samples + auto-labeling"),
)

ARTICLE_POINTS = (  # (label, labelled count or None for the right edge, accuracy, marker)
    ("article: 4000 labels (ground truth)", None, 0.9225, "D"),
    ("article: 400 random", 400, 0.8375, "X"),
    ("article: 400 least-confident", 400, 0.8975, "^"),
    ("article: + auto-labelling", 400, 0.9050, "*"),
)


@dataclass
class ArticleRow:
    """A published single-run figure beside our runs of the same setting."""

    line: str  # the article's row
    ours: str  # our row, named by the labelled count we found (and the arm's label)
    article: float
    estimate: Estimate | None  # our mean with its 95% CI
    prediction: tuple[float, float]  # our 95% prediction interval for one run
    at_or_above: int  # our seeds at or above the article's figure
    verdict: str
    test_selected: bool = False


VERDICT_TEST = ("the article's figure is one run: it is compared with our 95% prediction "
                "interval for one run, mean ± t(0.975, n−1)·s·√(1 + 1/n) over our seeds, and "
                "with the share of our seeds at or above it (not with the CI of our mean, "
                "which shrinks as seeds are added)")


def is_article(records: Iterable[RunRecord]) -> bool:
    return any(r.tags.get(Tag.PROTOCOL) == ARTICLE_PROTOCOL for r in records)


def verdict(values: Sequence[float], figure: float) -> str:
    """Where one published run lies against our 95% prediction interval for one run."""
    if len(values) == 0:
        return "no runs"
    low, high = prediction_interval(values)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n=1: no interval"
    if low <= figure <= high:
        return "inside our 95% PI"
    return "above our 95% PI" if figure > high else "below our 95% PI"


def counts(steps: Iterable[int]) -> str:
    """Labelled counts as text: one number, or the range found."""
    found = sorted(set(steps))
    return str(found[0]) if len(found) == 1 else f"{found[0]}–{found[-1]}"


def _arms_for(strategy: str | None, arms: Sequence[Arm]) -> list[Arm]:
    if strategy is GROUND_TRUTH_ROW:
        return [a for a in arms if a.ground_truth]
    return [a for a in arms if a.strategy == strategy and not a.ground_truth]


def article_table(arms: Sequence[Arm]) -> list[ArticleRow]:
    """One row per line of the article's table (and per arm of that strategy)."""
    rows = []
    for line, strategy, st, figure, template in ARTICLE_LINES:
        made = False
        for arm in _arms_for(strategy, arms):
            runs = [r for r in arm.runs if r.tags.get(Tag.PROTOCOL) == ARTICLE_PROTOCOL]
            if st:
                runs = [r for r in runs if r.self_training_final is not None]
            if not runs:
                continue
            values = [float(r.self_training_final if st else r.final) for r in runs]
            ours = template.format(n=counts(r.final_step for r in runs))
            if arm.name != arm.strategy:
                ours += f" [{arm.name}]"
            if any(r.test_selected for r in runs):
                ours += TEST_SELECTED_MARK
            rows.append(ArticleRow(line, ours, figure, t_estimate(values),
                                   prediction_interval(values),
                                   sum(v >= figure for v in values), verdict(values, figure),
                                   any(r.test_selected for r in runs)))
            made = True
        if not made:
            rows.append(ArticleRow(line, "no runs", figure, None, (math.nan, math.nan), 0,
                                   verdict([], figure)))
    return rows
