"""Hydra callback: write the seed-averaged report when a sweep ends."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from al_research.sweeps import ending

log = logging.getLogger(__name__)


def _import_report_modules() -> None:
    try:
        import al_research.report  # noqa: F401
        from al_research.report.figures import pyplot

        pyplot()
    except Exception:  # noqa: BLE001  (the report imports them again, and says what failed)
        log.debug("report modules not imported ahead", exc_info=True)


class ReportOnMultirunEnd(Callback):
    """Run the report (`al-research report`) for the sweep that just ended; never raises.

    It reads the sweep's runs from MLflow, writes <sweep dir>/report/ and logs a summary run.
    Hydra skips `on_multirun_end` when a job failed (it re-raises the job's error first), so the
    report is also armed at sweep start and runs at process exit on the runs that did land.
    """

    def __init__(self, target: float | None = None, log_run: bool = True) -> None:
        self.target = target
        self.log_run = log_run
        self._pending: DictConfig | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._pending = config
        ending.arm(self._report_after_failure)
        if "BasicLauncher" not in str(config.hydra.launcher.get("_target_", "BasicLauncher")):
            # the jobs run in other processes: import what the report needs while they run,
            # not after the last one (~1 s), in this otherwise idle process
            threading.Thread(target=_import_report_modules, name="report-imports",
                             daemon=True).start()

    def _report_after_failure(self) -> None:
        if self._pending is not None:
            log.warning("The sweep ended with a failed job; reporting on the runs that finished.")
            self.on_multirun_end(self._pending)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        import shlex

        from al_research.tracking import resolve_tracking_uri

        self._pending = None
        sweep = str(config.hydra.sweep.dir)
        uri = resolve_tracking_uri(config.tracking.uri)
        experiment = str(config.tracking.experiment_name)
        retry = shlex.join(["al-research", "report", "--experiment", experiment, "--sweep",
                            sweep, "--tracking-uri", uri])
        ending.run_step("The sweep's report", lambda: self._report(sweep, uri, experiment),
                        sweep, uri, retry=retry)

    def _report(self, sweep: str, uri: str, experiment: str) -> None:
        from al_research.process.timings import phase
        from al_research.report import DEFAULT_TARGET, generate_report, main_tables
        from al_research.sweeps.progress import duration, say
        from al_research.tracking import Store, ui_command

        started = time.monotonic()
        say("jobs done; writing the report")
        with phase("report"):
            report = generate_report(
                uri=uri,
                experiment=experiment,
                sweep=sweep,
                out_dir=Path(sweep) / "report",
                target=self.target if self.target is not None else DEFAULT_TARGET,
                log_run=self.log_run,
            )
        say(f"report written ({duration(time.monotonic() - started)})")
        log.info("Report for sweep %s: %s", sweep, report.out_dir / "summary.md")
        if report.summary_run_id:
            log.info("Summary run %s in experiment %r", report.summary_run_id, experiment)
        log.info("The sweep's arms (mean ± 95%% CI over seeds):\n%s", main_tables(report))
        experiment_id = Store(uri).experiment_id(experiment)
        log.info("Browse the runs and the summary: %s",
                 ui_command(uri, experiment_id, report.summary_run_id))
