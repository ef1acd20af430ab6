"""Errors a user can fix, said in one line: config errors (exit 2), an unusable store (exit 1).

`config_error_line` turns Hydra's and OmegaConf's composition errors and our own
`ConfigError`s into one line naming the key and, where there are any, the valid choices.
`Abort` carries such a line out of Hydra callbacks (which turn ordinary exceptions into
warnings) to `cli.main`, which prints it without a traceback unless HYDRA_FULL_ERROR=1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

PREFIX = "al-research: error: "
CONFIG_EXIT = 2
STORE_EXIT = 1


class Abort(BaseException):
    """Stop the command: print `message` (one line) and exit with `code`."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _fields(object_type: Any) -> list[str]:
    if isinstance(object_type, type) and dataclasses.is_dataclass(object_type):
        return [f.name for f in dataclasses.fields(object_type)]
    return []


def is_config_error(error: BaseException) -> bool:
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import OmegaConfBaseException

    from al_research.config import ConfigError

    return isinstance(error, (ConfigCompositionException, MissingConfigException,
                              OverrideParseException, OmegaConfBaseException, ConfigError))


def config_error_line(error: BaseException) -> str:
    """One line for a config error, with the valid choices where there are some."""
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    if isinstance(error, MissingConfigException):
        missing = getattr(error, "missing_cfg_file", None) or ""
        options = getattr(error, "options", None)
        if missing and options:
            group, _, name = missing.rpartition("/")
            return (f"{group}={name}: no such {group.rsplit('/', 1)[-1]}; "
                    f"valid choices: {', '.join(options)}")
        return _first_line(error)
    if isinstance(error, OverrideParseException):
        return f"{error.override}: cannot parse: {_first_line(error.message)}"
    if isinstance(error, ConfigCompositionException):
        cause = error.__cause__
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
            key = getattr(cause, "full_key", None) or _first_line(cause)
            valid = _fields(getattr(cause, "object_type", None))
            where = key.rpartition(".")[0]
            hint = f"; valid keys{' of ' + where if where else ''}: {', '.join(valid)}" \
                if valid else ""
            return f"{key}: no such setting{hint}"
        if isinstance(cause, OmegaConfBaseException):
            key = getattr(cause, "full_key", None)
            return f"{key + ': ' if key else ''}{_first_line(cause)}"
        return _first_line(error)
    if isinstance(error, OmegaConfBaseException):
        key = getattr(error, "full_key", None)
        return f"{key + ': ' if key else ''}{_first_line(error)}"
    return _first_line(error)


def unknown_keys(cfg: Any, prefix: str = "") -> list[str]:
    """Keys added (with `+`) where the schema has no such setting, e.g. `+foo=1`."""
    from omegaconf import DictConfig, OmegaConf

    found: list[str] = []
    if not isinstance(cfg, DictConfig):
        return found
    allowed = _fields(OmegaConf.get_type(cfg))
    for key in cfg.keys():
        name = f"{prefix}{key}"
        if allowed and key not in allowed:
            found.append(name)
            continue
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_missing() and not node._is_none():
            found += unknown_keys(node, name + ".")
    return found


def check_job_config(cfg: Any) -> Any:
    """A job's config, fully checked (types, ranges, cross-field rules, no unknown keys),
    without importing TensorFlow or MLflow; returns the typed config."""
    from omegaconf import OmegaConf

    from al_research.config import ConfigError, validate

    extra = unknown_keys(cfg)
    if extra:
        where = extra[0].rpartition(".")[0]
        node = OmegaConf.select(cfg, where) if where else cfg
        valid = _fields(OmegaConf.get_type(node))
        raise ConfigError(f"{extra[0]}: no such setting (even with +); valid keys"
                          f"{' of ' + where if where else ''}: {', '.join(valid)}")
    return validate(cfg)
