"""The parts a config builds: the model, a strategy or initial selection, the run's tags.

Every part is a class named by `_target_` with a `Params` dataclass checked by the config
schema before any work (`config.load_params`); nothing here knows a part by name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from al_research.config import (
    Config,
    ModelConfig,
    Monitor,
    flatten,
    import_target,
    load_params,
    model_yaml,
)
from al_research.data import Split
from al_research.models.base import Learner, TrainingSpec
from al_research.tracking.names import Tag, flag

TEST_SELECTED_WARNING = (
    "WARNING: model.early_stopping.monitor=test: early stopping selects the model on the TEST "
    "set (as the article did), so test accuracy is optimistic. The run is tagged "
    "test_selected=true. Use monitor=val for an honest estimate."
)


@dataclass
class HydraContext:
    output_dir: Path | None
    sweep: str | None  # the sweep's directory, for multirun jobs
    job_num: int | None
    overrides: list[str] | None = None  # the job's command-line overrides


def hydra_context() -> HydraContext:
    """Where Hydra put this job, if it runs under Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return HydraContext(None, None, None, None)
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return HydraContext(Path(hc.runtime.output_dir), str(hc.sweep.dir) if multirun else None,
                        int(hc.job.num) if multirun else None, list(hc.overrides.task))


def step_images(conf: Config) -> bool:
    """Whether the rounds' histograms are also logged as step images (~2 ms a round): as
    `tracking.step_images` says; by default (null) for a single run, not for a sweep's jobs."""
    tracking = conf.tracking
    if not tracking.histograms:
        return False
    if tracking.step_images is not None:
        return tracking.step_images
    return hydra_context().sweep is None


def build_model(conf: Config, split: Split, seed: int | None = None) -> Learner:
    """The configured model, monitoring the validation set (or, if configured, the test set)."""
    m = conf.model
    es = m.early_stopping
    if not es.enabled:
        monitor = None
    elif es.monitor == Monitor.test:
        monitor = (split.test_x, split.test_y)
    else:
        monitor = (split.val_x, split.val_y)
    training = TrainingSpec(lr=m.lr, warm_start=m.warm_start, patience=es.patience,
                            max_epochs=es.max_epochs, batch_size=m.batch_size,
                            stopping="early" if es.enabled else "fixed")
    cls = import_target(m._target_, "model")
    return cls(split.input_shape, split.n_classes, monitor, training,
               load_params(m._target_, m.params, "model"), conf.seed if seed is None else seed)


def other_model(conf: Config, name: str) -> Config:
    """`conf` with its model replaced by conf/model/<name>.yaml (the same checks apply)."""
    path = model_yaml(name, "stages.label_fair.params.models")
    model = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig),
                                                OmegaConf.load(path)))
    return dataclasses.replace(conf, model=model)


def test_selected(conf: Config) -> bool:
    """Whether early stopping watches the test set (the article's choice)."""
    es = conf.model.early_stopping
    return es.enabled and es.monitor == Monitor.test


def run_name(conf: Config) -> str:
    return f"{conf.strategy.name}-{conf.model.name}-s{conf.seed}"


def run_tags(conf: Config, ground_truth: bool, stage_tags: dict[str, str], device: str
             ) -> dict[str, Any]:
    """The tags every job run carries (MLflow's run context and the sweep's are added later)."""
    return {
        **conf.tracking.tags,
        Tag.STRATEGY: conf.strategy.name,
        Tag.MODEL: conf.model.name,
        Tag.DATA: conf.data.name,
        Tag.SEED: conf.seed,
        Tag.INITIAL: conf.initial.name,
        Tag.SELF_TRAINING: flag(False),
        Tag.TEST_SELECTED: flag(test_selected(conf)),
        Tag.GROUND_TRUTH: flag(ground_truth),
        Tag.SUMMARY: flag(False),  # so `tags.summary != 'true'` selects the experiment runs
        Tag.DEVICE: device,
        # the rounds' histograms as step images: the tag set with the run, not by a call
        **({Tag.LOGGED_IMAGES: "True"} if step_images(conf) else {}),
        **{f"strategy.{k}": v for k, v in flatten(dict(conf.strategy.params)).items()},
        **stage_tags,
    }


@contextlib.contextmanager
def job_folder(output_dir: Path | None) -> Iterator[Path]:
    """Hydra's job folder (which keeps rounds.csv), or a scratch folder removed afterwards."""
    if output_dir is not None:
        yield output_dir
        return
    with tempfile.TemporaryDirectory(prefix="al-research-") as scratch:
        yield Path(scratch)


@contextlib.contextmanager
def system_metrics(conf: Config, run_id: str, uri: str) -> Iterator[None]:
    """MLflow's system metrics (CPU, memory, disk, network) sampled during the run, if asked."""
    if not conf.tracking.system_metrics:
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, sampling_interval=conf.tracking.system_metrics_seconds,
                                   tracking_uri=uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()
