"""TensorFlow, imported once and configured: quiet start, threads, GPU memory growth, seeds."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from al_research.process import env as _env  # noqa: F401  (environment first)
from al_research.process.cores import (
    available_cpus,
    concurrent_jobs,
    launcher_threads,
    thread_share,
)


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


@functools.cache
def _gpus() -> tuple[Any, ...]:
    """TF's GPUs, listed on first use: listing initialises the devices (CUDA), which a process
    must not do before it forks (the parallel launcher's fork server imports this module)."""
    with _quiet_stderr():
        return tuple(tf.config.list_physical_devices("GPU"))

log = logging.getLogger(__name__)

_configured = False


def _hydra_launcher() -> Mapping[str, Any] | None:
    """This job's `hydra.launcher` config, if Hydra runs it."""
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:
        return None
    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().get("launcher")


def configure_tensorflow(threads: int | None = None, gpu_memory_growth: bool = True) -> None:
    """Set TF's thread pools and GPU memory growth; only the first call in a process counts.

    TF fixes both when its runtime starts, so a worker process reused across jobs keeps the
    settings of its first job. `threads=None` (`runtime.tf_threads: null`) is TF's default, all
    cores, except in a parallel launcher's worker, which takes its share (`launcher_threads`).

    It also moves the objects alive now (the imported modules: ~500k objects with TF, MLflow,
    matplotlib) out of the garbage collector's sight with `gc.freeze()`: a full collection,
    which tracing triggers several times, then takes milliseconds instead of ~0.25 s. That saves
    ~0.3 s on a process's first experiment and ~0.2 s on each `reset_tensorflow_state()`.
    """
    global _configured
    if _configured:
        return
    _configured = True
    gc.freeze()
    if threads is None:
        launcher = _hydra_launcher()
        threads = launcher_threads(launcher)
        if threads is not None:
            log.info("TensorFlow: %d thread(s) per job under %s (%d cores available)", threads,
                     str(launcher.get("_target_", "?")).rsplit(".", 1)[-1], available_cpus())
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        except RuntimeError:  # the runtime already started in this process
            pass
    if gpu_memory_growth:
        for gpu in _gpus():
            with contextlib.suppress(RuntimeError):
                tf.config.experimental.set_memory_growth(gpu, True)
    tf.config.experimental.enable_op_determinism()


def gpus() -> list[str]:
    return [gpu.name for gpu in _gpus()]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow from the master seed."""
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def reset_tensorflow_state() -> None:
    """Drop graphs, kernel caches and Keras globals left by an earlier job in the same worker.

    What survives on purpose: the thread settings (fixed per process), op determinism, and the
    model's compiled functions (model.py), which are pure (weights and optimizer state are
    arguments), so a job cannot see an earlier job's numbers; seeds are reset per job by
    `seed_everything`.
    """
    tf.keras.backend.clear_session(free_memory=False)  # its gc.collect(): ~17 ms a job


__all__ = [
    "tf", "configure_tensorflow", "gpus", "seed_everything", "reset_tensorflow_state",
    "available_cpus", "concurrent_jobs", "thread_share", "launcher_threads",
]
