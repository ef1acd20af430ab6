"""Criteria that stop when the model is no longer uncertain (Zhu, Wang & Hovy 2008): over the
whole unlabelled pool (overall uncertainty) or about the items it just chose (max confidence).
Uncertainty is the normalised predictive entropy (entropy / log n_classes, in [0, 1]), as
small-text measures it."""

from __future__ import annotations

from dataclasses import dataclass

from al_research.stopping.base import (
    NOT_YET,
    Criterion,
    Observation,
    Reading,
    check_unit,
    normalised_entropy,
)


class OverallUncertainty(Criterion):
    """Overall uncertainty (Zhu et al. 2008; small-text's `OverallUncertainty`).

    The value is the mean normalised entropy of the model's predictions over the unlabelled pool
    (small-text's "original implementation", with the unlabelled set as `indices_stopping`); it
    fires when that mean is below `threshold` (small-text's default 0.05). NaN once the pool is
    used up.
    """

    @dataclass
    class Params:
        threshold: float = 0.05  # the mean normalised entropy below which it fires

        def __post_init__(self) -> None:
            check_unit("threshold", self.threshold)

    def observe(self, obs: Observation) -> Reading:
        if not len(obs.unlabelled):
            return NOT_YET
        mean = float(normalised_entropy(obs.proba, obs.n_classes).mean())
        return Reading(mean, mean < self.params.threshold)


class MaxConfidence(Criterion):
    """Max confidence (Zhu et al. 2008).

    The paper stops when the entropy of each selected unlabelled example is below a small
    threshold close to zero (default 0.001): with uncertainty sampling the selected items are
    the most uncertain ones, so the model is then confident about the whole pool. For a batch,
    the value is the largest normalised entropy among the items selected this round (the least
    confident of them); it fires when that is below `threshold`, i.e. when every selected item
    is. NaN on a round that selects nothing (the last one). small-text (1.x) has no such class:
    this follows the paper.
    """

    @dataclass
    class Params:
        threshold: float = 0.001  # the largest normalised entropy of the batch below which it fires

        def __post_init__(self) -> None:
            check_unit("threshold", self.threshold)

    def observe(self, obs: Observation) -> Reading:
        chosen = obs.selected_proba()
        if not len(chosen):
            return NOT_YET
        largest = float(normalised_entropy(chosen, obs.n_classes).max())
        return Reading(largest, largest < self.params.threshold)
