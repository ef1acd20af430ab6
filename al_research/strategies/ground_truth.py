"""Ground truth: the whole pool labelled at once, the upper bound every strategy is read against.

It is an arm, not a way of choosing: `strategy=full` (conf/strategy/full.yaml) also sets the
initial selection to the whole pool (`initial.WholePool`), so the budget is spent before any
round could query, and the loop fits once.
"""

from __future__ import annotations

from typing import ClassVar

from al_research.strategies.base import Query, QueryContext, Strategy


class GroundTruth(Strategy):
    """The ground-truth arm's strategy: it is never asked (the whole pool is labelled first)."""

    name: ClassVar[str] = "full"

    def query(self, ctx: QueryContext, n: int) -> Query:
        raise RuntimeError("strategy=full (ground truth) labels the whole pool in its initial "
                           "set (initial=whole_pool) and never queries; it was combined with "
                           "another initial selection")
