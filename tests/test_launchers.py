"""Parallel and cluster launchers: joblib and submitit sweeps into one store, thread shares,
and the cheap MLflow paths they rely on (step images in MLflow's layout, the store check)."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

from al_research.runtime import concurrent_jobs, launcher_threads, thread_share
from tests.conftest import experiment_runs, run_cli

SHORT = ["budget=30", "clustering.enabled=false", "tracking.histograms=false"]
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
LOCAL = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
BASIC = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


# -- thread shares (pure logic) ---------------------------------------------------------------
@pytest.mark.parametrize(("n_jobs", "cpus", "jobs"), [
    (-1, 8, 8), (-2, 8, 7), (2, 8, 2), (None, 8, 1), (16, 2, 16), (-1, 1, 1), (-9, 4, 1)])
def test_concurrent_jobs_follow_joblib(n_jobs, cpus, jobs):
    assert concurrent_jobs(n_jobs, cpus) == jobs


@pytest.mark.parametrize(("cpus", "jobs", "share"), [(2, 2, 1), (8, 2, 4), (8, 3, 2), (2, 4, 1),
                                                     (1, 1, 1), (16, 1, 16)])
def test_thread_share_divides_the_cores_and_never_reaches_zero(cpus, jobs, share):
    assert thread_share(cpus, jobs) == share


def test_each_launcher_gets_its_share():
    assert launcher_threads({"_target_": JOBLIB, "n_jobs": 2}, cpus=2) == 1
    assert launcher_threads({"_target_": JOBLIB, "n_jobs": 2}, cpus=8) == 4
    assert launcher_threads({"_target_": JOBLIB, "n_jobs": -1}, cpus=8) == 1  # a job per core
    assert launcher_threads({"_target_": SLURM, "cpus_per_task": 6}, cpus=64) == 6
    assert launcher_threads({"_target_": LOCAL, "cpus_per_task": 1}, cpus=2) == 1
    # one job at a time in the process, or nothing asked for: TF's default (None)
    assert launcher_threads({"_target_": SLURM, "cpus_per_task": None}, cpus=64) is None
    assert launcher_threads({"_target_": BASIC}, cpus=8) is None
    assert launcher_threads(None) is None


# -- the cheap MLflow paths -------------------------------------------------------------------
def _image_name_parts(path: str) -> tuple[str, ...]:
    """What MLflow's UI reads from a step image's name (its ImageReducer's parsing)."""
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    sep = "+" if "+step+" in stem else "%"
    key, step_word, step, time_word, timestamp, _uuid, *compressed = stem.split(sep)
    assert (step_word, time_word) == ("step", "timestamp")
    assert step.isdigit() and timestamp.isdigit() and compressed in ([], ["compressed"])
    return key, step, path.rsplit(".", 1)[-1], "compressed" if compressed else "full"


def test_step_images_logged_in_the_background_land_as_mlflow_step_images(store_uri):
    """RunRecorder hands images to MLflow's own log_image on a thread; all land by the end."""
    from al_research.tracking import mlflow_run, prepare_store

    experiment_id = prepare_store(store_uri, "al-research")
    image = np.zeros((40, 300, 3), np.uint8)
    with mlflow_run(store_uri, experiment_id, "images", {}) as recorder:
        for step in (10, 20, 30):
            image[:, step] = 255  # the recorder must copy: the caller reuses its buffer
            recorder.log_image(image, key="hist", step=step)
        run_id = recorder.run_id
    client = MlflowClient(tracking_uri=store_uri)
    paths = [a.path for a in client.list_artifacts(run_id, "images")]
    parts = sorted(_image_name_parts(p) for p in paths)
    assert [(key, step, ext) for key, step, ext, kind in parts if kind == "full"] == [
        ("hist", "10", "png"), ("hist", "20", "png"), ("hist", "30", "png")]
    assert len([p for p in parts if p[3] == "compressed"]) == 3
    assert client.get_run(run_id).data.tags["mlflow.loggedImages"] == "True"
    from PIL import Image

    first = next(p for p in paths if "+step+10+" in p and p.endswith(".png"))
    pixels = np.asarray(Image.open(client.download_artifacts(run_id, first)))
    assert pixels[:, 10].max() == 255 and pixels[:, 20].max() == 0


def test_prepare_store_restores_a_deleted_experiment(store_uri):
    from al_research.tracking import prepare_store

    experiment_id = prepare_store(store_uri, "al-research")
    client = MlflowClient(tracking_uri=store_uri)
    client.delete_experiment(experiment_id)
    assert prepare_store(store_uri, "al-research") == experiment_id
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


# -- real sweeps through the command line -----------------------------------------------------
@pytest.mark.slow
def test_joblib_sweep_lands_every_run_in_one_sqlite_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                      "strategy=random,least_confident", "seed=0,1", *SHORT,
                      f"tracking.uri={uri}", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "database is locked" not in result.stdout + result.stderr
    client, runs = experiment_runs(uri)
    assert len(runs) == 4
    assert {(r.data.tags["strategy"], r.data.tags["seed"]) for r in runs} == {
        (s, str(seed)) for s in ("random", "least_confident") for seed in (0, 1)}
    for r in runs:
        assert r.info.status == "FINISHED"
        history = client.get_metric_history(r.info.run_id, "test_accuracy")
        assert sorted(m.step for m in history) == [10, 20, 30]
    logs = "".join(p.read_text() for p in sweep.glob("*/*.log"))
    assert "thread(s) per job under JoblibLauncher" in logs  # each worker took its share


@pytest.mark.slow
def test_submitit_local_sweep_lands_both_runs(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "hydra/launcher=local", "seed=0,1", *SHORT,
                      f"tracking.uri={uri}", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client, runs = experiment_runs(uri)
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1"]
    assert all(r.info.status == "FINISHED" for r in runs)
    for r in runs:
        assert len(client.get_metric_history(r.info.run_id, "test_accuracy")) == 3
    assert list(sweep.glob(".submitit/*/*_log.out")), "submitit keeps its logs in the sweep"
