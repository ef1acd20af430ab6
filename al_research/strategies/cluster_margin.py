"""Cluster-Margin (Citovsky, DeSalvo, Gentile, Karydas, Rajagopalan, Rostamizadeh & Kumar 2021,
NeurIPS, "Batch Active Learning at Scale").

The paper's Algorithm 1: once, before the first query, cluster the pool with hierarchical
agglomerative clustering (HAC), average linkage, stopped at a distance threshold ε; then every
round take the k_m unlabelled items of smallest margin, group them by cluster, sort the groups by
size (smallest first) and go round-robin over them, one item drawn at random from each group in
turn, until the batch of k_t is full.

Here:

- the clustering is made once per experiment and kept in `ctx.cache` (keyed by the feature space,
  the clustering parameters and the experiment's seed; with `features=embedding`, also by the
  model whose first-round embeddings were clustered), so every round after the first only ranks
  margins and draws;
- ε is chosen as the paper chooses it, by the number of clusters it gives: the dendrogram is cut
  where it has ⌈N / mean_cluster_size⌉ clusters (N pool items), which is scale-free, so one value
  serves raw pixels, PCA features and any model's embeddings (`ClusterMargin.Params`);
- HAC is exact (scipy's average linkage, the same partition as scikit-learn's
  `AgglomerativeClustering(linkage="average")`) on pools of up to `hac_max_items` items. Its
  O(N^2) distances do not fit for larger pools (60,000 items: 14 GB), so those are first cut into
  k-means cells of at most `hac_max_items` items, exact HAC runs in each cell, and one global ε
  (from all cells' merge heights) cuts every cell's dendrogram. The approximation: no cluster
  spans two cells; within a cell the clusters are exactly HAC's at that ε (`hac_clusters`).
  On 8,000 real digits, cells of at most 4,000 give a partition at adjusted Rand index 0.95
  (PCA features) and 0.83 (raw pixels) from the exact one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from al_research.models.base import Capability
from al_research.strategies.base import Query, QueryContext, Strategy, top_k
from al_research.strategies.features import (
    BLOCK_ELEMENTS,
    check_feature_params,
    embeds_input,
    feature_needs,
    feature_space,
    static_features,
)
from al_research.strategies.pool_cache import PoolCache
from al_research.strategies.uncertainty import margin_uncertainty

log = logging.getLogger(__name__)


# --- the round-robin over the candidates' clusters ---------------------------------------------

def round_robin(clusters: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Cluster-Margin's selection among candidates: positions into `clusters`, in pick order.

    `clusters[i]` is the cluster of candidate i, candidates best first (smallest margin first).
    The candidates are grouped by cluster and the groups sorted by size, smallest first (the
    paper; equal sizes: the group holding the better-ranked candidate first, so with one cluster
    per candidate this is the candidates' own order); then turn after turn every group that has
    candidates left gives one, drawn uniformly at random (`rng`) among its remaining ones, until
    `n` are picked (all of them if `n` >= the number of candidates).

    One uniform key per candidate orders each group at random: the candidate a group gives at its
    t-th turn is its t-th by key, so the picks are the candidates sorted by (turn, group order).
    """
    clusters = np.asarray(clusters)
    m = len(clusters)
    n = max(0, min(n, m))
    if not m:
        return np.empty(0, dtype=np.int64)
    _, best, group, sizes = np.unique(clusters, return_index=True, return_inverse=True,
                                      return_counts=True)
    group = group.ravel()
    rank = np.empty(len(sizes), dtype=np.int64)
    rank[np.lexsort((best, sizes))] = np.arange(len(sizes))  # smallest first; ties: best member
    keys = rng.random(m)
    by_group = np.lexsort((keys, group))  # grouped (in group-id order), random within a group
    starts = np.cumsum(sizes) - sizes
    turn = np.empty(m, dtype=np.int64)
    turn[by_group] = np.arange(m) - starts[group[by_group]]
    return np.lexsort((rank[group], turn))[:n].astype(np.int64)


# --- HAC, exact per cell, one ε for all cells ----------------------------------------------------

def condensed_distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances of every pair i < j of rows, in scipy's condensed order (float64),
    from blocked matrix products (BLAS), never holding the n x n matrix."""
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1)
    s = len(x)
    out = np.empty(s * (s - 1) // 2)
    sq = np.einsum("ij,ij->i", x, x)
    step = max(1, BLOCK_ELEMENTS // max(1, s))
    pos = 0
    for a in range(0, s - 1, step):
        b = min(s - 1, a + step)
        d2 = x[a:b] @ x[a:].T
        d2 *= -2.0
        d2 += sq[a:b, None]
        d2 += sq[None, a:]
        np.maximum(d2, 0.0, out=d2)
        np.sqrt(d2, out=d2)
        for r in range(b - a):
            width = s - (a + r) - 1
            out[pos:pos + width] = d2[r, r + 1:]
            pos += width
    return out


def average_linkage(x: np.ndarray) -> np.ndarray:
    """scipy's average-linkage (UPGMA) dendrogram of the rows of `x`, Euclidean: an
    (n - 1) x 4 linkage matrix whose rows are merges in order of height."""
    from scipy.cluster.hierarchy import linkage

    if len(x) < 2:
        return np.empty((0, 4))
    return linkage(condensed_distances(x), method="average")


def cut_first(z: np.ndarray, n_items: int, merges: int) -> np.ndarray:
    """Flat cluster labels (0..k-1) of `n_items` leaves after the first `merges` rows of the
    linkage matrix `z` (a prefix of scipy's rows is always a valid partition)."""
    parent = np.arange(n_items + merges)
    if merges:
        kids = z[:merges, :2].astype(np.int64)
        made = n_items + np.arange(merges)
        parent[kids[:, 0]] = made
        parent[kids[:, 1]] = made
    while True:  # pointer jumping: every leaf to its root
        jumped = parent[parent]
        if np.array_equal(jumped, parent):
            break
        parent = jumped
    return np.unique(parent[:n_items], return_inverse=True)[1].ravel().astype(np.int64)


def kmeans_cells(x: np.ndarray, max_items: int, seed: int) -> list[np.ndarray]:
    """Row sets of at most `max_items` rows each: k-means cells (`KMeans`, one init, seeded),
    about `max_items / 2` rows on average; a cell still too large is split again the same way.
    Each cell's rows are sorted; the cells are ordered by their first row."""
    from sklearn.cluster import KMeans

    cells: list[np.ndarray] = []
    stack = [np.arange(len(x))]
    while stack:
        rows = stack.pop()
        if len(rows) <= max_items:
            cells.append(rows)
            continue
        k = -(-2 * len(rows) // max_items)
        labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(x[rows])
        parts = [rows[labels == c] for c in range(k)]
        parts = [p for p in parts if len(p)]
        if len(parts) == 1:  # identical rows: k-means cannot split them
            parts = np.array_split(rows, k)
        stack.extend(parts)
    cells.sort(key=lambda rows: int(rows[0]))
    return cells


@dataclass
class HACResult:
    labels: np.ndarray  # cluster of every row, 0..n_clusters-1
    n_clusters: int
    epsilon: float  # the height of the first merge not made (inf: every merge made)
    n_cells: int  # 1: exact HAC on all rows


def hac_clusters(x: np.ndarray, n_clusters: int, max_items: int, seed: int) -> HACResult:
    """Average-linkage HAC of the rows of `x`, cut where it has `n_clusters` clusters.

    Up to `max_items` rows: one exact dendrogram, cut after its first `n - n_clusters` merges
    (the distance threshold ε of the paper is then the height of the first merge not made).
    More rows: `kmeans_cells`, an exact dendrogram in each cell, and the `n - n_clusters`
    lowest merges over all cells (ties: the earlier cell, the earlier row) are made: one ε for
    the whole pool, applied in every cell. With more cells than `n_clusters`, every cell ends
    as one cluster (no merge crosses a cell).
    """
    x = np.asarray(x)
    x = x.reshape(len(x), -1)
    n = len(x)
    cells = [np.arange(n)] if n <= max_items else kmeans_cells(x, max_items, seed)
    trees = [average_linkage(x[rows]) for rows in cells]
    sizes = np.array([len(t) for t in trees], dtype=np.int64)
    heights = np.concatenate([t[:, 2] for t in trees]) if len(trees) else np.empty(0)
    cell_of = np.repeat(np.arange(len(cells)), sizes)
    row = np.concatenate([np.arange(s) for s in sizes]) if len(trees) else np.empty(0, np.int64)
    merges = int(max(0, min(n - n_clusters, len(heights))))
    order = np.lexsort((row, cell_of, heights))
    made = np.bincount(cell_of[order[:merges]], minlength=len(cells))
    labels = np.empty(n, dtype=np.int64)
    offset = 0
    for rows, tree, k in zip(cells, trees, made, strict=True):
        flat = cut_first(tree, len(rows), int(k))
        labels[rows] = flat + offset
        offset += int(flat.max()) + 1 if len(flat) else 0
    epsilon = float(heights[order[merges]]) if merges < len(heights) else math.inf
    return HACResult(labels, offset, epsilon, len(cells))


# --- the strategy --------------------------------------------------------------------------------

class ClusterMargin(Strategy):
    """Cluster-Margin (Citovsky et al. 2021): the k_m = `margin_multiplier` x batch-size
    unlabelled items of smallest margin `p_(1) - p_(2)`, then round-robin over their clusters
    (smallest first), one random item per cluster per turn (`round_robin`, the loop's rng); the
    clusters are an average-linkage HAC of the pool made once per experiment (`hac_clusters`,
    kept in `ctx.cache`). With one cluster per item it is margin sampling (the same picks in
    the same order); with `k_m` = the batch size it labels the same items.

    The per-round score is every unlabelled item's margin utility `1 - (p_(1) - p_(2))`.
    """

    @dataclass
    class Params:
        """Cluster-Margin's hyperparameters.

        margin_multiplier: k_m / k_t, the candidates (lowest margins) per batch item, >= 1 (the
            paper: 10); k_m = ⌈margin_multiplier x batch size⌉, at most the unlabelled items.
        mean_cluster_size: sets ε: the dendrogram is cut where the N pool items form
            ⌈N / mean_cluster_size⌉ clusters (>= 1; 1: one item per cluster, margin sampling).
            The paper picks ε by the number of clusters it gives; a size rather than an ε
            does not depend on the features' scale.
        features: what HAC clusters: "pca" (default: the pixels' first `pca_dim` principal
            components, fitted once per experiment: model-independent, so the clusters are the
            same for every model and exist before any training), "raw" (the pixels) or
            "embedding" (the model's penultimate features at the first query round, i.e. the
            model trained on the initial set, as in the paper; softmax regression's embedding
            is its input: raw). The paper's seed set is large; this harness's initial set is
            a few labels, all a first-round network has been trained on.
        pca_dim: components kept with features=pca.
        normalize: scale feature rows to unit norm before clustering (distances in [0, 2]).
        hac_max_items: exact HAC on pools of up to this many items (O(N^2) distances: 4,000
            items, 64 MB); larger pools: k-means cells of at most this many, HAC in each, one
            global ε (see the module doc). >= 2.
        """

        margin_multiplier: float = 10.0
        mean_cluster_size: float = 10.0
        features: str = "pca"
        pca_dim: int = 50
        normalize: bool = True
        hac_max_items: int = 4000

        def __post_init__(self) -> None:
            check_feature_params("cluster_margin", self.features, self.pca_dim)
            if not (math.isfinite(self.margin_multiplier) and self.margin_multiplier >= 1):
                raise ValueError(
                    "cluster_margin: margin_multiplier must be >= 1 (k_m = margin_multiplier "
                    f"x batch size candidates), got {self.margin_multiplier}")
            if not (math.isfinite(self.mean_cluster_size) and self.mean_cluster_size >= 1):
                raise ValueError("cluster_margin: mean_cluster_size must be >= 1 (items per "
                                 f"cluster on average), got {self.mean_cluster_size}")
            if self.hac_max_items < 2:
                raise ValueError(
                    f"cluster_margin: hac_max_items must be >= 2, got {self.hac_max_items}")

    name: ClassVar[str] = "cluster_margin"
    score_name: ClassVar[str] = "one_minus_margin"

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self.needs = frozenset({Capability.PROBA}) | feature_needs(self.params.features)

    def candidates(self, n: int, n_unlabelled: int) -> int:
        """k_m: ⌈margin_multiplier x n⌉ (at least n), at most the unlabelled items."""
        k_m = math.ceil(round(self.params.margin_multiplier * n, 9))
        return min(n_unlabelled, max(n, k_m))

    def query(self, ctx: QueryContext, n: int) -> Query:
        utility = margin_uncertainty(ctx.proba())
        candidates = top_k(utility, self.candidates(n, len(utility)))
        clusters = self.clusters(ctx)[ctx.unlabelled[candidates]]
        alone = clusters < 0  # not in the pool when it was clustered: a cluster each
        clusters[alone] = clusters.max(initial=0) + 1 + np.arange(int(alone.sum()))
        picks = candidates[round_robin(clusters, n, ctx.rng)]
        return Query(picks, utility, self.score_name)

    # the clustering, once per experiment

    def clusters(self, ctx: QueryContext) -> np.ndarray:
        """The cluster of every pool item (pool order), from `ctx.cache` or made now."""
        p = self.params
        kind = "raw" if p.features == "embedding" and embeds_input(ctx) else p.features
        store = clusterings(ctx.cache)
        params = ("cluster_margin", p.mean_cluster_size, p.hac_max_items, ctx.cache.seed)
        if kind != "embedding":  # model-independent: the whole pool's features
            key = ((kind, p.pca_dim if kind == "pca" else None, p.normalize), params)
            if key not in store:
                x = static_features(ctx, kind, p.pca_dim, p.normalize)
                store[key] = (self._cluster(x, kind, ctx.cache.seed).labels, None)
            return store[key][0]
        # the model's embeddings when first asked (the first query round): kept for this model
        key = (("embedding", None, p.normalize), params)
        kept = store.get(key)
        if kept is None or kept[1] is not ctx.model:
            space = feature_space(ctx, "embedding", p.pca_dim, p.normalize, self.name)
            result = self._cluster(space.x, "embedding", ctx.cache.seed)
            size = int(max(ctx.labelled.max(initial=-1), ctx.unlabelled.max(initial=-1))) + 1
            labels = np.full(size, -1, dtype=np.int64)
            labels[ctx.labelled] = result.labels[space.labelled]
            labels[ctx.unlabelled] = result.labels[space.unlabelled]
            store[key] = kept = (labels, ctx.model)
        return kept[0]

    def _cluster(self, x: np.ndarray, kind: str, seed: int) -> HACResult:
        p = self.params
        n = len(x)
        target = max(1, math.ceil(round(n / p.mean_cluster_size, 9)))
        result = hac_clusters(x, target, p.hac_max_items, seed)
        log.info("cluster_margin: %d clusters of %d items (%s features, epsilon %.4g, %s)",
                 result.n_clusters, n, kind, result.epsilon,
                 "exact HAC" if result.n_cells == 1 else f"HAC in {result.n_cells} k-means cells")
        return result


def clusterings(cache: PoolCache) -> dict:
    """Where an experiment's clusterings are kept, by (feature space, params): `PoolCache.hac`.
    Each value: (cluster of every pool item, the model whose embeddings were clustered, or
    None for model-independent features)."""
    return cache.hac
