"""The learner protocol: what the loop, self-training, baselines and strategies may ask of a model.

A model module defines one class that satisfies `Learner`, plus a `Params` dataclass (its own
hyperparameters, `model.params.*` in the config) as a class attribute. Model modules import
TensorFlow lazily (the compiled training, `trainer` and `architecture`, is imported when the
first model is built), so that the config can be validated against `Params` before TF loads.

Capabilities are declared, not probed: a learner's `capabilities` says what it offers
(`Capability`), and `missing(needs, offers)` names what a consumer needs and it lacks.

Embeddings: `embed(x)` returns the input of the model's last dense (softmax) layer, the
penultimate features; for softmax regression the input itself (`embeds_input = True`). BADGE's
gradient embedding of the last layer at the predicted label is `(p - onehot(argmax p)) ⊗ h`
with `h = embed(x)` (and a constant 1 appended for the bias with `strategy.params.bias`), so
`embed` and `predict_proba` are all it needs: any model offering both offers gradient
embeddings (`Capability.GRAD_EMBEDDINGS`), with no separate gradient hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np


class CapabilityError(ValueError):
    """A strategy needs something the model cannot give (e.g. MC dropout without dropout)."""


class Capability(str, Enum):
    """What a learner can give beyond training and scoring."""

    PROBA = "proba"  # predict_proba
    MC_SAMPLES = "mc_samples"  # predict_proba_samples: stochastic (MC-dropout) passes
    EMBEDDINGS = "embeddings"  # embed: the last layer's input
    GRAD_EMBEDDINGS = "grad_embeddings"  # the last layer's gradient: from proba and embed
    RETRAIN = "retrain"  # spawn(seed): a fresh, untrained learner of the same configuration


def declare(*offers: Capability) -> frozenset[Capability]:
    """A learner's capabilities from what it offers directly, with what follows from them
    (gradient embeddings from probabilities and embeddings)."""
    out = set(offers)
    if {Capability.PROBA, Capability.EMBEDDINGS} <= out:
        out.add(Capability.GRAD_EMBEDDINGS)
    return frozenset(out)


def missing(needs: frozenset[Capability], offers: frozenset[Capability]) -> list[str]:
    """The names of what `needs` asks and `offers` lacks, sorted (empty: nothing missing)."""
    return sorted(Capability(c).value for c in set(needs) - set(offers))


@dataclass(frozen=True)
class FitInfo:
    """What one `fit` did: epochs run (the last one included), wall seconds, and the epoch
    whose weights were kept (the best one with early stopping, else the last; a learner that
    does not say kept the last)."""

    epochs: int
    seconds: float
    best_epoch: int = -1

    def __post_init__(self) -> None:
        if self.best_epoch < 0:
            object.__setattr__(self, "best_epoch", self.epochs)


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
    split keeps them); a model that needs images reshapes them itself. The loop hands them over
    as TensorFlow tensors (the pool and the held-out sets are copied to the device once): `x`
    and `y` are anything `np.asarray` takes.
    """

    Params: ClassVar[type]
    capabilities: frozenset[Capability]  # what it offers (declared, not probed)
    embeds_input: bool  # True when embed(x) is x itself: strategies may use the pool array
    has_dropout: bool  # Capability.MC_SAMPLES in capabilities (kept for older readers)

    def reset(self) -> None:
        """Fresh weights (seeded: the same seed gives the same weights) and optimizer state."""

    def fit(self, x: Any, y: Any) -> FitInfo:
        """Train on (x, y) under the model's TrainingSpec."""

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), deterministic (no dropout)."""

    def score(self, x: Any, y: Any) -> float:
        """Accuracy on (x, y): hits / n, the exact share of rows whose argmax is the label."""

    def embed(self, x: Any) -> np.ndarray:
        """The penultimate features (the last dense layer's input), shape (n, d)."""

    def predict_proba_and_embed(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """(predict_proba(x), embed(x)), from one forward pass where the model can."""

    def predict_proba_samples(self, x: Any, n_samples: int) -> np.ndarray:
        """`n_samples` stochastic passes with dropout on, shape (n_samples, n, n_classes).

        Raises CapabilityError for a model without Capability.MC_SAMPLES.
        """


@dataclass
class NoParams:
    """For a model (or strategy) without hyperparameters of its own."""
