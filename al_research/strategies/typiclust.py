"""TypiClust: typical points of uncovered clusters (Hacohen, Dekel & Weinshall 2022)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from al_research.strategies.base import Query, QueryContext, Strategy
from al_research.strategies.features import (
    check_feature_params,
    draw_seed,
    feature_needs,
    feature_space,
    knn_mean_dist,
)

TYPICALITY_EPS = 1e-5  # the reference code's guard: 1 / (mean distance + 1e-5)


def typicality(x: np.ndarray, k: int) -> np.ndarray:
    """`Typicality(x) = (1/k sum_{x' in kNN(x)} ||x - x'||)^-1` (Hacohen et al. 2022, eq. 3),
    the inverse mean Euclidean distance to the `k` nearest other rows, plus the reference
    code's `1e-5` in the denominator. A single row has typicality 1 / 1e-5."""
    if len(x) == 1:
        return np.array([1.0 / TYPICALITY_EPS])
    return 1.0 / (knn_mean_dist(x, k) + TYPICALITY_EPS)


MINIBATCH = 5000  # the reference code's MiniBatchKMeans batch size


def cluster(x: np.ndarray, n_clusters: int, seed: int, minibatch_above: int) -> np.ndarray:
    """k-means cluster labels: scikit-learn's `KMeans` up to `minibatch_above` clusters, else
    `MiniBatchKMeans(batch_size=5000)` (the reference code's rule, with 50), except on pools
    no larger than one mini-batch, where mini-batches only add work (KMeans then)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if n_clusters <= minibatch_above or len(x) <= MINIBATCH:
        km = KMeans(n_clusters=n_clusters, random_state=seed)
    else:
        km = MiniBatchKMeans(n_clusters=n_clusters, batch_size=MINIBATCH, random_state=seed)
    return km.fit_predict(x)


def typiclust_select(x: np.ndarray, labels: np.ndarray, labelled: np.ndarray,
                     unlabelled: np.ndarray, n: int, k_neighbors: int, min_cluster_size: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """TypiClust's selection given cluster `labels` of the rows of `x` (labelled and unlabelled
    rows; `labelled`/`unlabelled` are row positions).

    Clusters larger than `min_cluster_size` are ordered by fewest labelled members, then by
    size (largest first), then by id; pick `i` goes to the `i`-th of them (cycling when the
    batch is larger than the number of clusters): the unlabelled, not yet chosen member of
    highest typicality, with `k = min(k_neighbors, members // 2)` neighbours (at least 1),
    among those members. Ties go to the lower row. If no cluster is larger than
    `min_cluster_size`, every non-empty cluster takes part.

    Returns (positions into `unlabelled`, typicality of every unlabelled row that was
    evaluated, NaN for the rest).
    """
    n = min(n, len(unlabelled))
    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    sizes = np.bincount(labels, minlength=n_clusters)
    existing = np.bincount(labels[labelled], minlength=n_clusters)
    eligible = np.flatnonzero(sizes > min_cluster_size)
    if not len(eligible):
        eligible = np.flatnonzero(sizes > 0)
    order = eligible[np.lexsort((eligible, -sizes[eligible], existing[eligible]))]
    available = np.full(len(x), -1)
    available[unlabelled] = labels[unlabelled]
    position = np.full(len(x), -1)
    position[unlabelled] = np.arange(len(unlabelled))
    scores = np.full(len(unlabelled), np.nan)
    picks: list[int] = []
    step = 0
    while len(picks) < n:
        members = np.flatnonzero(available == order[step % len(order)])
        step += 1
        if not len(members):
            if not (available >= 0).any():
                break
            continue
        typ = typicality(x[members], max(1, min(k_neighbors, len(members) // 2)))
        if np.isnan(scores[position[members]]).all():  # a cluster's first visit
            scores[position[members]] = typ
        best = int(members[np.argmax(typ)])
        picks.append(int(position[best]))
        available[best] = -1
    return np.asarray(picks, dtype=np.int64), scores


class TypiClust(Strategy):
    """TypiClust (Hacohen, Dekel & Weinshall 2022), for low budgets: cluster the labelled and
    unlabelled items into `min(|L| + B, max_clusters)` clusters with k-means, and from each of
    the B least-covered clusters (fewest labelled members, then largest) label the most
    typical item, typicality being the inverse mean distance to its k nearest neighbours in
    its cluster (`typiclust_select`). As in the reference code: clusters of at most
    `min_cluster_size` items are skipped, `k = min(k_neighbors, |cluster| // 2)`, KMeans up to
    50 clusters and MiniBatchKMeans above (on pools of more than 5,000 items). Typicality uses
    Euclidean distances (the paper's formula; the reference code's faiss index gives squared
    ones). k-means is seeded from the loop's rng. Works without a model (features raw or pca):
    usable as the initial selection.

    The per-round score is the typicality of the unlabelled items of the clusters evaluated
    (NaN for the items of the other clusters).
    """

    @dataclass
    class Params:
        """TypiClust's hyperparameters.

        features: "pca" (default: the pixels' first `pca_dim` principal components, fitted
            once per experiment; the paper uses self-supervised features, which this harness
            lacks), "raw" (pixels) or "embedding" (the model's penultimate features).
        pca_dim: components kept with features=pca.
        normalize: scale feature rows to unit norm (the reference code's features are).
        k_neighbors: neighbours for typicality (the paper: 20).
        min_cluster_size: clusters of at most this many items are skipped (the paper: 5).
        max_clusters: cap on the number of clusters (the paper: 500).
        minibatch_above: above this many clusters (and 5,000 items), MiniBatchKMeans replaces
            KMeans (the paper: 50).
        """

        features: str = "pca"
        pca_dim: int = 50
        normalize: bool = True
        k_neighbors: int = 20
        min_cluster_size: int = 5
        max_clusters: int = 500
        minibatch_above: int = 50

        def __post_init__(self) -> None:
            check_feature_params("typiclust", self.features, self.pca_dim)
            for key in ("k_neighbors", "max_clusters", "minibatch_above"):
                if getattr(self, key) < 1:
                    raise ValueError(f"typiclust: {key} must be >= 1, got {getattr(self, key)}")
            if self.min_cluster_size < 0:
                raise ValueError(
                    f"typiclust: min_cluster_size must be >= 0, got {self.min_cluster_size}")

    name: ClassVar[str] = "typiclust"

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self.needs = feature_needs(self.params.features)

    def query(self, ctx: QueryContext, n: int) -> Query:
        p = self.params
        space = feature_space(ctx, p.features, p.pca_dim, p.normalize, self.name)
        items = len(space.labelled) + len(space.unlabelled)
        n_clusters = min(len(space.labelled) + n, p.max_clusters)
        if n_clusters > items:
            raise ValueError(f"typiclust: {n_clusters} clusters (labelled + batch) for only "
                             f"{items} pool items")
        if items == len(space.x):  # the whole pool, in pool order: no copy
            x, labelled, unlabelled = space.x, space.labelled, space.unlabelled
        else:  # labelled rows first
            x = space.x[np.concatenate([space.labelled, space.unlabelled])]
            labelled = np.arange(len(space.labelled))
            unlabelled = len(space.labelled) + np.arange(len(space.unlabelled))
        labels = cluster(x, n_clusters, draw_seed(ctx.rng), p.minibatch_above)
        picks, scores = typiclust_select(x, labels, labelled, unlabelled, n, p.k_neighbors,
                                         p.min_cluster_size)
        return Query(picks, scores, "typicality")
