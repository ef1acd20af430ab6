"""The report as text: markdown tables, summary.md, CSV files, the console summary."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from al_research.report.analysis import Report
from al_research.report.article import ArticleRow, counts
from al_research.report.stats import CONFIDENCE, Estimate, t_estimate


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def p_text(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.4g}"


def interval_text(e: Estimate, digits: int = 4) -> str:
    if e.n == 0:
        return "—"
    if not math.isfinite(e.low):
        return f"{e.mean:+.{digits}f} (n={e.n}, no CI)"
    return f"{e.mean:+.{digits}f} [{e.low:+.{digits}f}, {e.high:+.{digits}f}]"


def compact_steps(steps: Sequence[int], max_rows: int = 10) -> list[int]:
    """A readable subset: multiples of a round stride (e.g. every 50 labels), first and last."""
    if len(steps) <= max_rows:
        return list(steps)
    stride = next((s for s in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)
                   if steps[-1] / s <= max_rows), steps[-1])
    return sorted({steps[0], steps[-1], *(s for s in steps if s % stride == 0)})


def summary_table(report: Report) -> str:
    headers = ["strategy", "runs", "seeds", "labelled (final)", "final test accuracy",
               "std", "AULC (normalised)", f"labels to reach {report.target:g}",
               "after self-training"]
    rows = []
    for s in report.summaries:
        curve = not s.ground_truth
        reach = ("—" if not curve else
                 "not reached" if s.labels_to_target is None else str(s.labels_to_target))
        rows.append([
            s.arm + (" (ground truth)" if s.ground_truth else ""), s.n_runs,
            ", ".join(s.seeds), counts(s.final_steps), s.final.text(),
            "—" if not math.isfinite(s.final.std) else f"{s.final.std:.4f}",
            s.aulc.text() if curve else "—", reach,
            s.self_training.text() if s.self_training else "—",
        ])
    return md_table(headers, rows)


def curve_table(report: Report) -> str:
    arms = [a for a in report.arms if not a.ground_truth]
    if not arms:
        return "_No learning-curve runs._"
    estimates = {a.name: a.step_estimates() for a in arms}
    steps = compact_steps(sorted(set().union(*(set(e) for e in estimates.values()))))
    rows = [[step, *(estimates[a.name][step].text() if step in estimates[a.name] else "—"
                     for a in arms)] for step in steps]
    return md_table(["labelled", *(a.name for a in arms)], rows)


def comparison_table(report: Report) -> str:
    if not report.comparisons:
        return "_No comparison: no strategy other than random with random runs beside it._"
    rows = [[c.arm, c.baseline, len(c.seeds), interval_text(c.difference),
             f"{c.wins}/{c.ties}/{c.losses}", p_text(c.p), p_text(c.p_holm), c.note or ""]
            for c in report.comparisons]
    return md_table(["strategy", "vs", "paired seeds", "mean difference [95% CI]",
                     "wins/ties/losses", "Wilcoxon p", "Holm p", "note"], rows)


def article_markdown(rows: Sequence[ArticleRow]) -> str:
    body = [[r.line, f"{r.article:.4f}", r.ours,
             r.estimate.text() if r.estimate else "—", r.verdict] for r in rows]
    return md_table(["article", "article's figure", "ours", "ours: mean ± 95% CI (n)",
                     "article's figure in our CI?"], body)


def render_markdown(report: Report) -> str:
    sel = report.selection
    title = sel.sweep or sel.experiment or "all experiments"
    experiments = ", ".join(sorted({sel.experiment_names.get(r.experiment_id, r.experiment_id)
                                    for a in report.arms for r in a.runs}))
    parts = [
        f"# Report: {title}",
        "",
        f"- MLflow store: `{sel.uri}`",
        f"- experiment: {experiments}",
        f"- sweep: `{sel.sweep}`" if sel.sweep else "- sweep: (all runs of the experiment)",
        f"- runs: {report.n_runs} finished "
        f"({', '.join(f'{a.name}: {len(a.runs)}' for a in report.arms)})",
        f"- intervals: {CONFIDENCE:.0%} t-intervals over seeds (mean ± half-width); "
        "one test image of 400 is 0.0025",
        "",
    ]
    if report.notes:
        parts += ["## Warnings", "", *(f"- {n}" for n in report.notes), ""]
    parts += ["## Strategies", "", summary_table(report), "",
              "AULC: the area under test accuracy against labelled count divided by the range "
              "of labelled counts (the curve's mean level), per run, then averaged over seeds.",
              "", "## Test accuracy by labelled count", "", curve_table(report), "",
              "## Paired comparison with random (final test accuracy)", "",
              comparison_table(report), "",
              "Differences are strategy minus random on the same seed (same split and initial "
              "set); Wilcoxon signed-rank, two-sided; Holm-adjusted across the rows.", ""]
    if report.article is not None:
        parts += ["## The article's table", "", article_markdown(report.article), ""]
    return "\n".join(parts)


def write_csvs(report: Report, out: Path) -> None:
    with (out / "learning_curves.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["strategy", "n_labelled", "mean", "std", "n", "ci_low", "ci_high"])
        for arm in report.arms:
            for step, e in arm.step_estimates().items():
                w.writerow([arm.name, step, e.mean, e.std, e.n, e.low, e.high])
    with (out / "comparison.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["strategy", "baseline", "metric", "n_pairs", "seeds", "mean_difference",
                    "ci_low", "ci_high", "wins", "ties", "losses", "wilcoxon_p", "holm_p",
                    "note"])
        for c in report.comparisons:
            d = c.difference
            w.writerow([c.arm, c.baseline, c.metric, len(c.seeds), " ".join(c.seeds), d.mean,
                        d.low, d.high, c.wins, c.ties, c.losses, c.p, c.p_holm, c.note])
    with (out / "difference_from_random.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["strategy", "n_labelled", "mean_difference", "std", "n", "ci_low",
                    "ci_high"])
        for name, by_step in report.differences.items():
            for step, e in by_step.items():
                w.writerow([name, step, e.mean, e.std, e.n, e.low, e.high])
    if report.article is not None:
        with (out / "article_table.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["article", "article_figure", "ours", "mean", "n", "ci_low", "ci_high",
                        "verdict"])
            for r in report.article:
                e = r.estimate or t_estimate([])
                w.writerow([r.line, r.article, r.ours, e.mean, e.n, e.low, e.high, r.verdict])


def console_summary(report: Report) -> str:
    lines = ["Runs found per strategy:"]
    lines += [f"  {a.name}: {len(a.runs)} (seeds {', '.join(a.seeds)})" for a in report.arms]
    lines += [f"Report: {report.out_dir}/summary.md"]
    if report.summary_run_id:
        lines.append(f"Summary run: {report.summary_run_id} (tag summary=true)")
    lines += ["", summary_table(report), "", comparison_table(report)]
    if report.article is not None:
        lines += ["", "The article's table:", "", article_markdown(report.article)]
    return "\n".join(lines)
