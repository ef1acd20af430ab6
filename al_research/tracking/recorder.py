"""Recording one MLflow run: buffered metrics, background step images, artifacts.

A run opened by `mlflow_run` ends FINISHED, FAILED on an error, KILLED on Ctrl-C or a stop
signal (`al_research.process.signals`), and is never left RUNNING by a process that lives to say so.
It carries its process's identity and a heartbeat (`liveness`), so a run whose process dies
without a word is marked FAILED later. If the store stops answering mid-run, the job fails with
`StoreLost`, whose message says what was kept in the job's folder and how to recover.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from al_research.process.signals import shielded
from al_research.tracking import liveness, outages
from al_research.tracking.images import (
    BackgroundImages,
    is_pil,
    local_artifact_dir,
    pil_image,
    write_in_place,
)
from al_research.tracking.names import Tag
from al_research.tracking.outages import is_outage
from al_research.tracking.store import StoreUnavailable, _client

log = logging.getLogger(__name__)

T = TypeVar("T")
UNSENT_METRICS = "unsent_metrics.csv"


class StoreLost(StoreUnavailable):
    """The store stopped answering (or taking writes) while a run was being recorded."""


class RunRecorder:
    """One MLflow run: buffered metrics, cheap background step images, artifacts from memory.

    Metrics wait in memory and go to the store in `log_batch` calls of up to 1000, at most every
    `flush_seconds` (and when the run ends): one call per run instead of one per round, and
    the UI still follows a long run. Step images are logged on a background thread
    (`images.BackgroundImages`). `close()`, which `mlflow_run` calls before it marks the run
    terminated, writes everything pending.

    Every store call is shielded from stop signals (a signal waits until the call returns).
    If a call finds the store down (`is_outage`), the recorder stops calling it: metrics then
    raise `StoreLost` (the job stops), while artifacts are written to `local_dir` (the job's
    folder) instead, so what the run measured is kept.

    Made by `mlflow_run` (a new run) or `Store.recorder` (an existing run); everything goes
    through its methods, its MlflowClient stays inside `al_research.tracking`.
    """

    MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch

    def __init__(self, client, run_id: str, flush_seconds: float = 5.0,
                 local_dir: Path | None = None, uri: str = "", artifact_uri: str = "",
                 images_tagged: bool = False) -> None:
        self._mlflow = client  # private to tracking: callers use the methods below
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self.local_dir = local_dir
        self.uri = uri
        self.lost: BaseException | None = None  # the store error that stopped the recording
        self.lost_at = 0.0  # when (Unix time)
        self.kept: list[Path] = []  # what was written to local_dir instead of the store
        self._pending: list = []
        self._last_flush = time.monotonic()
        # a local artifact folder (a SQLite store's): artifacts are written straight into it
        self.artifact_dir = local_artifact_dir(artifact_uri) if artifact_uri else None
        self._images = BackgroundImages(client, run_id, artifact_dir=self.artifact_dir,
                                        tagged=images_tagged)

    # -- store calls -----------------------------------------------------------------------
    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.lost is not None:
            raise StoreLost(f"MLflow store {self.uri} is not answering")
        try:
            with shielded():
                return fn(*args, **kwargs)
        except Exception as error:
            if is_outage(error):
                self.lost = error
                self.lost_at = outages.mark_down(self.uri)
                log.debug("MLflow store %s stopped answering (%s) at %s", self.uri,
                          outages.short_cause(error), outages.clock(self.lost_at))
                raise StoreLost(f"MLflow store {self.uri} stopped answering") from error
            raise

    def _keep_locally(self, artifact_file: str, write: Callable[[Path], None]) -> None:
        """Write an artifact the store could not take into the job's folder."""
        if self.local_dir is None:
            log.error("%s of run %s is lost: the store is down and the job has no folder",
                      artifact_file, self.run_id)
            return
        path = self.local_dir / artifact_file
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        self.kept.append(path)

    def _artifact(self, artifact_file: str, send: Callable[[], None],
                  write: Callable[[Path], None]) -> None:
        """`send()` the artifact through MLflow, or, when the run's artifacts are a local
        folder, `write(path)` it there as MLflow would (each MLflow artifact call reads the
        whole run first, ~5 ms, and stages a copy); kept locally if the store is down."""
        if self.artifact_dir is not None and self.lost is None:
            write_in_place(self.artifact_dir, artifact_file, write)
            return
        try:
            self._call(send)
        except StoreLost:
            self._keep_locally(artifact_file, write)

    # -- what a run logs -------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self._call(self._mlflow.log_batch, self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending.extend(Metric(k, float(v), now, int(step)) for k, v in metrics.items()
                             if v is not None and np.isfinite(v))
        if (len(self._pending) >= self.MAX_METRICS_PER_BATCH
                or time.monotonic() - self._last_flush >= self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        """Write the buffered metrics now (kept in memory if the store fails)."""
        self._last_flush = time.monotonic()
        while self._pending:
            batch = self._pending[: self.MAX_METRICS_PER_BATCH]
            self._call(self._mlflow.log_batch, self.run_id, metrics=batch)
            del self._pending[: len(batch)]

    def log_metric_batch(self, metrics: Iterable[tuple[str, float, int]]) -> None:
        """(key, value, step) triples, written now (with whatever `log_metrics` buffered)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending.extend(Metric(k, float(v), now, int(step)) for k, v, step in metrics)
        self.flush()

    def log_image(self, image, artifact_file: str | None = None, *, key: str | None = None,
                  step: int | None = None) -> None:
        """An image artifact at `artifact_file` (e.g. "kmeans/centroid_0.png"), or, given `key`
        and `step` instead, one image of the run's step-indexed series (MLflow UI: Model
        metrics), logged on a background thread."""
        if artifact_file is not None:
            if key is not None or step is not None:
                raise TypeError("log_image takes artifact_file, or key and step, not both")
            self._artifact(artifact_file,
                           lambda: self._mlflow.log_image(self.run_id, image, artifact_file),
                           lambda path: pil_image(image).save(path))
            return
        if key is None or step is None:
            raise TypeError("log_image takes artifact_file, or key and step")
        if self.lost is not None:
            return
        timestamp = int(time.time() * 1000)
        self._images.submit(image if is_pil(image) else np.asarray(image), key, int(step),
                            timestamp)

    def log_figure(self, figure, artifact_file: str) -> None:
        """A matplotlib figure as an artifact; PNGs with fast zlib settings (~10 ms less)."""
        import matplotlib.pyplot as plt

        save_kwargs = ({"pil_kwargs": {"compress_level": 1}}
                       if artifact_file.lower().endswith(".png") else None)
        try:
            self._artifact(
                artifact_file,
                lambda: self._mlflow.log_figure(self.run_id, figure, artifact_file,
                                                save_kwargs=save_kwargs),
                lambda path: figure.savefig(path, **(save_kwargs or {})))
        finally:
            plt.close(figure)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._artifact(artifact_file,
                       lambda: self._mlflow.log_text(self.run_id, text, artifact_file),
                       lambda path: path.write_text(text, encoding="utf-8"))

    def log_dict(self, data: Any, artifact_file: str) -> None:
        self.log_text(json.dumps(data, indent=1, default=_jsonable), artifact_file)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        source = Path(path)
        name = f"{artifact_path}/{source.name}" if artifact_path else source.name

        def copy(target: Path) -> None:
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)

        self._artifact(name, lambda: self._mlflow.log_artifact(self.run_id, str(source),
                                                               artifact_path), copy)

    def set_tag(self, key: str, value: Any) -> None:
        self._call(self._mlflow.set_tag, self.run_id, key, str(value))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    def params(self) -> dict[str, str]:
        """The params the run already has (a run's params cannot change once logged)."""
        return dict(self._call(self._mlflow.get_run, self.run_id).data.params)

    def log_inputs(self, datasets: list) -> None:
        """MLflow dataset inputs (`provenance.log_split`). A failure is not taken for an
        outage: the caller tries again (runs racing to insert one dataset)."""
        with shielded():
            self._mlflow.log_inputs(self.run_id, datasets=datasets)

    def close(self) -> None:
        """Write what is pending; re-raise the first error. Metrics the store did not take
        are written to `local_dir`/unsent_metrics.csv."""
        try:
            self.flush()
        except StoreLost:
            self._keep_locally(UNSENT_METRICS, self._write_unsent)
            raise
        finally:
            if self.lost is not None:
                self._images.cancel()
                with contextlib.suppress(Exception):
                    self._images.close()
            else:
                self._images.close()

    def _write_unsent(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            rows = csv.writer(f)
            rows.writerow(["key", "value", "step", "timestamp"])
            rows.writerows((m.key, m.value, m.step, m.timestamp) for m in self._pending)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def job_folder() -> Path | None:
    """The Hydra job's output folder, if Hydra runs this job."""
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:  # pragma: no cover
        return None
    if not HydraConfig.initialized():
        return None
    from omegaconf import OmegaConf

    folder = OmegaConf.select(HydraConfig.get(), "runtime.output_dir", default=None,
                              throw_on_missing=False)
    return Path(folder) if folder else None  # None in a sweep's own process (no job)


def lost_message(recorder: RunRecorder) -> str:
    """What happened, what was kept where, and how to recover."""
    kept = sorted({p.name for p in recorder.kept}
                  | ({"rounds.csv"} if recorder.local_dir
                     and (recorder.local_dir / "rounds.csv").exists() else set()))
    where = (f"kept in {recorder.local_dir}: {', '.join(kept)}" if recorder.local_dir and kept
             else "nothing could be kept locally")
    cause = outages.short_cause(recorder.lost) if recorder.lost else "unknown error"
    return (f"MLflow store {recorder.uri} stopped answering ({cause}) at "
            f"{outages.clock(recorder.lost_at)} during run {recorder.run_id}; {where}. When "
            "it answers again, run the same command again: this run is then ended FAILED with "
            "that reason and run anew (finished runs are skipped).")


def _reap(client, uri: str, experiment_id: str) -> None:
    """End FAILED the runs a lost store left open, then the runs of this experiment whose
    process died without ending them."""
    try:
        with shielded():
            outages.settle_open_runs(client, uri)
            liveness.reap_dead_runs(client, [experiment_id])
    except Exception as error:  # never a reason not to start a run
        log.warning("could not check the experiment's RUNNING runs: %s", error)


@contextlib.contextmanager
def mlflow_run(
    uri: str, experiment_id: str, run_name: str, tags: Mapping[str, Any],
    local_dir: Path | None = None, heartbeat_seconds: float = liveness.HEARTBEAT_SECONDS,
    reap: bool = True,
) -> Iterator[RunRecorder]:
    """Open a run; it ends FINISHED, FAILED on an error, KILLED on Ctrl-C or a stop signal.

    It first marks FAILED the experiment's runs whose process died without a word (`reap`;
    a sweep's jobs leave that to the sweep's start and end, ~7 ms a job). `local_dir`
    (default: the Hydra job's folder) receives what the store cannot take if it goes down.
    """
    client = _client(uri)
    local_dir = local_dir or job_folder()
    if reap:
        _reap(client, uri, experiment_id)
    all_tags = {**{k: str(v) for k, v in tags.items()}, **liveness.process_tags()}
    try:
        with shielded():
            run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    except Exception as error:
        if is_outage(error):
            raise StoreUnavailable(f"MLflow store {uri} cannot create a run: "
                                   f"{' '.join(str(error).split())[:200]}") from error
        raise
    run_id = run.info.run_id
    recorder = RunRecorder(client, run_id, local_dir=local_dir, uri=uri,
                           artifact_uri=run.info.artifact_uri,
                           images_tagged=all_tags.get(Tag.LOGGED_IMAGES) == "True")
    heartbeat = liveness.Heartbeat(client, run_id, heartbeat_seconds).start()
    status = "FAILED"
    try:
        try:
            yield recorder
            status = "FINISHED"
        except KeyboardInterrupt:  # Ctrl-C, or a stop signal (signals.Terminated)
            status = "KILLED"
            raise
        finally:
            heartbeat.stop()
            with shielded():  # the run's end is written whole even if another signal comes
                _end(client, recorder, status)
    except KeyboardInterrupt:
        if recorder.lost is not None:
            log.error("%s", lost_message(recorder))
        raise
    except BaseException:
        if recorder.lost is not None:
            raise StoreLost(lost_message(recorder)) from recorder.lost
        raise
    if recorder.lost is not None:
        raise StoreLost(lost_message(recorder)) from recorder.lost


def _end(client, recorder: RunRecorder, status: str) -> None:
    """Write what is pending, then mark the run terminated with `status` (FAILED instead of
    FINISHED if the last writes fail). Raises that failure only for a run that went well."""
    try:
        recorder.close()  # what the run measured reaches the store before it ends
    except BaseException:
        if recorder.lost is None:
            if status == "FINISHED":
                client.set_terminated(recorder.run_id, "FAILED")
                raise
            log.exception("could not write the last metrics or images of run %s",
                          recorder.run_id)
    if recorder.lost is None:
        with contextlib.suppress(StoreLost):
            recorder._call(client.set_terminated, recorder.run_id, status)
    if recorder.lost is not None:  # left open: ended with the true reason once the store is back
        outages.remember_open_run(recorder.uri, recorder.run_id, recorder.lost_at)
