"""Sweeps: a folder of their own, the list of their jobs, and a stop flag their jobs watch.

- `unique_dir` (the `al_research.unique_dir` resolver in conf/config.yaml's `hydra.sweep.dir`)
  claims a fresh folder atomically: two sweeps started in the same second get `10-00-00` and
  `10-00-00-2`, so each has its own folder and `sweep` tag.
- `sweep_jobs` lists a sweep's jobs as Hydra's basic sweeper numbers them.
- `SweepControl` is the sweep's `.al_research/` folder: a `stop` file that running jobs watch
  (they then stop as on SIGTERM, their runs ending KILLED), and a marker per started job.
- `done_jobs` and `local_account` read the sweep's own record of its jobs (`.progress/`,
  written by `sweeps.progress`): the account of a sweep whose store does not answer.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

RESOLVER = "al_research.unique_dir"


def unique_dir(path: str) -> str:
    """`path`, or `path-2`, `path-3`... : the first that this call could create (atomically)."""
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return str(candidate)
    raise AssertionError("unreachable")


def register_resolvers() -> None:
    """`${al_research.unique_dir:PATH}`, resolved once per config (cached like `${now:}`)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, unique_dir, use_cache=True)


def sweep_jobs(config: DictConfig) -> list[list[str]]:
    """Each job's overrides, in the order (and numbering) of Hydra's basic sweeper."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()]
    arguments += list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
    overrides = OverridesParser.create().parse_overrides(arguments)
    (jobs,) = BasicSweeper.split_arguments(overrides, None)
    return [list(job) for job in jobs]


def describe(overrides: Sequence[str], keys: Collection[str] | None = None) -> str:
    """A job's own overrides (hydra.* left out), as typed on a command line; with `keys`
    (`varying_keys`), only those that tell it apart from the sweep's other jobs."""
    own = [o for o in overrides if not o.startswith("hydra.")]
    if keys:
        own = [o for o in own if o.split("=", 1)[0] in keys] or own
    return " ".join(own) or "(defaults)"


def varying_keys(jobs: Sequence[Sequence[str]]) -> list[str]:
    """The override keys whose values differ between a sweep's jobs (`seed`, `strategy`...)."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for override in job:
            key, _, value = override.partition("=")
            values.setdefault(key, set()).add(value)
    return [k for k, v in values.items() if len(v) > 1 or sum(
        1 for job in jobs if any(o.split("=", 1)[0] == k for o in job)) < len(jobs)]


class SweepControl:
    """The sweep's `.al_research/` folder: the stop flag and the started-job markers."""

    POLL_SECONDS = 0.5

    def __init__(self, sweep_dir: str | Path) -> None:
        self.root = Path(sweep_dir) / ".al_research"
        self.stop_file = self.root / "stop"
        self.started_dir = self.root / "started"

    def request_stop(self, reason: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.stop_file.write_text(reason + "\n")

    def clear_stop(self) -> None:
        self.stop_file.unlink(missing_ok=True)

    def stop_requested(self) -> bool:
        return self.stop_file.exists()

    def mark_started(self, token: str, job_num: int) -> None:
        self.started_dir.mkdir(parents=True, exist_ok=True)
        (self.started_dir / f"{token}-{job_num}").write_text(f"{os.getpid()}\n")

    def started(self, token: str) -> set[int]:
        if not self.started_dir.is_dir():
            return set()
        prefix = f"{token}-"
        return {int(p.name[len(prefix):]) for p in self.started_dir.iterdir()
                if p.name.startswith(prefix)}

    def watch(self) -> _StopWatcher:
        """A thread that sends this process SIGTERM once the stop file appears."""
        return _StopWatcher(self).start()


class _StopWatcher:
    def __init__(self, control: SweepControl) -> None:
        self.control = control
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sweep-stop-watch",
                                        daemon=True)

    def start(self) -> _StopWatcher:
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._done.wait(SweepControl.POLL_SECONDS):
            if self.control.stop_requested():
                log.warning("The sweep is stopping: ending this job")
                os.kill(os.getpid(), signal.SIGTERM)
                return

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)


def job_config_part(config: Any) -> DictConfig:
    """A composed config without its `hydra` node (what a job's task function receives)."""
    import copy

    from omegaconf import open_dict, read_write

    job = copy.deepcopy(config)
    with read_write(job), open_dict(job):
        job.pop("hydra", None)
    return job


# -- the sweep's own record of its jobs (written by sweeps.progress as each job ends) --
PROGRESS = ".progress"  # <sweep dir>/.progress/: plan.json, done.jsonl


def done_jobs(sweep: str | Path) -> list[dict[str, Any]]:
    """What the sweep's jobs recorded as they ended (`done.jsonl`), oldest first."""
    try:
        lines = (Path(sweep) / PROGRESS / "done.jsonl").read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def local_account(sweep: str | Path, jobs: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Each job's outcome as the sweep itself recorded it (no store needed): FINISHED, FAILED
    (with its reason) or NOT RUN; the last record of a job wins."""
    last = {int(e["num"]): e for e in done_jobs(sweep)}
    rows = []
    for num, overrides in enumerate(jobs):
        entry = last.get(num)
        row: dict[str, Any] = {"job": num, "overrides": describe(list(overrides)),
                               "status": "NOT RUN" if entry is None else
                               "FINISHED" if entry.get("status") == "COMPLETED" else "FAILED",
                               "run_id": None}
        if entry is not None and entry.get("reason"):
            row["reason"] = entry["reason"]
            row["store_lost"] = bool(entry.get("store_lost"))
        rows.append(row)
    return rows
