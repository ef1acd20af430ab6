"""ProbCover: greedy maximum coverage of δ-balls (Yehuda, Dekel, Hacohen & Weinshall 2022)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from al_research.strategies.base import Query, QueryContext, Strategy
from al_research.strategies.features import (
    Space,
    check_feature_params,
    draw_seed,
    feature_needs,
    feature_space,
    nearest_other_label_dist,
    radius_graph,
)

log = logging.getLogger(__name__)

Choose = Callable[[np.ndarray, np.ndarray], int]  # (degrees, candidate mask) -> the row picked


def purity(x: np.ndarray, labels: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """For every δ, the share of rows whose δ-ball holds only rows of their own label
    (`labels`: the k-means pseudo-labels). A row is pure at δ exactly when its nearest row of
    another label is farther than δ, so one pass over the distances serves every δ."""
    nearest_other = nearest_other_label_dist(x, labels)
    return (nearest_other[None, :] > np.asarray(deltas, dtype=np.float64)[:, None]).mean(axis=1)


def choose_delta(x: np.ndarray, labels: np.ndarray, deltas: list[float], alpha: float
                 ) -> tuple[float, np.ndarray]:
    """The largest δ in `deltas` whose purity is at least `alpha` (the paper's rule), or the
    smallest δ with a warning when none is; returns (δ, purity of every δ)."""
    grid = np.sort(np.asarray(deltas, dtype=np.float64))
    purities = purity(x, labels, grid)
    ok = grid[purities >= alpha]
    if not len(ok):
        log.warning("probcover: no delta in %s reaches purity %.2f (best %.3f); using %g",
                    grid.tolist(), alpha, purities.max(), grid[0])
        return float(grid[0]), purities
    return float(ok.max()), purities


def greedy_coverage(graph: Any, labelled: np.ndarray, candidates: np.ndarray, n: int,
                    choose: Choose) -> tuple[np.ndarray, np.ndarray]:
    """ProbCover's greedy max coverage on the δ-ball graph (symmetric CSR, self-loops).

    Every row a labelled row reaches is covered. Each step, the out-degree of a row is the
    number of uncovered rows in its ball; `choose(degrees, is_candidate)` picks a candidate
    (the strategy: the highest degree, lowest row on ties; when no candidate covers anything
    new, a uniform draw), whose ball becomes covered. Degrees are updated incrementally:
    covering a set C lowers every row's degree by its edges into C (a sparse column sum),
    so a step costs the edges of the newly covered rows, not a pass over the graph.

    Returns (rows picked, degrees of the candidate rows before the first pick).
    """
    covered = np.zeros(graph.shape[0], dtype=bool)
    if len(labelled):
        covered[np.unique(graph[labelled].indices)] = True
    degrees = np.asarray(graph @ (~covered).astype(np.int64)).ravel()
    is_candidate = np.zeros(graph.shape[0], dtype=bool)
    is_candidate[candidates] = True
    initial = degrees[candidates].astype(np.float64)
    picks: list[int] = []
    for _ in range(min(n, len(candidates))):
        j = choose(degrees, is_candidate)
        picks.append(j)
        is_candidate[j] = False
        ball = graph.indices[graph.indptr[j]:graph.indptr[j + 1]]
        new = ball[~covered[ball]]
        if len(new):
            covered[new] = True
            degrees -= np.bincount(graph[new].indices, minlength=graph.shape[0])
    return np.asarray(picks, dtype=np.int64), initial


def _deltas_default() -> list[float]:
    return [round(0.05 * i, 2) for i in range(1, 21)]  # 0.05, 0.10, ..., 1.00


class ProbCover(Strategy):
    """ProbCover (Yehuda et al. 2022), for low budgets: label the items whose δ-balls cover the
    most of the pool not yet covered by the labelled set (greedy maximum coverage on the graph
    with an edge x -> x' when ||x - x'|| <= δ; `greedy_coverage`). δ is `params.delta`, or the
    largest of `params.deltas` whose ball purity reaches `params.alpha` under k-means
    pseudo-labels with as many clusters as classes (the paper's rule; `choose_delta`). Ties go
    to the lower position; once everything is covered, the rest of the batch is drawn
    uniformly from the loop's rng. With features raw or pca, δ and the graph are computed once
    per experiment (kept in `ctx.cache`). Works without a model: usable as the initial
    selection.

    The per-round score is each unlabelled item's out-degree (uncovered items in its ball).
    """

    @dataclass
    class Params:
        """ProbCover's hyperparameters.

        features: "pca" (default), "raw" or "embedding" (see TypiClust's).
        pca_dim: components kept with features=pca.
        normalize: scale feature rows to unit norm (the reference code's are), so δ lies in
            [0, 2] whatever the features' scale.
        delta: the ball radius (> 0); null: chosen by purity from `deltas`.
        deltas: candidate radii for the purity rule (each > 0).
        alpha: the purity δ must reach, in (0, 1) (the paper: 0.95).
        purity_clusters: k-means clusters for the purity rule (>= 2); null: the number of
            classes.
        """

        features: str = "pca"
        pca_dim: int = 50
        normalize: bool = True
        delta: float | None = None
        deltas: list[float] = field(default_factory=_deltas_default)
        alpha: float = 0.95
        purity_clusters: int | None = None

        def __post_init__(self) -> None:
            check_feature_params("probcover", self.features, self.pca_dim)
            if self.delta is not None and not self.delta > 0:
                raise ValueError(f"probcover: delta must be > 0 (a ball radius), got "
                                 f"{self.delta}")
            if not len(self.deltas) or any(not d > 0 for d in self.deltas):
                raise ValueError(f"probcover: deltas must be a non-empty list of radii > 0, "
                                 f"got {list(self.deltas)}")
            if not 0 < self.alpha < 1:
                raise ValueError(f"probcover: alpha must be in (0, 1), got {self.alpha}")
            if self.purity_clusters is not None and self.purity_clusters < 2:
                raise ValueError(f"probcover: purity_clusters must be >= 2 or null, got "
                                 f"{self.purity_clusters}")

    name: ClassVar[str] = "probcover"

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self.needs = feature_needs(self.params.features)

    def delta(self, ctx: QueryContext, x: np.ndarray) -> float:
        """`params.delta`, or the purity rule's δ on the rows `x`."""
        p = self.params
        if p.delta is not None:
            return float(p.delta)
        from sklearn.cluster import KMeans

        k = p.purity_clusters if p.purity_clusters is not None else ctx.n_classes
        if k is None:
            raise ValueError("probcover: choosing delta by purity needs the number of classes "
                             "(QueryContext.n_classes) or params.purity_clusters; or set "
                             "params.delta")
        if k > len(x):
            raise ValueError(f"probcover: {k} purity clusters for only {len(x)} pool items")
        labels = KMeans(n_clusters=k, random_state=draw_seed(ctx.rng)).fit_predict(x)
        delta, purities = choose_delta(x, labels, p.deltas, p.alpha)
        log.info("probcover: delta %g (purity %s)", delta,
                 dict(zip(sorted(p.deltas), np.round(purities, 3).tolist(), strict=True)))
        return delta

    def _graph(self, ctx: QueryContext, space: Space) -> tuple[Any, np.ndarray, np.ndarray]:
        """The δ-ball graph over the labelled and unlabelled rows, and their rows in it."""
        if space.key is not None:  # model-independent: one graph for the whole experiment
            key = (space.key, (self.params.delta, tuple(self.params.deltas), self.params.alpha,
                               self.params.purity_clusters))
            graphs = ctx.cache.graphs
            if key not in graphs:
                graphs[key] = radius_graph(space.x, self.delta(ctx, space.x))
            return graphs[key], space.labelled, space.unlabelled
        x = space.x
        return radius_graph(x, self.delta(ctx, x)), space.labelled, space.unlabelled

    def query(self, ctx: QueryContext, n: int) -> Query:
        p = self.params
        space = feature_space(ctx, p.features, p.pca_dim, p.normalize, self.name)
        graph, labelled, unlabelled = self._graph(ctx, space)
        rng = ctx.rng

        def choose(degrees: np.ndarray, is_candidate: np.ndarray) -> int:
            best = np.where(is_candidate, degrees, -1)
            j = int(np.argmax(best))
            if best[j] > 0:
                return j
            return int(rng.choice(np.flatnonzero(is_candidate)))

        rows, degrees = greedy_coverage(graph, labelled, unlabelled, n, choose)
        position = np.full(graph.shape[0], -1)
        position[unlabelled] = np.arange(len(unlabelled))
        return Query(position[rows], degrees, "uncovered_in_ball")
