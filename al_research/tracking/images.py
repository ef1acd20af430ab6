"""Images for MLflow: 16-colour step images logged on a background thread, and arrays as PIL
images the way MLflow's `log_image` converts them."""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

KEY = re.compile(r"[a-zA-Z0-9_\-./ ]+")  # what MLflow's log_image accepts as a key
PALETTE_COLORS = 16  # step images are flat-coloured plots: a third of the PNG's bytes


def palette_image(image: np.ndarray, colors: int = PALETTE_COLORS):
    """An RGB plot as a palette image (PIL; 16 colours by default): a step image's PNG is ~3 KB
    instead of ~10 KB, with no visible change, and cheaper to encode."""
    from PIL import Image

    return Image.fromarray(np.asarray(image, dtype=np.uint8)).quantize(
        colors, method=Image.Quantize.FASTOCTREE)


class BackgroundImages:
    """Step images in MLflow's own layout, encoded on one background thread, uploaded in batches.

    What `MlflowClient.log_image(key=, step=)` writes, and what the UI reads: for each image
    `images/<key>+step+<step>+timestamp+<ms>+<uuid>.png` (`%` for `+` with an MLflow before 3.x's
    issue 21085: `separator`) and a `...+compressed.webp` thumbnail
    (MLflow's own `compress_image_size`), and the run's `mlflow.loggedImages` tag. MLflow's call
    costs ~7 ms of CPU an image (its WebP thumbnail at the slowest setting, two artifact calls, the
    tag written again each time): 80 images, ~0.55 s a job, taken from the other jobs of a sweep.
    Here an image costs ~1 ms: a 16-colour PNG (zlib level 1), a lossless WebP at the fastest
    setting (smaller than MLflow's lossy one for these flat plots), both into a staging folder,
    uploaded by one `log_artifacts` call every `upload_seconds` and at `close()`; the tag is set
    once (`tagged`: the run was created with it). When the run's artifacts are a local folder
    (`local_artifact_dir`: a SQLite store's, or a server's without proxied artifacts), the files
    are written straight into its `images/` instead (`write_in_place`): no copy, no deletion,
    ~0.8 ms less an image.

    At most `max_pending` images wait to be encoded; `close()` waits for all, uploads what is
    left and re-raises the first error (after which the images still waiting are dropped).
    """

    def __init__(self, client, run_id: str, max_pending: int = 16,
                 upload_seconds: float = 5.0, artifact_dir: Path | None = None,
                 tagged: bool = False) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._mlflow = client
        self.run_id = run_id
        self.upload_seconds = upload_seconds
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-images")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._futures: list = []
        self._cancelled = False  # after a failure, the images still waiting are dropped
        self._direct = artifact_dir / "images" if artifact_dir is not None else None
        self._staging: Path | None = None  # made with the first image
        self._tagged = tagged
        self._last_upload = time.monotonic()

    def _log(self, image, key: str, step: int, timestamp: int) -> None:
        if self._cancelled:
            return
        try:
            self._write(image, key, step, timestamp)
            if time.monotonic() - self._last_upload >= self.upload_seconds:
                self._upload()
        except Exception:
            self._cancelled = True
            raise

    def _write(self, image, key: str, step: int, timestamp: int) -> None:
        """`image`: an RGB array (made a 16-colour image here) or a PIL image, as it is."""
        from mlflow.tracking.multimedia import compress_image_size

        if self._staging is None:
            self._staging = self._direct or Path(tempfile.mkdtemp(prefix="al-research-images-"))
        sep = separator()
        name = sep.join([key.replace("/", "~"), "step", str(step), "timestamp", str(timestamp),
                         str(uuid.uuid4())])
        picture = image if is_pil(image) else palette_image(image)
        thumbnail = compress_image_size(picture)
        write_in_place(self._staging, f"{name}.png",
                       lambda path: picture.save(path, compress_level=1))
        write_in_place(self._staging, f"{name}{sep}compressed.webp",
                       lambda path: thumbnail.save(path, lossless=True, method=0, quality=0))

    def _upload(self) -> None:
        """Every staged image to the run's `images/`, then out of the staging folder."""
        from al_research.tracking.names import Tag

        self._last_upload = time.monotonic()
        if self._staging is None:
            return
        if not self._tagged:
            self._mlflow.set_tag(self.run_id, Tag.LOGGED_IMAGES, True)
            self._tagged = True
        if self._direct is not None:  # written in place
            return
        files = sorted(self._staging.iterdir())
        if not files:
            return
        self._mlflow.log_artifacts(self.run_id, str(self._staging), "images")
        for path in files:
            path.unlink()

    def submit(self, image, key: str, step: int, timestamp: int) -> None:
        if not KEY.fullmatch(key):
            raise ValueError(f"image key {key!r}: letters, digits, _ - . / and spaces only")
        self._slots.acquire()
        image = image.copy() if is_pil(image) else np.array(image)  # a copy:
        future = self._pool.submit(self._log, image, key, step, timestamp)
        future.add_done_callback(lambda _: self._slots.release())  # the caller reuses its buffer
        self._futures.append(future)

    def cancel(self) -> None:
        self._cancelled = True

    def close(self) -> None:
        try:
            for future in self._futures:
                future.result()
            if not self._cancelled:
                self._pool.submit(self._upload).result()
        finally:
            self._futures = []
            self._pool.shutdown(wait=True)
            if self._staging is not None and self._direct is None:
                shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None


def write_in_place(folder: Path, name: str, write: Callable[[Path], None]) -> None:
    """`write(path)` an artifact into a run's local artifact folder as MLflow's own local
    repository does: into a hidden file beside it (its prefix: its listings skip it), then
    renamed over `name`, so the UI never reads half a file. The hidden name ends like `name`:
    PIL and matplotlib choose the format from it."""
    import mlflow.store.artifact.local_artifact_repo as local

    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = getattr(local, "_TEMP_ARTIFACT_PREFIX", ".artifact.uploading.")
    hidden = target.with_name(f"{prefix}{uuid.uuid4().hex[:12]}.{target.name}")
    try:
        write(hidden)
        os.replace(hidden, target)
    finally:
        hidden.unlink(missing_ok=True)


def local_artifact_dir(artifact_uri: str) -> Path | None:
    """The folder a run's artifacts are written to, when MLflow writes them to a local folder
    itself (its LocalArtifactRepository); None for any other store (a server's proxied
    artifacts, object stores)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    try:
        repository = get_artifact_repository(artifact_uri)
    except Exception:  # noqa: BLE001  (an unknown scheme: MLflow's own calls say why)
        return None
    if type(repository) is not LocalArtifactRepository:
        return None
    return Path(repository.artifact_dir)


@functools.lru_cache(maxsize=1)
def separator() -> str:
    """What the installed MLflow puts between a step image's name parts: "+" (MLflow 3.x since
    its issue 21085; its UI reads both) or "%" (earlier): read from its own `log_image`."""
    import inspect

    from mlflow import MlflowClient

    try:
        source = inspect.getsource(MlflowClient.log_image)
    except (OSError, TypeError):
        return "+"
    return "%" if "%step%" in source and "+step+" not in source else "+"


def is_pil(image) -> bool:
    """A PIL image (handed on as it is), not an array."""
    return hasattr(image, "getpalette")


def pil_image(image):
    """An image as PIL, converted the way MLflow's `log_image` converts arrays."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    from mlflow.tracking.multimedia import convert_to_pil_image

    return convert_to_pil_image(np.asarray(image))


