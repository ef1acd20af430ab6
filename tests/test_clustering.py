"""k-means: purity, anchors, cluster-then-label, the centroid grid image."""

import numpy as np
import pytest

from al_research.experiment.oracle import Oracle
from al_research.strategies.clustering import (
    centroid_images,
    cluster_pool,
    cluster_quality,
    cluster_then_label,
    distinct_nearest,
)
from al_research.tracking import plots


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
    centroids = np.zeros((10, 28, 28), np.float32)
    for i in range(10):
        centroids[i, i + 5, 3:9] = 1.0  # a black stroke on row i + 5 of centroid i only
    image = plots.centroid_grid(centroids.reshape(10, 784), [f"c{i}" for i in range(10)])
    scale, title, pad = plots.GRID_SCALE, plots.TITLE_HEIGHT, 6
    tile_w, tile_h = 28 * scale, 28 * scale + title
    assert image.dtype == np.uint8 and image.shape == (2 * (tile_h + pad) + pad,
                                                       5 * (tile_w + pad) + pad)
    for i in range(10):  # dark strokes on white, each in its own tile, 2 rows of 5
        left = pad + (i % 5) * (tile_w + pad)
        top = pad + (i // 5) * (tile_h + pad)
        tile = image[top + title: top + tile_h, left: left + tile_w]
        dark_rows = sorted({r // scale for r in np.flatnonzero((tile < 128).any(axis=1))})
        assert dark_rows == [i + 5]
        assert (tile < 128).sum() == 6 * scale * scale
        assert image[top: top + title, left: left + tile_w].min() < 128  # its title


def test_centroids_sharing_a_nearest_item_get_distinct_anchors():
    items = np.array([[0, 0], [1.5, 0], [5, 5], [10, 0]], dtype=np.float32)
    # centroids 0 and 1 are both nearest item 0; the second takes its next nearest, item 1
    centroids = np.array([[0.1, 0], [-0.1, 0], [9, 0]], dtype=np.float32)
    assert distinct_nearest(centroids, items).tolist() == [0, 1, 3]
    # a chain: centroid 1's fallback (item 1) is centroid 2's nearest, which then moves on
    centroids = np.array([[0.1, 0], [-0.1, 0], [1.6, 0]], dtype=np.float32)
    assert distinct_nearest(centroids, items).tolist() == [0, 1, 2]


def test_without_collisions_anchors_are_the_nearest_items():
    x, _ = _pure_blobs()
    centroids = x[[5, 40, 70, 100]] + 0.01
    assert distinct_nearest(centroids, x).tolist() == [5, 40, 70, 100]


def test_more_centroids_than_items_is_refused():
    with pytest.raises(ValueError, match="3 centroids"):
        distinct_nearest(np.zeros((3, 2)), np.zeros((2, 2)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_duplicate_items_give_duplicate_centroids_but_distinct_anchors_the_oracle_accepts():
    """Three distinct points, five copies each, four clusters: two centroids coincide."""
    x = np.repeat(np.array([[0, 0], [5, 0], [0, 5]], dtype=np.float32), 5, axis=0)
    y = np.repeat(np.arange(3), 5)
    clusters = cluster_pool(x, k=4, seed=0)
    shared = {tuple(c) for c in clusters.centroids}
    assert len(shared) == 3  # the case: two centroids share their nearest item
    assert len(set(clusters.anchors.tolist())) == 4
    for c, anchor in zip(clusters.centroids, clusters.anchors, strict=True):
        np.testing.assert_allclose(x[anchor], c, atol=1e-5)  # a copy at the centroid itself
    labels = Oracle(y).label_manually(clusters.anchors)  # refuses an item asked twice
    assert cluster_then_label(clusters.assignments, labels).tolist() == y.tolist()


def test_quality_uses_the_given_class_count():
    quality = cluster_quality(np.array([0, 0, 1]), np.array([1, 1, 2]), k=2, n_classes=5)
    assert quality.majority.tolist() == [1, 2] and quality.purity == 1.0


def test_centroid_images_take_the_shape_they_are_given():
    rng = np.random.default_rng(0)
    centroids = rng.uniform(-0.5, 1.5, (3, 64)).astype(np.float32)
    images = centroid_images(centroids, (8, 8))
    assert [im.shape for im in images] == [(8, 8)] * 3 and images[0].dtype == np.uint8
    expected = (np.clip(centroids[1], 0, 1) * 255).astype(np.uint8).reshape(8, 8)
    np.testing.assert_array_equal(images[1], expected)
    assert centroid_images(rng.random((2, 48)), (4, 4, 3))[0].shape == (4, 4, 3)
    with pytest.raises(ValueError, match="feature vectors"):
        centroid_images(centroids, None)
