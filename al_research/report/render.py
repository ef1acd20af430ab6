"""The report as text: markdown tables, summary.md, CSV files, the console summary."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from al_research.report.analysis import Report
from al_research.report.arms import TEST_SELECTED_MARK
from al_research.report.article import VERDICT_TEST, ArticleRow, counts
from al_research.report.attribution import Attribution, Share
from al_research.report.stats import CONFIDENCE, Estimate


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def p_text(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.4g}"


def interval_text(e: Estimate | None, digits: int = 4) -> str:
    if e is None or e.n == 0:
        return "—"
    if not math.isfinite(e.low):
        return f"{e.mean:+.{digits}f} (n={e.n}, no CI)"
    return f"{e.mean:+.{digits}f} [{e.low:+.{digits}f}, {e.high:+.{digits}f}]"


def share_text(share: Share | None) -> str:
    if share is None or not math.isfinite(share.mean):
        return "—"
    if not (math.isfinite(share.low) and math.isfinite(share.high)):
        return f"{share.mean:+.0%}"
    return f"{share.mean:+.0%} [{share.low:+.0%}, {share.high:+.0%}]"


def compact_steps(steps: Sequence[int], max_rows: int = 10) -> list[int]:
    """A readable subset: multiples of a round stride (e.g. every 50 labels), first and last."""
    if len(steps) <= max_rows:
        return list(steps)
    stride = next((s for s in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)
                   if steps[-1] / s <= max_rows), steps[-1])
    return sorted({steps[0], steps[-1], *(s for s in steps if s % stride == 0)})


def _reach_text(estimate: Estimate, reached: int, n: int) -> str:
    if reached == 0:
        return f"not reached (0/{n} seeds)"
    text = f"{estimate.mean:.0f}"
    if math.isfinite(estimate.half_width):
        text += f" ± {estimate.half_width:.0f}"
    return f"{text} ({reached}/{n} seeds)"


def summary_table(report: Report) -> str:
    validation = any(s.validation_labels for s in report.summaries)
    fresh = any(s.fresh for s in report.summaries)
    headers = ["arm", "runs", "seeds", "labelled (final)",
               *(["validation labels"] if validation else []), "final test accuracy", "std",
               *(["fresh model on the final labels"] if fresh else []), "AULC (normalised)",
               f"labels to reach {report.target:g} (mean curve)",
               f"labels to reach {report.target:g} (per seed)", "after self-training"]
    rows = []
    for s in report.summaries:
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


def curve_table(report: Report) -> str:
    arms = [a for a in report.arms if not a.ground_truth]
    if not arms:
        return "_No learning-curve runs._"
    estimates = {a.label: a.step_estimates() for a in arms}
    steps = compact_steps(sorted(set().union(*(set(e) for e in estimates.values()))))
    rows = [[step, *(estimates[a.label][step].text() if step in estimates[a.label] else "—"
                     for a in arms)] for step in steps]
    return md_table(["labelled", *(a.label for a in arms)], rows)


def comparison_table(report: Report) -> str:
    if not report.comparisons:
        return "_No comparison: no arm other than random with random runs beside it._"
    rows = [[c.arm, c.baseline, len(c.seeds), interval_text(c.difference),
             f"{c.wins}/{c.ties}/{c.losses}", p_text(c.p), c.test.method or "—",
             p_text(c.p_holm), c.note or ""]
            for c in report.comparisons]
    return md_table(["arm", "vs", "paired seeds", "mean difference [95% CI]",
                     "wins/ties/losses", "Wilcoxon p", "p computed by", "Holm p", "note"], rows)


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
    return md_table(["article", "article's figure (one run)", "ours",
                     "ours: mean ± 95% CI (n)", "ours: 95% PI for one run",
                     "our seeds ≥ the figure", "article's figure vs our PI"], body)


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


def _ranking_section(report: Report) -> list[str]:
    from al_research.report.ranking import ranking_markdown

    if not report.ranking:
        return []
    return ["## Ranking within each configuration", "", ranking_markdown(report.ranking), "",
            "Each seed ranks the configuration's arms (1: the best; ties share the mean rank) "
            "by final test accuracy and by AULC; the ranks are averaged over the seeds that "
            "every arm of the configuration has.", ""]


def render_markdown(report: Report) -> str:
    sel = report.selection
    title = sel.sweep or sel.experiment or "all experiments"
    experiments = ", ".join(sorted({sel.experiment_names.get(r.experiment_id, r.experiment_id)
                                    for a in report.arms for r in a.runs}))
    flagged = report.test_selected_runs
    parts = [
        f"# Report: {title}",
        "",
        f"- MLflow store: `{sel.uri}`",
        f"- experiment: {experiments}",
        f"- sweep: `{sel.sweep}`" if sel.sweep else "- sweep: (all runs of the experiment)",
        f"- runs: {report.n_runs} finished "
        f"({', '.join(f'{a.label}: {len(a.runs)}' for a in report.arms)})",
        f"- arms are configurations: the keys that vary across the runs (seed excepted), at "
        f"their reference values: {report.factors.text()}; an arm is named by its strategy "
        f"and the keys where it leaves the reference",
        f"- intervals: {CONFIDENCE:.0%} t-intervals over seeds (mean ± half-width); "
        "one test image of 400 is 0.0025",
    ]
    if flagged:
        parts.append(f"- **{flagged} run(s) early-stopped on the test set** "
                     f"(test_selected=true): marked{TEST_SELECTED_MARK}; their test accuracies "
                     f"are optimistic")
    parts.append("")
    if report.notes:
        parts += ["## Warnings", "", *(f"- {n}" for n in report.notes), ""]
    parts += ["## Arms", "", summary_table(report), "",
              "AULC: the area under test accuracy against labelled count divided by the range "
              "of labelled counts (the curve's mean level), per run, then averaged over seeds. "
              "Labels to reach the target per seed: each seed's first labelled count at or "
              "above it, mean ± 95% CI over the seeds that reached it.",
              "", *_ranking_section(report),
              "## Test accuracy by labelled count", "", curve_table(report), "",
              "## Paired comparison with random (final test accuracy)", "",
              comparison_table(report), "",
              "Differences are the arm minus the random arm of the same configuration on the "
              "same seed (same split and initial set). Wilcoxon signed-rank, two-sided, zero "
              "differences dropped: exact without ties, an exact permutation over every sign "
              "flip with ties (up to 13 pairs), else the normal approximation; Holm-adjusted "
              "across the rows. `+ self-training` rows compare with random's final accuracy; "
              "`(fresh model)` rows compare models trained from scratch on each arm's final "
              "labelled set.", ""]
    if report.article is not None:
        parts += ["## The article's table", "", article_markdown(report.article), "",
                  f"Verdict: {VERDICT_TEST}.", ""]
    for attribution in report.attribution:
        parts += [f"## Attribution: what each factor changes ({attribution.strategy})", "",
                  attribution_markdown(attribution), "",
                  "Each row flips the factors named from the reference configuration "
                  f"({report.factors.text()}) and gives the paired effect (same seeds), mean "
                  "[95% CI]. A share of +100% would close the distance between our reference "
                  "figure and the article's; the bounds are the effect's CI divided by that "
                  "distance. One factor at a time: effects need not add up.", ""]
    return "\n".join(parts)


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _attribution_rows(report: Report) -> Iterator[list[object]]:
    for a in report.attribution:
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


def write_csvs(report: Report, out: Path) -> None:
    _write_csv(out / "learning_curves.csv",
               ["arm", "strategy", "test_selected", "n_labelled", "mean", "std", "n", "ci_low",
                "ci_high"],
               ([arm.name, arm.strategy, arm.test_selected, step, e.mean, e.std, e.n, e.low,
                 e.high] for arm in report.arms for step, e in arm.step_estimates().items()))
    _write_csv(out / "comparison.csv",
               ["arm", "baseline", "metric", "n_pairs", "seeds", "mean_difference", "ci_low",
                "ci_high", "wins", "ties", "losses", "wilcoxon_p", "wilcoxon_method", "holm_p",
                "note"],
               ([c.arm, c.baseline, c.metric, len(c.seeds), " ".join(c.seeds),
                 c.difference.mean, c.difference.low, c.difference.high, c.wins, c.ties,
                 c.losses, c.p, c.test.method, c.p_holm, c.note] for c in report.comparisons))
    _write_csv(out / "difference_from_random.csv",
               ["arm", "n_labelled", "mean_difference", "std", "n", "ci_low", "ci_high"],
               ([name, step, e.mean, e.std, e.n, e.low, e.high]
                for name, by_step in report.differences.items() for step, e in by_step.items()))
    if report.article is not None:
        _write_csv(out / "article_table.csv",
                   ["article", "article_figure", "ours", "test_selected", "mean", "n", "ci_low",
                    "ci_high", "pi_low", "pi_high", "seeds_at_or_above", "verdict"],
                   ([r.line, r.article, r.ours, r.test_selected,
                     r.estimate.mean if r.estimate else math.nan,
                     r.estimate.n if r.estimate else 0,
                     r.estimate.low if r.estimate else math.nan,
                     r.estimate.high if r.estimate else math.nan,
                     *r.prediction, r.at_or_above, r.verdict] for r in report.article))
    if report.ranking:
        _write_csv(out / "ranking.csv",
                   ["configuration", "arm", "seeds", "mean_rank_final", "mean_rank_aulc",
                    "final_test_accuracy", "aulc"],
                   ([r.configuration, r.arm, r.seeds, r.rank_final, r.rank_aulc, r.final,
                     r.aulc] for r in report.ranking))
    if report.attribution:
        _write_csv(out / "attribution.csv",
                   ["strategy", "configuration", "test_selected", "effect_on", "n", "mean",
                    "ci_low", "ci_high", "article_line", "share", "share_low", "share_high"],
                   _attribution_rows(report))


def main_tables(report: Report) -> str:
    """What the console shows for every report: arms, comparisons, the article, attribution."""
    lines = [summary_table(report), "", comparison_table(report)]
    if report.article is not None:
        lines += ["", "The article's table:", "", article_markdown(report.article)]
    for attribution in report.attribution:
        lines += ["", f"Attribution ({attribution.strategy}; reference: "
                      f"{report.factors.text()}):", "", attribution_markdown(attribution)]
    if report.test_selected_runs:
        lines += ["", f"{report.test_selected_runs} run(s) early-stopped on the test set: "
                      f"marked{TEST_SELECTED_MARK}, optimistic."]
    return "\n".join(lines)


def console_summary(report: Report) -> str:
    lines = ["Runs found per arm:"]
    lines += [f"  {a.label}: {len(a.runs)} (seeds {', '.join(a.seeds)})" for a in report.arms]
    lines += [f"Report: {report.out_dir}/summary.md"]
    if report.summary_run_id:
        lines.append(f"Summary run: {report.summary_run_id} (tag summary=true)")
    lines += ["", main_tables(report)]
    return "\n".join(lines)
