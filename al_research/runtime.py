"""TensorFlow, imported once and configured: quiet start, threads, GPU memory growth, seeds."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np

from al_research import env as _env  # noqa: F401  (environment first)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Mute C++ lines that TF prints before its logger honours TF_CPP_MIN_LOG_LEVEL."""
    if os.environ.get("AL_RESEARCH_TF_VERBOSE"):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (some embedded interpreters)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


with _quiet_stderr():
    import tensorflow as tf

    _GPUS = tf.config.list_physical_devices("GPU")

_configured = False


def configure_tensorflow(threads: int | None = None, gpu_memory_growth: bool = True) -> None:
    """Set TF's thread pools and GPU memory growth; only the first call in a process counts.

    TF fixes both when its runtime starts, so a worker process reused across jobs keeps the
    settings of its first job.
    """
    global _configured
    if _configured:
        return
    _configured = True
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        except RuntimeError:  # the runtime already started in this process
            pass
    if gpu_memory_growth:
        for gpu in _GPUS:
            with contextlib.suppress(RuntimeError):
                tf.config.experimental.set_memory_growth(gpu, True)
    tf.config.experimental.enable_op_determinism()


def gpus() -> list[str]:
    return [gpu.name for gpu in _GPUS]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow from the master seed."""
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def reset_tensorflow_state() -> None:
    """Drop graphs and Keras globals left by an earlier job in the same worker process."""
    tf.keras.backend.clear_session()


__all__ = ["tf", "configure_tensorflow", "gpus", "seed_everything", "reset_tensorflow_state"]
