"""Query strategies: one module per family, one yaml per strategy in conf/strategy/.

`build_strategy(target, params)` instantiates the class a config's `_target_` names; adding a
strategy is one module here and one yaml, nothing else.
"""

from __future__ import annotations

from al_research.strategies.base import Query, QueryContext, ScoringStrategy, Strategy, top_k
from al_research.strategies.initial import cold_start_selector, initial_selection

__all__ = ["Query", "QueryContext", "ScoringStrategy", "Strategy", "cold_start_selector",
           "initial_selection", "top_k"]
