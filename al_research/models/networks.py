"""Keras networks for active learning: `MLP` and `CNN`, trained by compiled fits (training.py).

Both satisfy the `Learner` protocol (base.py). Their `Params` are plain dataclasses, checked in
`__post_init__`; this module imports no TensorFlow, so a config is validated before TF loads.
The Keras model is built only to define the architecture (and once per process per
architecture: `training.compiled_for`); a model instance holds its own weights and Adam state.

Inputs are flat float32 rows (n, prod(input_shape)), as the data split keeps them; the CNN
reshapes them to `input_shape` (h, w, c) inside the network.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from al_research.models.base import CapabilityError, FitInfo, TrainingSpec


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _glorot(seed: int = 0) -> Any:
    """Keras's default kernel initializer, with a fixed seed for the template model (its values
    are never used: instances draw their own, seeded, in `reset()`), so that building it draws
    nothing from Keras's or Python's global random state."""
    import keras

    return keras.initializers.GlorotUniform(seed=seed)


class _Network:
    """A Keras network behind the Learner protocol; subclasses define `Params` and `build`."""

    Params: ClassVar[type]
    name: ClassVar[str]

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
        _check(n_classes >= 2, f"model={self.name} needs at least 2 classes, got {n_classes}")
        self.input_shape = input_shape
        self.n_classes = int(n_classes)
        self.params = self.Params() if params is None else params
        self.training = training
        self.seed = int(seed)
        self.has_dropout = self.params.dropout > 0

        from al_research.models import training as compiled

        key = (type(self).__module__, type(self).__qualname__, input_shape, self.n_classes,
               _frozen(self.params))
        # Both networks' only dropout is on the last Dense layer's input (the features):
        # MC-dropout passes reuse one forward pass and resample that dropout alone.
        head_dropout = self.params.dropout if self.has_dropout else None
        network = compiled.compiled_for(key, self._build_model, math.prod(input_shape),
                                        head_dropout)
        self._trainer = compiled.Trainer(network, training, self.seed, monitor)

    @classmethod
    def check_input(cls, input_shape: tuple[int, ...]) -> None:
        """Raise ValueError if this model cannot take items of `input_shape`."""
        _check(len(input_shape) >= 1 and all(int(d) >= 1 for d in input_shape),
               f"model={cls.name}: bad input_shape {tuple(input_shape)}")

    def _build_model(self) -> Any:
        """The Keras model: flat rows in, [penultimate features, logits] out."""
        raise NotImplementedError

    # -- the Learner protocol ---------------------------------------------------------------
    def reset(self) -> None:
        """Fresh seeded weights (the n-th reset of a seed draws the same weights every time)
        and a fresh optimizer."""
        self._trainer.reset()

    def fit(self, x: Any, y: Any) -> FitInfo:
        """Train on (x, y) under the TrainingSpec: one compiled call for the whole fit."""
        return self._trainer.fit(x, y)

    def predict_proba(self, x: Any) -> np.ndarray:
        return self._trainer.predict_proba(x)

    def predict(self, x: Any) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)

    def score(self, x: Any, y: Any) -> float:
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
        if not self.has_dropout:
            raise CapabilityError(f"model={self.name} has dropout=0: no stochastic passes")
        return self._trainer.predict_proba_samples(x, n_samples)

    # -- introspection (tests, benchmarks) --------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        """The current weights, as NumPy arrays (a copy)."""
        return [w.numpy() for w in self._trainer.weights]

    def tracing_counts(self) -> dict[str, int]:
        """How many times each of this architecture's compiled functions has been traced."""
        return self._trainer.network.tracing_counts()


def _frozen(params: Any) -> tuple:
    """A hashable form of a Params dataclass (lists become tuples)."""
    def freeze(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(freeze(v) for v in value)
        return value

    return tuple((f.name, freeze(getattr(params, f.name))) for f in dataclasses.fields(params))


class MLP(_Network):
    """One hidden ReLU layer with dropout, then a softmax layer."""

    name = "mlp"

    @dataclass
    class Params:
        hidden: int = 256  # hidden units
        dropout: float = 0.5  # dropout rate after the hidden layer (0: none)

        def __post_init__(self) -> None:
            _check(isinstance(self.hidden, int) and self.hidden >= 1,
                   f"model.params.hidden must be an integer >= 1, got {self.hidden!r}")
            _check(0.0 <= self.dropout < 1.0,
                   f"model.params.dropout must be in [0, 1), got {self.dropout!r}")

    def _build_model(self) -> Any:
        import keras

        p = self.params
        inputs = keras.Input((math.prod(self.input_shape),))
        h = keras.layers.Dense(p.hidden, activation="relu", kernel_initializer=_glorot())(inputs)
        if p.dropout > 0:
            h = keras.layers.Dropout(p.dropout, seed=0)(h)
        logits = keras.layers.Dense(self.n_classes, kernel_initializer=_glorot())(h)
        return keras.Model(inputs, [h, logits], name=f"{self.name}_template")


class CNN(_Network):
    """LeNet-style: two conv (ReLU, 'same') / 2x2 max-pool blocks, one dense ReLU layer with
    dropout, then a softmax layer. Takes images: input_shape (h, w, c), h and w >= 4."""

    name = "cnn"

    @dataclass
    class Params:
        filters: tuple[int, ...] = (32, 64)  # filters of the two conv blocks
        kernel_size: int = 3
        dense: int = 128  # units of the dense layer before the softmax
        dropout: float = 0.5  # dropout rate after the dense layer (0: none)

        def __post_init__(self) -> None:
            self.filters = tuple(self.filters)
            _check(len(self.filters) == 2 and all(isinstance(f, int) and f >= 1
                                                  for f in self.filters),
                   f"model.params.filters must be two integers >= 1, got {list(self.filters)}")
            _check(isinstance(self.kernel_size, int) and self.kernel_size >= 1,
                   f"model.params.kernel_size must be an integer >= 1, got {self.kernel_size!r}")
            _check(isinstance(self.dense, int) and self.dense >= 1,
                   f"model.params.dense must be an integer >= 1, got {self.dense!r}")
            _check(0.0 <= self.dropout < 1.0,
                   f"model.params.dropout must be in [0, 1), got {self.dropout!r}")

    @classmethod
    def check_input(cls, input_shape: tuple[int, ...]) -> None:
        shape = tuple(input_shape)
        _check(len(shape) == 3 and all(int(d) >= 1 for d in shape),
               f"model=cnn needs image data, input_shape (height, width, channels); got "
               f"input_shape {shape}: use model=mlp or model=softmax for feature vectors")
        _check(shape[0] >= 4 and shape[1] >= 4,
               f"model=cnn needs images of at least 4x4 pixels (two 2x2 poolings); got "
               f"input_shape {shape}")

    def _build_model(self) -> Any:
        import keras

        p, layers = self.params, keras.layers
        inputs = keras.Input((math.prod(self.input_shape),))
        h = layers.Reshape(self.input_shape)(inputs)
        for i, filters in enumerate(p.filters):
            h = layers.Conv2D(filters, p.kernel_size, padding="same", activation="relu",
                              kernel_initializer=_glorot(i))(h)
            h = layers.MaxPooling2D(2)(h)
        h = layers.Flatten()(h)
        h = layers.Dense(p.dense, activation="relu", kernel_initializer=_glorot(2))(h)
        if p.dropout > 0:
            h = layers.Dropout(p.dropout, seed=0)(h)
        logits = layers.Dense(self.n_classes, kernel_initializer=_glorot(3))(h)
        return keras.Model(inputs, [h, logits], name=f"{self.name}_template")


__all__ = ["MLP", "CNN"]
