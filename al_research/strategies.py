"""Query strategies: pure functions of the model's probabilities that return indices.

Every strategy has the signature `strategy(proba, n, rng) -> positions`, where `proba` is the
(n_unlabelled, n_classes) softmax output on the unlabelled pool, and the result holds `n`
distinct positions into `proba`'s rows. Strategies keep no state; the loop owns it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Strategy = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def random_sampling(proba: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` positions drawn uniformly without replacement."""
    return np.sort(rng.choice(len(proba), size=min(n, len(proba)), replace=False))


def least_confident(proba: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The `n` rows with the lowest max-softmax probability; ties go to the lower position."""
    return np.argsort(proba.max(axis=1), kind="stable")[:n]


def most_confident(proba: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The `n` rows with the highest max-softmax probability; ties go to the lower position.

    Not a labelling strategy: self-training uses it to choose pseudo-labels.
    """
    return np.argsort(-proba.max(axis=1), kind="stable")[:n]


STRATEGIES: dict[str, Strategy] = {
    "random": random_sampling,
    "least_confident": least_confident,
}
