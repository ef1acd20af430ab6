"""Core-set: greedy k-center selection (Sener & Savarese 2018)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from al_research.strategies.base import Query, QueryContext, Strategy
from al_research.strategies.features import (
    check_feature_params,
    embeds_input,
    feature_needs,
    feature_space,
    min_sq_dist,
    normalize_rows,
    require_model,
    sq_dist_to,
    sq_norms,
    static_sq_norms,
)


def k_center_greedy(d2: np.ndarray, dist_to: Callable[[int], np.ndarray], n: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Sener & Savarese's greedy 2-approximation of the k-center problem.

    `d2`: the squared distance of every candidate to the labelled set S (inf if S is empty);
    `dist_to(j)`: squared distances of every candidate to candidate j. Repeat `n` times: pick
    `argmax d2` (ties: the lower position), add it to S, `d2 <- min(d2, dist_to(pick))` (one
    matrix-vector product). With an empty labelled set every distance is infinite: the first
    pick is drawn uniformly by `rng` (scikit-activeml draws it the same way).

    Returns the positions picked, in order.
    """
    d2 = np.array(d2, dtype=np.float64)
    n = min(n, len(d2))
    picks = np.empty(n, dtype=np.int64)
    for i in range(n):
        if np.isinf(d2).all():
            j = int(rng.integers(len(d2)))
        else:
            j = int(np.argmax(d2))
        picks[i] = j
        np.minimum(d2, dist_to(j), out=d2)
        d2[picks[: i + 1]] = -np.inf  # never picked twice, even among duplicates
    return picks


def pool_distance_to_labelled(ctx: QueryContext, x: np.ndarray, key: tuple) -> np.ndarray:
    """Squared distance of every pool row of the model-independent features `x` to the
    labelled set, kept in `ctx.cache.distances` and updated with only the items labelled since
    the last round (a few matrix-vector products, not a pool x labelled product each round)."""
    state = ctx.cache.distances.get(key)
    labelled = np.sort(ctx.labelled)
    if state is not None and np.isin(state[0], labelled).all():
        known, d2 = state
        new = np.setdiff1d(labelled, known)
        if len(new):
            d2 = np.minimum(d2, min_sq_dist(x, x[new]))
    else:
        d2 = min_sq_dist(x, x[labelled])
    ctx.cache.distances[key] = (labelled, d2)
    return d2


class CoreSet(Strategy):
    """Core-set (Sener & Savarese 2018): the batch that minimises the largest distance from an
    unlabelled item to its nearest labelled one, by the greedy k-center algorithm on the
    labelled set plus each new pick (`k_center_greedy`). Pure diversity: no uncertainty.
    Euclidean distances, as in the paper and scikit-activeml's `CoreSet`.

    With model-independent features (raw, pca, or the embedding of a model that embeds its
    input, as softmax regression does), the distances to the labelled set are kept across
    rounds and updated with the new labels only.

    The per-round score is each unlabelled item's distance to the labelled set.
    """

    @dataclass
    class Params:
        """Core-set's hyperparameters.

        features: the space distances are measured in: "embedding" (the model's penultimate
            features, as in the paper), "raw" (the pixels) or "pca" (the pixels' first
            `pca_dim` principal components, fitted once per experiment).
        pca_dim: components kept with features=pca (capped at the number of raw features).
        normalize: scale every feature row to unit norm before measuring distances.
        """

        features: str = "embedding"
        pca_dim: int = 50
        normalize: bool = False

        def __post_init__(self) -> None:
            check_feature_params("coreset", self.features, self.pca_dim)

    name: ClassVar[str] = "coreset"

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self.needs = feature_needs(self.params.features)

    def query(self, ctx: QueryContext, n: int) -> Query:
        p = self.params
        unlabelled = ctx.unlabelled
        if p.features == "embedding" and not embeds_input(ctx):
            require_model(ctx, self.name)
            u = np.asarray(ctx.embeddings("unlabelled")).reshape(len(unlabelled), -1)
            labelled = (np.asarray(ctx.embeddings("labelled")).reshape(len(ctx.labelled), -1)
                        if len(ctx.labelled) else u[:0])
            if p.normalize:
                u, labelled = normalize_rows(u), normalize_rows(labelled)
            d2 = min_sq_dist(u, labelled)
            u_sq = sq_norms(u)
            picks = k_center_greedy(d2, lambda j: sq_dist_to(u, u_sq, j), n, ctx.rng)
        else:  # model-independent: the whole pool's features, kept across rounds
            space = feature_space(ctx, p.features, p.pca_dim, p.normalize, self.name)
            x, x_sq = space.x, static_sq_norms(ctx, space)
            d2 = pool_distance_to_labelled(ctx, x, space.key)[unlabelled]
            picks = k_center_greedy(
                d2, lambda j: sq_dist_to(x, x_sq, int(unlabelled[j]), unlabelled), n, ctx.rng)
        if not len(ctx.labelled):  # no labelled set yet: every distance is infinite
            return Query(picks)
        return Query(picks, np.sqrt(d2), "distance_to_labelled")
