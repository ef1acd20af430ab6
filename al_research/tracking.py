"""MLflow: where the store is, making it exist once, and recording one run."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DB_NAME = "mlflow.db"


def project_root() -> Path:
    """The checkout this package lives in (where pyproject.toml is), else the working dir."""
    here = Path(__file__).resolve().parent.parent
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


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


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


class RunRecorder:
    """One MLflow run: batched metrics, images with steps, artifacts from memory."""

    def __init__(self, client, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, int(step)) for k, v in metrics.items()
                 if v is not None and np.isfinite(v)]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        """An image in the run's step-indexed image series (MLflow UI: Artifacts > images)."""
        self.client.log_image(self.run_id, image, key=key, step=int(step))

    def log_figure(self, figure, artifact_file: str) -> None:
        import matplotlib.pyplot as plt

        self.client.log_figure(self.run_id, figure, artifact_file)
        plt.close(figure)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, data: Any, artifact_file: str) -> None:
        self.log_text(json.dumps(data, indent=1, default=_jsonable), artifact_file)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


@contextmanager
def mlflow_run(
    uri: str, experiment_id: str, run_name: str, tags: Mapping[str, Any]
) -> Iterator[RunRecorder]:
    """Open a run; it ends FINISHED, FAILED on an error, KILLED on Ctrl-C, never left RUNNING."""
    client = _client(uri)
    run = client.create_run(experiment_id, run_name=run_name,
                            tags={k: str(v) for k, v in tags.items()})
    recorder = RunRecorder(client, run.info.run_id)
    status = "FAILED"
    try:
        yield recorder
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        client.set_terminated(run.info.run_id, status)
