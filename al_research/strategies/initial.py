"""Initial selections: the first labelled set, chosen before any model exists.

An initial selection is a strategy that needs nothing of a model (`needs` empty), asked once
with every pool item unlabelled and `ctx.model` None: `conf/initial/*.yaml` names one by
`_target_`. `random` is `RandomSampling`; TypiClust and ProbCover (designed for the cold
start) run on PCA features; the three below need no strategy of their own. A new one is one
class and one yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from al_research.strategies.base import Query, QueryContext, Strategy, check_capabilities
from al_research.strategies.clustering import cluster_pool


class FirstItems(Strategy):
    """The first `n` pool items, as the article did."""

    name: ClassVar[str] = "first"

    def query(self, ctx: QueryContext, n: int) -> Query:
        return Query(np.arange(min(n, len(ctx.unlabelled))))


class WholePool(Strategy):
    """Every pool item at once, whatever `n`: the ground truth (strategy=full sets it)."""

    name: ClassVar[str] = "whole_pool"

    def query(self, ctx: QueryContext, n: int) -> Query:
        return Query(np.arange(len(ctx.unlabelled)))


class KMeansAnchors(Strategy):
    """The distinct pool items nearest the centroids of k-means with `n` clusters on the raw
    features; the clustering is the kmeans stage's when its k is `n` (one per experiment)."""

    name: ClassVar[str] = "kmeans"

    @dataclass
    class Params:
        n_init: int = 4  # k-means restarts

        def __post_init__(self) -> None:
            if self.n_init < 1:
                raise ValueError(f"initial.params.n_init must be >= 1, got {self.n_init}")

    def query(self, ctx: QueryContext, n: int) -> Query:
        cache = ctx.cache
        key = (n, cache.seed, self.params.n_init)
        if key not in cache.clusterings:
            cache.clusterings[key] = cluster_pool(cache.array(), *key)
        return Query(cache.clusterings[key].anchors)


def initial_selection(strategy: Strategy, ctx: QueryContext, n: int) -> np.ndarray:
    """The pool indices `strategy` chooses with nothing labelled and no model (`ctx`: every pool
    item unlabelled, `model` None); fails with the reason when it needs a model."""
    check_capabilities(strategy.needs, frozenset(), f"initial selection {strategy.name!r}",
                       "the initial selection")
    size = len(ctx.unlabelled)
    if not 0 < n <= size:
        raise ValueError(f"initial selection of {n} items from a pool of {size}")
    positions = np.asarray(strategy.query(ctx, n).positions, dtype=np.int64)
    if not len(positions) or len(np.unique(positions)) != len(positions):
        raise RuntimeError(f"initial selection {strategy.name!r} chose {len(positions)} items "
                           f"({len(np.unique(positions))} distinct)")
    return ctx.unlabelled[positions]
