"""The MLflow store: where it is, and making it (and an experiment) exist once."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

DB_NAME = "mlflow.db"


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


def ui_command(uri: str) -> str:
    """How to browse a store: `mlflow ui` for a local database, the server's address otherwise."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri}"


_frozen_after_mlflow = False


def _client(uri: str):
    """An MlflowClient. The first one in a process also freezes what is alive into the GC's
    permanent generation (`gc.freeze()`, as runtime.configure_tensorflow does after the TF
    import): MLflow's SQLAlchemy store brings ~250k long-lived objects that each later full
    collection would otherwise walk, ~0.15 s per collection, one or two per run."""
    global _frozen_after_mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    if not _frozen_after_mlflow:
        import gc

        gc.freeze()
        _frozen_after_mlflow = True
    return client


def prepare_store(uri: str, experiment_name: str, retries: int = 5) -> str:
    """Create the store (a SQLite file's schema) and the experiment if absent; return its id.

    Called once before a sweep's jobs start, so parallel jobs never race to create either.
    Safe to call again: a job that finds both present does nothing.
    """
    artifact_location = None
    if uri.startswith("sqlite:///"):  # artifacts beside the database, not in the working dir
        store_dir = Path(uri[len("sqlite:///"):]).parent
        store_dir.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment_name)
        artifact_location = (store_dir / "mlartifacts" / safe).as_uri()
    for attempt in range(retries):
        try:
            client = _client(uri)
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is not None:
                if experiment.lifecycle_stage == "deleted":
                    client.restore_experiment(experiment.experiment_id)
                return experiment.experiment_id
            return client.create_experiment(experiment_name, artifact_location=artifact_location)
        except Exception as error:  # another process created it first, or the DB was busy
            if attempt == retries - 1:
                raise
            log.debug("prepare_store retry after %s", error)
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


