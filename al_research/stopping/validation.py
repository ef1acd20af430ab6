"""A criterion on the held-out validation set the loop already scores every round: stop when its
accuracy has stopped improving (early stopping, at the level of rounds instead of epochs)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from al_research.models.base import Capability
from al_research.stopping.base import NOT_YET, Criterion, Observation, Reading


class ValidationPlateau(Criterion):
    """Validation-accuracy plateau.

    The value is the number of rounds since validation accuracy last rose by more than
    `min_delta` above the best so far (0 on the first round and on every improving one); it
    fires when that count reaches `patience`. It needs nothing of the model beyond the round's
    score: it reads the round's `val_accuracy`, never the test set.
    """

    needs = frozenset[Capability]()

    @dataclass
    class Params:
        patience: int = 5  # rounds without an improvement before it fires
        min_delta: float = 0.0  # a rise of at most this much is not an improvement

        def __post_init__(self) -> None:
            if self.patience < 1:
                raise ValueError(f"patience must be >= 1, got {self.patience}")
            if not 0.0 <= self.min_delta < 1.0:
                raise ValueError(f"min_delta must be in [0, 1), got {self.min_delta}")

    def __init__(self, params: Params | None = None) -> None:
        super().__init__(params)
        self.best = -math.inf
        self.since = 0

    def observe(self, obs: Observation) -> Reading:
        if not math.isfinite(obs.val_accuracy):
            return NOT_YET
        if obs.val_accuracy > self.best + self.params.min_delta or self.best == -math.inf:
            self.best, self.since = obs.val_accuracy, 0
        else:
            self.since += 1
        return Reading(float(self.since), self.since >= self.params.patience)
