"""A sweep is one MLflow parent run; each of its jobs is a child run (MLflow's nested runs).

The launching process opens the parent when the sweep starts (`sweeps.callbacks.SweepRun`)
and records its id in `<sweep dir>/.mlflow_parent_run`, where every job, in whatever process or
on whatever node it runs, finds it and tags itself `mlflow.parentRunId`. The sweep-end report
logs its summary into the parent and ends it. The MLflow UI then shows one expandable row per
sweep. A run outside a sweep stays a plain run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from al_research.tracking.names import TRUE, Tag

PARENT_FILE = ".mlflow_parent_run"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag for nesting
_heartbeats: dict[str, Any] = {}


def parent_of(sweep_dir: str | Path) -> dict[str, str] | None:
    """The parent run recorded for a sweep folder: {"run_id", "uri", "experiment_id"}."""
    path = Path(sweep_dir) / PARENT_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def sweep_run_name(sweep_dir: str | Path) -> str:
    """`sweep <date>/<time>` for Hydra's default folders: the last two parts of the path."""
    path = Path(sweep_dir)
    return f"sweep {path.parent.name}/{path.name}" if path.parent.name else f"sweep {path.name}"


def start_parent(uri: str, experiment_name: str, sweep_dir: str, n_jobs: int | None = None
                 ) -> str:
    """Open the sweep's parent run (RUNNING until the report ends it) and record its id."""
    from al_research.tracking import liveness
    from al_research.tracking.provenance import context_tags
    from al_research.tracking.store import _client, prepare_store

    experiment_id = prepare_store(uri, experiment_name)
    client = _client(uri)
    tags = {Tag.SUMMARY: TRUE, Tag.SUMMARY_OF: f"sweep:{sweep_dir}", Tag.SWEEP: sweep_dir,
            **liveness.process_tags()}
    if n_jobs is not None:
        tags["jobs"] = str(n_jobs)
    run = client.create_run(experiment_id, run_name=sweep_run_name(sweep_dir),
                            tags=context_tags(tags))
    run_id = run.info.run_id
    folder = Path(sweep_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PARENT_FILE).write_text(json.dumps(
        {"run_id": run_id, "uri": uri, "experiment_id": experiment_id}))
    _heartbeats[run_id] = liveness.Heartbeat(client, run_id).start()
    return run_id


def end_parent(sweep_dir: str | Path, status: str = "FINISHED") -> None:
    """End the sweep's parent run, if it is still running. If the store does not answer, the
    run is noted to be ended FAILED when it does (`outages`) and `StoreUnavailable` says so."""
    from al_research.tracking import outages
    from al_research.tracking.store import StoreUnavailable, _client

    parent = parent_of(sweep_dir)
    if parent is None:
        return
    beat = _heartbeats.pop(parent["run_id"], None)
    if beat is not None:
        beat.stop()
    uri, run_id = parent["uri"], parent["run_id"]
    client = _client(uri)
    try:
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status)
    except Exception as error:
        if not outages.is_outage(error):
            raise
        at = outages.mark_down(uri)
        outages.remember_open_run(uri, run_id, at, "sweep")
        raise StoreUnavailable(
            f"MLflow store {uri} is not answering ({outages.short_cause(error)}): the sweep's "
            f"run {run_id} stays open until the harness reaches the store again, which ends "
            f"it FAILED (\"{outages.stopped_answering(at)}\")") from error
