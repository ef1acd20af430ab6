"""One experiment, end to end: `run(cfg)` is what the Hydra entry point (and the tests) call.

Wiring only: check the config, build the parts (`parts`), open the MLflow run, and run the
configured stages in order (`stages`) on the shared `Experiment`.
"""

from __future__ import annotations

import logging
import time

from omegaconf import DictConfig, OmegaConf

from al_research.config import Config, build, flatten, validate
from al_research.data import make_split
from al_research.data.sources import build_source
from al_research.experiment.loop import Evaluation, LabelledPool
from al_research.experiment.oracle import Oracle
from al_research.experiment.parts import (
    TEST_SELECTED_WARNING,
    build_model,
    hydra_context,
    job_folder,
    run_name,
    run_tags,
    system_metrics,
    test_selected,
)
from al_research.experiment.stages import build_stages
from al_research.experiment.stages.active_learning import LoopResult
from al_research.experiment.state import Experiment
from al_research.models.base import CapabilityError
from al_research.process.timings import label, mark, phase, since
from al_research.runtime import configure_tensorflow, gpus, reset_tensorflow_state, seed_everything
from al_research.strategies.base import check_capabilities
from al_research.strategies.initial import WholePool
from al_research.strategies.pool_cache import PoolCache
from al_research.sweeps.resume import CONFIG_HASH_TAG, config_hash
from al_research.tracking import mlflow_run, prepare_store, resolve_tracking_uri, ui_command
from al_research.tracking.names import Metric, Tag
from al_research.tracking.provenance import context_tags, log_hydra_record, log_split
from al_research.tracking.sweep_run import PARENT_TAG, parent_of

log = logging.getLogger("al_research")

def run(cfg: DictConfig | Config) -> float:
    """Run one configured experiment, log it to MLflow, return the final test accuracy."""
    with phase("job"):
        return _run(cfg)


def _run(cfg: DictConfig | Config) -> float:
    conf = validate(cfg)  # range and cross-field errors surface before any work
    label(run_name(conf))  # for benchmarks/breakdown.py (AL_RESEARCH_TIMINGS)
    resolved = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
    stages = build_stages(conf.stages, conf.strategy.name)
    with phase("split"):
        split = make_split(conf.data, conf.seed)  # a bad data file fails here, before TF
    with phase("model_build"):
        configure_tensorflow(conf.runtime.tf_threads, conf.runtime.gpu_memory_growth)
        reset_tensorflow_state()
        seed_everything(conf.seed)
        model = build_model(conf, split)  # e.g. a CNN on non-image data fails here
        strategy = build(conf.strategy._target_, conf.strategy.params, "strategy")
        initial = build(conf.initial._target_, conf.initial.params, "initial")
    try:  # before any training: what the strategy needs against what the model offers
        check_capabilities(strategy.needs, model.capabilities, f"strategy {conf.strategy.name!r}",
                           f"model {conf.model.name!r}")
    except CapabilityError as error:
        if not conf.skip_incompatible:
            raise
        log.warning("skipped (skip_incompatible=true): %s", error)
        return float("nan")
    if test_selected(conf):
        log.warning(TEST_SELECTED_WARNING)

    ctx = hydra_context()
    with phase("store"):
        uri = resolve_tracking_uri(conf.tracking.uri)
        experiment_id = prepare_store(uri, conf.tracking.experiment_name)
    stage_tags = {k: v for _, stage in stages for k, v in stage.tags().items()}
    tags = {**run_tags(conf, isinstance(initial, WholePool), stage_tags,
                       "gpu" if gpus() else "cpu"),
            CONFIG_HASH_TAG: config_hash(resolved)}  # resume: a sweep run again skips this
    if ctx.sweep is not None:
        tags.update({Tag.SWEEP: ctx.sweep, Tag.JOB_NUM: ctx.job_num})
        parent = parent_of(ctx.sweep)
        if parent is not None and parent["uri"] == uri:
            tags[PARENT_TAG] = parent["run_id"]  # a child of the sweep's run
    opening = mark()
    # a sweep's start and end mark its experiment's dead runs FAILED, not each of its jobs
    with mlflow_run(uri, experiment_id, run_name(conf), context_tags(tags, ctx.overrides),
                    reap=ctx.sweep is None) as recorder, job_folder(ctx.output_dir) as folder:
        started = time.perf_counter()
        recorder.log_params(flatten(resolved))
        recorder.log_text(OmegaConf.to_yaml(resolved, resolve=True), "config.yaml")
        log_split(recorder, split, build_source(conf.data).origin, conf.data.name,
                  made_by=(repr(conf.data), conf.seed))
        log_hydra_record(recorder, ctx.output_dir)
        since("run_open", opening)
        oracle = Oracle(split.pool_y)  # the loop never reads pool_y: labels come from the oracle
        pool = LabelledPool(split.pool_x, oracle)
        exp = Experiment(conf, split, model, strategy, initial, oracle, pool,
                         Evaluation(split.test_x, split.test_y, split.val_x, split.val_y),
                         PoolCache(pool.x, conf.seed), recorder, folder, run_name(conf))
        with system_metrics(conf, recorder.run_id, uri):
            for name, stage in stages:
                with phase(f"stage:{name}"):
                    exp.outputs[stage.gives or type(stage)] = stage.run(exp)
        recorder.log_metrics({Metric.WALL_SECONDS: time.perf_counter() - started})
        run_id = recorder.run_id
        closing = mark()
    since("run_close", closing)
    log.info("MLflow run %s (%s) in experiment %r at %s", run_id, run_name(conf),
             conf.tracking.experiment_name, uri)
    log.info("Browse it: %s", ui_command(uri, experiment_id, run_id))
    result = exp.outputs.get(LoopResult)
    return result.final_test_accuracy if result is not None else float("nan")
