"""Ground truth: the whole pool labelled at once, the upper bound every strategy is read against."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from al_research.strategies.base import Query, QueryContext, Strategy


class LabelWholePool(Strategy):
    """Labels every pool item in the initial set (`labels_whole_pool`), so no round queries.

    The loop sees `labels_whole_pool` and makes the initial set the whole pool and the budget
    its size; `query` is never reached then, and answers with every unlabelled item if it is.
    """

    name: ClassVar[str] = "full"
    labels_whole_pool: ClassVar[bool] = True

    def query(self, ctx: QueryContext, n: int) -> Query:
        return Query(np.arange(len(ctx.unlabelled)))
