"""What a stopping criterion is (`Criterion`), what it sees each round (`Observation`) and says
(`Reading`), and the two measures the criteria share (normalised entropy, Cohen's kappa).

A criterion is a class with a `Params` dataclass (`stopping.criteria.<name>.params`, checked
before TensorFlow loads), `needs` (the model capabilities it asks for, as a strategy's) and
`observe(obs) -> Reading`, called once per round after the fit and the selection. It may keep
state across rounds (the last predictions, a history): one instance serves one run. It never
sees the test set: a stopping rule has to be usable where there are no test labels.

Criterion modules import no TensorFlow (the config is checked before TensorFlow loads).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from al_research.models.base import Capability, NoParams


@dataclass(frozen=True)
class Reading:
    """A criterion's value this round (NaN: not defined yet, e.g. before a second round) and
    whether it fires (says: stop here)."""

    value: float
    fires: bool = False


NOT_YET = Reading(math.nan, False)


@dataclass
class Observation:
    """One round as a criterion sees it, after the fit and the selection.

    `unlabelled` are the pool positions without a label at this round's fit (ascending) and
    `proba` the model's probabilities for them, row for row; `selected` the positions the
    strategy chose after this fit (empty on the last round, or when the pool is used up);
    `stop_set` the fixed pool positions drawn once per seed, whose probabilities
    `stop_set_proba()` computes on first use (one forward pass) and keeps for the round.
    """

    n_labelled: int
    val_accuracy: float
    n_classes: int
    unlabelled: np.ndarray
    proba: np.ndarray
    selected: np.ndarray
    stop_set: np.ndarray
    predict: Callable[[np.ndarray], np.ndarray] = field(repr=False)  # pool positions -> proba
    _stop_set_proba: np.ndarray | None = field(default=None, repr=False)

    def stop_set_proba(self) -> np.ndarray:
        """The current model's probabilities for the stop set (n_stop, n_classes)."""
        if self._stop_set_proba is None:
            self._stop_set_proba = np.asarray(self.predict(self.stop_set))
        return self._stop_set_proba

    def selected_proba(self) -> np.ndarray:
        """The rows of `proba` for the items just selected (0 rows when none were)."""
        if not len(self.selected):
            return np.empty((0, self.n_classes), np.float32)
        return self.proba[np.searchsorted(self.unlabelled, self.selected)]


class Criterion:
    """Base class of a stopping criterion (see the module doc)."""

    Params: ClassVar[type] = NoParams
    needs: ClassVar[frozenset[Capability]] = frozenset({Capability.PROBA})

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def observe(self, obs: Observation) -> Reading:
        raise NotImplementedError


def check_unit(key: str, value: float, low_open: bool = True) -> None:
    """`value` in (0, 1] (or [0, 1] with `low_open=False`), else a ValueError that the config
    turns into one line naming the key."""
    low_ok = value > 0.0 if low_open else value >= 0.0
    if not (low_ok and value <= 1.0):
        bounds = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{key} must be in {bounds}, got {value}")


def normalised_entropy(proba: np.ndarray, n_classes: int) -> np.ndarray:
    """Each row's entropy divided by log(n_classes): 0 for a one-hot row, 1 for a uniform one
    (0 log 0 taken as 0), as small-text's OverallUncertainty measures it."""
    p = np.asarray(proba, dtype=np.float64)
    if not len(p):
        return np.empty(0, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0.0, p * np.log(p), 0.0)
    return -terms.sum(axis=1) / math.log(n_classes)


def cohen_kappa(a: np.ndarray, b: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa between two label vectors over classes 0..n_classes-1 (scikit-learn's
    `cohen_kappa_score` with `labels=range(n_classes)`), and 1.0 when they are identical (where
    the formula is 0/0 if both are one constant label: small-text's adapted kappa)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"kappa of predictions of different sizes: {a.shape} and {b.shape}")
    if np.array_equal(a, b):
        return 1.0
    n = len(a)
    confusion = np.bincount(a * n_classes + b, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes).astype(np.float64)
    observed = np.trace(confusion) / n
    expected = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / (n * n)
    return float((observed - expected) / (1.0 - expected))
