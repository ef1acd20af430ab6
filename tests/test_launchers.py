"""Parallel and cluster launchers: joblib and submitit sweeps into one store, thread shares,
the cheap MLflow paths they rely on (step images in MLflow's layout, the store check), the same
runs on every launcher, a sweep surviving a killed worker, and a folder per sweep."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

from al_research.runtime import concurrent_jobs, launcher_threads, thread_share
from tests.conftest import experiment_runs, run_cli

SHORT = ["budget=30", "stages.kmeans.enabled=false", "tracking.histograms=false"]
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
    """RunRecorder encodes step images on a thread and uploads them in MLflow's own layout (as
    MLflow's log_image names them, beside one it logged itself); all land by the end."""
    from al_research.tracking import mlflow_run, prepare_store

    experiment_id = prepare_store(store_uri, "al-research")
    image = np.zeros((40, 300, 3), np.uint8)
    client = MlflowClient(tracking_uri=store_uri)
    with mlflow_run(store_uri, experiment_id, "images", {}) as recorder:
        for step in (10, 20, 30):
            image[:, step] = 255  # the recorder must copy: the caller reuses its buffer
            recorder.log_image(image, key="hist", step=step)
        run_id = recorder.run_id
        client.log_image(run_id, image, key="by_mlflow", step=5)
    paths = [a.path for a in client.list_artifacts(run_id, "images")]
    parts = sorted(_image_name_parts(p) for p in paths)
    assert [(key, step, ext) for key, step, ext, kind in parts if kind == "full"] == [
        ("by_mlflow", "5", "png"), ("hist", "10", "png"), ("hist", "20", "png"),
        ("hist", "30", "png")]
    assert sorted((key, ext) for key, _, ext, kind in parts if kind == "compressed") == [
        ("by_mlflow", "webp"), *[("hist", "webp")] * 3]
    assert client.get_run(run_id).data.tags["mlflow.loggedImages"] == "True"
    assert len({"+" if "+step+" in p else "%" for p in paths}) == 1  # MLflow's own separator
    from PIL import Image

    first = next(p for p in paths if "+step+10+" in p and p.endswith(".png"))
    pixels = np.asarray(Image.open(client.download_artifacts(run_id, first)).convert("RGB"))
    assert pixels[:, 10].max() == 255 and pixels[:, 20].max() == 0
    thumb = next(p for p in paths if "hist+step+30+" in p and p.endswith(".webp"))
    pixels = np.asarray(Image.open(client.download_artifacts(run_id, thumb)).convert("RGB"))
    assert pixels.shape[1] == 256 and pixels.max() == 255  # MLflow's thumbnail size, lossless



def test_step_images_go_straight_into_a_local_artifact_folder(store_uri, tmp_path,
                                                               monkeypatch):
    """A run whose artifacts MLflow keeps in a local folder (a SQLite store's) gets its step
    images written there as they are encoded: no staging folder, no upload; the UI's tag comes
    with the run when it is asked for at creation (`images_tagged`), else is set once."""
    import tempfile

    from al_research.tracking import mlflow_run, prepare_store
    from al_research.tracking.images import local_artifact_dir
    from al_research.tracking.names import Tag

    staged = []
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: staged.append(1) or str(tmp_path))
    experiment_id = prepare_store(store_uri, "al-research")
    client = MlflowClient(tracking_uri=store_uri)
    for tags in ({Tag.LOGGED_IMAGES: "True"}, {}):
        with mlflow_run(store_uri, experiment_id, "direct", tags) as recorder:
            run_id = recorder.run_id
            folder = local_artifact_dir(client.get_run(run_id).info.artifact_uri)
            assert folder is not None
            recorder.log_image(np.full((30, 256, 3), 90, np.uint8), key="hist", step=10)
            recorder._images._futures[0].result()
            files = sorted(p.name for p in (folder / "images").iterdir())
            assert sorted(f.rsplit(".", 1)[1] for f in files) == ["png", "webp"]  # before the end
        assert sorted(a.path.rsplit("/", 1)[1] for a in client.list_artifacts(
            run_id, "images")) == files
        assert client.get_run(run_id).data.tags[Tag.LOGGED_IMAGES] == "True"
    assert not staged
    assert local_artifact_dir("mlflow-artifacts:/1/abc/artifacts") is None  # a server's


def test_artifacts_of_a_run_with_a_local_artifact_folder_are_written_there(store_uri, tmp_path):
    """Text, figures, images and files of a run whose artifacts are a local folder are written
    into it as MLflow's local repository would (no MLflow artifact call, which reads the whole
    run first); nothing half-written or hidden is left, and MLflow lists them all."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from al_research.tracking import mlflow_run, prepare_store

    experiment_id = prepare_store(store_uri, "al-research")
    source = tmp_path / "rounds.csv"
    source.write_text("n_labelled,test_accuracy\n10,0.5\n")
    with mlflow_run(store_uri, experiment_id, "artifacts", {}) as recorder:
        def refuse(*args, **kwargs):
            raise AssertionError("an MLflow artifact call")
        for name in ("log_text", "log_artifact", "log_image", "log_figure"):
            setattr(recorder._mlflow, name, refuse)
        recorder.log_text("seed: 3 \u2014 \u00e9\n", "config.yaml")
        recorder.log_dict({"a": [1, 2]}, "sub/d.json")
        recorder.log_image(np.full((8, 8, 3), 200, np.uint8), "plots/curve.png")
        figure = plt.figure()
        recorder.log_figure(figure, "plots/fig.png")
        recorder.log_file(source)
        run_id, folder = recorder.run_id, recorder.artifact_dir
    client = MlflowClient(tracking_uri=store_uri)
    listed = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for d in ("plots", "sub") for a in client.list_artifacts(run_id, d)}
    assert listed == {"config.yaml", "rounds.csv", "plots", "sub", "plots/curve.png",
                      "plots/fig.png", "sub/d.json"}
    assert (folder / "config.yaml").read_text(encoding="utf-8") == "seed: 3 \u2014 \u00e9\n"
    assert (folder / "rounds.csv").read_text() == source.read_text()
    assert np.asarray(Image.open(folder / "plots/curve.png")).min() == 200
    assert not [p for p in folder.rglob("*") if p.name.startswith(".")]

def test_step_images_are_uploaded_while_the_run_goes_and_the_staging_folder_removed(
        store_uri):
    from al_research.tracking import prepare_store
    from al_research.tracking.images import BackgroundImages

    experiment_id = prepare_store(store_uri, "al-research")
    client = MlflowClient(tracking_uri=store_uri)
    run_id = client.create_run(experiment_id).info.run_id
    images = BackgroundImages(client, run_id, upload_seconds=0.0)  # every image at once
    images.submit(np.full((20, 20, 3), 200, np.uint8), "h", 1, 1000)
    images._futures[0].result()
    assert len(client.list_artifacts(run_id, "images")) == 2  # before close()
    staging = images._staging
    assert staging is not None and not list(staging.iterdir())
    images.submit(np.zeros((20, 20, 3), np.uint8), "h", 2, 2000)
    images.close()
    assert len(client.list_artifacts(run_id, "images")) == 4 and not staging.exists()
    with pytest.raises(ValueError, match="image key 'a:b'"):
        BackgroundImages(client, run_id).submit(np.zeros((2, 2, 3), np.uint8), "a:b", 1, 1)


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


# -- every launcher computes the same runs ----------------------------------------------------
def _curve_and_picks(uri: str) -> dict[str, tuple[list[float], dict]]:
    import json

    client, runs = experiment_runs(uri)
    found = {}
    for r in runs:
        assert r.info.status == "FINISHED"
        history = sorted(client.get_metric_history(r.info.run_id, "test_accuracy"),
                         key=lambda m: m.step)
        with open(client.download_artifacts(r.info.run_id, "selected_indices.json")) as f:
            found[r.data.tags["seed"]] = ([m.value for m in history], json.load(f))
    return found


@pytest.mark.slow
def test_reruns_are_identical_on_every_launcher(tmp_path):
    """Sequential (TF's default threads), the parallel joblib launcher (one thread per worker;
    workers forked from the import server, or fresh loky interpreters) and submitit's local
    launcher: the same configuration gives the same picks and accuracies."""
    results = {}
    for name, launcher in (("basic", ["hydra/launcher=basic"]),
                           ("parallel", ["hydra/launcher=parallel"]),
                           ("loky", ["hydra/launcher=parallel",
                                     "hydra.launcher.start_method=loky"]),
                           ("local", ["hydra/launcher=local"])):
        uri = f"sqlite:///{tmp_path / name / 'mlflow.db'}"
        result = run_cli(["-m", *launcher, "seed=1", *SHORT,
                          "data.pool_size=500", f"tracking.uri={uri}",
                          f"hydra.sweep.dir={tmp_path / name / 'sweep'}"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        results[name] = _curve_and_picks(uri)
    curve, picks = results["basic"]["1"]
    assert len(curve) == 3 and len(set(curve)) > 1 and len(picks["initial"]) == 10
    assert results["parallel"] == results["basic"]
    assert results["loky"] == results["basic"]
    assert results["local"] == results["basic"]


# -- the parallel launcher survives a dead worker --------------------------------------------
LONG = ["budget=1000", "data.pool_size=2000", "stages.kmeans.enabled=false",
        "tracking.histograms=false"]


def _kill_a_running_job(args: list[str], uri: str, env: dict, cwd):
    """Start `python -m al_research -m ARGS`, wait for one of its runs to be RUNNING and kill
    that job's process with SIGKILL; return the sweep's process and the killed run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "al_research", "-m", *args], cwd=cwd,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 300
    victim = None
    while victim is None:
        running = [r for r in _polled_runs(uri) if r.info.status == "RUNNING"]
        if running:
            victim = running[0]
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(int(victim.data.tags["pid"]), signal.SIGKILL)
    return process, victim


def _polled_runs(uri: str) -> list:
    """The runs so far, read while the sweep may be creating the store: through
    prepare_store, which takes the store's lock, so this reader never races the creation."""
    from al_research.tracking import prepare_store

    prepare_store(uri, "al-research")
    return experiment_runs(uri)[1]


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_does_not_stop_the_sweep(tmp_path):
    """kill -9 of a worker: the pool breaks (loky kills its other workers too); the jobs not
    started run, the jobs in flight run again one at a time, the dead runs end FAILED."""
    import json
    import os

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process, victim = _kill_a_running_job(
        ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "seed=0,1,2", *LONG,
         f"tracking.uri={uri}", f"hydra.sweep.dir={sweep}"], uri, env, tmp_path)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    assert "A worker process died" in out + err

    client, runs = experiment_runs(uri)
    dead = client.get_run(victim.info.run_id)
    assert dead.info.status == "FAILED"
    assert f"pid {victim.data.tags['pid']} " in dead.data.tags["failure"]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["seed"] for r in finished) == ["0", "1", "2"]
    jobs = json.loads((sweep / "jobs.json").read_text())
    assert [j["status"] for j in jobs] == ["FINISHED"] * 3


# -- sweeps started together get a folder each -----------------------------------------------
def test_folders_are_claimed_once_even_by_processes_racing_for_them(tmp_path):
    import subprocess
    import sys
    import time

    start_at = time.time() + 3
    script = ("import time\nfrom al_research.sweeps.folders import unique_dir\n"
              f"time.sleep(max(0, {start_at} - time.time()))\n"
              f"print(unique_dir({str(tmp_path / 'multirun' / '10-00-00')!r}))\n")
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                  text=True) for _ in range(4)]
    claimed = [p.communicate(timeout=60)[0].strip() for p in processes]
    base = str(tmp_path / "multirun" / "10-00-00")
    assert sorted(claimed) == [base, f"{base}-2", f"{base}-3", f"{base}-4"]


@pytest.mark.slow
def test_two_sweeps_started_together_get_their_own_folder_and_tag(tmp_path):
    import os
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    shared = "hydra.sweep.dir=${al_research.unique_dir:" + str(tmp_path / "sweep") + "}"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    processes = [subprocess.Popen([sys.executable, "-m", "al_research", "-m", f"seed={seed}",
                                   *SHORT, "data.pool_size=500", f"tracking.uri={uri}",
                                   shared], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for seed in (0, 1)]
    for p in processes:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    _, runs = experiment_runs(uri)
    folders = {r.data.tags["seed"]: r.data.tags["sweep"] for r in runs}
    assert sorted(folders.values()) == [str(tmp_path / "sweep"), str(tmp_path / "sweep-2")]
    for seed, folder in folders.items():
        assert list((tmp_path / folder).glob(f"0-least_confident-s{seed}/rounds.csv"))


@pytest.mark.slow
def test_a_submitit_job_killed_mid_sweep_does_not_stop_the_others(tmp_path):
    import json
    import os

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process, victim = _kill_a_running_job(
        ["hydra/launcher=local", "seed=0,1", "budget=1000", "data.pool_size=2000",
         "stages.kmeans.enabled=false", "tracking.histograms=false", f"tracking.uri={uri}",
         f"hydra.sweep.dir={sweep}"], uri, env, tmp_path)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 1 and "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    victim_job = f"job #{victim.data.tags['job_num']} (seed={victim.data.tags['seed']})"
    assert last.startswith(f"al-research: error: 1 of 2 jobs finished; {victim_job} FAILED: "
                           "its process"), last
    assert "run the same command again to run only those: python -m al_research -m " in last

    client, runs = experiment_runs(uri)
    statuses = {r.data.tags["seed"]: r.info.status for r in runs}
    other = "1" if victim.data.tags["seed"] == "0" else "0"
    assert statuses == {victim.data.tags["seed"]: "FAILED", other: "FINISHED"}
    jobs = {j["job"]: j for j in json.loads((sweep / "jobs.json").read_text())}
    killed = jobs[int(victim.data.tags["job_num"])]
    assert killed["status"] == "FAILED" and "died without ending the run" in killed["reason"]


def test_a_sweeps_job_configs_are_composed_once_and_served_as_fresh_copies(monkeypatch):
    import itertools

    from omegaconf import OmegaConf

    from al_research.sweeps import composed

    counter = itertools.count(1)
    OmegaConf.register_new_resolver("test_folder", lambda: f"folder-{next(counter)}",
                                    use_cache=True, replace=True)

    class Loader:  # a config loader that counts its compositions
        calls = 0

        def load_sweep_config(self, master_config, sweep_overrides):
            Loader.calls += 1
            return OmegaConf.create({"o": list(sweep_overrides)})

    def job(seed: int):
        return (["seed=" + str(seed)],
                OmegaConf.create({"o": [f"seed={seed}"], "dir": "${test_folder:}"}))

    master = OmegaConf.create({"dir": "${test_folder:}"})
    jobs = [job(0), job(1)]  # composed (and kept) before the master's folder is resolved
    composed.remember(jobs)
    assert master.dir == "folder-1"  # the sweep resolves its folder once, later
    loader = Loader()
    composed.serve(loader)
    composed.serve(loader)  # twice: still one layer
    first = loader.load_sweep_config(master, ["seed=0"])
    assert first.dir == "folder-1"  # the master's resolved folder, not a new one
    first.o.append("changed")  # a copy: the kept config does not change
    again = loader.load_sweep_config(master, ["seed=0"])
    assert list(again.o) == ["seed=0"] and Loader.calls == 0
    assert loader.load_sweep_config(master, ["seed=2"]) == {"o": ["seed=2"]}  # composed
    assert Loader.calls == 1 and composed.pickled(["seed=1"]) is not None
    monkeypatch.setattr(composed, "MAX_JOBS", 1)  # too many jobs: nothing kept
    composed.remember(jobs)
    assert composed.pickled(["seed=0"]) is None
    assert loader.load_sweep_config(master, ["seed=0"]) == {"o": ["seed=0"]}
    composed.remember([])
