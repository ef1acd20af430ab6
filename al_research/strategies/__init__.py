"""Query strategies and initial selections: one module per family, one yaml per strategy.

A strategy scores or picks unlabelled pool items from a `QueryContext` and keeps no state
between rounds (the loop owns the labelled set, the rng and the model; model-independent
quantities live in the experiment's `PoolCache`). It declares what it `needs` of a model; one
check (`check_capabilities`) compares that with what the model offers before any training.
An initial selection (`conf/initial/`) is a strategy that needs no model. Adding either is one
module here and one yaml, nothing else.
"""

from al_research.strategies.base import (
    Query,
    QueryContext,
    ScoringStrategy,
    Strategy,
    check_capabilities,
    top_k,
)

__all__ = ["Query", "QueryContext", "ScoringStrategy", "Strategy", "check_capabilities",
           "top_k"]
