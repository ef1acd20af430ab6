"""k-means on the pool (scikit-learn): centroids, purity, anchors, cluster-then-label."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits


@dataclass
class Clustering:
    centroids: np.ndarray  # (k, n_features)
    assignments: np.ndarray  # cluster of each pool item
    anchors: np.ndarray  # the pool item nearest each centroid, (k,)


@dataclass
class ClusterQuality:
    majority: np.ndarray  # majority true class of each cluster, (k,)
    purity: float  # share of items whose true class is their cluster's majority class
    distinct_digits: int  # how many distinct classes the majorities cover


def cluster_pool(pool_x: np.ndarray, k: int, seed: int, n_init: int = 4) -> Clustering:
    """k-means on the pool images; anchors are the real items nearest each centroid."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances_argmin

    with threadpool_limits(1, user_api="blas"):
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(pool_x)
        anchors = pairwise_distances_argmin(km.cluster_centers_, pool_x)
    return Clustering(km.cluster_centers_.astype(np.float32), km.labels_.astype(np.int64),
                      np.asarray(anchors, dtype=np.int64))


def cluster_quality(assignments: np.ndarray, true_labels: np.ndarray, k: int) -> ClusterQuality:
    """Majority class per cluster, purity, and distinct majorities (ties: the lower class)."""
    n_classes = int(true_labels.max()) + 1 if len(true_labels) else 0
    table = np.zeros((k, max(n_classes, 1)), dtype=np.int64)
    np.add.at(table, (assignments, true_labels), 1)
    majority = table.argmax(axis=1)
    purity = float(table.max(axis=1).sum() / max(len(assignments), 1))
    occupied = table.sum(axis=1) > 0
    return ClusterQuality(majority, purity, int(len(np.unique(majority[occupied]))))


def cluster_then_label(assignments: np.ndarray, anchor_labels: np.ndarray) -> np.ndarray:
    """Give every pool item the label of its cluster's anchor."""
    return np.asarray(anchor_labels, dtype=np.int64)[assignments]
