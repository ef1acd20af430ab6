"""Uncertainty sampling on the model's probabilities (Lewis & Gale 1994; Settles 2009).

Three utilities of the predicted distribution p(.|x) over the classes, each the same as
scikit-activeml's `UncertaintySampling` (`least_confident`,
`margin_sampling`, `entropy`); the top-k selection breaks ties by the lower position (see
`top_k`), where scikit-activeml breaks them at random.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from al_research.models.base import Capability
from al_research.strategies.base import QueryContext, ScoringStrategy


def least_confidence(proba: np.ndarray) -> np.ndarray:
    """`1 - max_c p(c|x)`, in float64 (exact for float32 inputs, so no new ties)."""
    return 1.0 - np.asarray(proba, dtype=np.float64).max(axis=1)


class LeastConfident(ScoringStrategy):
    """Label the items whose most probable class is least probable: utility `1 - max_c p(c|x)`.

    The article's strategy. Ties go to the lower position in the unlabelled order.
    """

    name: ClassVar[str] = "least_confident"
    score_name: ClassVar[str] = "least_confidence"
    needs = frozenset({Capability.PROBA})
    log_scores: ClassVar[bool] = False  # 1 - confidence: the confidence histogram, mirrored

    def scores(self, ctx: QueryContext) -> np.ndarray:
        return least_confidence(ctx.proba())


def margin_uncertainty(proba: np.ndarray) -> np.ndarray:
    """`1 - (p_(1) - p_(2))`, one minus the gap between the two most probable classes."""
    proba = np.asarray(proba)
    if proba.shape[1] < 2:
        raise ValueError("margin sampling needs at least two classes")
    top2 = np.partition(proba, -2, axis=1)[:, -2:].astype(np.float64)  # [second, first]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy(proba: np.ndarray) -> np.ndarray:
    """Predictive entropy `-sum_c p(c|x) log p(c|x)` in nats, with `0 log 0 = 0`: logarithms
    in the probabilities' own precision (as scikit-activeml), the sum in float64."""
    proba = np.asarray(proba)
    if proba.dtype.kind != "f":
        proba = proba.astype(np.float64)
    log = np.log(proba, out=np.zeros_like(proba), where=proba > 0)
    return -np.einsum("ij,ij->i", proba, log, dtype=np.float64)


class Margin(ScoringStrategy):
    """Margin sampling (Scheffer et al. 2001): label the items whose two most probable classes
    are closest. Utility `1 - (p_(1)(x) - p_(2)(x))` (in [0, 1], higher = smaller margin).
    """

    name: ClassVar[str] = "margin"
    score_name: ClassVar[str] = "one_minus_margin"
    needs = frozenset({Capability.PROBA})

    def scores(self, ctx: QueryContext) -> np.ndarray:
        return margin_uncertainty(ctx.proba())


class Entropy(ScoringStrategy):
    """Entropy sampling (Shannon; Settles 2009): label the items of highest predictive entropy
    `H[p(.|x)] = -sum_c p(c|x) log p(c|x)` (nats).
    """

    name: ClassVar[str] = "entropy"
    score_name: ClassVar[str] = "entropy"
    needs = frozenset({Capability.PROBA})

    def scores(self, ctx: QueryContext) -> np.ndarray:
        return entropy(ctx.proba())


def most_confident(proba: np.ndarray, n: int) -> np.ndarray:
    """The `n` rows with the highest max-softmax probability; ties go to the lower position.

    Not a labelling strategy: self-training uses it to choose pseudo-labels.
    """
    return np.argsort(-np.asarray(proba).max(axis=1), kind="stable")[:n]
