"""Hydra callbacks: check everything before a job or sweep starts; account for it at the end.

`PrepareMlflowStore` (first in conf/config.yaml) runs before Hydra creates any folder: every
job's config is checked (types, ranges, cross-field rules, unknown keys) without importing
TensorFlow or MLflow, then the store is checked, created and given the experiment once, so
parallel jobs never race for it. A problem stops the command with one line (`errors.Abort`).

`SweepAccount` (after `report`, so its end runs before the report's) marks FAILED the runs
whose process died without a word, then says which jobs of the sweep did not finish, in the
log and in `<sweep dir>/jobs.json` (from the sweep's own record if the store does not answer).
Hydra skips `on_multirun_end` when a job failed, so the end steps are armed with
`sweeps.ending` at sweep start, which runs them before the command's last line.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from al_research.errors import (
    CONFIG_EXIT,
    STORE_EXIT,
    Abort,
    check_job_config,
    config_error_line,
    is_config_error,
)
from al_research.sweeps import ending, workers

log = logging.getLogger(__name__)


def _check_store(config: DictConfig, reap: bool = False) -> None:
    """The store reached (made if new); with `reap` (a sweep's start: its jobs do not), its
    experiment's runs whose process died without a word marked FAILED."""
    from al_research.tracking.store import StoreUnavailable, prepare_store, resolve_tracking_uri

    uri = resolve_tracking_uri(config.tracking.uri)
    try:
        experiment_id = prepare_store(uri, config.tracking.experiment_name)
    except StoreUnavailable as error:
        raise Abort(str(error), STORE_EXIT) from error
    log.debug("MLflow store %s, experiment %r (id %s) ready", uri,
              config.tracking.experiment_name, experiment_id)
    if reap:
        from al_research.tracking import Store

        try:
            Store(uri).reap_dead_runs([experiment_id])
        except Exception as error:  # noqa: BLE001  (never a reason not to start the sweep)
            log.warning("could not check the experiment's RUNNING runs: %s", error)


def _check(config: DictConfig, what: str = "") -> DictConfig:
    """The job's config (its `hydra` node aside), checked whole."""
    from al_research.sweeps.folders import job_config_part

    part = job_config_part(config)
    try:
        check_job_config(part)
    except Exception as error:
        if not is_config_error(error):
            raise
        raise Abort(f"{what}{config_error_line(error)}", CONFIG_EXIT) from error
    return part


def _job_configs(config: DictConfig) -> list[tuple[int, list[str], DictConfig]]:
    """Each job of the sweep, composed as its launcher will compose it (and kept, so that
    neither Hydra's sweeper nor the launcher composes it again: `sweeps.composed`)."""
    from hydra.core.global_hydra import GlobalHydra

    from al_research.sweeps import composed
    from al_research.sweeps.folders import sweep_jobs

    loader = GlobalHydra.instance().hydra.config_loader  # type: ignore[union-attr]
    overrides = sweep_jobs(config)
    jobs = list(zip(range(len(overrides)), overrides,
                    composed.compose_all(loader, config, overrides), strict=True))
    composed.remember([(overrides, job) for _, overrides, job in jobs])
    composed.serve(loader)
    return jobs


class PrepareMlflowStore(Callback):
    """Before any folder, run or TensorFlow import: configs valid, store reachable."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from al_research.process.timings import phase

        with phase("run_start"):  # one run: its config checked, the store reached (made)
            _check(config)
            _check_store(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from al_research.process.timings import phase

        with phase("sweep_start"):
            self._start(config)

    def _start(self, config: DictConfig) -> None:
        from al_research.sweeps.folders import describe
        from al_research.sweeps.progress import duration, say

        started = time.monotonic()
        # the parallel launcher's workers start importing TensorFlow now (~4 s), while this
        # process composes and checks the jobs (a config error stops them with the sweep)
        workers.prestart(config.hydra.launcher)
        try:
            jobs = _job_configs(config)
        except Exception as error:
            if not is_config_error(error):
                raise
            raise Abort(config_error_line(error), CONFIG_EXIT) from error
        parts = [(num, _check(job, f"job #{num} ({describe(overrides)}): "
                              if len(jobs) > 1 else "")) for num, overrides, job in jobs]
        stores = {(j.tracking.uri, j.tracking.experiment_name): j for _, _, j in jobs}
        for job in stores.values():
            _check_store(job, reap=True)
        from al_research.sweeps import resume
        from al_research.tracking.store import resolve_tracking_uri

        # the finished runs of all the jobs, found once (a job need not search the store)
        resume.plan(str(config.hydra.sweep.dir), [
            resume.PlannedJob(num, resolve_tracking_uri(part.tracking.uri),
                              part.tracking.experiment_name, part) for num, part in parts])

        ending.begin(str(config.hydra.sweep.dir), resolve_tracking_uri(config.tracking.uri),
                     [overrides for _, overrides, _ in jobs])
        say(f"{len(jobs)} job configs checked, store ready, sweep run open "
            f"({duration(time.monotonic() - started)})")


class SweepAccount(Callback):
    """At the sweep's end: dead runs marked FAILED; what did not finish named (jobs.json)."""

    def __init__(self) -> None:
        self._config: DictConfig | None = None
        self._jobs: list[list[str]] = []

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from al_research.sweeps.folders import sweep_jobs

        self._config = config
        self._jobs = sweep_jobs(config)
        ending.arm(self._at_exit)

    def _at_exit(self) -> None:
        if self._config is not None:
            self.on_multirun_end(self._config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from al_research.tracking.store import resolve_tracking_uri

        self._config = None
        rows = ending.run_step("Accounting for the sweep's jobs",
                               lambda: account(config, self._jobs),
                               str(config.hydra.sweep.dir),
                               resolve_tracking_uri(config.tracking.uri))
        if rows is not None:
            ending.record_jobs(rows)


def account(config: DictConfig, jobs: list[list[str]]) -> list[dict[str, Any]]:
    """Mark the sweep's dead runs FAILED; write and log which jobs did not finish. If the store
    does not answer, the sweep's own record of its jobs stands in (`folders.local_account`)."""
    from al_research.sweeps.ending import is_store_error, one_line
    from al_research.sweeps.folders import describe, local_account, varying_keys
    from al_research.tracking import resolve_tracking_uri

    sweep = str(config.hydra.sweep.dir)
    uri = resolve_tracking_uri(config.tracking.uri)
    try:
        rows = _store_account(config, uri, jobs)
        source = ""
    except Exception as error:
        if not is_store_error(error):
            raise
        rows = local_account(sweep, jobs)
        source = f" (as the sweep recorded them: {one_line(error, uri)})"
    unfinished = [r for r in rows if r["status"] != "FINISHED"]
    reused = sum(1 for r in rows if r.get("reused"))
    Path(sweep).mkdir(parents=True, exist_ok=True)
    (Path(sweep) / "jobs.json").write_text(json.dumps(rows, indent=1) + os.linesep)
    log.info("Sweep %s: %d of %d jobs finished%s%s.", sweep, len(rows) - len(unfinished),
             len(rows), f" ({reused} reused from earlier runs)" if reused else "", source)
    keys = varying_keys(jobs)
    for r in unfinished:
        reason = str(r.get("reason", "")).split("; ")[0]
        log.warning("Did not finish: job #%d (%s): %s%s", r["job"],
                    describe(jobs[r["job"]], keys), r["status"], f": {reason}" if reason else "")
    if unfinished:
        log.warning("Run the same command again to run only these (finished ones are "
                    "skipped).")
    return rows


def _store_account(config: DictConfig, uri: str, jobs: list[list[str]]
                   ) -> list[dict[str, Any]]:
    """Each job's outcome as the store has it (its best run), dead runs marked FAILED first."""
    from al_research.sweeps.folders import describe
    from al_research.tracking import Store
    from al_research.tracking.liveness import FAILURE_TAG
    from al_research.tracking.names import Tag, reused_job_tag

    sweep = str(config.hydra.sweep.dir)
    store = Store(uri)
    experiment_id = store.experiment_id(str(config.tracking.experiment_name))
    runs = []
    if experiment_id is not None:
        store.reap_dead_runs([experiment_id])
        runs = store.sweep_runs([experiment_id], sweep)
    rank = {"FINISHED": 3, "KILLED": 2, "FAILED": 1, "RUNNING": 0}
    best: dict[int, Any] = {}
    reused_job = reused_job_tag(sweep)
    for run in runs:
        tags = run.data.tags
        num_text = (tags.get(Tag.JOB_NUM) if tags.get(Tag.SWEEP) == sweep
                    else tags.get(reused_job))
        if num_text is None or not num_text.isdigit():
            continue
        num = int(num_text)
        current = best.get(num)
        if current is None or (rank.get(run.info.status, -1), run.info.start_time) > (
                rank.get(current.info.status, -1), current.info.start_time):
            best[num] = run
    rows = []
    for num, overrides in enumerate(jobs):
        run = best.get(num)
        row: dict[str, Any] = {"job": num, "overrides": describe(overrides),
                               "status": run.info.status if run else "NOT RUN",
                               "run_id": run.info.run_id if run else None}
        if run is not None:
            row["reused"] = run.data.tags.get(Tag.SWEEP) != sweep
            if run.data.tags.get(FAILURE_TAG):
                row["reason"] = run.data.tags[FAILURE_TAG]
        rows.append(row)
    return rows


class SweepRun(Callback):
    """Opens the parent run at sweep start; ends it at sweep end (or at exit after a failure),
    after the report (which logs into it) when it is listed before `report`."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._sweep: str | None = None
        self._uri = ""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        from al_research.sweeps.folders import sweep_jobs
        from al_research.tracking.store import resolve_tracking_uri
        from al_research.tracking.sweep_run import start_parent

        sweep = str(config.hydra.sweep.dir)
        try:
            n_jobs = len(sweep_jobs(config))
        except Exception:
            n_jobs = None
        run_id = start_parent(resolve_tracking_uri(config.tracking.uri),
                              str(config.tracking.experiment_name), sweep, n_jobs)
        log.info("Sweep run %s: its jobs are its child runs", run_id)
        self._sweep = sweep
        self._uri = resolve_tracking_uri(config.tracking.uri)
        ending.arm(self._end_after_failure)

    def _end_after_failure(self) -> None:
        if self._sweep is not None:
            self._end("FAILED")

    def _end(self, status: str) -> None:
        from al_research.tracking.sweep_run import end_parent

        sweep, self._sweep = self._sweep, None
        assert sweep is not None
        ending.run_step("Ending the sweep's run", lambda: end_parent(sweep, status), sweep,
                        self._uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._sweep is not None:
            self._end("FINISHED")
