"""k-means on the pool (scikit-learn): centroids, purity, anchors, cluster-then-label.

Nothing here assumes an item's shape: k-means runs on the flattened features, and centroid
images are drawn at the shape the caller passes (the split's `image_shape`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits


@dataclass
class Clustering:
    centroids: np.ndarray  # (k, n_features)
    assignments: np.ndarray  # cluster of each pool item
    anchors: np.ndarray  # (k,) distinct pool items: each centroid's nearest not taken before it


@dataclass
class ClusterQuality:
    majority: np.ndarray  # majority true class of each cluster, (k,)
    purity: float  # share of items whose true class is their cluster's majority class
    distinct_digits: int  # how many distinct classes the majorities cover


def distinct_nearest(centroids: np.ndarray, items: np.ndarray) -> np.ndarray:
    """For each centroid in turn, its nearest item that no earlier centroid has taken.

    When two centroids share a nearest item, the first keeps it and the second takes its nearest
    item not yet taken, so the k anchors are k distinct items (the oracle is never asked for one
    item twice). Without such a collision, each anchor is simply the nearest item.
    """
    from sklearn.metrics import pairwise_distances_argmin
    from sklearn.metrics.pairwise import euclidean_distances

    if len(centroids) > len(items):
        raise ValueError(f"{len(centroids)} centroids need as many distinct items; "
                         f"there are {len(items)}")
    anchors = np.asarray(pairwise_distances_argmin(centroids, items), dtype=np.int64)
    taken = np.zeros(len(items), dtype=bool)
    for i, nearest in enumerate(anchors):
        if taken[nearest]:
            distances = euclidean_distances(
                np.asarray(centroids[i : i + 1], dtype=np.float64),
                np.asarray(items, dtype=np.float64), squared=True)[0]
            distances[taken] = np.inf
            anchors[i] = int(np.argmin(distances))
        taken[anchors[i]] = True
    return anchors


def cluster_pool(pool_x: np.ndarray, k: int, seed: int, n_init: int = 4) -> Clustering:
    """k-means on the pool's features; anchors are k distinct real items near the centroids."""
    from sklearn.cluster import KMeans

    with threadpool_limits(1, user_api="blas"):
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(pool_x)
        anchors = distinct_nearest(km.cluster_centers_, pool_x)
    return Clustering(km.cluster_centers_.astype(np.float32), km.labels_.astype(np.int64),
                      anchors)


def cluster_quality(assignments: np.ndarray, true_labels: np.ndarray, k: int,
                    n_classes: int | None = None) -> ClusterQuality:
    """Majority class per cluster, purity, and distinct majorities (ties: the lower class).

    `n_classes` (the split's) sizes the class table; None: the largest label + 1.
    """
    if n_classes is None:
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


def centroid_images(centroids: np.ndarray,
                    image_shape: tuple[int, ...] | None) -> list[np.ndarray]:
    """Each centroid as an 8-bit image of `image_shape` ((h, w) or (h, w, c); features in [0, 1]).

    Pass the split's `image_shape`; data that are not images (`image_shape` None) have none.
    """
    if image_shape is None:
        raise ValueError("centroid images need image data; these items are feature vectors")
    return [(np.clip(c.reshape(image_shape), 0, 1) * 255).astype(np.uint8) for c in centroids]
