"""What the stages of one experiment share: the parts the config built, and their outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from al_research.config import Config
from al_research.data import Split
from al_research.experiment.loop import Evaluation, LabelledPool
from al_research.experiment.oracle import Oracle
from al_research.models.base import Learner
from al_research.strategies.base import Strategy
from al_research.strategies.pool_cache import PoolCache

T = TypeVar("T")


@dataclass
class Experiment:
    """One experiment's parts (built once, before the first stage) and the stages' outputs.

    The oracle is the only holder of the pool's labels; `pool` is the labelled set the loop
    grows, `model` the learner it trains (warm: later stages continue from it), `cache` the
    pool's model-independent features, `recorder` the MLflow run, `folder` the job's folder.
    """

    conf: Config
    split: Split
    model: Learner
    strategy: Strategy
    initial: Strategy
    oracle: Oracle
    pool: LabelledPool
    held_out: Evaluation
    cache: PoolCache
    recorder: Any
    folder: Path
    title: str  # the run's name, for plot titles
    outputs: dict[type, Any] = field(default_factory=dict)

    def output(self, kind: type[T]) -> T:
        """The output of type `kind` an earlier stage gave (its `needs` guarantee there is one)."""
        return self.outputs[kind]
