"""k-means: purity, anchors, cluster-then-label, the centroid grid image."""

import numpy as np

from al_research import plots
from al_research.clustering import cluster_pool, cluster_quality, cluster_then_label


def _pure_blobs(per_class=30, k=4, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(k, dim) * 10
    x = np.concatenate([c + rng.normal(0, 0.1, (per_class, dim)) for c in centres])
    y = np.repeat(np.arange(k), per_class)
    return x.astype(np.float32), y


def test_purity_is_one_on_pure_clusters_and_anchors_are_members():
    x, y = _pure_blobs()
    clusters = cluster_pool(x, k=4, seed=0)
    quality = cluster_quality(clusters.assignments, y, k=4)
    assert quality.purity == 1.0 and quality.distinct_digits == 4
    for c, anchor in enumerate(clusters.anchors):
        assert clusters.assignments[anchor] == c
        nearest = np.argmin(((x - clusters.centroids[c]) ** 2).sum(axis=1))
        assert anchor == nearest


def test_purity_and_majority_by_hand():
    assignments = np.array([0, 0, 0, 1, 1, 1, 1])
    labels = np.array([5, 5, 2, 3, 3, 7, 3])
    quality = cluster_quality(assignments, labels, k=2)
    assert quality.majority.tolist() == [5, 3]
    assert quality.purity == 5 / 7
    assert quality.distinct_digits == 2


def test_repeated_majorities_count_once():
    quality = cluster_quality(np.array([0, 1, 2]), np.array([9, 9, 4]), k=3)
    assert quality.distinct_digits == 2


def test_cluster_then_label_gives_each_cluster_its_anchor_label():
    assignments = np.array([2, 0, 1, 2, 0])
    labels = cluster_then_label(assignments, anchor_labels=np.array([7, 4, 1]))
    assert labels.tolist() == [1, 7, 4, 1, 7]


def test_centroid_grid_is_a_real_2x5_image():
    rng = np.random.default_rng(0)
    centroids = rng.random((10, 784)).astype(np.float32)
    fig = plots.centroid_grid(centroids, [f"c{i}" for i in range(10)])
    image = plots.figure_to_array(fig)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 10
    assert axes[0].images[0].get_array().shape == (28, 28)
    rows = sorted({round(ax.get_position().y0, 3) for ax in axes})
    cols = sorted({round(ax.get_position().x0, 3) for ax in axes})
    assert (len(rows), len(cols)) == (2, 5)
    assert image.ndim == 3 and image.shape[2] == 3 and image.std() > 0
