"""The store check: unusable SQLite paths and absent or dying servers fail fast, in one line;
many processes may create one fresh SQLite store at once. Real stores, real `mlflow server`."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from al_research.tracking import StoreUnavailable, prepare_store
from tests.conftest import SHORT, free_port, run_cli


# -- SQLite -----------------------------------------------------------------------------------
def test_an_unopenable_sqlite_path_fails_at_once_naming_the_uri(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    uri = f"sqlite:///{blocker / 'sub' / 'mlflow.db'}"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as failed:
        prepare_store(uri, "al-research")
    assert time.monotonic() - started < 2
    message = str(failed.value)
    assert uri in message and "\n" not in message and "cannot create the folder" in message


@pytest.mark.parametrize("kind", ["folder", "corrupt"])
def test_a_path_that_is_not_a_database_fails_naming_the_uri(tmp_path, kind):
    path = tmp_path / "mlflow.db"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"this is no SQLite file" * 100)
    uri = f"sqlite:///{path}"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="MLflow store sqlite:///") as failed:
        prepare_store(uri, "al-research")
    assert time.monotonic() - started < 2 and uri in str(failed.value)


@pytest.mark.slow
def test_processes_creating_one_fresh_store_at_once_leave_it_usable(tmp_path):
    """Four processes race to create the same store (a start time shared to the millisecond);
    the file lock beside the database makes one of them create it, in a file of its own moved
    into place when whole."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    start_at = time.time() + 12  # after every process has imported MLflow
    script = ("import sys, time\n"
              "from al_research.tracking import prepare_store\n"
              "import mlflow\n"
              f"time.sleep(max(0, {start_at} - time.time()))\n"
              f"print(prepare_store({uri!r}, 'raced'))\n")
    processes = [subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-2000:]
    assert len({out.strip() for out, _ in outputs}) == 1, "one experiment, the same id"
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("raced")
    run = client.create_run(experiment.experiment_id)  # the schema is whole: it takes a run
    client.log_metric(run.info.run_id, "m", 1.0)
    client.set_terminated(run.info.run_id)
    assert [e.name for e in client.search_experiments()].count("raced") == 1
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["mlartifacts", "mlflow.db", "mlflow.db.lock"], leftovers


def _schema(path: Path) -> tuple:
    """Tables with their columns, indexes, the migration and the workspace: what two migrated
    stores share (the text of a CHECK constraint lists an enum's values in set order, which
    differs between processes)."""
    import sqlite3

    with sqlite3.connect(path) as db:
        names = sorted(db.execute("SELECT type, name, tbl_name FROM sqlite_master").fetchall())
        columns = {name: db.execute(f'PRAGMA table_info("{name}")').fetchall()
                   for kind, name, _ in names if kind == "table"}
        return (names, columns, db.execute("SELECT version_num FROM alembic_version").fetchall(),
                db.execute("SELECT * FROM workspaces").fetchall())


def _default_experiment(path: Path) -> tuple:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("SELECT name, artifact_location, lifecycle_stage, creation_time "
                          "FROM experiments WHERE experiment_id = 0").fetchone()


def test_a_new_store_is_a_copy_of_the_first_one_migrated_made_its_own(tmp_path, monkeypatch):
    """MLflow's migrations run once per MLflow version on a machine; later stores copy the
    empty result, which must equal a migrated store but for the Default experiment's folder
    and time, and take runs; a broken kept copy is migrated over."""
    from mlflow import MlflowClient

    from al_research.tracking.schema import create_sqlite_schema, schema_template

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    template = schema_template()
    assert template is not None and not template.exists()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    before = time.time() * 1000
    create_sqlite_schema(tmp_path / "a" / "mlflow.db")  # migrated: kept as the template
    assert template.is_file() and _schema(template) == _schema(tmp_path / "a" / "mlflow.db")
    time.sleep(0.01)
    create_sqlite_schema(tmp_path / "b" / "mlflow.db")  # copied
    a, b = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    assert _schema(a) == _schema(b)
    name, location, stage, created = _default_experiment(b)
    assert (name, stage) == ("Default", "active") and created > _default_experiment(a)[3]
    assert location == _default_experiment(a)[1].replace(str(tmp_path / "a"),
                                                          str(tmp_path / "b"))
    assert created >= before
    uri = f"sqlite:///{b}"
    experiment_id = prepare_store(uri, "copied")
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    template.write_bytes(b"not a database")  # a broken template: the migrations again
    (tmp_path / "c").mkdir()
    create_sqlite_schema(tmp_path / "c" / "mlflow.db")
    assert _schema(tmp_path / "c" / "mlflow.db") == _schema(a)
    monkeypatch.setenv("AL_RESEARCH_SCHEMA_CACHE", "0")
    assert schema_template() is None
    monkeypatch.delenv("AL_RESEARCH_SCHEMA_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")

    def homeless() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", homeless)
    assert schema_template() is None  # no home: every new store migrated, none refused
    (tmp_path / "d").mkdir()
    create_sqlite_schema(tmp_path / "d" / "mlflow.db")
    assert _schema(tmp_path / "d" / "mlflow.db") == _schema(a)


# -- servers ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_nothing_listening_fails_within_30_seconds_in_one_line(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli([*SHORT, f"tracking.uri={uri}"], cwd=tmp_path, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 1 and elapsed < 30, (elapsed, result.stderr[-2000:])
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("al-research: error: MLflow store") and uri in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists(), "nothing is created before the store answers"


@pytest.mark.slow
def test_a_server_that_accepts_but_never_answers_fails_within_30_seconds():
    """A real socket that takes connections and says nothing (a hung server)."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable) as failed:
            prepare_store(uri, "al-research")
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()
    assert time.monotonic() - started < 30
    assert uri in str(failed.value) and "does not answer" in str(failed.value)


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_server_dying_mid_run_fails_the_job_clearly_and_keeps_its_rounds(tmp_path,
                                                                        mlflow_server):
    uri, server = mlflow_server.uri, mlflow_server.process
    job = tmp_path / "job"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process = subprocess.Popen(
        [sys.executable, "-m", "al_research", "budget=1000", "data.pool_size=2000",
         "stages.kmeans.enabled=false", "tracking.histograms=false", f"tracking.uri={uri}",
         f"hydra.run.dir={job}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while len(_rows(job / "rounds.csv")) < 5:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    from mlflow import MlflowClient

    (run,) = MlflowClient(tracking_uri=uri).search_runs(["1"])  # the first experiment
    assert run.info.status == "RUNNING"
    os.killpg(server.pid, signal.SIGKILL)  # the server dies mid-run
    killed_at = time.monotonic()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err[-3000:]
    assert time.monotonic() - killed_at < 60
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"al-research: error: MLflow store {uri} stopped answering")
    assert f"kept in {job}" in last and "run the same command again" in last
    rounds = _rows(job / "rounds.csv")
    selected = json.loads((job / "selected_indices.json").read_text())
    assert set(selected) == {"initial", *(r["n_labelled"] for r in rounds)}
    unsent = _rows(job / "unsent_metrics.csv")
    assert {r["key"] for r in unsent} >= {"test_accuracy"}, "what the server did not take"


def test_the_printed_ui_links_open_the_model_training_view_and_paste_into_a_shell():
    import shlex

    from al_research.tracking import ui_command

    local = ui_command("sqlite:////data/my runs/mlflow.db", "3", "abc")
    command, _, link = local.partition("   then open ")
    assert shlex.split(command) == ["mlflow", "ui", "--backend-store-uri",
                                    "sqlite:////data/my runs/mlflow.db"]
    # the view is read from the query after the `#` (MLflow 3's hash router)
    assert link == "http://127.0.0.1:5000/#/experiments/3/runs/abc?workflowType=machine_learning"
    assert ui_command("http://host:5000/", "3") == (
        "open http://host:5000/#/experiments/3/runs?workflowType=machine_learning in a browser")
    assert ui_command("http://host:5000") == (
        "open http://host:5000/#/?workflowType=machine_learning in a browser")
