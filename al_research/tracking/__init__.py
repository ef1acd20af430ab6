"""MLflow, behind one boundary: nothing outside this package touches an MlflowClient.

Where the store is and getting it ready (`store`: `prepare_store`, `resolve_tracking_uri`),
`Store` (`access`: the one way to read and write its experiments and runs from outside), one
run's recorder (`recorder`, with step images in `images`), dead runs (`liveness`), the sweep's
parent run (`sweep_run`), where a run's inputs came from (`provenance`), the figures a run logs
(`plots`) and the MLflow names every module shares (`names`).
"""

from al_research.tracking.access import Store
from al_research.tracking.recorder import RunRecorder, StoreLost, mlflow_run
from al_research.tracking.store import (
    DB_NAME,
    StoreUnavailable,
    prepare_store,
    project_root,
    resolve_tracking_uri,
    ui_command,
)

__all__ = ["DB_NAME", "RunRecorder", "Store", "StoreLost", "StoreUnavailable", "mlflow_run",
           "prepare_store", "project_root", "resolve_tracking_uri", "ui_command"]
