"""Self-training: after the budget is spent, pseudo-label the most confident unlabelled items."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the loop imports TensorFlow: loaded when self-training runs, not before
    from al_research.experiment.loop import Evaluation, LabelledPool
    from al_research.models.base import Learner


@dataclass
class PseudoRound:
    n_pseudo: int  # pseudo-labels in the training set after this round (the MLflow step)
    test_accuracy: float
    val_accuracy: float
    pseudo_accuracy: float  # share of all pseudo-labels so far that match the hidden truth
    batch_accuracy: float  # the same, for this round's batch alone
    min_batch_confidence: float
    epochs: int

    def metrics(self) -> dict[str, float]:
        from al_research.tracking.names import Metric

        return {
            Metric.ST_TEST_ACCURACY: self.test_accuracy,
            Metric.ST_VAL_ACCURACY: self.val_accuracy,
            Metric.ST_PSEUDO_LABEL_ACCURACY: self.pseudo_accuracy,
            Metric.ST_BATCH_PSEUDO_LABEL_ACCURACY: self.batch_accuracy,
            Metric.ST_MIN_BATCH_CONFIDENCE: self.min_batch_confidence,
            Metric.ST_EPOCHS: self.epochs,
        }


@dataclass
class SelfTrainingResult:
    rounds: list[PseudoRound]
    indices: np.ndarray  # pool items that received pseudo-labels, in order
    pseudo_labels: np.ndarray
    true_labels: np.ndarray  # from the oracle's audit: for measurement, never for training

    def confusion(self, n_classes: int) -> np.ndarray:
        matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
        np.add.at(matrix, (self.true_labels, self.pseudo_labels), 1)
        return matrix


def run_self_training(
    model: Learner,
    pool: LabelledPool,
    held_out: Evaluation,
    batch_size: int,
    mode: str = "batches",
    max_rounds: int | None = None,
    min_confidence: float | None = None,
    on_round: Callable[[PseudoRound], None] | None = None,
) -> SelfTrainingResult:
    """Repeat: predict the unlabelled pool, pseudo-label the `batch_size` most confident items
    (`mode="all_at_once"`: all of them, the article's "classical" way), refit.

    Stops when the pool is used up, after `max_rounds`, or when the most confident remaining
    item is below `min_confidence`. Pseudo-labels cost no labels: the oracle is asked only to
    audit them, and what it says is used for the accuracy figures alone.
    """
    from al_research.experiment.loop import fit_and_measure
    from al_research.runtime import tf
    from al_research.strategies.uncertainty import most_confident

    indices: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    truths: list[np.ndarray] = []
    rounds: list[PseudoRound] = []
    hits = 0
    proba = model.predict_proba(tf.gather(pool.x, pool.unlabelled))  # rows: pool.unlabelled
    while len(pool.unlabelled) and (max_rounds is None or len(rounds) < max_rounds):
        unlabelled = pool.unlabelled
        take = len(unlabelled) if mode == "all_at_once" else batch_size
        positions = most_confident(proba, take)
        confidence = proba[positions].max(axis=1)
        if min_confidence is not None:
            keep = confidence >= min_confidence
            positions, confidence = positions[keep], confidence[keep]
            if not len(positions):
                break
        chosen = unlabelled[positions]
        pseudo = proba[positions].argmax(axis=1).astype(np.int64)
        truth = pool.oracle.audit(chosen)
        pool.add(chosen, labels=pseudo)
        indices.append(chosen)
        labels.append(pseudo)
        truths.append(truth)
        hits += int((pseudo == truth).sum())
        n_pseudo = sum(len(i) for i in indices)
        measured, proba, _ = fit_and_measure(model, pool, held_out)
        result = PseudoRound(
            n_pseudo=n_pseudo,
            test_accuracy=measured.test_accuracy,
            val_accuracy=measured.val_accuracy,
            pseudo_accuracy=hits / n_pseudo,
            batch_accuracy=float((pseudo == truth).mean()),
            min_batch_confidence=float(confidence.min()),
            epochs=measured.epochs,
        )
        rounds.append(result)
        if on_round is not None:
            on_round(result)
        if mode == "all_at_once":
            break

    def _cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    return SelfTrainingResult(rounds, _cat(indices), _cat(labels), _cat(truths))
