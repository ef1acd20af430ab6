"""Hydra callback: write the seed-averaged report when a sweep ends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class ReportOnMultirunEnd(Callback):
    """Run the report (`al-research report`) for the sweep that just ended; never raises.

    It reads the sweep's runs from MLflow, writes <sweep dir>/report/ and logs a summary run.
    """

    def __init__(self, target: float | None = None, log_run: bool = True) -> None:
        self.target = target
        self.log_run = log_run

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        retry = "al-research report --sweep <sweep dir>"
        try:
            from al_research.report import DEFAULT_TARGET, article_markdown, generate_report
            from al_research.tracking import resolve_tracking_uri

            sweep = str(config.hydra.sweep.dir)
            uri = resolve_tracking_uri(config.tracking.uri)
            experiment = str(config.tracking.experiment_name)
            retry = (f"al-research report --experiment {experiment} --sweep {sweep} "
                     f"--tracking-uri {uri}")
            report = generate_report(
                uri=uri,
                experiment=experiment,
                sweep=sweep,
                out_dir=Path(sweep) / "report",
                target=self.target if self.target is not None else DEFAULT_TARGET,
                log_run=self.log_run,
            )
            log.info("Report for sweep %s: %s", sweep, report.out_dir / "summary.md")
            if report.summary_run_id:
                log.info("Summary run %s in experiment %r", report.summary_run_id, experiment)
            if report.article is not None:
                log.info("The article's table:\n%s", article_markdown(report.article))
        except Exception:  # the sweep's runs are in MLflow whatever happens here
            log.exception("The sweep's report failed; its runs are kept. Retry: %s", retry)
