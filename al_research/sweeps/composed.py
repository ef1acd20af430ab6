"""Each job's config composed once per sweep, not three times.

Hydra composes a job's config (`ConfigLoader.load_sweep_config`: the defaults list, every yaml,
the overrides) once in `Sweeper.validate_batch_is_legal`, once more in the launcher (in each
worker for joblib), and the harness's `PrepareMlflowStore` composes it a first time to check it
before anything starts: ~0.15 s each on an idle core (benchmarks/breakdown.py), three times per
job. The harness's check keeps what it composed, pickled (~20 KB a job; ~10 ms to pickle and
to load), and serves it to the other two: the config loader of the sweep's process answers a
composed job from here (`serve`), and the `parallel` launcher sends it to the worker with the
job (`pickled`). Sweeps of more than `MAX_JOBS` jobs keep nothing (memory), as before.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

MAX_JOBS = 5000
_COMPOSED: dict[tuple[str, ...], bytes] = {}


def remember(jobs: Sequence[tuple[Sequence[str], Any]]) -> None:
    """Keep each (overrides, composed config) of a sweep, replacing what an earlier sweep of
    this process kept."""
    _COMPOSED.clear()
    if len(jobs) <= MAX_JOBS:
        _COMPOSED.update({tuple(o): pickle.dumps(c) for o, c in jobs})


def pickled(overrides: Sequence[str]) -> bytes | None:
    """The job's composed config, pickled; None if it was not kept."""
    return _COMPOSED.get(tuple(overrides))


def restore(kept: bytes, master_config: Any) -> Any:
    """A kept config, with the master config's resolved values copied in as Hydra's own
    `load_sweep_config` does (the sweep folder's `${now:...}`, `${al_research.unique_dir:...}`
    resolved once: resolved again, they would name another folder)."""
    from omegaconf import OmegaConf

    config = pickle.loads(kept)
    OmegaConf.copy_cache(from_config=master_config, to_config=config)
    return config


def serve(loader: Any) -> None:
    """Make `loader.load_sweep_config` answer the kept jobs with a fresh copy of their config
    (the same master config: the sweep's); others are composed as before."""
    original = getattr(loader.load_sweep_config, "__composed_original__", None)
    original = original or loader.load_sweep_config

    def load_sweep_config(master_config: Any, sweep_overrides: Sequence[str]) -> Any:
        kept = _COMPOSED.get(tuple(sweep_overrides))
        if kept is not None:
            return restore(kept, master_config)
        return original(master_config, sweep_overrides)

    load_sweep_config.__composed_original__ = original  # type: ignore[attr-defined]
    loader.load_sweep_config = load_sweep_config
