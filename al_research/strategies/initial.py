"""Cold-start selection: the first labelled batch chosen by a strategy that needs no model.

TypiClust and ProbCover were designed for the cold start, where uncertainty sampling has only a
model trained on a handful of labels. `initial=typiclust` / `initial=probcover` run them on an
empty labelled set, with `model=None`, in the raw or PCA feature space (`params.features`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from al_research.strategies.base import QueryContext, Strategy

MODEL_FREE = ("embeddings", "proba", "mc_dropout")


def cold_start_strategies() -> dict[str, type[Strategy]]:
    """The strategies `initial=` accepts, by name."""
    from al_research.strategies.probcover import ProbCover
    from al_research.strategies.typiclust import TypiClust

    return {"typiclust": TypiClust, "probcover": ProbCover}


def initial_selection(strategy: Strategy, pool_x: Any, n: int, rng: np.random.Generator,
                      n_classes: int | None = None, static: dict | None = None) -> np.ndarray:
    """`n` pool indices chosen by `strategy` with nothing labelled and no model.

    `pool_x`: the pool's features (NumPy or a TF tensor); `n_classes`: needed by ProbCover's
    purity rule for δ; `static`: pass the loop's `static` dict to reuse the PCA features (and
    ProbCover's graph) in the rounds that follow. Fails with the reason when the strategy needs
    a model (its `requires`).
    """
    needs = sorted(set(strategy.requires) & set(MODEL_FREE))
    if needs:
        raise ValueError(f"strategy {strategy.name!r} cannot choose the initial set: it needs "
                         f"{needs} from a trained model (use features=raw or features=pca)")
    size = int(pool_x.shape[0])
    if not 0 < n <= size:
        raise ValueError(f"initial selection of {n} items from a pool of {size}")
    ctx = QueryContext(pool_x, np.empty(0, np.int64), np.arange(size), rng, model=None,
                       n_classes=n_classes, static=static)
    positions = np.asarray(strategy.query(ctx, n).positions, dtype=np.int64)
    if len(positions) != n or len(np.unique(positions)) != n:
        raise RuntimeError(f"strategy {strategy.name!r} chose {len(positions)} items "
                           f"({len(np.unique(positions))} distinct) for an initial set of {n}")
    return ctx.unlabelled[positions]


def cold_start_selector(name: str, pool_x: Any, n_classes: int | None = None,
                        params: Any = None, static: dict | None = None
                        ) -> Callable[[int, np.random.Generator], np.ndarray]:
    """`selector(n, rng) -> pool indices` for `initial=<name>` (typiclust or probcover), with
    the strategy's default `Params` unless `params` is given."""
    strategies = cold_start_strategies()
    if name not in strategies:
        raise ValueError(f"initial={name!r} is not a cold-start strategy; valid: "
                         f"{sorted(strategies)}")
    strategy = strategies[name](params)

    def select(n: int, rng: np.random.Generator) -> np.ndarray:
        return initial_selection(strategy, pool_x, n, rng, n_classes, static)

    return select
