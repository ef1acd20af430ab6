"""Seed-averaged comparison of arms: curves with 95% CIs, paired tests, a summary run.

    python -m al_research.report --sweep latest --experiment article-seeds
    al-research report --sweep multirun/2026-11-24/03-10-00

Reads FINISHED runs from MLflow (never summary runs), groups them into arms (configurations: the
strategy and every config key that varies, seed excepted), pairs them by seed, writes summary.md,
CSVs and two plots to the out folder, and logs them to a `summary-...` run in the same experiment.

Modules: `runs` (reading MLflow runs, the selection), `arms` (configurations and pairing),
`stats` (intervals and tests), `analysis` (summaries and paired comparisons), `article` (the
article's table and its verdicts), `attribution` (what each factor explains), `render`
(markdown, CSV, console), `figures` (plots), `summary` (the summary run), `command`
(`generate_report` and the command line).
"""

from al_research.report.analysis import (
    ArmSummary,
    Comparison,
    Report,
    analyse,
    compare,
    summarise,
)
from al_research.report.arms import BASELINE, Arm, Factors, assign_arms, group_arms
from al_research.report.article import ArticleRow, article_table, verdict
from al_research.report.attribution import Attribution, AttributionRow, attribution_table
from al_research.report.command import DEFAULT_TARGET, generate_report, main
from al_research.report.render import (
    article_markdown,
    console_summary,
    main_tables,
    render_markdown,
)
from al_research.report.runs import ReportError, RunRecord, Selection, select_runs
from al_research.report.stats import (
    CONFIDENCE,
    Estimate,
    SignedRankTest,
    holm,
    labels_to_reach,
    normalised_aulc,
    prediction_interval,
    t_estimate,
    wilcoxon_test,
)

__all__ = [
    "BASELINE", "CONFIDENCE", "DEFAULT_TARGET", "Arm", "ArmSummary", "ArticleRow", "Attribution",
    "AttributionRow", "Comparison", "Estimate", "Factors", "Report", "ReportError", "RunRecord",
    "Selection", "SignedRankTest", "analyse", "article_markdown", "article_table", "assign_arms",
    "attribution_table", "compare", "console_summary", "generate_report", "group_arms", "holm",
    "labels_to_reach", "main", "main_tables", "normalised_aulc", "prediction_interval",
    "render_markdown", "select_runs", "summarise", "t_estimate", "verdict", "wilcoxon_test",
]
