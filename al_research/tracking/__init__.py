"""MLflow: the store (`store`), one run's recorder (`recorder`), dead runs (`liveness`),
shared names (`names`)."""

from al_research.tracking.recorder import RunRecorder, StoreLost, mlflow_run
from al_research.tracking.store import (
    DB_NAME,
    StoreUnavailable,
    prepare_store,
    project_root,
    resolve_tracking_uri,
    ui_command,
)

__all__ = ["DB_NAME", "RunRecorder", "StoreLost", "StoreUnavailable", "mlflow_run",
           "prepare_store", "project_root", "resolve_tracking_uri", "ui_command"]
