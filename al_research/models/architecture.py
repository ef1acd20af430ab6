"""Architectures: the pure forward passes the one trainer (trainer.py) compiles and trains.

An architecture is what differs between models, and nothing else: the weights' shapes
(`weight_specs`), their initialisation (`initial_weights(seed)`), and a pure forward pass
`forward(weights, x, training, seed=None) -> (features, logits)` over flat float32 rows, where
`features` is the last layer's input (the embedding) and `seed` seeds dropout when training.
It also says how many rows a forward pass should take at most outside training (`chunk`, None:
all), whether it trains only full-batch (`full_batch`), whether it has dropout (`has_dropout`)
and, if so, how to make Monte Carlo dropout passes (`dropout_passes`). These are known when the
trainer traces, so a model without mini-batches or dropout pays for neither.

* `KerasNetwork`: a Keras model (built by its class, e.g. `networks.MLP`) whose outputs are
  `[features, logits]`, called through `stateless_call`.
* `Linear`: softmax regression, `logits = x @ W + b` with `features = x`, weights at zero.

This module imports TensorFlow: model modules import it when they build their first model.
"""

from __future__ import annotations

from typing import Any

from al_research.models.trainer import derive_seed
from al_research.runtime import tf

# Rows per forward pass when predicting or computing the monitored accuracy: bounds memory
# whatever the set's size (a CNN's first feature maps on 512 rows of 28x28x16 are 25 MB), and
# is about the fastest for the CNN on CPU (measured: 4000 rows in 100 ms; 165 ms in one pass).
CHUNK = 512

_SEED_STATE = "seed_generator_state"  # the name Keras gives a SeedGenerator's state variable


def _layer_seed(seed, i: int):
    """The i-th dropout layer's seed state (Keras keeps it as int64) for one forward pass."""
    return tf.cast(tf.random.experimental.stateless_fold_in(seed, tf.constant(i, tf.int64)),
                   tf.int64)


def _keras_op_seed(state):
    """What Keras's TF backend hands a stateless random op for a seed state (its _cast_seed)."""
    return tf.cast(tf.math.floormod(state, tf.int32.max - 1), tf.int32)


class Linear:
    """Softmax regression's `x W + b` (the article's model): zero initial weights, no Keras.

    The forward pass is the ops the article's model always used (`tf.matmul(x, w) + b`), so its
    numbers stay bit-identical; one matmul needs no chunking.
    """

    chunk: int | None = None
    has_dropout = False
    full_batch = True  # an epoch is one step on the whole set (the article's epochs)

    def __init__(self, n_features: int, n_classes: int) -> None:
        self.n_features = int(n_features)
        self.weight_specs = [tf.TensorSpec([self.n_features, n_classes], tf.float32),
                             tf.TensorSpec([n_classes], tf.float32)]

    def initial_weights(self, seed: int) -> list[tf.Tensor]:
        """Zeros (the article's `tf.zeros`), whatever the seed."""
        return [tf.zeros(spec.shape, tf.float32) for spec in self.weight_specs]

    @staticmethod
    def forward(weights, x, training, seed=None):
        w, b = weights
        return x, tf.matmul(x, w) + b


class KerasNetwork:
    """A Keras model with flat float32 rows in and `[features, logits]` out, as pure functions.

    `head_dropout`: the rate of the model's only dropout layer when it sits on the last Dense
    layer's input (MC-dropout passes then reuse one forward pass); None: full passes.
    """

    chunk: int | None = CHUNK
    full_batch = False  # mini-batches when the TrainingSpec has a batch_size

    def __init__(self, model: Any, n_features: int, head_dropout: float | None = None,
                 chunk: int | None = CHUNK) -> None:
        self.model = model
        self.chunk = chunk
        self.n_features = int(n_features)
        self.head_dropout = head_dropout
        weights = list(model.trainable_variables)
        states = list(model.non_trainable_variables)
        others = [v.path for v in states if v.name != _SEED_STATE]
        if others:  # e.g. BatchNormalization's statistics: would need threading through fit
            raise NotImplementedError(
                f"non-trainable state other than dropout seeds is not supported: {others}")
        self.n_seeds = len(states)  # one per dropout layer
        self.has_dropout = self.n_seeds > 0
        if head_dropout is not None and self.n_seeds != 1:
            raise ValueError("head_dropout: the model must have exactly one dropout layer, on "
                             f"the last Dense layer's input; it has {self.n_seeds}")
        self.weight_specs = [tf.TensorSpec(v.shape, tf.float32) for v in weights]
        self.initializers = self._initializers(model, weights)

    @staticmethod
    def _initializers(model: Any, weights: list[Any]) -> list[Any]:
        """Each trainable variable's initializer, from the layer that owns it."""
        owner: dict[int, Any] = {}
        for layer in model.layers:
            for attr in ("kernel", "bias"):
                variable = getattr(layer, attr, None) if layer.built else None
                if variable is not None:
                    owner[id(variable)] = getattr(layer, f"{attr}_initializer")
        missing = [v.path for v in weights if id(v) not in owner]
        if missing:
            raise NotImplementedError(f"no initializer found for {missing}: layers with "
                                      "weights other than kernel/bias are not supported")
        return [owner[id(v)] for v in weights]

    def initial_weights(self, seed: int) -> list[tf.Tensor]:
        """Fresh weights from the layers' initializers, each seeded from (seed, its index)."""
        out = []
        for i, (init, spec) in enumerate(zip(self.initializers, self.weight_specs, strict=True)):
            config = init.get_config()
            if "seed" in config:
                init = type(init).from_config({**config, "seed": derive_seed(seed, i)})
            out.append(tf.convert_to_tensor(init(tuple(spec.shape), "float32")))
        return out

    def forward(self, weights, x, training, seed=None):
        """(features, logits); dropout (training) seeded per layer from `seed`."""
        if seed is None:
            seeds = [tf.zeros([2], tf.int64)] * self.n_seeds
        else:
            seeds = [_layer_seed(seed, i) for i in range(self.n_seeds)]
        (features, logits), _ = self.model.stateless_call(list(weights), seeds, x,
                                                           training=training)
        return features, logits

    def dropout_passes(self, weights, x, n_samples, seed):
        """`n_samples` passes' class probabilities (n_samples, n, C) with dropout on, pass t
        seeded from (seed, t). With `head_dropout`, the features are computed once and pass t
        is that dropout and the last layer, with one mask for every row ("consistent" MC
        dropout: a pass is one draw of the weights, as joint estimates over items need:
        BatchBALD, EPIG); as (features * mask) @ kernel == features @ (mask^T * kernel), the
        masks scale the kernel's rows, and all passes are one batched product. Full passes (no
        `head_dropout`) use the layers' own dropout, one mask per row: no model here does."""
        seeds = tf.map_fn(lambda t: tf.random.experimental.stateless_fold_in(seed, t),
                          tf.range(n_samples, dtype=tf.int32), fn_output_signature=tf.int32)
        if self.head_dropout is None:
            return tf.map_fn(lambda s: tf.nn.softmax(self.forward(weights, x, True, s)[1]),
                             seeds, fn_output_signature=tf.float32)
        features = self.forward(weights, x, False)[0]
        kernel, bias = weights[-2], weights[-1]
        ones = tf.ones([1, tf.shape(features)[1]], features.dtype)
        rate = self.head_dropout

        def mask(s):  # one mask per pass, shared by every row: one draw of the weights
            return tf.nn.experimental.stateless_dropout(
                ones, rate=rate, seed=_keras_op_seed(_layer_seed(s, 0)))[0]

        masks = tf.map_fn(mask, seeds, fn_output_signature=features.dtype)  # (T, d)
        kernels = masks[:, :, None] * kernel[None]  # (T, d, C)
        return tf.nn.softmax(tf.einsum("nd,tdc->tnc", features, kernels) + bias)
