"""k-means on the pool: centroid images, purity, and the cluster-then-label baseline."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from al_research.experiment.stages import Stage
from al_research.process.timings import phase
from al_research.strategies.clustering import Clustering

if TYPE_CHECKING:
    from al_research.experiment.state import Experiment

log = logging.getLogger("al_research")


class KMeansStage(Stage):
    """k-means (scikit-learn) on the pool's features, seeded by the experiment's seed; the
    clustering is kept in the pool cache (initial=kmeans with the same k reuses it)."""

    @dataclass
    class Params:
        k: int = 10  # clusters
        n_init: int = 4  # k-means restarts

        def __post_init__(self) -> None:
            if self.k < 2:
                raise ValueError(f"k must be >= 2, got {self.k}")
            if self.n_init < 1:
                raise ValueError(f"n_init must be >= 1, got {self.n_init}")

    gives = Clustering

    def run(self, exp: Experiment) -> Clustering:
        from al_research.experiment.oracle import Oracle
        from al_research.experiment.parts import build_model
        from al_research.strategies.clustering import (
            centroid_images,
            cluster_pool,
            cluster_quality,
            cluster_then_label,
        )
        from al_research.tracking import plots
        from al_research.tracking.names import Metric

        split, recorder, k = exp.split, exp.recorder, self.params.k
        key = (k, exp.cache.seed, self.params.n_init)
        if key not in exp.cache.clusterings:
            with phase("kmeans"):
                exp.cache.clusterings[key] = cluster_pool(split.pool_x, *key)
        clusters = exp.cache.clusterings[key]
        # measurement only: purity, majorities and pseudo-label accuracy use the hidden labels
        truth = Oracle(split.pool_y).audit(np.arange(len(split.pool_y)))
        quality = cluster_quality(clusters.assignments, truth, k, split.n_classes)
        if split.image_shape is not None:
            titles = [f"#{i}: majority {d}" for i, d in enumerate(quality.majority)]
            recorder.log_image(plots.centroid_grid(clusters.centroids, titles,
                                                   split.image_shape), "kmeans/centroids.png")
            for i, image in enumerate(centroid_images(clusters.centroids, split.image_shape)):
                recorder.log_image(image, f"kmeans/centroid_{i}_majority_{quality.majority[i]}.png")

        # Cluster-then-label: one label per anchor from a separate oracle, spread to its cluster.
        baseline_oracle = Oracle(split.pool_y)
        labels = cluster_then_label(clusters.assignments,
                                    baseline_oracle.label_manually(clusters.anchors))
        model = build_model(exp.conf, split)
        with phase("fit"):
            model.fit(split.pool_x, labels)
        metrics = {
            Metric.KMEANS_PURITY: quality.purity,
            Metric.KMEANS_DISTINCT_DIGITS: quality.distinct_digits,
            Metric.KMEANS_CTL_LABELS: baseline_oracle.spent,
            Metric.KMEANS_CTL_TEST_ACCURACY: model.score(exp.held_out.test_x,
                                                         exp.held_out.test_y),
            Metric.KMEANS_CTL_PSEUDO_ACCURACY: float((labels == truth).mean()),
        }
        recorder.log_metrics(metrics)
        log.info("k-means: purity %.3f, %d distinct classes; cluster-then-label (%d labels) "
                 "test acc %.4f", quality.purity, quality.distinct_digits, baseline_oracle.spent,
                 metrics[Metric.KMEANS_CTL_TEST_ACCURACY])
        return clusters
