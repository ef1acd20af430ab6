"""The article's table: each published single-run figure beside our runs of the same setting,
with our 95% prediction interval for one run and a verdict. Only for the article's experiments
(runs tagged `protocol=article`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from al_research.report.arms import BASELINE, TEST_SELECTED_MARK, Arm
from al_research.report.runs import RunRecord
from al_research.report.section import Report, Section, Table
from al_research.report.stats import CONFIDENCE, Estimate, prediction_interval, t_estimate
from al_research.report.text import counts, md_table, percent
from al_research.tracking.names import Tag

ARTICLE_PROTOCOL = "article"  # the `protocol` tag of the article's experiments
GROUND_TRUTH_ROW = None  # ARTICLE_LINES' strategy for the ground-truth row: any ground-truth arm

# What the article published (one run each), as it published it.
ARTICLE_LINES: tuple[tuple[str, str | None, bool, float, str], ...] = (
    # (the article's row, strategy, use the self-training final?, its figure, our row's name)
    ("4000 samples", GROUND_TRUTH_ROW, False, 0.9225, "{n} samples (ground truth)"),
    ("400 random samples", BASELINE, False, 0.8375, "{n} random samples"),
    ("400 active learned samples", "least_confident", False, 0.8975,
     "{n} active learned samples"),
    ("+ auto-labeling", "least_confident", True, 0.9050,
     "{n} active learned samples + auto-labeling"),
)
ARTICLE_GROUND_TRUTH_LABELS = 4000  # the labels of the article's ground-truth model

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


VERDICT_TEST = (f"the article's figure is one run: it is compared with our {percent(CONFIDENCE)} "
                f"prediction interval for one run, mean ± t({(1 + CONFIDENCE) / 2:g}, n−1)·s·"
                "√(1 + 1/n) over our seeds, and with the share of our seeds at or above it (not "
                "with the CI of our mean, which shrinks as seeds are added)")


def is_article(records: Iterable[RunRecord]) -> bool:
    return any(r.tags.get(Tag.PROTOCOL) == ARTICLE_PROTOCOL for r in records)


def verdict(values: Sequence[float], figure: float) -> str:
    """Where one published run lies against our 95% prediction interval for one run."""
    if len(values) == 0:
        return "no runs"
    low, high = prediction_interval(values)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n=1: no interval"
    pi = f"our {percent(CONFIDENCE)} PI"
    if low <= figure <= high:
        return f"inside {pi}"
    return f"above {pi}" if figure > high else f"below {pi}"


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


def _pi_text(row: ArticleRow) -> str:
    low, high = row.prediction
    if not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"[{low:.4f}, {high:.4f}]"


def article_markdown(rows: Sequence[ArticleRow]) -> str:
    body = [[r.line, f"{r.article:.4f}", r.ours,
             r.estimate.text() if r.estimate else "—", _pi_text(r),
             f"{r.at_or_above}/{r.estimate.n}" if r.estimate else "—", r.verdict]
            for r in rows]
    level = percent(CONFIDENCE)
    return md_table(["article", "article's figure (one run)", "ours",
                     f"ours: mean ± {level} CI (n)", f"ours: {level} PI for one run",
                     "our seeds ≥ the figure", "article's figure vs our PI"], body)


def article_rows(report: Report) -> list[ArticleRow] | None:
    """The article's table, or None when the runs are not the article's experiments."""
    return report.results[SECTION.name]


class ArticleTable(Section):
    name = "article"

    def compute(self, report: Report) -> list[ArticleRow] | None:
        return article_table(report.arms) if is_article(report.runs) else None

    def applies(self, report: Report) -> bool:
        return article_rows(report) is not None

    def markdown(self, report: Report) -> str:
        return "\n".join(["## The article's table", "", article_markdown(article_rows(report)),
                          "", f"Verdict: {VERDICT_TEST}.", ""])

    def csvs(self, report: Report) -> dict[str, Table]:
        rows = article_rows(report) or []
        return {"article_table.csv": (
            ["article", "article_figure", "ours", "test_selected", "mean", "n", "ci_low",
             "ci_high", "pi_low", "pi_high", "seeds_at_or_above", "verdict"],
            ([r.line, r.article, r.ours, r.test_selected,
              r.estimate.mean if r.estimate else math.nan,
              r.estimate.n if r.estimate else 0,
              r.estimate.low if r.estimate else math.nan,
              r.estimate.high if r.estimate else math.nan,
              *r.prediction, r.at_or_above, r.verdict] for r in rows))}

    def main_table(self, report: Report) -> str:
        return "The article's table:\n\n" + article_markdown(article_rows(report) or [])


SECTION = ArticleTable()
