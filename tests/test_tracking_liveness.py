"""Runs whose process died without a word are marked FAILED by the next run (real processes
killed with SIGKILL, real SQLite stores)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from al_research.tracking import liveness, mlflow_run, prepare_store


def _run_then_hang(uri: str, tmp_path) -> tuple[subprocess.Popen, str]:
    """A process that opens a run and hangs in it; returns it and the run's id."""
    script = ("import sys, time\n"
              "from al_research.tracking import mlflow_run, prepare_store\n"
              f"eid = prepare_store({uri!r}, 'al-research')\n"
              "with mlflow_run(" + repr(uri) + ", eid, 'doomed', {}) as r:\n"
              "    print(r.run_id, flush=True)\n"
              "    time.sleep(300)\n")
    process = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path,
                               stdout=subprocess.PIPE, text=True)
    run_id = process.stdout.readline().strip()
    assert run_id, "the process did not open its run"
    return process, run_id


def test_a_run_whose_process_was_killed_is_marked_failed_by_the_next_run(store_uri, client_for,
                                                                        tmp_path):
    process, dead_id = _run_then_hang(store_uri, tmp_path)
    client = client_for(store_uri)
    tags = client.get_run(dead_id).data.tags
    assert tags[liveness.PID_TAG] == str(process.pid) and tags[liveness.HEARTBEAT_TAG]
    os.kill(process.pid, signal.SIGKILL)  # dies without a word: no cleanup runs
    process.wait()
    assert client.get_run(dead_id).info.status == "RUNNING"

    experiment_id = prepare_store(store_uri, "al-research")
    with mlflow_run(store_uri, experiment_id, "later", {}) as recorder:
        live_id = recorder.run_id
        # while it runs, a third run must not take it for dead (its process is this one)
        assert liveness.reap_dead_runs(client, [experiment_id]) == []
    dead = client.get_run(dead_id)
    assert dead.info.status == "FAILED"
    assert f"pid {process.pid}" in dead.data.tags[liveness.FAILURE_TAG]
    assert client.get_run(live_id).info.status == "FINISHED"



def test_a_sweeps_jobs_leave_dead_runs_to_its_start(store_uri, client_for, tmp_path):
    """A sweep's job opens its run without the dead-run check (`reap=False`); the sweep's
    start (`PrepareMlflowStore`'s store check) marks the dead run FAILED instead."""
    from omegaconf import OmegaConf

    from al_research.sweeps.callbacks import _check_store

    process, dead_id = _run_then_hang(store_uri, tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    client = client_for(store_uri)
    experiment_id = prepare_store(store_uri, "al-research")
    with mlflow_run(store_uri, experiment_id, "a job", {}, reap=False):
        pass
    assert client.get_run(dead_id).info.status == "RUNNING"
    _check_store(OmegaConf.create({"tracking": {"uri": store_uri,
                                                "experiment_name": "al-research"}}), reap=True)
    assert client.get_run(dead_id).info.status == "FAILED"

def test_a_run_from_another_host_is_failed_only_once_its_heartbeat_is_stale(store_uri,
                                                                          client_for):
    experiment_id = prepare_store(store_uri, "al-research")
    client = client_for(store_uri)
    now = time.time()

    def elsewhere(beat_age: float) -> str:
        run = client.create_run(experiment_id, tags={
            liveness.HOST_TAG: "node-17", liveness.PID_TAG: "4242",
            liveness.PROCESS_TAG: "node-17/4026531836/4242/99",
            liveness.HEARTBEAT_TAG: str(int(now - beat_age))})
        return run.info.run_id

    stale, fresh = elsewhere(liveness.STALE_SECONDS + 60), elsewhere(30)
    unrelated = client.create_run(experiment_id).info.run_id  # no process tags: not ours
    reaped = liveness.reap_dead_runs(client, [experiment_id])
    assert [r.run_id for r in reaped] == [stale]
    assert "no heartbeat" in client.get_run(stale).data.tags[liveness.FAILURE_TAG]
    assert client.get_run(fresh).info.status == "RUNNING"
    assert client.get_run(unrelated).info.status == "RUNNING"


def test_the_heartbeat_advances_while_the_run_lives(store_uri, client_for):
    experiment_id = prepare_store(store_uri, "al-research")
    client = client_for(store_uri)
    with mlflow_run(store_uri, experiment_id, "beating", {}, heartbeat_seconds=0.2) as recorder:
        first = int(client.get_run(recorder.run_id).data.tags[liveness.HEARTBEAT_TAG])
        time.sleep(1.5)
        later = int(client.get_run(recorder.run_id).data.tags[liveness.HEARTBEAT_TAG])
    assert later > first


def test_a_reused_pid_is_not_taken_for_the_dead_process():
    """Same host and PID, another start time: another process, so the run's is gone."""
    identity = liveness.process_identity()
    host, namespace, pid, ticks = identity.split("/")
    assert liveness.process_alive(identity) is True
    if ticks:  # Linux: the start time tells a reused PID apart
        assert liveness.process_alive(f"{host}/{namespace}/{pid}/{int(ticks) + 1}") is False
    assert liveness.process_alive(f"another-host/{namespace}/{pid}/{ticks}") is None
