"""`TrainedModel`: the Learner protocol over the one trainer, for every model class.

A model class (softmax.SoftmaxRegression, networks.MLP, networks.CNN) says only what its
architecture is (`_architecture()`, see architecture.py) and what it offers (`capabilities`);
training, prediction and scoring are the shared `trainer.Trainer`'s. This module imports no
TensorFlow: the trainer is imported when the first model is built, so a config is validated
before TF loads.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np

from al_research.models.base import Capability, CapabilityError, FitInfo, TrainingSpec, declare


def check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


class TrainedModel:
    """A model trained by the shared Trainer; subclasses define `Params`, `name` and
    `_architecture()`, and may add to `capabilities` (`_offers`)."""

    Params: ClassVar[type]
    name: ClassVar[str]
    embeds_input: ClassVar[bool] = False  # True when embed(x) is x: strategies use the pool
    # what every trained model offers; a class adds to it in `_offers`
    BASE_OFFERS: ClassVar[tuple[Capability, ...]] = (
        Capability.PROBA, Capability.EMBEDDINGS, Capability.RETRAIN)

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_classes: int,
        monitor: tuple[np.ndarray, np.ndarray] | None,
        training: TrainingSpec,
        params: Any = None,
        seed: int = 0,
    ) -> None:
        input_shape = tuple(int(d) for d in input_shape)
        self.check_input(input_shape)
        check(n_classes >= 2, f"model={self.name} needs at least 2 classes, got {n_classes}")
        self.input_shape = input_shape
        self.n_features = math.prod(input_shape)
        self.n_classes = int(n_classes)
        self.params = self.Params() if params is None else params
        self.training = training
        self.seed = int(seed)
        self.monitor = monitor
        self.capabilities: frozenset[Capability] = declare(*self.BASE_OFFERS, *self._offers())

        from al_research.models import trainer

        key = (type(self).__module__, type(self).__qualname__, input_shape, self.n_classes,
               _frozen(self.params))
        self._trainer = trainer.Trainer(trainer.compiled_for(key, self._architecture),
                                        training, self.seed, monitor)

    @classmethod
    def check_input(cls, input_shape: tuple[int, ...]) -> None:
        """Raise ValueError if this model cannot take items of `input_shape`."""
        check(len(input_shape) >= 1 and all(int(d) >= 1 for d in input_shape),
              f"model={cls.name}: bad input_shape {tuple(input_shape)}")

    def _offers(self) -> tuple[Capability, ...]:
        """Capabilities beyond probabilities and embeddings (e.g. MC_SAMPLES with dropout)."""
        return ()

    def _architecture(self) -> Any:
        """The architecture (architecture.py) the trainer compiles; built once per process."""
        raise NotImplementedError

    @property
    def has_dropout(self) -> bool:
        """Whether predict_proba_samples gives stochastic passes (Capability.MC_SAMPLES)."""
        return Capability.MC_SAMPLES in self.capabilities

    # -- the Learner protocol ---------------------------------------------------------------
    def reset(self) -> None:
        """Fresh seeded weights (the n-th reset of a seed draws the same weights every time)
        and a fresh optimizer (zero moments and step)."""
        self._trainer.reset()

    def fit(self, x: Any, y: Any) -> FitInfo:
        """Train on (x, y) under the TrainingSpec: one compiled call for the whole fit."""
        return self._trainer.fit(x, y)

    def predict_proba(self, x: Any) -> np.ndarray:
        return self._trainer.predict_proba(x)

    def predict(self, x: Any) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)

    def score(self, x: Any, y: Any) -> float:
        """Accuracy on (x, y): hits / n from an integer count of hits (NaN on no rows)."""
        return self._trainer.score(x, y)

    def embed(self, x: Any) -> np.ndarray:
        """The last Dense layer's input (the hidden features, dropout off), shape (n, d)."""
        return self._trainer.embed(x)

    def predict_proba_and_embed(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """(predict_proba(x), embed(x)) from one forward pass."""
        return self._trainer.predict_proba_and_embed(x)

    def predict_proba_samples(self, x: Any, n_samples: int) -> np.ndarray:
        """`n_samples` passes with dropout on, shape (n_samples, n, n_classes); each call draws
        new masks, reproducibly (seeded from the model's seed and the number of calls)."""
        if Capability.MC_SAMPLES not in self.capabilities:
            raise CapabilityError(f"model={self.name} has no dropout: it gives no MC-dropout "
                                  "samples")
        return self._trainer.predict_proba_samples(x, n_samples)

    def spawn(self, seed: int) -> TrainedModel:
        """A fresh, untrained model of the same class, params, training and early-stopping
        set, seeded with `seed` (Capability.RETRAIN: a bootstrap committee's member). Its
        compiled functions are this one's (built once per process): no retracing."""
        return type(self)(self.input_shape, self.n_classes, self.monitor, self.training,
                          self.params, seed)

    # -- introspection (tests, benchmarks) --------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        """The current weights, as NumPy arrays (a copy)."""
        return [w.numpy() for w in self._trainer.weights]

    @property
    def adam_step(self) -> int:
        """Adam steps taken since the last reset (Keras's `iterations`)."""
        return int(self._trainer.step)

    def tracing_counts(self) -> dict[str, int]:
        """How many times each of this architecture's compiled functions has been traced."""
        return self._trainer.compiled.tracing_counts()


def _frozen(params: Any) -> tuple:
    """A hashable form of a Params dataclass (lists become tuples)."""
    def freeze(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(freeze(v) for v in value)
        return value

    return tuple((f.name, freeze(getattr(params, f.name))) for f in dataclasses.fields(params))
