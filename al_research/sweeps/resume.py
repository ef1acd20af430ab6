"""Resuming sweeps: a job whose exact configuration already has a FINISHED run is skipped.

Every run carries `config_hash`, a hash of its resolved config: everything that decides what
the run computes (data, model, strategy, seed, budget...) and nothing that only decides where
it is written or how it runs (`tracking`, `runtime`, `rerun`; Hydra's output folders and
launcher settings are not part of a job's config). Running a sweep again therefore runs only
the configurations that have no FINISHED run yet; `rerun=true` runs them all.

A skipped job tags the finished run it stands for with `reused_in/<digest of the sweep>` =
the sweep folder (`tracking.names.reused_tag`), so the new sweep's report can count it
(`tracking.Store.sweep_runs`).

A sweep's start finds the FINISHED runs of all its jobs with one search (`plan`, written to
`<sweep dir>/.progress/resume.json`): a job reads its answer there instead of searching the
store itself (~9 ms a job with both cores busy). A configuration the sweep lists more than once
is searched for by its later jobs as before (an earlier one may have finished by then); a job
that finds no plan, or a plan made for another config, searches.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from al_research.config import HOW_KEYS
from al_research.sweeps.folders import PROGRESS
from al_research.tracking.names import Metric, Tag, reused_job_tag, reused_tag

log = logging.getLogger(__name__)

CONFIG_HASH_TAG = Tag.CONFIG_HASH
EXCLUDED = HOW_KEYS  # where and how, not what


def hashed_part(cfg: Any) -> dict[str, Any]:
    """The part of a resolved config that decides what a run computes."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.structured(cfg)
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(container, dict)
    stopping = container.get("stopping")
    if isinstance(stopping, dict) and not stopping.get("criteria"):
        container.pop("stopping")  # no criterion: nothing computed (runs from before match)
    return {k: v for k, v in container.items() if k not in EXCLUDED}


def config_hash(cfg: Any) -> str:
    """A short stable hash of `hashed_part(cfg)` (key order and formatting do not matter)."""
    text = json.dumps(hashed_part(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def find_finished(uri: str, experiment: str, config_hash: str) -> str | None:
    """The newest FINISHED run of `experiment` whose config hash is `config_hash`, or None."""
    from al_research.tracking import Store

    store = Store(uri)
    experiment_id = store.experiment_id(experiment)
    if experiment_id is None:
        return None
    runs = store.search_runs(
        [experiment_id],
        f"tags.{CONFIG_HASH_TAG} = '{config_hash}' and attributes.status = 'FINISHED'",
        limit=1)
    return runs[0].info.run_id if runs else None


def wants_rerun(cfg: Any) -> bool:
    """`rerun=true`: run even configurations that already have a FINISHED run."""
    if isinstance(cfg, DictConfig):
        return bool(OmegaConf.select(cfg, "rerun", default=False))
    return bool(getattr(cfg, "rerun", False))


@dataclass
class Skipped:
    run_id: str
    final_test_accuracy: float


def skip_if_finished(cfg: Any, uri: str, experiment: str, sweep: str | None = None,
                     job_num: int | None = None) -> Skipped | None:
    """If `cfg` already has a FINISHED run (and `rerun` is not set), say so and return it.

    A reused run is tagged for `sweep`, so that sweep's report counts it.
    """
    if wants_rerun(cfg):
        return None
    digest = config_hash(cfg)
    planned = _planned(sweep, job_num, digest)
    run_id = planned if planned is not None else find_finished(uri, experiment, digest)
    if not run_id:
        return None
    from al_research.tracking import Store

    store = Store(uri)
    log.info("skipped: finished run %s has the same config (rerun=true runs it again)", run_id)
    if sweep is not None:
        tags = {reused_tag(sweep): sweep}
        if job_num is not None:
            tags[reused_job_tag(sweep)] = str(job_num)
        store.set_tags(run_id, tags)
    run = store.run(run_id)
    return Skipped(run_id, float(run.data.metrics.get(Metric.FINAL_TEST_ACCURACY, float("nan"))))


PLAN = "resume.json"


@dataclass
class PlannedJob:
    num: int
    uri: str
    experiment: str
    config: Any  # the job's config (its `hydra` node aside)


def plan(sweep: str | Path, jobs: Sequence[PlannedJob]) -> None:
    """At a sweep's start: each job's config hash and the newest FINISHED run with that hash,
    from one search per store and experiment, into `<sweep>/.progress/resume.json`. Nothing is
    written for a sweep with `rerun=true`; a store that cannot be searched leaves its jobs to
    search themselves."""
    if not jobs or all(wants_rerun(job.config) for job in jobs):
        return
    from al_research.tracking import Store

    finished: dict[tuple[str, str], dict[str, str] | None] = {}
    for key in {(job.uri, job.experiment) for job in jobs}:
        try:
            store = Store(key[0])
            experiment_id = store.experiment_id(key[1])
            runs = [] if experiment_id is None else store.search_runs(
                [experiment_id], f"attributes.status = 'FINISHED' and "
                f"tags.{CONFIG_HASH_TAG} IS NOT NULL")
        except Exception as error:  # noqa: BLE001  (its jobs search as before)
            log.debug("no resume plan for %s: %s", key, error)
            finished[key] = None
            continue
        newest: dict[str, str] = {}
        for run in runs:  # newest first
            newest.setdefault(run.data.tags.get(CONFIG_HASH_TAG, ""), run.info.run_id)
        finished[key] = newest
    entries: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str, str]] = set()
    for job in jobs:
        known = finished[(job.uri, job.experiment)]
        digest = config_hash(job.config)
        again = (job.uri, job.experiment, digest) in seen
        seen.add((job.uri, job.experiment, digest))
        if known is not None and not again:
            entries[str(job.num)] = {"hash": digest, "run": known.get(digest, "")}
    folder = Path(sweep) / PROGRESS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PLAN).write_text(json.dumps(entries))


def _planned(sweep: str | None, job_num: int | None, digest: str) -> str | None:
    """The run id the sweep's start found for this job ("": none), or None: search."""
    if sweep is None or job_num is None:
        return None
    try:
        entry = json.loads((Path(sweep) / PROGRESS / PLAN).read_text()).get(str(job_num))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("hash") != digest:
        return None
    return str(entry.get("run", ""))
