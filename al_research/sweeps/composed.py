"""Each job's config composed once per sweep, not three times.

Hydra composes a job's config (`ConfigLoader.load_sweep_config`: the defaults list, every yaml,
the overrides) once in `Sweeper.validate_batch_is_legal`, once more in the launcher (in each
worker for joblib), and the harness's `PrepareMlflowStore` composes it a first time to check it
before anything starts: ~0.15 s each on an idle core (benchmarks/breakdown.py), three times per
job. The harness's check keeps what it composed, pickled (~20 KB a job; ~10 ms to pickle and
to load), and serves it to the other two: the config loader of the sweep's process answers a
composed job from here (`serve`), and the `parallel` launcher sends it to the worker with the
job (`pickled`). Sweeps of more than `MAX_JOBS` jobs keep nothing (memory), as before.

Composing is itself most of a sweep's start (~0.12 s a job, serial: 47 s for 390 jobs), and
most jobs differ from another only in values (`seed=3`), not in config groups (`strategy=`):
`compose_all` composes one job of each combination of group choices with Hydra and derives
the others from a copy of it, setting their values as Hydra sets command-line values
(`_apply_overrides_to_config`) and recording their overrides as Hydra does
(`hydra.overrides.task`, `hydra.job.override_dirname`). The last job of every combination is
also composed by Hydra and compared: any difference, and the whole sweep is composed by Hydra.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

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


def _recipe(repo: Any, overrides: Sequence[Any]) -> tuple[tuple[Any, ...], list[Any]] | None:
    """(the job's combination, its value overrides), or None if it must be composed whole.

    Overrides are told apart as Hydra's defaults list tells them (`Overrides`): a config group
    chosen (`strategy=random`) is part of the combination; a value is set on a copy when it is
    a plain `key=value`, `+key=value` or `++key=value` of a scalar (a dict or list merges into
    what is there, a deletion depends on it: those jobs are composed whole)."""
    from hydra.core.override_parser.types import OverrideType

    combination: list[Any] = []
    values = []
    for override in overrides:
        if override.is_sweep_override() or override.key_or_group.startswith("hydra.searchpath"):
            return None
        value = override.value()
        if repo.group_exists(override.key_or_group) and not isinstance(value, dict):
            combination.append(override.input_line)
        elif override.is_hydra_override():
            combination.append(override.input_line)  # hydra.overrides.hydra records them
        elif (override.type in (OverrideType.CHANGE, OverrideType.ADD, OverrideType.FORCE_ADD)
              and override.package is None and not isinstance(value, (dict, list))):
            combination.append((override.key_or_group, override.type))
            values.append(override)
        else:
            return None
    return tuple(combination), values


def _derive(template: bytes, values: Sequence[Any], overrides: Sequence[Any]) -> Any:
    """A job's config from its combination's composed config: its values set, its overrides
    recorded (what `ConfigLoaderImpl._load_configuration_impl` does after composing)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
    from hydra.core.override_parser.types import OverrideType

    config = pickle.loads(template)
    for value in values:  # the template has these keys already: `+key` would refuse them
        if value.type == OverrideType.ADD:
            value = _as_force_add(value)
        ConfigLoaderImpl._apply_overrides_to_config([value], config)
    task = [o for o in overrides if not o.is_hydra_override()]
    config.hydra.overrides.task = [o.input_line for o in task]
    dirname = config.hydra.job.config.override_dirname
    config.hydra.job.override_dirname = get_overrides_dirname(
        overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep,
        exclude_keys=dirname.exclude_keys)
    return config


def _as_force_add(override: Any) -> Any:
    import dataclasses

    from hydra.core.override_parser.types import OverrideType

    return dataclasses.replace(override, type=OverrideType.FORCE_ADD)


def compose_all(loader: Any, master: Any, jobs: Sequence[Sequence[str]]) -> list[Any]:
    """Each job's config, equal to `loader.load_sweep_config(master, job)` for every job (see
    the module's docstring), composing one job per combination of config-group choices. The
    copies use Hydra's internals (its override records, its values' setter): if a Hydra
    release moved them, every job is composed by Hydra, with a warning."""
    if not jobs:
        return []
    try:
        return _from_copies(loader, master, jobs)
    except (AttributeError, ImportError, TypeError) as error:
        log.warning("Composing a sweep's jobs from copies failed (%s: %s): every job is "
                    "composed by Hydra", type(error).__name__, error)
        return [loader.load_sweep_config(master, list(job)) for job in jobs]


def _from_copies(loader: Any, master: Any, jobs: Sequence[Sequence[str]]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    hydra_overrides = list(OmegaConf.to_container(master.hydra.overrides.hydra))
    parser = OverridesParser.create()
    config_name = master.hydra.job.config_name
    _, repo = loader._parse_overrides_and_create_caching_repo(
        config_name, hydra_overrides + list(jobs[0]))
    templates: dict[tuple[Any, ...], bytes] = {}
    last: dict[tuple[Any, ...], int] = {}
    configs = []
    for num, job in enumerate(jobs):
        parsed = parser.parse_overrides(hydra_overrides + list(job))
        recipe = _recipe(repo, parsed)
        if recipe is None or recipe[0] not in templates:
            configs.append(loader.load_sweep_config(master, list(job)))
            if recipe is not None:
                templates[recipe[0]] = pickle.dumps(configs[-1])
            continue
        config = _derive(templates[recipe[0]], recipe[1], parsed)
        OmegaConf.copy_cache(from_config=master, to_config=config)
        configs.append(config)
        last[recipe[0]] = num
    for num in last.values():  # one job of each combination composed by Hydra as well
        hydra = loader.load_sweep_config(master, list(jobs[num]))
        if OmegaConf.to_container(hydra) != OmegaConf.to_container(configs[num]):
            log.warning("A job's config set from a copy differs from Hydra's (%s): every "
                        "job is composed by Hydra", " ".join(jobs[num]))
            return [loader.load_sweep_config(master, list(job)) for job in jobs]
    return configs
