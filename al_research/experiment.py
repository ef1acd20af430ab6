"""One experiment, end to end: `run(cfg)` is what the Hydra entry point (and the tests) call."""

from __future__ import annotations

import csv
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from al_research import plots
from al_research.clustering import cluster_pool, cluster_quality, cluster_then_label
from al_research.config import Config, Initial, Monitor, flatten, validate
from al_research.data import IMAGE_SHAPE, N_CLASSES, Split, make_split
from al_research.loop import Evaluation, LabelledPool, Round, initial_indices, run_active_learning
from al_research.model import MODELS
from al_research.oracle import Oracle
from al_research.runtime import (
    configure_tensorflow,
    gpus,
    reset_tensorflow_state,
    seed_everything,
)
from al_research.self_training import PseudoRound, run_self_training
from al_research.strategies import STRATEGIES
from al_research.tracking import (
    RunRecorder,
    mlflow_run,
    prepare_store,
    resolve_tracking_uri,
    ui_command,
)

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


def hydra_context() -> HydraContext:
    """Where Hydra put this job, if it runs under Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return HydraContext(None, None, None)
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return HydraContext(
        Path(hc.runtime.output_dir),
        str(hc.sweep.dir) if multirun else None,
        int(hc.job.num) if multirun else None,
    )


def run_name(conf: Config) -> str:
    return f"{conf.strategy.name}-{conf.model.name}-s{conf.seed}"


def self_training_applies(conf: Config) -> bool:
    st = conf.self_training
    chosen = not st.strategies or conf.strategy.name in st.strategies
    return st.enabled and chosen and conf.strategy.name != "full"


def build_model(conf: Config, split: Split):
    """The configured model, monitoring the validation set (or, if configured, the test set)."""
    es = conf.model.early_stopping
    monitored = (split.test_x, split.test_y) if es.monitor == Monitor.test else (
        split.val_x, split.val_y)
    return MODELS[conf.model.name](
        n_features=split.pool_x.shape[1], n_classes=N_CLASSES, validation_data=monitored,
        lr=conf.model.lr, patience=es.patience, max_epochs=es.max_epochs,
        warm_start=conf.model.warm_start,
    )


def run(cfg: DictConfig | Config) -> float:
    """Run one configured experiment, log it to MLflow, return the final test accuracy."""
    conf = validate(cfg)  # range and cross-field errors surface before any work
    resolved = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
    configure_tensorflow(conf.runtime.tf_threads, conf.runtime.gpu_memory_growth)
    reset_tensorflow_state()
    seed_everything(conf.seed)
    split = make_split(conf.data, conf.seed)  # a missing data file fails here, before MLflow
    if conf.model.early_stopping.monitor == Monitor.test:
        log.warning(TEST_SELECTED_WARNING)

    ctx = hydra_context()
    uri = resolve_tracking_uri(conf.tracking.uri)
    experiment_id = prepare_store(uri, conf.tracking.experiment_name)
    tags = {
        **conf.tracking.tags,
        "strategy": conf.strategy.name,
        "model": conf.model.name,
        "data": conf.data.name,
        "seed": conf.seed,
        "initial": conf.initial.value,
        "self_training": str(self_training_applies(conf)).lower(),
        "test_selected": str(conf.model.early_stopping.monitor == Monitor.test).lower(),
        "device": "gpu" if gpus() else "cpu",
    }
    if ctx.sweep is not None:
        tags.update(sweep=ctx.sweep, job_num=ctx.job_num)
    with mlflow_run(uri, experiment_id, run_name(conf), tags) as recorder:
        recorder.log_params(flatten(resolved))
        recorder.log_text(OmegaConf.to_yaml(resolved, resolve=True), "config.yaml")
        final = _run_logged(conf, split, recorder, ctx)
        run_id = recorder.run_id
    log.info("MLflow run %s (%s) in experiment %r at %s", run_id, run_name(conf),
             conf.tracking.experiment_name, uri)
    log.info("Browse it: %s", ui_command(uri))
    return final


def _run_logged(conf: Config, split: Split, recorder: RunRecorder, ctx: HydraContext) -> float:
    started = time.perf_counter()
    rng_initial = np.random.default_rng([conf.seed, 1])
    rng_strategy = np.random.default_rng([conf.seed, 2])
    held_out = Evaluation(split.test_x, split.test_y, split.val_x, split.val_y)
    oracle = Oracle(split.pool_y)  # the loop never reads pool_y: labels come from the oracle

    anchors = None
    if conf.clustering.enabled or conf.initial == Initial.kmeans:
        anchors = _log_clustering(conf, split, recorder, held_out)

    pool_size = len(split.pool_x)
    if conf.strategy.name == "full":  # ground truth: the whole pool labelled at once
        strategy, initial, budget = STRATEGIES["random"], np.arange(pool_size), pool_size
    else:
        strategy, budget = STRATEGIES[conf.strategy.name], conf.budget
        initial = initial_indices(conf.initial.value, conf.initial_size, pool_size, rng_initial,
                                  kmeans_nearest=anchors)

    model = build_model(conf, split)
    pool = LabelledPool(split.pool_x, oracle)
    scratch = None if ctx.output_dir else tempfile.TemporaryDirectory(prefix="al-research-")
    rounds_csv = (ctx.output_dir or Path(scratch.name)) / "rounds.csv"  # Hydra's job folder
    csv_file = rounds_csv.open("w", newline="")  # a row per round, flushed: kept if killed
    csv_rows = csv.writer(csv_file)
    csv_rows.writerow(["n_labelled", *Round.METRICS, "selected"])
    histogram = plots.ConfidenceHistogram() if conf.tracking.histograms else None
    rounds: list[Round] = []

    def on_round(r: Round) -> None:
        recorder.log_metrics({**r.metrics(), "labels_spent": oracle.spent}, step=r.n_labelled)
        if histogram is not None and len(r.confidence):
            recorder.log_image(histogram.render(r.confidence, r.n_labelled),
                               key="confidence_histogram", step=r.n_labelled)
        csv_rows.writerow([r.n_labelled, *r.metrics().values(), " ".join(map(str, r.selected))])
        csv_file.flush()
        log.info("round %2d  labelled %4d  test acc %.4f  val acc %.4f  epochs %3d  (%.2fs)",
                 len(rounds) + 1, r.n_labelled, r.test_accuracy, r.val_accuracy, r.epochs,
                 r.fit_seconds)
        rounds.append(r)

    try:
        run_active_learning(model, pool, held_out, strategy, initial, conf.batch_size, budget,
                            rng_strategy, on_round)
    finally:  # an interrupted run keeps what it measured
        if histogram is not None:
            histogram.close()
        csv_file.close()
        recorder.log_file(rounds_csv)
        if scratch is not None:
            scratch.cleanup()
        recorder.log_dict(
            {"initial": initial, **{str(r.n_labelled): r.selected for r in rounds}},
            "selected_indices.json",
        )

    last = rounds[-1]
    final = {"final_test_accuracy": last.test_accuracy,
             "final_val_accuracy": last.val_accuracy, "labels_spent": oracle.spent}
    recorder.log_metrics(final, step=last.n_labelled)
    recorder.log_figure(
        plots.learning_curve(
            [r.n_labelled for r in rounds],
            {"test": [r.test_accuracy for r in rounds],
             "validation": [r.val_accuracy for r in rounds]},
            title=f"{run_name(conf)}: accuracy by labels spent",
        ),
        "plots/learning_curve.png",
    )

    if self_training_applies(conf):
        _log_self_training(conf, model, pool, held_out, recorder)
    recorder.log_metrics({"wall_seconds": time.perf_counter() - started})
    return last.test_accuracy


def _log_clustering(conf: Config, split: Split, recorder: RunRecorder,
                    held_out: Evaluation) -> np.ndarray:
    """k-means on the pool: centroid images, purity, and the cluster-then-label baseline."""
    k = conf.clustering.k
    clusters = cluster_pool(split.pool_x, k, conf.seed, conf.clustering.n_init)
    # measurement only: purity, majorities and pseudo-label accuracy use the hidden labels
    truth = Oracle(split.pool_y).audit(np.arange(len(split.pool_y)))
    quality = cluster_quality(clusters.assignments, truth, k)
    titles = [f"#{i}: majority {d}" for i, d in enumerate(quality.majority)]
    recorder.log_figure(plots.centroid_grid(clusters.centroids, titles),
                        "kmeans/centroids.png")
    for i, centroid in enumerate(clusters.centroids):
        image = (np.clip(centroid.reshape(IMAGE_SHAPE), 0, 1) * 255).astype(np.uint8)
        recorder.client.log_image(recorder.run_id, image,
                                  f"kmeans/centroid_{i}_majority_{quality.majority[i]}.png")

    # Cluster-then-label: 10 labels (one per anchor) from a separate oracle, spread to clusters.
    baseline_oracle = Oracle(split.pool_y)
    anchor_labels = baseline_oracle.label_manually(clusters.anchors)
    labels = cluster_then_label(clusters.assignments, anchor_labels)
    model = build_model(conf, split)
    model.fit(split.pool_x, labels)
    metrics = {
        "kmeans/purity": quality.purity,
        "kmeans/distinct_digits": quality.distinct_digits,
        "kmeans/cluster_then_label_labels": baseline_oracle.spent,
        "kmeans/cluster_then_label_test_accuracy": model.score(held_out.test_x, held_out.test_y),
        "kmeans/cluster_then_label_pseudo_accuracy": float((labels == truth).mean()),
    }
    recorder.log_metrics(metrics)
    log.info("k-means: purity %.3f, %d distinct digits; cluster-then-label (%d labels) test "
             "acc %.4f", quality.purity, quality.distinct_digits, baseline_oracle.spent,
             metrics["kmeans/cluster_then_label_test_accuracy"])
    return clusters.anchors


def _log_self_training(conf: Config, model, pool: LabelledPool, held_out: Evaluation,
                       recorder: RunRecorder) -> None:
    st = conf.self_training

    def on_round(p: PseudoRound) -> None:
        recorder.log_metrics(p.metrics(), step=p.n_pseudo)  # buffered: one write every few s
        if p.n_pseudo % 250 < (st.batch_size or conf.batch_size):
            log.info("self-training: %4d pseudo-labels  test acc %.4f  pseudo-label acc %.4f",
                     p.n_pseudo, p.test_accuracy, p.pseudo_accuracy)

    spent_before = pool.oracle.spent
    result = run_self_training(model, pool, held_out, st.batch_size or conf.batch_size,
                               st.mode, st.max_rounds, st.min_confidence, on_round)
    assert pool.oracle.spent == spent_before, "pseudo-labels must not spend labels"
    if not result.rounds:
        log.info("self-training: no item passed the confidence threshold")
        return
    last = result.rounds[-1]
    recorder.log_metrics({
        "self_training/final_test_accuracy": last.test_accuracy,
        "self_training/final_pseudo_label_accuracy": last.pseudo_accuracy,
        "self_training/n_pseudo": last.n_pseudo,
        "self_training/rounds": len(result.rounds),
    })
    recorder.log_figure(
        plots.confusion_matrix_figure(result.confusion(N_CLASSES),
                                      f"pseudo-labels ({last.n_pseudo}): "
                                      f"accuracy {last.pseudo_accuracy:.3f}"),
        "self_training/confusion_matrix.png")
    recorder.log_figure(
        plots.learning_curve([p.n_pseudo for p in result.rounds],
                             {"test": [p.test_accuracy for p in result.rounds],
                              "pseudo-label accuracy": [p.pseudo_accuracy for p in result.rounds]},
                             title="self-training: accuracy by pseudo-labels added"),
        "plots/self_training_curve.png")
    log.info("self-training: %d rounds, %d pseudo-labels, test acc %.4f, pseudo-label acc %.4f",
             len(result.rounds), last.n_pseudo, last.test_accuracy, last.pseudo_accuracy)
