"""A sweep through SLURM into the PostgreSQL-backed server: one job array, every job a FINISHED
child of the sweep's parent run, the report written; and the same report as from SQLite."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.cluster.conftest import SWEEP, array_tasks, sacct_states, slurm_sweep

pytestmark = pytest.mark.cluster

REPORT_FILES = ["summary.md", "comparison.csv", "difference_from_random.csv",
                "learning_curves.csv", "ranking.csv"]


def test_a_sweep_runs_as_one_job_array_of_child_runs_on_postgresql(pg_sweep, server_uri):
    sweep, experiment, result = pg_sweep
    assert result.returncode == 0, result.stderr[-3000:]

    (array, tasks), = array_tasks(sweep).items()  # one array, a task per job
    assert tasks == [f"{array}_{i}" for i in range(4)]
    assert sacct_states(array) == dict.fromkeys(tasks, "COMPLETED")

    client = MlflowClient(tracking_uri=server_uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("summary_of") == f"sweep:{sweep}"]
    assert parent.info.run_id == json.loads((sweep / ".mlflow_parent_run").read_text())["run_id"]
    assert parent.info.status == "FINISHED"
    jobs = [r for r in runs if r.info.run_id != parent.info.run_id]
    assert sorted((r.data.tags["strategy"], r.data.tags["seed"]) for r in jobs) == [
        ("least_confident", "0"), ("least_confident", "1"), ("random", "0"), ("random", "1")]
    for run in jobs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        history = client.get_metric_history(run.info.run_id, "test_accuracy")
        assert sorted(m.step for m in history) == [10, 20, 30]

    # the server wrote them to PostgreSQL: the database itself, read without the server
    database = MlflowClient(tracking_uri=os.environ["AL_RESEARCH_PG_URI"])
    assert {database.get_run(r.info.run_id).info.status for r in jobs} == {"FINISHED"}
    assert "- runs: 4 finished" in (sweep / "report" / "summary.md").read_text()


def _report(sweep: Path, uri: str) -> dict[str, str]:
    """The report's text files with what differs between two stores replaced. Only two things
    had to be: the sweep's folder (the title and the `sweep:` line) and the store's URI (the
    `MLflow store:` line). No run id, timestamp or host appears in summary.md or the CSVs."""
    return {name: (sweep / "report" / name).read_text().replace(str(sweep), "<sweep>")
            .replace(uri, "<store>") for name in REPORT_FILES}


def test_the_report_from_postgresql_equals_the_report_from_sqlite(pg_sweep, server_uri,
                                                                  tmp_path):
    sweep, experiment, result = pg_sweep
    assert result.returncode == 0, result.stderr[-3000:]
    sqlite_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # the same command, seeds and launcher (so the same threads per job): only the store differs
    again = slurm_sweep(tmp_path / "sweep", sqlite_uri, experiment, SWEEP, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    from_postgresql = _report(sweep, server_uri)
    from_sqlite = _report(tmp_path / "sweep", sqlite_uri)
    for name in REPORT_FILES:
        assert from_postgresql[name] == from_sqlite[name], name
    assert "<store>" in from_postgresql["summary.md"]
