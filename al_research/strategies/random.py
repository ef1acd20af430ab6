"""Random sampling: the baseline every strategy is compared with."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from al_research.strategies.base import Query, QueryContext, Strategy


class RandomSampling(Strategy):
    """`n` unlabelled items drawn uniformly without replacement from the loop's seeded rng."""

    name: ClassVar[str] = "random"

    def query(self, ctx: QueryContext, n: int) -> Query:
        size = len(ctx.unlabelled)
        return Query(np.sort(ctx.rng.choice(size, size=min(n, size), replace=False)))
