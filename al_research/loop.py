"""The pool-based active-learning loop: fit, evaluate, select, label, until the budget is spent."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from al_research.oracle import Oracle
from al_research.runtime import tf
from al_research.strategies import Strategy


@dataclass
class Round:
    """What one round measured. `selected` is the batch labelled after this round's fit."""

    n_labelled: int
    test_accuracy: float
    val_accuracy: float
    epochs: int
    fit_seconds: float
    mean_confidence: float
    confidence: np.ndarray = field(repr=False)  # max-softmax of each unlabelled pool item
    selected: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    METRICS = ("test_accuracy", "val_accuracy", "epochs", "fit_seconds", "mean_confidence")

    def metrics(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.METRICS}


@dataclass
class Evaluation:
    """The held-out sets. The model trains on neither; early stopping watches `monitor`."""

    test_x: np.ndarray
    test_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray


class LabelledPool:
    """The pool as TF tensors (copied to the device once) and which items carry labels."""

    def __init__(self, pool_x: np.ndarray, oracle: Oracle) -> None:
        self.x = tf.constant(pool_x, tf.float32)
        self.size = int(pool_x.shape[0])
        self.oracle = oracle
        self.indices = np.empty(0, np.int64)
        self.labels = np.empty(0, np.int64)
        self._mask = np.zeros(self.size, dtype=bool)

    @property
    def unlabelled(self) -> np.ndarray:
        return np.flatnonzero(~self._mask)

    def add(self, indices: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Label `indices` through the oracle, or with given (pseudo-)labels, which cost none."""
        indices = np.asarray(indices, dtype=np.int64)
        if self._mask[indices].any():
            raise ValueError("an item was added to the labelled set twice")
        if labels is None:
            labels = self.oracle.label_manually(indices)
        self._mask[indices] = True
        self.indices = np.concatenate([self.indices, indices])
        self.labels = np.concatenate([self.labels, np.asarray(labels, dtype=np.int64)])

    def training_set(self) -> tuple[tf.Tensor, np.ndarray]:
        return tf.gather(self.x, self.indices), self.labels


def fit_and_measure(
    model, pool: LabelledPool, held_out: Evaluation
) -> tuple[Round, np.ndarray]:
    """Fit on the labelled set, score on the held-out sets; return the round and the
    probabilities of the unlabelled pool items (in `pool.unlabelled` order)."""
    x, y = pool.training_set()
    start = time.perf_counter()
    epochs = model.fit(x, y)
    fit_seconds = time.perf_counter() - start
    unlabelled = pool.unlabelled
    if len(unlabelled):
        proba = model.predict_proba(tf.gather(pool.x, unlabelled))
    else:
        proba = np.empty((0, 0), np.float32)
    confidence = proba.max(axis=1) if len(proba) else np.empty(0, np.float32)
    result = Round(
        n_labelled=len(pool.indices),
        test_accuracy=model.score(held_out.test_x, held_out.test_y),
        val_accuracy=model.score(held_out.val_x, held_out.val_y),
        epochs=epochs,
        fit_seconds=fit_seconds,
        mean_confidence=float(confidence.mean()) if len(confidence) else float("nan"),
        confidence=confidence,
    )
    return result, proba


def run_active_learning(
    model,
    pool: LabelledPool,
    held_out: Evaluation,
    strategy: Strategy,
    initial: np.ndarray,
    batch_size: int,
    budget: int,
    rng: np.random.Generator,
    on_round: Callable[[Round], None] | None = None,
) -> list[Round]:
    """Label `initial`, then rounds of `batch_size` chosen by `strategy` until `budget` labels.

    Each round fits, evaluates and reports (`on_round`) before it selects the next batch, so the
    last round measures the model trained on the whole budget.
    """
    pool.add(initial)
    rounds: list[Round] = []
    while True:
        result, proba = fit_and_measure(model, pool, held_out)
        remaining = budget - pool.oracle.spent
        unlabelled = pool.unlabelled
        if remaining > 0 and len(unlabelled):
            positions = strategy(proba, min(batch_size, remaining), rng)
            result.selected = unlabelled[np.asarray(positions, dtype=np.int64)]
        rounds.append(result)
        if on_round is not None:
            on_round(result)
        if not len(result.selected):
            return rounds
        pool.add(result.selected)


def initial_indices(
    how: str, size: int, pool_size: int, rng: np.random.Generator,
    kmeans_nearest: np.ndarray | None = None,
) -> np.ndarray:
    """The first labelled batch: `random` from the seed, the `first` items, or k-means anchors."""
    if how == "random":
        return np.sort(rng.choice(pool_size, size=size, replace=False))
    if how == "first":
        return np.arange(size)
    if how == "kmeans":
        if kmeans_nearest is None:
            raise ValueError("initial=kmeans needs the clustering step to run first")
        return np.asarray(kmeans_nearest, dtype=np.int64)
    raise ValueError(f"unknown initial selection {how!r}; valid: [random, first, kmeans]")
