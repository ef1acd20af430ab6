"""Keras networks for active learning: `MLP` and `CNN`, trained by the one trainer (trainer.py).

Both satisfy the `Learner` protocol (base.py) through `trained.TrainedModel`. Their `Params` are
plain dataclasses, checked in `__post_init__`; this module imports no TensorFlow, so a config is
validated before TF loads. The Keras model is built only to define the architecture (once per
process per architecture: `trainer.compiled_for`, `architecture.KerasNetwork`); a model
instance holds its own weights and Adam state.

Inputs are flat float32 rows (n, prod(input_shape)), as the data split keeps them; the CNN
reshapes them to `input_shape` (h, w, c) inside the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from al_research.models.base import Capability
from al_research.models.trained import TrainedModel, check


def _glorot(seed: int = 0) -> Any:
    """Keras's default kernel initializer, with a fixed seed for the template model (its values
    are never used: instances draw their own, seeded, in `reset()`), so that building it draws
    nothing from Keras's or Python's global random state."""
    import keras

    return keras.initializers.GlorotUniform(seed=seed)


class _Network(TrainedModel):
    """A Keras network behind the Learner protocol; subclasses define `Params`, `name` and
    `_build_model`.

    Both networks' only dropout is on the last Dense layer's input (the features): MC-dropout
    passes reuse one forward pass and resample that dropout alone (`head_dropout`)."""

    def _offers(self) -> tuple[Capability, ...]:
        return (Capability.MC_SAMPLES,) if self.params.dropout > 0 else ()

    def _architecture(self) -> Any:
        from al_research.models.architecture import KerasNetwork

        head_dropout = self.params.dropout if self.params.dropout > 0 else None
        return KerasNetwork(self._build_model(), self.n_features, head_dropout, self._chunk())

    def _chunk(self) -> int:
        """Rows per forward pass outside training (architecture.CHUNK: the CNN's)."""
        from al_research.models.architecture import CHUNK

        return CHUNK

    def _build_model(self) -> Any:
        """The Keras model: flat rows in, [penultimate features, logits] out."""
        raise NotImplementedError


class MLP(_Network):
    """One hidden ReLU layer with dropout, then a softmax layer."""

    name = "mlp"

    def _chunk(self) -> int:
        # ~8 MB of hidden activations per pass (8,192 rows of 256): a CNN's 512 rows would
        # cost the MLP a call per 512 rows (60,000 items: 118 calls, ~0.3 s of overhead)
        return max(512, (1 << 21) // max(1, self.params.hidden))

    @dataclass
    class Params:
        hidden: int = 256  # hidden units
        dropout: float = 0.5  # dropout rate after the hidden layer (0: none)

        def __post_init__(self) -> None:
            check(isinstance(self.hidden, int) and self.hidden >= 1,
                   f"model.params.hidden must be an integer >= 1, got {self.hidden!r}")
            check(0.0 <= self.dropout < 1.0,
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
            check(len(self.filters) == 2 and all(isinstance(f, int) and f >= 1
                                                  for f in self.filters),
                   f"model.params.filters must be two integers >= 1, got {list(self.filters)}")
            check(isinstance(self.kernel_size, int) and self.kernel_size >= 1,
                   f"model.params.kernel_size must be an integer >= 1, got {self.kernel_size!r}")
            check(isinstance(self.dense, int) and self.dense >= 1,
                   f"model.params.dense must be an integer >= 1, got {self.dense!r}")
            check(0.0 <= self.dropout < 1.0,
                   f"model.params.dropout must be in [0, 1), got {self.dropout!r}")

    @classmethod
    def check_input(cls, input_shape: tuple[int, ...]) -> None:
        shape = tuple(input_shape)
        check(len(shape) == 3 and all(int(d) >= 1 for d in shape),
               f"model=cnn needs image data, input_shape (height, width, channels); got "
               f"input_shape {shape}: use model=mlp or model=softmax for feature vectors")
        check(shape[0] >= 4 and shape[1] >= 4,
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
