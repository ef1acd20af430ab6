"""How many cores a job may use and how many jobs a launcher runs at once (no TensorFlow)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def available_cpus() -> int:
    """The cores this process may run on (its CPU affinity: a SLURM or container allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def concurrent_jobs(n_jobs: int | None, cpus: int) -> int:
    """How many jobs joblib runs at once for `n_jobs` (its convention: -1 all cores, -2 all but
    one, None one)."""
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, cpus + 1 + n_jobs)
    return n_jobs


def thread_share(cpus: int, jobs: int) -> int:
    """Each of `jobs` concurrent processes' share of `cpus` cores: at least one thread."""
    return max(1, cpus // max(1, jobs))


def launcher_threads(launcher: Mapping[str, Any] | None, cpus: int | None = None) -> int | None:
    """TF threads for a job from the Hydra launcher running it (`hydra.launcher`), or None.

    A joblib worker gets its share of the cores (n_jobs workers share the machine); a submitit
    job (SLURM or local) gets the cores it asked for (`cpus_per_task`). Any other launcher runs
    one job at a time in a process of its own: None, TF's default (every core).
    """
    if not launcher:
        return None
    cpus = cpus or available_cpus()
    target = str(launcher.get("_target_", ""))
    if target.endswith("JoblibLauncher"):
        return thread_share(cpus, concurrent_jobs(launcher.get("n_jobs", -1), cpus))
    if "submitit" in target and launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    return None


def concurrent_jobs_of(launcher: Mapping[str, Any] | None) -> int:
    """How many jobs the Hydra launcher config `launcher` runs at once."""
    if not launcher:
        return 1
    target = str(launcher.get("_target_", ""))
    if target.endswith("JoblibLauncher"):
        return concurrent_jobs(launcher.get("n_jobs", -1), available_cpus())
    if "submitit" in target:
        return int(launcher.get("array_parallelism") or 1)
    return 1
