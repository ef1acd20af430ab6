"""Core-set: greedy k-center selection (Sener & Savarese 2018)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from al_research.strategies.base import Query, QueryContext, Strategy
from al_research.strategies.features import (
    check_feature_params,
    feature_space,
    min_sq_dist,
    sq_dist_to,
    sq_norms,
    take_rows,
)


def k_center_greedy(unlabelled: np.ndarray, labelled: np.ndarray, n: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sener & Savarese's greedy 2-approximation of the k-center problem.

    With `delta(u) = min_{s in S} ||u - s||` and S the labelled set, repeat `n` times:
    pick `argmax_u delta(u)` over the unlabelled rows, add it to S, update
    `delta <- min(delta, ||. - pick||)` (one matrix-vector product). Ties go to the lower
    position. With an empty labelled set every distance is infinite: the first pick is drawn
    uniformly by `rng` (scikit-activeml draws it the same way).

    Returns (positions into `unlabelled`, `delta` before any pick: the distance of every
    unlabelled row to the labelled set).
    """
    n = min(n, len(unlabelled))
    d2 = min_sq_dist(unlabelled, labelled)
    initial = np.sqrt(d2)
    x_sq = sq_norms(unlabelled)
    picks = np.empty(n, dtype=np.int64)
    for i in range(n):
        if np.isinf(d2).all():
            j = int(rng.integers(len(unlabelled)))
        else:
            j = int(np.argmax(d2))
        picks[i] = j
        np.minimum(d2, sq_dist_to(unlabelled, x_sq, j), out=d2)
        d2[picks[: i + 1]] = -np.inf  # never picked twice, even among duplicates
    return picks, initial


class CoreSet(Strategy):
    """Core-set (Sener & Savarese 2018): the batch that minimises the largest distance from an
    unlabelled item to its nearest labelled one, by the greedy k-center algorithm on the
    labelled set plus each new pick (`k_center_greedy`). Pure diversity: no uncertainty.

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
    requires = frozenset({"embeddings"})

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self.requires = frozenset({"embeddings"} if self.params.features == "embedding" else ())

    def query(self, ctx: QueryContext, n: int) -> Query:
        p = self.params
        space = feature_space(ctx, p.features, p.pca_dim, p.normalize, self.name)
        picks, distance = k_center_greedy(take_rows(space.x, space.unlabelled),
                                          take_rows(space.x, space.labelled), n, ctx.rng)
        if not len(space.labelled):  # no labelled set yet: every distance is infinite
            return Query(picks)
        return Query(picks, distance, "distance_to_labelled")
