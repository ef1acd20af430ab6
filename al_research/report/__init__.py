"""Seed-averaged comparison of arms: curves with 95% CIs, paired tests, a summary run.

    python -m al_research.report --sweep latest --experiment article-seeds
    al-research report --sweep multirun/2026-11-24/03-10-00

Reads FINISHED runs from MLflow (never summary runs), groups them into arms (configurations: the
strategy and every config key that varies, seed excepted), pairs them by seed, writes summary.md,
CSVs and plots to the out folder, and logs them to a `summary-...` run in the same experiment.

The report is a list of sections (`sections.SECTIONS`), one module each in `sections/`: the
overview, per arm, the ranking, the curves, the comparison with random, the article's table,
the attribution. `section` says what a section is (`Section`) and what it reads (`Report`).
Around them: `runs` (reading MLflow runs, the selection), `arms` (configurations and pairing),
`stats` (intervals and tests), `analysis` (`analyse`: arms, then each section's computation),
`render` (summary.md, CSVs, plots and console tables, section by section), `text` and `figures`
(what sections share to write and draw), `summary` (the summary run), `command`
(`generate_report` and the command line).
"""

from al_research.report.analysis import analyse
from al_research.report.arms import BASELINE, Arm, Factors, assign_arms, group_arms
from al_research.report.command import DEFAULT_TARGET, generate_report, main
from al_research.report.render import (
    console_summary,
    main_tables,
    render_markdown,
    write_outputs,
)
from al_research.report.runs import ReportError, RunRecord, Selection, select_runs
from al_research.report.section import Report, Section
from al_research.report.sections import SECTIONS
from al_research.report.sections.article import (
    ArticleRow,
    article_markdown,
    article_rows,
    article_table,
    verdict,
)
from al_research.report.sections.attribution import (
    Attribution,
    AttributionRow,
    attribution_table,
    attributions,
)
from al_research.report.sections.comparison import (
    Comparison,
    compare,
    comparisons,
    differences,
)
from al_research.report.sections.overview import test_size
from al_research.report.sections.per_arm import ArmSummary, summaries, summarise
from al_research.report.sections.ranking import ranking_rows
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
    "BASELINE", "CONFIDENCE", "DEFAULT_TARGET", "SECTIONS", "Arm", "ArmSummary", "ArticleRow",
    "Attribution", "AttributionRow", "Comparison", "Estimate", "Factors", "Report",
    "ReportError", "RunRecord", "Section", "Selection", "SignedRankTest", "analyse",
    "article_markdown", "article_rows", "article_table", "assign_arms", "attribution_table",
    "attributions", "compare", "comparisons", "console_summary", "differences",
    "generate_report", "group_arms", "holm", "labels_to_reach", "main", "main_tables",
    "normalised_aulc", "prediction_interval", "ranking_rows", "render_markdown", "select_runs",
    "summaries", "summarise", "t_estimate", "test_size", "verdict", "wilcoxon_test",
    "write_outputs",
]
