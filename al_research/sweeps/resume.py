"""Resuming sweeps: a job whose exact configuration already has a FINISHED run is skipped.

Every run carries `config_hash`, a hash of its resolved config: everything that decides what
the run computes (data, model, strategy, seed, budget...) and nothing that only decides where
it is written or how it runs (`tracking`, `runtime`, `rerun`; Hydra's output folders and
launcher settings are not part of a job's config). Running a sweep again therefore runs only
the configurations that have no FINISHED run yet; `rerun=true` runs them all.

A skipped job tags the finished run it stands for with `reused_in/<digest of the sweep>` =
the sweep folder (`tracking.names.reused_tag`), so the new sweep's report can count it
(`tracking.Store.sweep_runs`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from al_research.config import HOW_KEYS
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
    run_id = find_finished(uri, experiment, config_hash(cfg))
    if run_id is None:
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
