"""The report finds a sweep's parent run by what MLflow records, from any folder and against a
server; it never deletes or replaces a run, and run again it adds no metric point twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHORT, run_cli


def _report(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "al_research.report", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _state(uri: str) -> dict[str, tuple[str, str]]:
    """Every run of the experiment, deleted ones included: id -> (lifecycle stage, status)."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("al-research")
    runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    return {r.info.run_id: (r.info.lifecycle_stage, r.info.status) for r in runs}


def _sweep(uri: str, cwd: Path) -> None:
    result = run_cli(["-m", "strategy=random,least_confident", *SHORT, f"tracking.uri={uri}"],
                     cwd)
    assert result.returncode == 0, result.stderr[-3000:]


def _check_report_keeps_every_run(uri: str, launch: Path, elsewhere: Path) -> None:
    from mlflow import MlflowClient

    _sweep(uri, launch)
    before = _state(uri)
    client = MlflowClient(tracking_uri=uri)
    (parent,) = [run_id for run_id in before
                 if client.get_run(run_id).info.run_name.startswith("sweep ")]
    for _ in range(2):  # from another folder, twice
        result = _report(["--experiment", "al-research", "--sweep", "latest",
                          "--tracking-uri", uri], elsewhere)
        assert result.returncode == 0, result.stderr[-3000:]
    after = _state(uri)
    assert after == before, "no run created, deleted or ended by the report"
    history = client.get_metric_history(parent, "mean_test_accuracy/random")
    steps = [m.step for m in history]
    assert steps and len(steps) == len(set(steps)), "one point per step, however many reports"
    assert client.get_run(parent).data.tags["summary_of"].startswith("sweep:")


@pytest.mark.slow
def test_a_report_from_another_folder_logs_into_the_parent_and_deletes_nothing(tmp_path):
    launch, elsewhere = tmp_path / "launch", tmp_path / "elsewhere"
    launch.mkdir()
    elsewhere.mkdir()
    _check_report_keeps_every_run(f"sqlite:///{tmp_path / 'mlflow.db'}", launch, elsewhere)


@pytest.mark.slow
def test_a_report_against_a_server_from_another_folder_deletes_nothing(tmp_path,
                                                                       mlflow_server):
    uri = mlflow_server.uri
    launch, elsewhere = tmp_path / "launch", tmp_path / "elsewhere"
    launch.mkdir()
    elsewhere.mkdir()
    _check_report_keeps_every_run(uri, launch, elsewhere)
