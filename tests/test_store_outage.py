"""A store lost mid-sweep: one line per failed job and per end step, one retry warning, a last
line that says what was kept and how to resume, and runs left open ended with the true reason
once the store answers again. A real `mlflow server`, killed and restarted; the real CLI."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from al_research.sweeps.ending import resume_command
from al_research.sweeps.folders import describe, local_account, varying_keys
from al_research.tracking import outages
from al_research.tracking.liveness import FAILURE_TAG


# -- pure logic ------------------------------------------------------------------------------
def test_short_cause_reads_the_innermost_reason():
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise RuntimeError("API request to http://x/api failed with exception ...") from inner
    except RuntimeError as error:
        assert outages.short_cause(error) == "connection refused"
    assert outages.short_cause(RuntimeError("sqlite3.OperationalError: database is locked")) \
        == "database is locked"
    long = RuntimeError("x" * 500)
    assert len(outages.short_cause(long)) == 160


def test_urllib3_retry_warnings_become_one_line():
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("urllib3.connectionpool")
    handler = Keep()
    logger.addHandler(handler)
    fresh, installed = outages._RetrySummary(), list(logger.filters)
    logger.filters[:] = [fresh]  # this process's own summary may have shown its one line
    try:
        error = ConnectionRefusedError(111, "Connection refused")
        for total in (2, 1, 0, 2, 1):
            logger.warning("Retrying (%r) after connection broken by '%r': %s",
                           f"Retry(total={total})", error, "/api/2.0/mlflow/runs/get")
        logger.warning("Connection pool is full")
    finally:
        logger.filters[:] = installed
        logger.removeHandler(handler)
    assert records[0].startswith("MLflow store not answering (connection refused): retrying")
    assert records[1:] == ["Connection pool is full"]
    assert fresh.hidden == 4


def test_varying_keys_name_what_tells_jobs_apart():
    jobs = [["strategy=random", "seed=0", "budget=30"], ["strategy=random", "seed=1", "budget=30"],
            ["strategy=least_confident", "seed=0", "budget=30"]]
    keys = varying_keys(jobs)
    assert sorted(keys) == ["seed", "strategy"]
    assert describe(jobs[1], keys) == "strategy=random seed=1"
    assert describe(["budget=30", "hydra.launcher.n_jobs=2"]) == "budget=30"


def test_the_sweeps_own_record_accounts_for_its_jobs_without_a_store(tmp_path):
    progress = tmp_path / ".progress"
    progress.mkdir()
    (progress / "done.jsonl").write_text(
        json.dumps({"num": 0, "status": "COMPLETED"}) + "\n"
        + json.dumps({"num": 2, "status": "FAILED", "reason": "store gone",
                      "store_lost": True}) + "\n")
    rows = local_account(tmp_path, [["seed=0"], ["seed=1"], ["seed=2"]])
    assert [r["status"] for r in rows] == ["FINISHED", "NOT RUN", "FAILED"]
    assert rows[2]["reason"] == "store gone" and rows[2]["store_lost"] is True


def test_the_resume_command_can_be_pasted(monkeypatch):
    monkeypatch.setattr("sys.orig_argv", ["/some/venv/bin/python3", "-m", "al_research", "-m",
                                          "seed=0,1", "tracking.uri=sqlite:////a b/m.db"])
    assert resume_command() == ("python -m al_research -m seed=0,1 "
                                "'tracking.uri=sqlite:////a b/m.db'")


def test_a_run_left_open_is_ended_with_when_the_store_stopped(tmp_path, monkeypatch, store_uri):
    from mlflow import MlflowClient

    monkeypatch.setenv("AL_RESEARCH_STATE_DIR", str(tmp_path / "state"))
    client = MlflowClient(tracking_uri=store_uri)
    experiment = client.create_experiment("e")
    open_run = client.create_run(experiment).info.run_id
    other = client.create_run(experiment).info.run_id
    at = time.time() - 60
    outages.remember_open_run(store_uri, open_run, at)
    outages.remember_open_run("http://elsewhere:5000", "abc", at)  # another store's: kept
    assert outages.settle_open_runs(client, store_uri) == [open_run]
    run = client.get_run(open_run)
    assert run.info.status == "FAILED"
    assert run.data.tags[FAILURE_TAG] == outages.stopped_answering(at)
    assert run.info.end_time == int(at * 1000)
    assert client.get_run(other).info.status == "RUNNING"  # not in the ledger: untouched
    left = outages._entries(outages.ledger_path())
    assert [e["uri"] for e in left] == ["http://elsewhere:5000"]
    assert outages.settle_open_runs(client, store_uri) == []  # once only


# -- the real thing --------------------------------------------------------------------------
def _sweep(tmp_path: Path, uri: str, state: Path, extra: list[str], experiment: str):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["AL_RESEARCH_STATE_DIR"] = str(state)
    args = [sys.executable, "-m", "al_research", "-m", "strategy=random,least_confident",
            "seed=0,1", "budget=150", "data.pool_size=1500", "stages.kmeans.enabled=false",
            "tracking.histograms=false", f"tracking.uri={uri}",
            f"tracking.experiment_name={experiment}", *extra]
    return subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _done(tmp_path: Path) -> int:
    found = list(tmp_path.glob("multirun/*/*/.progress/done.jsonl"))
    return len(found[0].read_text().splitlines()) if found else 0


@pytest.mark.slow
def test_a_store_lost_mid_sweep_ends_it_in_a_few_clear_lines_and_the_rerun_completes_it(
        tmp_path, mlflow_server):
    check_store_lost_mid_sweep(tmp_path, mlflow_server)


def check_store_lost_mid_sweep(tmp_path: Path, mlflow_server: Any,
                               extra: list[str] | None = None) -> None:
    """A 4-job sweep (`extra`: e.g. a launcher) whose server (`conftest.MlflowServer`) is
    killed once the first job has ended, then restarted, and the same command run again."""
    from mlflow import MlflowClient

    uri, state, extra = mlflow_server.uri, tmp_path / "state", extra or []
    experiment = f"outage-{uuid.uuid4().hex[:8]}"  # a server's database may outlive the test
    sweep = _sweep(tmp_path, uri, state, extra, experiment)
    deadline = time.monotonic() + 300
    while _done(tmp_path) < 1:  # the first job finished: the store dies under the second
        assert sweep.poll() is None, sweep.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(mlflow_server.process.pid, signal.SIGKILL)
    out, err = sweep.communicate(timeout=300)
    both = out + err
    assert sweep.returncode == 1, err[-3000:]
    assert "Traceback" not in both
    assert len([line for line in both.splitlines() if "Retrying" in line]) == 0
    assert both.count("further retry messages are not shown") <= 2  # the job's and the sweep's
    failed = [line for line in err.splitlines() if line.startswith("[sweep] job #")]
    (folder,) = tmp_path.glob("multirun/*/*")
    jobs = json.loads((folder / "jobs.json").read_text())
    not_finished = [r for r in jobs if r["status"] != "FINISHED"]
    assert len(failed) == len(not_finished) >= 1  # one line per failed job
    assert all(" failed: MLflow store " + uri in line for line in failed)
    assert both.count("The sweep's report: not done: MLflow store") == 1
    assert both.count("Ending the sweep's run: not done: MLflow store") == 1
    assert "Traceback" in (folder / "sweep.log").read_text()  # ... the tracebacks are here
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"al-research: error: MLflow store {uri} stopped answering at ")
    assert f"{len(jobs) - len(not_finished)} of 4 jobs finished" in last
    assert "run the same command again to run only those: python -m al_research -m " in last

    mlflow_server.start()  # the store answers again: the same command completes the sweep
    rerun = _sweep(tmp_path, uri, state, extra, experiment)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=100)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished: dict[str, int] = {}
    for run in runs:
        if run.data.tags.get("summary") == "true":
            continue
        if run.info.status == "FINISHED":
            key = run.data.tags["config_hash"]
            finished[key] = finished.get(key, 0) + 1
    assert len(finished) == 4 and set(finished.values()) == {1}
    left_open = [r for r in runs if r.info.status == "FAILED"]
    parents = [r for r in left_open if r.data.tags.get("summary") == "true"]
    assert len(parents) == 1  # the first sweep's run, ended with the true reason
    reported = [r for r in runs if r.data.tags.get("summary") == "true"
                and r.info.status == "FINISHED"]  # the rerun's own run holds the report
    assert len(reported) == 1 and reported[0].data.tags["summarised_runs"] == "4"
    assert "summarised_runs" not in parents[0].data.tags
    assert all(r.data.tags[FAILURE_TAG].startswith("the store stopped answering at ")
               for r in left_open)
    assert "died without ending the run" not in out + err
