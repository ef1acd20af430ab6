"""One experiment, end to end: `run(cfg)` is what the Hydra entry point (and the tests) call.

Wiring only: build the parts from the config (split, model, strategy, oracle), hand them to the
loop, and let `tracking.rounds`, `baselines` and the recorder log what they measured.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from al_research.config import Config, Initial, Monitor, flatten, load_params, validate
from al_research.data import Split, make_split
from al_research.models.base import CapabilityError, Learner, TrainingSpec
from al_research.runtime import configure_tensorflow, gpus, reset_tensorflow_state, seed_everything
from al_research.strategies.base import Strategy

log = logging.getLogger("al_research")

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
    return HydraContext(
        Path(hc.runtime.output_dir),
        str(hc.sweep.dir) if multirun else None,
        int(hc.job.num) if multirun else None,
        list(hc.overrides.task),
    )


def _import(target: str) -> type:
    module_name, _, class_name = target.rpartition(".")
    import importlib

    return getattr(importlib.import_module(module_name), class_name)


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
    cls = _import(m._target_)
    params = load_params(m._target_, m.params, "model")
    return cls(split.input_shape, split.n_classes, monitor, training, params,
               conf.seed if seed is None else seed)


def build_strategy(target: str, params: dict[str, Any] | None, where: str = "strategy"
                   ) -> Strategy:
    return _import(target)(load_params(target, params, where))


def run_name(conf: Config) -> str:
    return f"{conf.strategy.name}-{conf.model.name}-s{conf.seed}"


def self_training_applies(conf: Config, strategy: Strategy) -> bool:
    st = conf.self_training
    chosen = not st.strategies or conf.strategy.name in st.strategies
    return st.enabled and chosen and not strategy.labels_whole_pool


def run(cfg: DictConfig | Config) -> float:
    """Run one configured experiment, log it to MLflow, return the final test accuracy."""
    from al_research.sweeps.resume import CONFIG_HASH_TAG, config_hash
    from al_research.tracking import mlflow_run, prepare_store, resolve_tracking_uri, ui_command
    from al_research.tracking.names import Tag, flag
    from al_research.tracking.provenance import context_tags, log_hydra_record, log_split
    from al_research.tracking.sweep_run import PARENT_TAG, parent_of

    conf = validate(cfg)  # range and cross-field errors surface before any work
    resolved = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
    split = make_split(conf.data, conf.seed)  # a bad data file fails here, before TF or MLflow
    configure_tensorflow(conf.runtime.tf_threads, conf.runtime.gpu_memory_growth)
    reset_tensorflow_state()
    seed_everything(conf.seed)
    model = build_model(conf, split)  # e.g. a CNN on non-image data fails here
    strategy = build_strategy(conf.strategy._target_, conf.strategy.params)
    try:
        strategy.check_model(model, conf.model.name)
    except CapabilityError as error:
        if not conf.skip_incompatible:
            raise
        log.warning("skipped (skip_incompatible=true): %s", error)
        return float("nan")
    if conf.model.early_stopping.enabled and conf.model.early_stopping.monitor == Monitor.test:
        log.warning(TEST_SELECTED_WARNING)

    ctx = hydra_context()
    uri = resolve_tracking_uri(conf.tracking.uri)
    experiment_id = prepare_store(uri, conf.tracking.experiment_name)
    tags = {
        **conf.tracking.tags,
        Tag.STRATEGY: conf.strategy.name,
        Tag.MODEL: conf.model.name,
        Tag.DATA: conf.data.name,
        Tag.SEED: conf.seed,
        Tag.INITIAL: "all" if strategy.labels_whole_pool else conf.initial.value,
        Tag.SELF_TRAINING: flag(self_training_applies(conf, strategy)),
        Tag.TEST_SELECTED: flag(conf.model.early_stopping.enabled
                                and conf.model.early_stopping.monitor == Monitor.test),
        Tag.GROUND_TRUTH: flag(strategy.labels_whole_pool),
        Tag.SUMMARY: flag(False),  # so `tags.summary != 'true'` selects the experiment runs
        Tag.DEVICE: "gpu" if gpus() else "cpu",
        **{f"strategy.{k}": v for k, v in flatten(dict(conf.strategy.params)).items()},
        CONFIG_HASH_TAG: config_hash(resolved),  # resume: a sweep run again skips this config
    }
    if ctx.sweep is not None:
        tags.update({Tag.SWEEP: ctx.sweep, Tag.JOB_NUM: ctx.job_num})
        parent = parent_of(ctx.sweep)
        if parent is not None and parent["uri"] == uri:
            tags[PARENT_TAG] = parent["run_id"]  # a child of the sweep's run
    tags = context_tags(tags, ctx.overrides)
    with mlflow_run(uri, experiment_id, run_name(conf), tags) as recorder:
        recorder.log_params(flatten(resolved))
        recorder.log_text(OmegaConf.to_yaml(resolved, resolve=True), "config.yaml")
        log_split(recorder.client, recorder.run_id, split, conf.data.source, conf.data.path,
                  conf.data.name)
        log_hydra_record(recorder, ctx.output_dir)
        with system_metrics(conf, recorder.run_id, uri):
            final = _run_logged(conf, split, model, strategy, recorder, ctx)
        run_id = recorder.run_id
    log.info("MLflow run %s (%s) in experiment %r at %s", run_id, run_name(conf),
             conf.tracking.experiment_name, uri)
    log.info("Browse it: %s", ui_command(uri, experiment_id))
    return final


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


def other_model(conf: Config, name: str) -> Config:
    """`conf` with its model replaced by conf/model/<name>.yaml (the same checks apply)."""
    import dataclasses

    from al_research.config import ModelConfig, model_yaml

    path = model_yaml(name, "label_fair.models")

    model = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig),
                                                OmegaConf.load(path)))
    return dataclasses.replace(conf, model=model)


def label_fair_scores(conf: Config, split: Split, pool) -> dict[str, float]:
    """Test accuracy of models trained from scratch on exactly the run's labelled set: its own
    model (`fresh_test_accuracy`) and each of `label_fair.models` (`.../<name>`)."""
    from al_research.tracking.names import Metric

    x, y = pool.training_set()
    scores = {}
    for name in [None, *conf.label_fair.models]:
        model = build_model(conf if name is None else other_model(conf, name), split)
        model.fit(x, y)
        key = Metric.FRESH_TEST_ACCURACY if name is None else (
            f"{Metric.FRESH_TEST_ACCURACY}/{name}")
        scores[key] = model.score(split.test_x, split.test_y)
    return scores


def _initial_set(conf: Config, split: Split, strategy: Strategy, anchors: np.ndarray | None,
                 static: dict) -> np.ndarray:
    from al_research.experiment.loop import initial_indices

    pool_size = len(split.pool_x)
    if strategy.labels_whole_pool:  # ground truth: the whole pool labelled at once
        return np.arange(pool_size)
    rng = np.random.default_rng([conf.seed, 1])
    selector = None
    if conf.initial in (Initial.typiclust, Initial.probcover):
        from al_research.strategies import cold_start_selector

        selector = cold_start_selector(conf.initial.value, split.pool_x,
                                       n_classes=split.n_classes, static=static)
    return initial_indices(conf.initial.value, conf.initial_size, pool_size, rng,
                           kmeans_nearest=anchors, selector=selector)


def _run_logged(conf: Config, split: Split, model: Learner, strategy: Strategy, recorder,
                ctx: HydraContext) -> float:
    from al_research.experiment.baselines import kmeans_step, self_training_step
    from al_research.experiment.loop import Evaluation, LabelledPool, run_active_learning
    from al_research.experiment.oracle import Oracle
    from al_research.tracking.names import Metric
    from al_research.tracking.rounds import RoundLog

    started = time.perf_counter()
    held_out = Evaluation(split.test_x, split.test_y, split.val_x, split.val_y)
    oracle = Oracle(split.pool_y)  # the loop never reads pool_y: labels come from the oracle

    anchors = None
    clustering = conf.clustering.enabled and (not conf.clustering.strategies
                                              or conf.strategy.name in conf.clustering.strategies)
    if clustering or conf.initial == Initial.kmeans:
        anchors = kmeans_step(split, conf.clustering.k, conf.seed, conf.clustering.n_init,
                              recorder, held_out, lambda: build_model(conf, split))
    static: dict = {}  # model-independent features (PCA, graphs), kept across the rounds
    initial = _initial_set(conf, split, strategy, anchors, static)
    budget = len(split.pool_x) if strategy.labels_whole_pool else conf.budget

    pool = LabelledPool(split.pool_x, oracle)
    scratch = None if ctx.output_dir else tempfile.TemporaryDirectory(prefix="al-research-")
    folder = ctx.output_dir or Path(scratch.name)  # Hydra's job folder keeps rounds.csv
    rounds = RoundLog(recorder, folder, initial, conf.tracking.histograms, run_name(conf))
    try:
        run_active_learning(model, pool, held_out, strategy, initial, conf.batch_size, budget,
                            np.random.default_rng([conf.seed, 2]),
                            rounds, split.n_classes, static)
    finally:  # an interrupted run keeps what it measured
        rounds.close()
        if scratch is not None:
            scratch.cleanup()
    last = rounds.log_summary()

    recorder.log_metrics({Metric.LABELS_SPENT: oracle.spent, Metric.VAL_LABELS: len(split.val_y)})
    if conf.label_fair.enabled:
        recorder.log_metrics(label_fair_scores(conf, split, pool))

    if self_training_applies(conf, strategy):
        st = conf.self_training
        self_training_step(model, pool, held_out, split.n_classes,
                           st.batch_size or conf.batch_size, st.mode, st.max_rounds,
                           st.min_confidence, recorder)
    recorder.log_metrics({Metric.WALL_SECONDS: time.perf_counter() - started})
    return last.test_accuracy
