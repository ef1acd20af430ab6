"""Resuming sweeps: a job whose exact configuration already has a FINISHED run is skipped.

Every run carries `config_hash`, a hash of its resolved config: everything that decides what
the run computes (data, model, strategy, seed, budget...) and nothing that only decides where
it is written or how it runs (`tracking`, `runtime`, `rerun`; Hydra's output folders and
launcher settings are not part of a job's config). Running a sweep again therefore runs only
the configurations that have no FINISHED run yet; `rerun=true` runs them all.

A skipped job tags the finished run it stands for with `reused_in/<digest of the sweep>` =
the sweep folder, so the new sweep's report can count it (`sweep_runs`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

CONFIG_HASH_TAG = "config_hash"
REUSED_TAG_PREFIX = "reused_in/"
EXCLUDED = ("tracking", "runtime", "rerun", "hydra")  # where and how, not what


def hashed_part(cfg: Any) -> dict[str, Any]:
    """The part of a resolved config that decides what a run computes."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.structured(cfg)
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(container, dict)
    return {k: v for k, v in container.items() if k not in EXCLUDED}


def config_hash(cfg: Any) -> str:
    """A short stable hash of `hashed_part(cfg)` (key order and formatting do not matter)."""
    text = json.dumps(hashed_part(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def reused_tag(sweep: str) -> str:
    """The tag a run gets when a sweep reuses it instead of running its configuration."""
    return REUSED_TAG_PREFIX + hashlib.sha1(str(sweep).encode()).hexdigest()[:12]


def _experiment_id(client, experiment: str) -> str | None:
    found = client.get_experiment_by_name(experiment)
    return None if found is None else found.experiment_id


def find_finished(uri: str, experiment: str, config_hash: str) -> str | None:
    """The newest FINISHED run of `experiment` whose config hash is `config_hash`, or None."""
    from al_research.tracking.store import _client

    client = _client(uri)
    experiment_id = _experiment_id(client, experiment)
    if experiment_id is None:
        return None
    runs = client.search_runs(
        [experiment_id],
        f"tags.{CONFIG_HASH_TAG} = '{config_hash}' and attributes.status = 'FINISHED'",
        max_results=1, order_by=["attributes.start_time DESC"])
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
    run_id = find_finished(uri, experiment, config_hash(cfg))
    if run_id is None:
        return None
    from al_research.tracking.store import _client

    client = _client(uri)
    log.info("skipped: finished run %s has the same config (rerun=true runs it again)", run_id)
    if sweep is not None:
        client.set_tag(run_id, reused_tag(sweep), str(sweep))
        if job_num is not None:
            client.set_tag(run_id, reused_tag(sweep) + "/job_num", str(job_num))
    run = client.get_run(run_id)
    return Skipped(run_id, float(run.data.metrics.get("final_test_accuracy", float("nan"))))


def sweep_runs(client, experiment_ids: list[str], sweep: str, filter_string: str = "") -> list:
    """The runs that make up `sweep`: the ones it ran (tag `sweep`) and the finished ones it
    reused instead of running their configuration again. Each run once."""
    extra = f" and {filter_string}" if filter_string else ""
    quoted = str(sweep).replace("'", "\\'")
    ran = client.search_runs(experiment_ids, f"tags.sweep = '{quoted}'{extra}",
                             max_results=50000)
    reused = client.search_runs(experiment_ids,
                                f"tags.`{reused_tag(sweep)}` = '{quoted}'{extra}",
                                max_results=50000)
    seen: set[str] = set()
    runs = []
    for run in [*ran, *reused]:
        if run.info.run_id not in seen:
            seen.add(run.info.run_id)
            runs.append(run)
    return runs
