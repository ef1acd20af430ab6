"""The article's side experiments around the loop: k-means on the pool and self-training.

Each step takes the parts `experiment` built and logs its own metrics and figures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from al_research.data import Split
from al_research.experiment.clustering import (
    centroid_images,
    cluster_pool,
    cluster_quality,
    cluster_then_label,
)
from al_research.experiment.loop import Evaluation, LabelledPool
from al_research.experiment.oracle import Oracle
from al_research.experiment.self_training import PseudoRound, run_self_training
from al_research.models.base import Learner
from al_research.tracking import plots
from al_research.tracking.names import Metric
from al_research.tracking.recorder import RunRecorder

log = logging.getLogger("al_research")


def kmeans_step(split: Split, k: int, seed: int, n_init: int, recorder: RunRecorder,
                held_out: Evaluation, new_model: Callable[[], Learner]) -> np.ndarray:
    """k-means on the pool: centroid images, purity, and the cluster-then-label baseline.

    Returns the anchors (the distinct pool items nearest the centroids) for `initial=kmeans`.
    """
    clusters = cluster_pool(split.pool_x, k, seed, n_init)
    # measurement only: purity, majorities and pseudo-label accuracy use the hidden labels
    truth = Oracle(split.pool_y).audit(np.arange(len(split.pool_y)))
    quality = cluster_quality(clusters.assignments, truth, k, split.n_classes)
    if split.image_shape is not None:
        titles = [f"#{i}: majority {d}" for i, d in enumerate(quality.majority)]
        recorder.log_figure(plots.centroid_grid(clusters.centroids, titles, split.image_shape),
                            "kmeans/centroids.png")
        for i, image in enumerate(centroid_images(clusters.centroids, split.image_shape)):
            recorder.client.log_image(recorder.run_id, image,
                                      f"kmeans/centroid_{i}_majority_{quality.majority[i]}.png")

    # Cluster-then-label: one label per anchor from a separate oracle, spread to its cluster.
    baseline_oracle = Oracle(split.pool_y)
    anchor_labels = baseline_oracle.label_manually(clusters.anchors)
    labels = cluster_then_label(clusters.assignments, anchor_labels)
    model = new_model()
    model.fit(split.pool_x, labels)
    metrics = {
        Metric.KMEANS_PURITY: quality.purity,
        Metric.KMEANS_DISTINCT_DIGITS: quality.distinct_digits,
        Metric.KMEANS_CTL_LABELS: baseline_oracle.spent,
        Metric.KMEANS_CTL_TEST_ACCURACY: model.score(held_out.test_x, held_out.test_y),
        Metric.KMEANS_CTL_PSEUDO_ACCURACY: float((labels == truth).mean()),
    }
    recorder.log_metrics(metrics)
    log.info("k-means: purity %.3f, %d distinct classes; cluster-then-label (%d labels) test "
             "acc %.4f", quality.purity, quality.distinct_digits, baseline_oracle.spent,
             metrics[Metric.KMEANS_CTL_TEST_ACCURACY])
    return clusters.anchors


def self_training_step(model: Learner, pool: LabelledPool, held_out: Evaluation,
                       n_classes: int, batch_size: int, mode: str, max_rounds: int | None,
                       min_confidence: float | None, recorder: RunRecorder) -> None:
    """Pseudo-label the most confident unlabelled items after the budget; log every round."""

    def on_round(p: PseudoRound) -> None:
        recorder.log_metrics(p.metrics(), step=p.n_pseudo)  # buffered: one write every few s
        if p.n_pseudo % 250 < batch_size:
            log.info("self-training: %4d pseudo-labels  test acc %.4f  pseudo-label acc %.4f",
                     p.n_pseudo, p.test_accuracy, p.pseudo_accuracy)

    spent_before = pool.oracle.spent
    result = run_self_training(model, pool, held_out, batch_size, mode, max_rounds,
                               min_confidence, on_round)
    if pool.oracle.spent != spent_before:
        raise RuntimeError("self-training spent labels: pseudo-labels must cost none")
    if not result.rounds:
        log.info("self-training: no item passed the confidence threshold")
        return
    last = result.rounds[-1]
    recorder.log_metrics({
        Metric.ST_FINAL_TEST_ACCURACY: last.test_accuracy,
        Metric.ST_FINAL_PSEUDO_LABEL_ACCURACY: last.pseudo_accuracy,
        Metric.ST_N_PSEUDO: last.n_pseudo,
        Metric.ST_ROUNDS: len(result.rounds),
    })
    recorder.log_figure(
        plots.confusion_matrix_figure(result.confusion(n_classes),
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
