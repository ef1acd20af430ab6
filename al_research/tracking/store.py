"""The MLflow store: where it is, checking it answers, making it (and an experiment) exist, and
`Store`, the one way to read and write it from outside `al_research.tracking`.

`prepare_store` is the one door: before any training it checks that the store can be reached
and written, within `CHECK_SECONDS`, and fails with one line naming the URI otherwise
(`StoreUnavailable`). A SQLite store is created under a file lock beside the database, so any
number of processes may create the same fresh store at once.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from al_research.tracking.schema import create_sqlite_schema

log = logging.getLogger(__name__)

DB_NAME = "mlflow.db"
# The MLflow 3 UI opens an experiment with this tag in its "Model training" view (runs, charts,
# step images) rather than the GenAI traces view.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CHECK_SECONDS = 25.0  # the store check's deadline: a job fails within 30 s if the store is down
SCHEMA_SECONDS = 300.0  # creating a fresh SQLite schema: local work, however busy the machine
CONNECT_SECONDS = 10.0  # how long a refused connection is retried (a server still starting)

# MLflow's own HTTP limits (its defaults retry for ~4 minutes and wait 120 s per request), and
# no links printed by MLflow itself. A user's own settings win.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


class StoreUnavailable(RuntimeError):
    """The MLflow store cannot be reached or written. Its message is one line naming the URI."""


def project_root() -> Path:
    """The checkout this package lives in (where pyproject.toml is), else the working dir."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() else Path.cwd().resolve()


def resolve_tracking_uri(configured: str | None = None) -> str:
    """A configured URI wins, then $MLFLOW_TRACKING_URI, then sqlite:///<project root>/mlflow.db."""
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{project_root() / DB_NAME}"


UI_VIEW = "?workflowType=machine_learning"  # MLflow 3's "Model training" view, not GenAI's


def ui_command(uri: str, experiment_id: str | None = None, run_id: str | None = None) -> str:
    """How to browse a store: `mlflow ui` for a local database (the URI shell-quoted), the
    server's address otherwise; the page of a run, of an experiment's runs, or the home page, in
    MLflow 3's Model training view. The view is read from the query after the `#` only (MLflow's
    hash router): `/?workflowType=…` and a bare `#/experiments/<id>` open the GenAI view in a
    browser that has not chosen one (checked in headless Chromium against MLflow 3.17)."""
    import shlex

    if experiment_id and run_id:
        page = f"#/experiments/{experiment_id}/runs/{run_id}{UI_VIEW}"
    elif experiment_id:
        page = f"#/experiments/{experiment_id}/runs{UI_VIEW}"
    else:
        page = f"#/{UI_VIEW}"
    if uri.startswith(("http://", "https://")):
        return f"open {uri.rstrip('/')}/{page} in a browser"
    return (f"mlflow ui --backend-store-uri {shlex.quote(uri)}   then open "
            f"http://127.0.0.1:5000/{page}")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (None for other stores and in-memory ones)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def limit_http_retries() -> None:
    """Bound MLflow's HTTP retries and timeouts (unless the user set them); one line, not a
    stream, for urllib3's retries (`outages.quiet_retries`); and no "View run at" links of
    MLflow's own (they open the UI's GenAI view: the harness prints its own, `ui_command`)."""
    from al_research.tracking.outages import quiet_retries

    for key, value in HTTP_LIMITS.items():
        os.environ.setdefault(key, value)
    quiet_retries()


_frozen_after_mlflow = False


def _client(uri: str):
    """An MlflowClient, private to `al_research.tracking` (elsewhere: `Store`). The first one
    in a process also freezes what is alive into the GC's permanent generation (`gc.freeze()`,
    as runtime.configure_tensorflow does after the TF import): MLflow's SQLAlchemy store brings
    ~250k long-lived objects that each later full collection would otherwise walk, ~0.15 s per
    collection, one or two per run."""
    global _frozen_after_mlflow
    limit_http_retries()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    if not _frozen_after_mlflow:
        import gc

        gc.freeze()
        _frozen_after_mlflow = True
    return client


# -- checks ------------------------------------------------------------------------------------
def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def check_sqlite(uri: str, path: Path, timeout: float = 10.0) -> None:
    """The database's folder can be written and, if the file exists, it opens as SQLite and
    takes a (rolled-back) write. An absent file is not created here (`schema.py` makes it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = next((p for p in [path.parent, *path.parent.parents]
                        if p.exists() and not p.is_dir()), None)
        reason = (f"{blocker} is a file, not a folder" if blocker is not None
                  else error.strerror or str(error))
        raise StoreUnavailable(f"MLflow store {uri} cannot be used: cannot create the folder "
                               f"{path.parent} ({reason})") from error
    if path.is_dir():
        raise StoreUnavailable(f"MLflow store {uri} cannot be used: {path} is a folder, not a "
                               "SQLite database file")
    target = path if path.exists() else path.with_name(f".{path.name}.check-{os.getpid()}")
    try:
        connection = sqlite3.connect(str(target), timeout=timeout, isolation_level=None)
    except sqlite3.Error as error:
        raise StoreUnavailable(f"MLflow store {uri} cannot be used: {error}") from error
    try:
        connection.execute("PRAGMA schema_version").fetchone()  # reads the header
        connection.execute("BEGIN IMMEDIATE")  # the write lock: busy waits up to `timeout`
        connection.execute("CREATE TABLE IF NOT EXISTS al_research_write_check (x)")
        connection.execute("ROLLBACK")  # nothing stays
    except sqlite3.Error as error:
        raise StoreUnavailable(f"MLflow store {uri} cannot be written: {error}") from error
    finally:
        connection.close()
        if target != path:
            target.unlink(missing_ok=True)


def check_server(uri: str, deadline: float) -> None:
    """An HTTP(S) tracking server answers its /health endpoint before `deadline`. A refused
    connection is retried for `CONNECT_SECONDS` (a server may be starting), a slow one until
    the deadline."""
    import requests

    url = uri.rstrip("/") + "/health"
    started = time.monotonic()
    refused_until = min(deadline, started + CONNECT_SECONDS)
    pause, last = 0.5, None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            requests.get(url, timeout=(min(5.0, remaining), min(10.0, remaining)))
            return  # any HTTP answer: the server is there (a proxy may not route /health)
        except requests.RequestException as error:
            last = error
        until = refused_until if isinstance(last, requests.ConnectionError) else deadline
        if time.monotonic() + pause > until:
            break
        time.sleep(pause)
        pause = min(pause * 2, 4.0)
    if isinstance(last, requests.Timeout):
        reason = "it does not answer (timed out)"
    elif isinstance(last, requests.ConnectionError):
        reason = "nothing answers at that address"
    else:
        reason = type(last).__name__ if last is not None else "no answer"
    raise StoreUnavailable(f"MLflow store {uri} cannot be reached: {reason} (tried for "
                           f"{time.monotonic() - started:.0f} s)")


def _artifact_location(uri: str, experiment_name: str) -> str | None:
    """A SQLite store keeps artifacts beside the database, not in the working dir."""
    path = sqlite_path(uri)
    if path is None:
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment_name)
    return (path.parent.resolve() / "mlartifacts" / safe).as_uri()


def _check_local_artifacts(uri: str, location: str) -> None:
    if not location.startswith("file://"):
        return
    from urllib.parse import unquote, urlparse

    folder = Path(unquote(urlparse(location).path))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise StoreUnavailable(f"MLflow store {uri} cannot be used: its artifact folder "
                               f"{folder} is not writable ({error.strerror or error})") from error


def _get_or_create_experiment(uri: str, experiment_name: str, check: bool = True) -> str:
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    for _ in range(2):  # a second look if another process created it in between
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                client.restore_experiment(experiment.experiment_id)
            experiment_id = experiment.experiment_id
            break
        try:
            experiment_id = client.create_experiment(
                experiment_name, artifact_location=_artifact_location(uri, experiment_name),
                tags={EXPERIMENT_KIND_TAG: "custom_model_development"})
            break
        except MlflowException as error:
            if "already exists" not in str(error).lower():
                raise
    else:
        raise StoreUnavailable(f"MLflow store {uri}: experiment {experiment_name!r} could "
                               "not be created")
    if check:
        if not uri.startswith("sqlite:"):  # a server: prove it takes writes (SQLite: checked)
            client.set_experiment_tag(experiment_id, "al_research.checked",
                                      str(int(time.time())))
        _check_local_artifacts(uri, client.get_experiment(experiment_id).artifact_location)
    return experiment_id


def _with_deadline(fn, deadline: float, uri: str, limit: float = CHECK_SECONDS):
    """Run `fn()` on a daemon thread; give up with StoreUnavailable at `deadline`."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:  # noqa: B036  (handed to the caller)
            box["error"] = error

    thread = threading.Thread(target=target, name="mlflow-store-check", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        raise StoreUnavailable(f"MLflow store {uri} did not answer within {limit:.0f} s")
    if "error" in box:
        error = box["error"]
        if isinstance(error, StoreUnavailable):
            raise error
        assert isinstance(error, BaseException)
        from al_research.tracking.outages import is_outage, mark_down, short_cause

        if is_outage(error):
            mark_down(uri)
            raise StoreUnavailable(f"MLflow store {uri} is not answering "
                                   f"({short_cause(error)})") from error
        raise StoreUnavailable(f"MLflow store {uri} cannot be used: "
                               f"{_one_line(error)}") from error
    return box["value"]


_checked: set[str] = set()  # stores this process has checked (and created)


def refuse_file_store(uri: str) -> None:
    """MLflow 3 keeps file stores (`file:` URIs, plain paths: the old ./mlruns) in maintenance
    mode, unusable for new runs: one whole line naming what works instead, before any work."""
    from urllib.parse import urlparse

    scheme = urlparse(uri).scheme
    if scheme == "file" or not scheme or (len(scheme) == 1 and uri[1:3] in (":/", ":\\")):
        raise StoreUnavailable(
            f"MLflow store {uri} is a file store, which MLflow 3 no longer writes to; use a "
            f"SQLite database (tracking.uri=sqlite:////absolute/path/mlflow.db, the default "
            f"when none is set) or a tracking server (tracking.uri=http://host:5000), here or "
            f"in $MLFLOW_TRACKING_URI")


def prepare_store(uri: str, experiment_name: str, timeout: float = CHECK_SECONDS) -> str:
    """Check the store answers and takes writes, create it (a SQLite file's schema) and the
    experiment if absent; return the experiment's id. Fails within `timeout` seconds with
    `StoreUnavailable`, one line naming the URI.

    Called before a sweep's jobs start and again by each job. A fresh SQLite store is created
    under a file lock beside the database, in a file of its own moved into place when whole,
    so any number of processes may call this at once (and readers never see it half-made).
    """
    refuse_file_store(uri)
    limit_http_retries()
    deadline = time.monotonic() + timeout
    path = sqlite_path(uri)
    lock = None
    if uri not in _checked:
        if path is not None:
            check_sqlite(uri, path, timeout=min(10.0, timeout / 2))
            from filelock import FileLock, Timeout

            lock = FileLock(str(path) + ".lock")
            try:  # the holder may be creating the schema: local work, slow on a busy machine
                lock.acquire(timeout=SCHEMA_SECONDS)
            except Timeout as error:
                raise StoreUnavailable(f"MLflow store {uri} is busy: another process held its "
                                       f"lock {lock.lock_file} for {SCHEMA_SECONDS:.0f} s"
                                       ) from error
        elif uri.startswith(("http://", "https://")):
            check_server(uri, deadline)
    try:
        if lock is not None and (not path.exists() or path.stat().st_size == 0):
            # creating the schema is local work (MLflow's migrations: seconds, more on a busy
            # machine), not a sign of an unreachable store: it gets its own, longer, deadline
            _with_deadline(lambda: create_sqlite_schema(path),
                           time.monotonic() + SCHEMA_SECONDS, uri, SCHEMA_SECONDS)
        deadline = max(deadline, time.monotonic() + min(timeout, 10.0))
        experiment_id = _with_deadline(
            lambda: _get_or_create_experiment(uri, experiment_name, uri not in _checked),
            deadline, uri)
    finally:
        if lock is not None:
            lock.release()
    _checked.add(uri)
    return str(experiment_id)
