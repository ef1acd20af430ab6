"""The learner protocol: what the loop, self-training, baselines and strategies may ask of a model.

A model module defines one class that satisfies `Learner`, plus a `Params` dataclass (its own
hyperparameters, `model.params.*` in the config) as a class attribute. Model modules import
TensorFlow lazily (inside methods, or through `al_research.models.training`), so that the config
can be validated against `Params` before TensorFlow loads.

Embeddings: `embed(x)` returns the input of the model's last dense (softmax) layer, the
penultimate features; for softmax regression the input itself (`embeds_input = True`). BADGE's
gradient embedding of the last layer at the predicted label is `(p - onehot(argmax p)) ⊗ h`
with `h = embed(x)` (and a constant 1 appended for the bias with `strategy.params.bias`), so
`embed` and `predict_proba` are all it needs: no separate gradient hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np


class CapabilityError(ValueError):
    """A strategy needs something the model cannot give (e.g. MC dropout without dropout)."""


@dataclass(frozen=True)
class FitInfo:
    """What one `fit` did: epochs run (the last one included) and wall seconds."""

    epochs: int
    seconds: float


@dataclass(frozen=True)
class TrainingSpec:
    """How every model trains, whatever its architecture (`model.*` in the config).

    One epoch is one pass over the labelled set: a single full-batch step when `batch_size` is
    None (the article), else mini-batches of `batch_size`. With `stopping="early"`, `fit` stops
    when the monitored accuracy has not improved for `patience` epochs and restores the best
    weights; with `stopping="fixed"`, it runs `max_epochs` epochs and keeps the last weights (no
    monitored set needed). `warm_start`: `reset()` happens once and each `fit` continues from the
    last weights (the article); otherwise every `fit` starts from freshly initialised weights.
    """

    lr: float = 0.1
    warm_start: bool = True
    patience: int = 10
    max_epochs: int = 1000
    batch_size: int | None = None
    stopping: str = "early"


@runtime_checkable
class Learner(Protocol):
    """A classifier the active-learning loop can train and query.

    `x` arrays are float32 feature rows of shape (n, prod(input_shape)) (flattened, as the data
    split keeps them); a model that needs images reshapes them itself.
    """

    Params: ClassVar[type]
    has_dropout: bool  # True when predict_proba_samples gives stochastic passes

    def reset(self) -> None:
        """Fresh weights (seeded: the same seed gives the same weights) and optimizer state."""

    def fit(self, x: Any, y: Any) -> FitInfo:
        """Train on (x, y) under the model's TrainingSpec."""

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), deterministic (no dropout)."""

    def score(self, x: Any, y: Any) -> float:
        """Accuracy on (x, y): the share of rows whose argmax is the label."""

    def embed(self, x: Any) -> np.ndarray:
        """The penultimate features (the last dense layer's input), shape (n, d)."""

    def predict_proba_samples(self, x: Any, n_samples: int) -> np.ndarray:
        """`n_samples` stochastic passes with dropout on, shape (n_samples, n, n_classes).

        Raises CapabilityError for a model without dropout.
        """


@dataclass
class NoParams:
    """For a model (or strategy) without hyperparameters of its own."""
