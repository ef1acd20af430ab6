"""The parts a config names, built from their `_target_`: a class (or function) with a `Params`
dataclass, filled from the config's `params` and checked, before any heavy import. The config
schemas (`al_research.config`) and the model-capability check (`models.offers`) both use it.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from omegaconf import OmegaConf


class ConfigError(ValueError):
    """A config value that is well-typed but not usable."""


def import_target(target: str, where: str) -> Any:
    """The class (or function) a `_target_` names, or a ConfigError naming `where`."""
    import importlib

    module_name, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"{where}._target_={target!r} cannot be imported: {error}") from None


def load_params(target: str, params: dict[str, Any] | None, where: str) -> Any:
    """The `Params` dataclass of the class `target` names, filled from `params` and checked.

    Types and unknown keys are checked by OmegaConf (a typo lists the valid keys), ranges by the
    dataclass's `__post_init__`. Model and strategy modules import no TensorFlow at import time,
    so this runs before any heavy import.
    """
    cls = import_target(target, where)
    class_name = target.rpartition(".")[2]
    schema = getattr(cls, "Params", None)
    if schema is None:
        raise ConfigError(f"{where}._target_={target!r} has no Params dataclass")
    valid = sorted(f.name for f in fields(schema))
    unknown = sorted(set(params or {}) - set(valid))
    if unknown:
        raise ConfigError(f"{where}.params: unknown key(s) {unknown} for {class_name}; valid: "
                          f"{valid}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), dict(params or {}))
        return OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except Exception as error:  # OmegaConf's type errors, the dataclass's range checks
        message = str(error).splitlines()[0]
        raise ConfigError(f"{where}.params: {message}") from None


def build(target: str, params: dict[str, Any] | None, where: str) -> Any:
    """An instance of the class `target` names, from its `Params` filled and checked (the one
    way every `_target_` part but the model is built: strategies, initial selections, data
    sources, stages). Imports no TensorFlow: part modules import it when they first need it."""
    return import_target(target, where)(load_params(target, params, where))
