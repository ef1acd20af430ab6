"""Resuming sweeps: the config hash, finding finished runs, and a sweep stopped midway and run
again ending with every configuration present exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import al_research.config  # noqa: F401  (registers the config schema for compose)
from al_research.sweeps.resume import CONFIG_HASH_TAG, config_hash, find_finished
from al_research.tracking import mlflow_run, prepare_store
from tests.conftest import SHORT, compose, experiment_runs


# -- the hash ---------------------------------------------------------------------------------
def test_the_hash_follows_what_a_run_computes_and_nothing_else(tmp_path):
    base = config_hash(compose(SHORT))
    assert base == config_hash(compose(SHORT)) and len(base) == 16
    for changed in (["seed=1"], ["strategy=random"], ["budget=40"], ["model.lr=0.05"],
                    ["data=digits"], ["stages.self_training.enabled=true"]):
        assert config_hash(compose([*SHORT, *changed])) != base, changed
    for ignored in ([f"tracking.uri=sqlite:///{tmp_path / 'x.db'}"],
                    ["tracking.experiment_name=other"], ["tracking.histograms=true"],
                    ["runtime.tf_threads=1"], ["rerun=true"],
                    ["hydra.sweep.dir=elsewhere", "hydra/launcher=parallel"]):
        assert config_hash(compose([*SHORT, *ignored])) == base, ignored


def test_find_finished_sees_only_finished_runs_with_the_same_hash(store_uri):
    experiment_id = prepare_store(store_uri, "al-research")
    assert find_finished(store_uri, "al-research", "abc") is None
    with pytest.raises(RuntimeError), mlflow_run(store_uri, experiment_id, "failed",
                                                 {CONFIG_HASH_TAG: "abc"}):
        raise RuntimeError("boom")
    assert find_finished(store_uri, "al-research", "abc") is None
    with mlflow_run(store_uri, experiment_id, "done", {CONFIG_HASH_TAG: "abc"}) as recorder:
        finished = recorder.run_id
    with mlflow_run(store_uri, experiment_id, "other", {CONFIG_HASH_TAG: "xyz"}):
        pass
    assert find_finished(store_uri, "al-research", "abc") == finished
    assert find_finished(store_uri, "no such experiment", "abc") is None


# -- a sweep stopped and run again ------------------------------------------------------------
LONG = ["budget=1000", "data.pool_size=2000", "stages.kmeans.enabled=false",
        "tracking.histograms=false"]


def _sweep(args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen([sys.executable, "-m", "al_research", "-m", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_sweep_stopped_midway_and_run_again_has_every_configuration_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep"
    args = ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "seed=0,1,2", *LONG,
            f"tracking.uri={uri}", f"hydra.sweep.dir={sweep}"]
    first = _sweep(args, tmp_path)
    deadline = time.monotonic() + 300
    while True:  # stop it once one job has finished: the others are running or queued
        prepare_store(uri, "al-research")  # (under the store's lock: never racing its creation)
        _, runs = experiment_runs(uri)
        if any(r.info.status == "FINISHED" for r in runs):
            break
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first.send_signal(signal.SIGTERM)  # the sweep's process only: it tells its jobs
    _, err = first.communicate(timeout=180)
    assert first.returncode == 128 + signal.SIGTERM, err[-3000:]
    client, runs = experiment_runs(uri)
    assert {r.info.status for r in runs} <= {"FINISHED", "KILLED"}, "none left RUNNING"
    stopped = [r for r in runs if r.info.status == "KILLED"]
    finished_before = {r.data.tags["seed"] for r in runs if r.info.status == "FINISHED"}
    assert finished_before and len(finished_before) < 3
    for r in stopped:  # a stopped job kept every round it measured
        local = (sweep / f"{r.data.tags['job_num']}-least_confident-s{r.data.tags['seed']}"
                 / "rounds.csv").read_text().splitlines()[1:]
        history = client.get_metric_history(r.info.run_id, "test_accuracy")
        assert len(history) == len(local)

    second = _sweep(args, tmp_path)
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-3000:]
    logs = "".join(p.read_text() for p in sweep.glob("*/*.log"))  # each job's own log
    assert logs.count("skipped: finished run") == len(finished_before)
    client, runs = experiment_runs(uri)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["seed"] for r in finished) == ["0", "1", "2"]
    assert len({r.data.tags[CONFIG_HASH_TAG] for r in finished}) == 3
    jobs = json.loads((sweep / "jobs.json").read_text())
    assert [j["status"] for j in jobs] == ["FINISHED"] * 3
    assert sum(bool(j.get("reused")) for j in jobs) == 0, "same sweep folder: its own runs"

    forced = _sweep([*args[:2], "seed=0", *args[3:], "rerun=true"], tmp_path)
    _, err = forced.communicate(timeout=300)
    assert forced.returncode == 0, err[-3000:]
    _, runs = experiment_runs(uri)
    assert sum(r.info.status == "FINISHED" and r.data.tags["seed"] == "0" for r in runs) == 2


def test_a_sweeps_start_finds_its_jobs_finished_runs_once(store_uri, tmp_path):
    from al_research.sweeps import resume

    experiment_id = prepare_store(store_uri, "al-research")
    done, other = compose([*SHORT, "seed=0"]), compose([*SHORT, "seed=1"])
    with mlflow_run(store_uri, experiment_id, "old", {CONFIG_HASH_TAG: config_hash(done)}):
        pass
    with mlflow_run(store_uri, experiment_id, "new", {CONFIG_HASH_TAG: config_hash(done)}) as r:
        newest = r.run_id
    with pytest.raises(RuntimeError), mlflow_run(store_uri, experiment_id, "failed",
                                                 {CONFIG_HASH_TAG: config_hash(other)}):
        raise RuntimeError("boom")
    sweep = tmp_path / "sweep"
    jobs = [resume.PlannedJob(n, store_uri, "al-research", cfg)
            for n, cfg in enumerate([done, other, other])]
    resume.plan(sweep, jobs)
    plan = json.loads((sweep / ".progress" / "resume.json").read_text())
    assert plan == {"0": {"hash": config_hash(done), "run": newest},  # the newest finished
                    "1": {"hash": config_hash(other), "run": ""}}  # a failed run is none
    # job 2 repeats job 1's config: it searches when it starts (job 1 may have finished)
    skipped = resume.skip_if_finished(done, store_uri, "al-research", str(sweep), 0)
    assert skipped is not None and skipped.run_id == newest
    assert resume.skip_if_finished(other, store_uri, "al-research", str(sweep), 1) is None
    with mlflow_run(store_uri, experiment_id, "1 done", {CONFIG_HASH_TAG: config_hash(other)}
                    ) as r:
        second = r.run_id
    skipped = resume.skip_if_finished(other, store_uri, "al-research", str(sweep), 2)
    assert skipped is not None and skipped.run_id == second
    # a plan made for another config is not believed: the job searches
    skipped = resume.skip_if_finished(other, store_uri, "al-research", str(sweep), 0)
    assert skipped is not None and skipped.run_id == second
    resume.plan(tmp_path / "forced", [resume.PlannedJob(
        0, store_uri, "al-research", compose([*SHORT, "rerun=true"]))])
    assert not (tmp_path / "forced" / ".progress" / "resume.json").exists()
