"""MLflow: where the store is, making it exist once, and recording one run."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
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


def _existing_sqlite_experiment(uri: str, experiment_name: str) -> str | None:
    """The id of an active experiment in an existing SQLite store, read without MLflow.

    Importing MLflow's SQLAlchemy store costs ~1.7 s per process; a sweep's launching process
    (joblib, submitit) only needs to know the store and experiment exist, so a read-only query
    of MLflow's `experiments` table (its layout is unchanged since MLflow 1.0) answers that.
    None, and MLflow itself takes over, for anything else: no file, no table, a fresh schema
    without its `alembic_version`, a deleted or missing experiment, a URI with options.
    """
    import sqlite3

    if not uri.startswith("sqlite:///") or "?" in uri:
        return None
    path = Path(uri[len("sqlite:///"):])
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                                timeout=20)) as db:
            if not db.execute("SELECT version_num FROM alembic_version").fetchone():
                return None
            row = db.execute("SELECT experiment_id, lifecycle_stage FROM experiments "
                             "WHERE name = ?", (experiment_name,)).fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row and row[1] == "active" else None


def prepare_store(uri: str, experiment_name: str, retries: int = 5) -> str:
    """Create the store (a SQLite file's schema) and the experiment if absent; return its id.

    Called once before a sweep's jobs start, so parallel jobs never race to create either.
    Safe to call again: a job that finds both present does nothing.
    """
    existing = _existing_sqlite_experiment(uri, experiment_name)
    if existing is not None:
        return existing
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


THUMBNAIL_SIZE = 256  # MLflow's size for the compressed copy the UI shows beside each image


@functools.cache
def _image_name_separator() -> str:
    """The separator the installed MLflow's `log_image(key=, step=)` puts in file names.

    The UI parses `<key>SEP step SEP <step> SEP timestamp SEP <ms> SEP <uuid>[SEP compressed]`;
    MLflow replaced `%` by `+` in 2026 (a step like 20 read as "%20" broke the old names). Reading
    it from the client's own code keeps our names the ones the same MLflow version writes.
    """
    import inspect

    from mlflow import MlflowClient

    try:
        source = inspect.getsource(MlflowClient.log_image)
    except (OSError, TypeError):
        return "+"
    return "+" if "+step+" in source else "%"


class _StepImages:
    """A run's step images in MLflow's own layout, for ~1.5 ms each instead of ~8 ms.

    `MlflowClient.log_image(key=, step=)` makes two temporary folders, uploads two files and
    writes a tag per image, on the caller's thread, in Python that holds the GIL. This writes the
    same two files (`images/<name>.png` and its `<name>+compressed.webp` thumbnail, 256 pixels
    at most) with fast encoder settings on a background thread, where the encoders overlap
    training, and sets the run's `mlflow.loggedImages` tag once. When the run's artifact store
    is a local folder (the default: beside the SQLite file) the files go straight there, each
    renamed into place once complete; otherwise into a staging folder uploaded with one
    `log_artifacts` per flush. At most `max_pending` images wait: past that, `submit` blocks.
    """

    def __init__(self, client, run_id: str, max_pending: int = 16) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.client = client
        self.run_id = run_id
        self._folder: Path | None = None  # chosen at the first image
        self._direct = False  # the folder is the run's own images/ folder: nothing to upload
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-images")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._futures: list = []
        self._tagged = False

    @staticmethod
    def supports(image: np.ndarray, key: str) -> bool:
        """uint8 grey, RGB or RGBA pixels and a key without `/`; anything else goes to MLflow."""
        shape_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (1, 3, 4))
        return image.dtype == np.uint8 and shape_ok and "/" not in key

    def _open_folder(self) -> None:
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        uri = self.client.get_run(self.run_id).info.artifact_uri
        parsed = urlparse(uri)
        if parsed.scheme == "file" or (not parsed.scheme and uri.startswith("/")):
            self._folder = Path(url2pathname(parsed.path)) / "images"
            self._folder.mkdir(parents=True, exist_ok=True)
            self._direct = True
        else:
            self._folder = Path(tempfile.mkdtemp(prefix="al-research-images-"))

    def submit(self, image: np.ndarray, key: str, step: int, timestamp: int) -> None:
        if self._folder is None:
            self._open_folder()
        sep = _image_name_separator()
        name = sep.join([key, "step", str(step), "timestamp", str(timestamp), str(uuid.uuid4())])
        self._slots.acquire()
        future = self._pool.submit(self._write, np.array(image), name, sep)  # a copy: the
        future.add_done_callback(lambda _: self._slots.release())  # caller may reuse its buffer
        self._futures.append(future)

    def _save(self, pil, name: str, **options) -> None:
        """Write under a temporary name, then rename: a reader never sees half a file."""
        partial = self._folder / f".{name}.partial"
        pil.save(partial, **options)
        os.replace(partial, self._folder / name)

    def _write(self, image: np.ndarray, name: str, sep: str) -> None:
        from PIL import Image

        pil = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
        self._save(pil, f"{name}.png", format="PNG", compress_level=1)
        width, height = pil.size
        if max(width, height) > THUMBNAIL_SIZE:  # MLflow's compress_image_size
            scale = THUMBNAIL_SIZE / max(width, height)
            pil = pil.resize((THUMBNAIL_SIZE, int(height * scale)) if width > height
                             else (int(width * scale), THUMBNAIL_SIZE))
        self._save(pil, f"{name}{sep}compressed.webp", format="WEBP", lossless=True, quality=0,
                   method=0)  # lossless suits line art and is the fastest setting here

    def upload(self) -> None:
        """Wait for the pending images, upload them unless already in place; raise the first
        error."""
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()
        if not futures and self._folder is None:
            return
        if not self._direct:
            staged = list(self._folder.iterdir())
            if staged:
                self.client.log_artifacts(self.run_id, str(self._folder), "images")
                for path in staged:
                    path.unlink()
        if not self._tagged:
            from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_IMAGES

            self.client.set_tag(self.run_id, MLFLOW_LOGGED_IMAGES, True)
            self._tagged = True

    def close(self) -> None:
        try:
            self.upload()
        finally:
            self._pool.shutdown(wait=True)
            if self._folder is not None and not self._direct:
                shutil.rmtree(self._folder, ignore_errors=True)


class RunRecorder:
    """One MLflow run: buffered metrics, cheap background step images, artifacts from memory.

    Metrics wait in memory and go to the store in `log_batch` calls of up to 1000, at most every
    `flush_seconds` (and when the run ends): one call per run instead of one per round, and
    the UI still follows a long run. Step images are encoded on a background thread and uploaded
    at the same flushes (`_StepImages`). `close()`, which `mlflow_run` calls before it marks the
    run terminated, writes everything pending.
    """

    MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch

    def __init__(self, client, run_id: str, flush_seconds: float = 5.0,
                 fast_images: bool = True) -> None:
        self.client = client
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self._pending: list = []
        self._last_flush = time.monotonic()
        self._images = _StepImages(client, run_id) if fast_images else None

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending.extend(Metric(k, float(v), now, int(step)) for k, v in metrics.items()
                             if v is not None and np.isfinite(v))
        if (len(self._pending) >= self.MAX_METRICS_PER_BATCH
                or time.monotonic() - self._last_flush >= self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        """Write the buffered metrics and the staged images now."""
        pending, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        for start in range(0, len(pending), self.MAX_METRICS_PER_BATCH):
            self.client.log_batch(
                self.run_id, metrics=pending[start : start + self.MAX_METRICS_PER_BATCH])
        if self._images is not None:
            self._images.upload()

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        """An image in the run's step-indexed image series (MLflow UI: Artifacts > images)."""
        timestamp = int(time.time() * 1000)
        if self._images is not None and _StepImages.supports(np.asarray(image), key):
            self._images.submit(np.asarray(image), key, int(step), timestamp)
        else:
            self.client.log_image(self.run_id, image, key=key, step=int(step),
                                  timestamp=timestamp)

    def log_figure(self, figure, artifact_file: str) -> None:
        """A matplotlib figure as an artifact; PNGs with fast zlib settings (~10 ms less)."""
        import matplotlib.pyplot as plt

        save_kwargs = ({"pil_kwargs": {"compress_level": 1}}
                       if artifact_file.lower().endswith(".png") else None)
        self.client.log_figure(self.run_id, figure, artifact_file, save_kwargs=save_kwargs)
        plt.close(figure)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, data: Any, artifact_file: str) -> None:
        self.log_text(json.dumps(data, indent=1, default=_jsonable), artifact_file)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def close(self) -> None:
        """Write what is pending; re-raise the first error."""
        try:
            self.flush()
        finally:
            if self._images is not None:
                self._images.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


@contextlib.contextmanager
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
        try:
            recorder.close()  # what the run measured reaches the store before it ends
        except BaseException:
            if status == "FINISHED":
                status = "FAILED"
                raise
            log.exception("could not write the last metrics or images of run %s",
                          run.info.run_id)
        finally:
            client.set_terminated(run.info.run_id, status)
