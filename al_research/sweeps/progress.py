"""Sweep progress: jobs done / total and an estimate of the time left, printed as jobs finish.

A Hydra callback. When a sweep starts (in the launching process) it writes the sweep's job plan
(`<sweep dir>/.progress/plan.json`: each job's arm, the number running at once); when a job ends
(in whichever process ran it: a joblib worker, a SLURM node) it appends one line to `done.jsonl`
and prints `[sweep] 37/60 jobs done · 1m42s elapsed · about 55s left` to the terminal. The time
left weights the jobs still to run by the mean time of finished jobs of the same arm (every
swept key but the seed: a least-confident job with self-training costs several times a random
one, a batch of 10 five times one of 50); an arm with no finished job yet is estimated from
each of its values apart (all jobs' mean, times the ratio of each value's mean to it, where one
has finished), and the total is divided by the number of jobs running at once.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from al_research.sweeps.folders import PROGRESS, done_jobs

log = logging.getLogger(__name__)

ARM_KEYS = ("strategy", "model", "data")  # what makes one job cost more than another


def arm_of(overrides: Sequence[str], varying: Sequence[str] | None = None) -> str:
    """A job's arm (what its cost depends on): the swept keys but the seed (`varying`, the
    sweep's varying override keys), else its strategy, model and data choices."""
    keys = [k for k in varying if k != "seed"] if varying is not None else ARM_KEYS
    values = dict(o.split("=", 1) for o in overrides if "=" in o)
    return " ".join(f"{k}={values[k]}" for k in keys if k in values) or "job"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def time_left(plan: Sequence[str], done: Sequence[dict[str, Any]], concurrency: int
              ) -> float | None:
    """Seconds left: the jobs not done, each at its arm's mean time (an arm not seen yet: from
    its values apart, module doc), over the jobs running at once. None before any job ended."""
    if not done:
        return None
    by_arm: dict[str, list[float]] = defaultdict(list)
    by_value: dict[str, list[float]] = defaultdict(list)
    for entry in done:
        by_arm[entry["arm"]].append(float(entry["seconds"]))
        for value in entry["arm"].split():
            by_value[value].append(float(entry["seconds"]))
    overall = _mean([float(e["seconds"]) for e in done])

    def estimate(arm: str) -> float:
        if by_arm.get(arm):
            return _mean(by_arm[arm])
        guess = overall
        for value in arm.split():
            if by_value.get(value) and overall > 0:
                guess *= _mean(by_value[value]) / overall
        return guess

    finished = {int(e["num"]) for e in done}
    remaining = [arm for num, arm in enumerate(plan) if num not in finished]
    return sum(estimate(a) for a in remaining) / max(1, concurrency)


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def progress_line(plan: Sequence[str], done: Sequence[dict[str, Any]], concurrency: int,
                  started: float, now: float) -> str:
    failed = sum(1 for e in done if e.get("status") != "COMPLETED")
    parts = [f"[sweep] {len(done)}/{len(plan)} jobs done"
             + (f" ({failed} failed)" if failed else ""),
             f"{duration(now - started)} elapsed"]
    left = time_left(plan, done, concurrency)
    if left is not None and len(done) < len(plan):
        parts.append(f"about {duration(left)} left")
    return " · ".join(parts)


def say(text: str) -> None:
    """One `[sweep] ...` line on the terminal (a phase of the sweep: where its time goes)."""
    print(f"[sweep] {text}", file=sys.__stderr__, flush=True)


def _failure(sweep: Path, num: int, job: str, error: BaseException, uri: str
             ) -> dict[str, Any]:
    """A failed job: its one-line reason printed, its traceback in the sweep's log file."""
    from al_research.sweeps.ending import is_store_error, one_line, write_traceback

    write_traceback(sweep, f"job #{num} ({job})", error)
    reason = one_line(error, uri)
    print(f"[sweep] job #{num} ({job}) failed: {reason}", file=sys.__stderr__, flush=True)
    return {"reason": reason, "store_lost": is_store_error(error)}


def _concurrency(launcher: Any) -> int:
    from al_research.process.cores import concurrent_jobs_of

    return concurrent_jobs_of(launcher)


class SweepProgress(Callback):
    """Writes the plan at sweep start; reports progress as each job ends (never raises)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._job_started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        try:
            folder = Path(str(config.hydra.sweep.dir)) / PROGRESS
            folder.mkdir(parents=True, exist_ok=True)
            from al_research.sweeps.folders import sweep_jobs, varying_keys

            jobs = sweep_jobs(config)
            varying = varying_keys(jobs)
            plan = [arm_of(job, varying) for job in jobs]
            launcher = config.hydra.get("launcher")
            (folder / "plan.json").write_text(json.dumps({
                "arms": plan, "concurrency": _concurrency(launcher), "started": time.time(),
                "varying": varying}))
            (folder / "done.jsonl").touch()
            print(f"[sweep] {len(plan)} jobs, {_concurrency(launcher)} at a time",
                  file=sys.__stderr__, flush=True)
        except Exception:  # progress is a nicety: never stop a sweep for it
            log.debug("no sweep plan", exc_info=True)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._job_started = time.time()

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        if not self.enabled or self._job_started is None:
            return
        try:
            from hydra.core.hydra_config import HydraConfig
            from hydra.types import RunMode

            from al_research.sweeps.folders import describe

            hc = HydraConfig.get()
            if hc.mode != RunMode.MULTIRUN:  # a single run: no sweep folder to resolve (its
                return  # resolver would create an empty multirun/<date>/<time>/)
            folder = Path(str(hc.sweep.dir)) / PROGRESS
            plan_file = folder / "plan.json"
            if not plan_file.is_file():
                return  # not a sweep (or its plan could not be made)
            plan = json.loads(plan_file.read_text())
            status = getattr(getattr(job_return, "status", None), "name", "COMPLETED")
            num, overrides = int(hc.job.num), list(hc.overrides.task)
            entry = {"num": num, "arm": arm_of(overrides, plan.get("varying")),
                     "seconds": time.time() - self._job_started, "status": status}
            error = getattr(job_return, "_return_value", None)
            if status != "COMPLETED" and isinstance(error, BaseException):
                from al_research.tracking.store import resolve_tracking_uri

                job = describe(overrides, plan.get("varying"))
                uri = resolve_tracking_uri(OmegaConf.select(config, "tracking.uri"))
                entry.update(_failure(folder.parent, num, job, error, uri))
            line = (json.dumps(entry) + "\n").encode()
            fd = os.open(folder / "done.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, line)  # one small append: atomic between processes
            finally:
                os.close(fd)
            done = done_jobs(folder.parent)
            print(progress_line(plan["arms"], done, plan["concurrency"], plan["started"],
                                time.time()), file=sys.__stderr__, flush=True)
        except Exception:
            log.debug("no progress line", exc_info=True)
