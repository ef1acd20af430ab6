"""Criteria that watch the predictions settle: stabilizing predictions (Cohen's kappa on a fixed
stop set, Bloodgood & Vijay-Shanker 2009) and classification change (Zhu et al. 2008)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from al_research.stopping.base import (
    NOT_YET,
    Criterion,
    Observation,
    Reading,
    check_unit,
    cohen_kappa,
)


class StabilizingPredictions(Criterion):
    """Stabilizing predictions (Bloodgood & Vijay-Shanker 2009; small-text's `KappaAverage`).

    Every round the model predicts the stop set (pool items drawn once per seed,
    `stopping.stop_set_size`, the paper's ~2000); Cohen's kappa measures the agreement of this
    round's predictions with the last round's. The value is the mean of the last `window`
    kappas (NaN until there are `window` of them, i.e. before round `window + 1`); it fires when
    that mean reaches `threshold`. Identical predictions have kappa 1 (small-text's adapted
    kappa, where the formula is 0/0 for one constant label).
    """

    @dataclass
    class Params:
        threshold: float = 0.99  # the mean kappa at or above which it fires
        window: int = 3  # kappas (between successive rounds) averaged

        def __post_init__(self) -> None:
            check_unit("threshold", self.threshold)
            if self.window < 1:
                raise ValueError(f"window must be >= 1, got {self.window}")

    def __init__(self, params: Params | None = None) -> None:
        super().__init__(params)
        self.last: np.ndarray | None = None
        self.kappas: list[float] = []

    def observe(self, obs: Observation) -> Reading:
        predictions = obs.stop_set_proba().argmax(axis=1)
        last, self.last = self.last, predictions
        if last is None:
            return NOT_YET
        self.kappas.append(cohen_kappa(predictions, last, obs.n_classes))
        if len(self.kappas) < self.params.window:
            return NOT_YET
        mean = float(np.mean(self.kappas[-self.params.window:]))
        return Reading(mean, mean >= self.params.threshold)


class ClassificationChange(Criterion):
    """Classification change (Zhu, Wang & Hovy 2008; small-text's `ClassificationChange`).

    The value is the fraction of the unlabelled pool whose predicted label changed since the last
    round, over the items unlabelled at both rounds (the pool shrinks by the labelled batch);
    NaN on the first round. It fires when at most `threshold` of them changed: `0`, the default,
    is the paper's rule (no prediction changes), as in small-text.
    """

    @dataclass
    class Params:
        threshold: float = 0.0  # the fraction of changed predictions at or below which it fires

        def __post_init__(self) -> None:
            check_unit("threshold", self.threshold, low_open=False)

    def __init__(self, params: Params | None = None) -> None:
        super().__init__(params)
        self.last: dict[str, np.ndarray] | None = None

    def observe(self, obs: Observation) -> Reading:
        if not len(obs.unlabelled):
            return NOT_YET
        predictions = obs.proba.argmax(axis=1)
        last, self.last = self.last, {"positions": obs.unlabelled, "labels": predictions}
        if last is None:
            return NOT_YET
        common, here, there = np.intersect1d(obs.unlabelled, last["positions"],
                                             assume_unique=True, return_indices=True)
        if not len(common):
            return NOT_YET
        n_changed = int(np.count_nonzero(predictions[here] != last["labels"][there]))
        # small-text's test (unchanged >= n (1 - threshold)), in counts; the tolerance keeps
        # e.g. 29 changes of 100 within threshold 0.29 despite 0.29 * 100 = 28.999...
        fires = n_changed <= self.params.threshold * len(common) + 1e-9
        return Reading(n_changed / len(common), fires)
