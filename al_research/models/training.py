"""Compiled training for Keras networks: one `tf.function` per fit, one trace per architecture.

A network is a Keras model (built by its class, e.g. `networks.MLP`) whose inputs are flat
float32 rows and whose outputs are `[features, logits]`: the penultimate features (the input of
the last Dense layer) and the class logits. Training never calls `model.fit`: it calls the
model's `stateless_call` inside pure functions whose arguments are the weights, Adam's moments,
the step count, the seeds and every hyperparameter, so

* a whole `fit` (every epoch, every mini-batch, the monitored accuracy after each epoch, early
  stopping and the restore of the best weights) is one compiled call, with no Python per epoch;
* the compiled functions belong to the architecture (class, input shape, classes, params), not
  to a model instance: they live in a process-wide cache (`compiled_for`), and every instance of
  the same architecture (each round, seed, job of a sweep worker) reuses the same traces. The
  labelled set's size is a free dimension, and so are the learning rate, patience, epoch cap,
  batch size and stopping mode, so one trace serves every fit of a process.
* `keras.backend.clear_session()` (runtime.reset_tensorflow_state, between jobs) cannot break
  them: a compiled function holds its own graph, and the template model behind it is kept alive
  by the cache; nothing of one model's numbers is captured (instances hold their own tensors).

Randomness is explicit and seeded: initial weights from the layers' own initializers with a seed
derived from (seed, number of resets); dropout masks and mini-batch order from seeds derived
from (seed, number of fits), folded in per step and epoch inside the graph; Monte Carlo dropout
from (seed, number of sampling calls). Same seed, same calls: same numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from al_research.models.base import FitInfo, TrainingSpec
from al_research.runtime import tf

# Keras's Adam defaults (keras.optimizers.Adam); `_adam` is its update_step, op for op.
BETA_1 = 0.9
BETA_2 = 0.999
EPSILON = 1e-7

# Rows per forward pass when predicting or computing the monitored accuracy: bounds memory
# whatever the set's size (a CNN's first feature maps on 512 rows of 28x28x16 are 25 MB), and
# is about the fastest for the CNN on CPU (measured: 4000 rows in 100 ms; 165 ms in one pass).
CHUNK = 512

_SEED_STATE = "seed_generator_state"  # the name Keras gives a SeedGenerator's state variable


def derive_seed(*entropy: int) -> int:
    """A 31-bit seed from integers (e.g. model seed, purpose, counter): reproducible, spread."""
    return int(np.random.SeedSequence([abs(int(e)) for e in entropy]).generate_state(1)[0]
               % (2**31 - 1))


def _pair(seed: int) -> tf.Tensor:
    """A stateless-RNG seed tensor (shape [2], int64) from an int."""
    return tf.constant([seed, 0], tf.int64)


def _layer_seed(seed, i: int):
    """The i-th dropout layer's seed state (Keras keeps it as int64) for one forward pass."""
    return tf.cast(tf.random.experimental.stateless_fold_in(seed, tf.constant(i, tf.int64)),
                   tf.int64)


def _keras_op_seed(state):
    """What Keras's TF backend hands a stateless random op for a seed state (its _cast_seed)."""
    return tf.cast(tf.math.floormod(state, tf.int32.max - 1), tf.int32)


def _adam(params, grads, m, v, step, lr):
    """Keras 3's Adam.update_step on lists of tensors, functional: new (params, m, v)."""
    local_step = tf.cast(step + 1, tf.float32)
    beta_1_power = tf.pow(tf.constant(BETA_1, tf.float32), local_step)
    beta_2_power = tf.pow(tf.constant(BETA_2, tf.float32), local_step)
    alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    new_p, new_m, new_v = [], [], []
    for p, g, m_i, v_i in zip(params, grads, m, v, strict=True):
        m_i = m_i + (g - m_i) * (1 - BETA_1)
        v_i = v_i + (tf.square(g) - v_i) * (1 - BETA_2)
        new_p.append(p - (m_i * alpha) / (tf.sqrt(v_i) + EPSILON))
        new_m.append(m_i)
        new_v.append(v_i)
    return new_p, new_m, new_v


class CompiledNetwork:
    """One architecture's template Keras model and its compiled, pure functions.

    Built once per process per architecture (`compiled_for`); each function is traced on first
    use and called through its concrete function afterwards (no per-call argument binding).
    """

    def __init__(self, model: Any, n_features: int, head_dropout: float | None = None) -> None:
        self.model = model
        self.n_features = n_features
        self.head_dropout = head_dropout
        weights = list(model.trainable_variables)
        states = list(model.non_trainable_variables)
        others = [v.path for v in states if v.name != _SEED_STATE]
        if others:  # e.g. BatchNormalization's statistics: would need threading through fit
            raise NotImplementedError(
                f"non-trainable state other than dropout seeds is not supported: {others}")
        self.n_seeds = len(states)  # one per dropout layer
        if head_dropout is not None and self.n_seeds != 1:
            raise ValueError("head_dropout: the model must have exactly one dropout layer, on "
                             f"the last Dense layer's input; it has {self.n_seeds}")
        self.weight_specs = [tf.TensorSpec(v.shape, tf.float32) for v in weights]
        self.initializers = self._initializers(model, weights)
        self._traced: dict[str, Any] = {}
        self.functions = self._functions()

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

    def concrete(self, name: str) -> Any:
        """The concrete function `name` ('fit', 'proba', 'embed', 'accuracy', 'samples')."""
        if name not in self._traced:
            self._traced[name] = self.functions[name].get_concrete_function()
        return self._traced[name]

    def tracing_counts(self) -> dict[str, int]:
        return {k: f.experimental_get_tracing_count() for k, f in self.functions.items()}

    def _functions(self) -> dict[str, Any]:
        model, n_seeds, head_dropout = self.model, self.n_seeds, self.head_dropout
        rows = tf.TensorSpec([None, self.n_features], tf.float32)
        labels = tf.TensorSpec([None], tf.int64)
        weight_specs = list(self.weight_specs)
        seed_spec = tf.TensorSpec([2], tf.int64)
        scalar = {t: tf.TensorSpec([], t) for t in (tf.float32, tf.int32, tf.int64, tf.bool)}

        def forward(weights, x, training, seed=None):
            """(features, logits); dropout (training) seeded per layer from `seed`."""
            if seed is None:
                seeds = [tf.zeros([2], tf.int64)] * n_seeds
            else:
                seeds = [_layer_seed(seed, i) for i in range(n_seeds)]
            (features, logits), _ = model.stateless_call(list(weights), seeds, x,
                                                          training=training)
            return features, logits

        def accuracy(x, y, weights):
            """Share of rows of x whose argmax is y, CHUNK rows per forward pass."""
            n = tf.shape(x)[0]
            hits = tf.constant(0, tf.int64)
            start = tf.constant(0)
            while start < n:
                end = tf.minimum(start + CHUNK, n)
                _, logits = forward(weights, x[start:end], False)
                hits += tf.reduce_sum(
                    tf.cast(tf.equal(tf.argmax(logits, axis=1), y[start:end]), tf.int64))
                start = end
            return tf.cast(hits, tf.float32) / tf.cast(tf.maximum(n, 1), tf.float32)

        def batch_order(n, n_batches, seed, epoch):
            """The epoch's row order: shuffled (seeded by epoch) when there are mini-batches."""
            return tf.cond(n_batches > 1, lambda: tf.argsort(tf.random.stateless_uniform(
                [n], tf.random.experimental.stateless_fold_in(seed, epoch))),
                lambda: tf.range(n))

        def take(x, y, idx, n_batches):
            """The mini-batch's rows; the whole set itself (no copy) when it is one batch."""
            return tf.cond(n_batches > 1, lambda: (tf.gather(x, idx), tf.gather(y, idx)),
                           lambda: (x, y))

        def monitored(early, val_x, val_y, weights):
            return tf.cond(early, lambda: accuracy(val_x, val_y, weights),
                           lambda: tf.constant(0.0))

        def fit(x, y, val_x, val_y, weights, m, v, step, seed, lr, patience, max_epochs,
                batch_size, early):
            """Epochs of shuffled mini-batches (one batch when batch_size <= 0 or >= n) of
            Adam steps; with `early`, the accuracy on (val_x, val_y) after each epoch, stop
            `patience` epochs after the best and return it, else run max_epochs, return last.

            Returns (epochs, best_epoch, weights, m, v, step).
            """
            n = tf.shape(x)[0]
            size = tf.where((batch_size > 0) & (batch_size < n), batch_size, n)
            n_batches = (n + size - 1) // size
            dropout_seed = tf.random.experimental.stateless_fold_in(seed, 0)
            shuffle_seed = tf.random.experimental.stateless_fold_in(seed, 1)
            weights, m, v = list(weights), list(m), list(v)
            best = [tf.identity(w) for w in weights]
            best_acc = tf.constant(-1.0)
            best_epoch = tf.constant(0)
            epoch = tf.constant(0)
            wait = tf.constant(0)
            fit_step = tf.constant(0, tf.int64)  # steps in this fit: the dropout stream
            while epoch < max_epochs and wait < patience:
                order = batch_order(n, n_batches, shuffle_seed, epoch)
                batch = tf.constant(0)
                while batch < n_batches:
                    xb, yb = take(x, y, order[batch * size:tf.minimum((batch + 1) * size, n)],
                                  n_batches)
                    step_seed = tf.random.experimental.stateless_fold_in(dropout_seed, fit_step)
                    with tf.GradientTape() as tape:
                        tape.watch(weights)
                        _, logits = forward(weights, xb, True, step_seed)
                        loss = tf.reduce_mean(
                            tf.nn.sparse_softmax_cross_entropy_with_logits(yb, logits))
                    grads = tape.gradient(loss, weights)
                    weights, m, v = _adam(weights, grads, m, v, step, lr)
                    step += 1
                    fit_step += 1
                    batch += 1
                epoch += 1
                acc = monitored(early, val_x, val_y, weights)
                improved = acc > best_acc
                best_acc = tf.where(improved, acc, best_acc)
                best_epoch = tf.where(improved, epoch, best_epoch)
                best = [tf.where(improved, w, b) for w, b in zip(weights, best, strict=True)]
                wait = tf.where(improved, 0, wait + 1)
            out = [tf.where(early, b, w) for w, b in zip(weights, best, strict=True)]
            best_epoch = tf.where(early, best_epoch, epoch)
            return epoch, best_epoch, out, m, v, step

        def proba(x, weights):
            return tf.nn.softmax(forward(weights, x, False)[1])

        def embed(x, weights):
            return forward(weights, x, False)[0]

        def samples(x, weights, n_samples, seed):
            """n_samples forward passes with dropout on, each with its own seed."""
            passes = tf.TensorArray(tf.float32, size=n_samples)
            for t in tf.range(n_samples):
                pass_seed = tf.random.experimental.stateless_fold_in(seed, t)
                passes = passes.write(t, tf.nn.softmax(forward(weights, x, True, pass_seed)[1]))
            return passes.stack()

        def head_samples(x, weights, n_samples, seed):
            """The same passes when the only dropout sits on the last Dense layer's input: the
            features are computed once, and each pass is that dropout and the last layer."""
            features = forward(weights, x, False)[0]
            kernel, bias = weights[-2], weights[-1]
            passes = tf.TensorArray(tf.float32, size=n_samples)
            for t in tf.range(n_samples):
                pass_seed = tf.random.experimental.stateless_fold_in(seed, t)
                dropped = tf.nn.experimental.stateless_dropout(
                    features, rate=head_dropout, seed=_keras_op_seed(_layer_seed(pass_seed, 0)))
                passes = passes.write(t, tf.nn.softmax(tf.matmul(dropped, kernel) + bias))
            return passes.stack()

        def proba_and_embed(x, weights):
            features, logits = forward(weights, x, False)
            return tf.nn.softmax(logits), features

        return {
            "fit": tf.function(fit, input_signature=[
                rows, labels, rows, labels, weight_specs, weight_specs, weight_specs,
                scalar[tf.int64], seed_spec, scalar[tf.float32], scalar[tf.int32],
                scalar[tf.int32], scalar[tf.int32], scalar[tf.bool]]),
            "accuracy": tf.function(accuracy, input_signature=[rows, labels, weight_specs]),
            "proba": tf.function(proba, input_signature=[rows, weight_specs]),
            "embed": tf.function(embed, input_signature=[rows, weight_specs]),
            "samples": tf.function(samples if head_dropout is None else head_samples,
                                   input_signature=[rows, weight_specs, scalar[tf.int32],
                                                    seed_spec]),
            "proba_and_embed": tf.function(proba_and_embed, input_signature=[rows, weight_specs]),
        }


_CACHE: dict[Hashable, CompiledNetwork] = {}


def compiled_for(key: Hashable, build: Callable[[], Any], n_features: int,
                 head_dropout: float | None = None) -> CompiledNetwork:
    """The process-wide CompiledNetwork of an architecture, built by `build()` on first use.

    `key` must identify the architecture completely (class, input shape, classes, params).
    `head_dropout`: the rate of the model's only dropout layer when it sits on the last Dense
    layer's input (MC-dropout passes then reuse one forward pass); None: full passes.
    """
    network = _CACHE.get(key)
    if network is None:
        network = _CACHE[key] = CompiledNetwork(build(), n_features, head_dropout)
    return network


@dataclass
class Trainer:
    """One network instance's state (weights, Adam's moments and step) and its training.

    `monitor` is the early-stopping set; None only with `spec.stopping == "fixed"`.
    """

    network: CompiledNetwork
    spec: TrainingSpec
    seed: int
    monitor: tuple[np.ndarray, np.ndarray] | None = None
    resets: int = 0  # how many times reset() ran: seeds the next initial weights
    fits: int = 0  # how many fits ran: seeds each fit's dropout and batch order
    draws: int = 0  # how many predict_proba_samples calls: seeds their dropout
    weights: list[Any] = field(default_factory=list)
    m: list[Any] = field(default_factory=list)
    v: list[Any] = field(default_factory=list)
    step: Any = None

    def __post_init__(self) -> None:
        if self.spec.stopping not in ("early", "fixed"):
            raise ValueError(f"stopping must be 'early' or 'fixed', got {self.spec.stopping!r}")
        if self.monitor is None and self.spec.stopping == "early":
            raise ValueError("early stopping needs a monitored set (x, y); "
                             "monitor=None only with stopping='fixed'")
        d = self.network.n_features
        if self.monitor is None:
            self._val = (tf.zeros([0, d], tf.float32), tf.zeros([0], tf.int64))
        else:
            self._val = (self._rows(self.monitor[0]), self._labels(self.monitor[1]))
        self.reset()

    def _rows(self, x: Any) -> tf.Tensor:
        x = tf.convert_to_tensor(x, tf.float32)
        if x.shape.rank != 2 or x.shape[1] != self.network.n_features:
            raise ValueError(f"expected rows of {self.network.n_features} features, "
                             f"got shape {tuple(x.shape)}")
        return x

    @staticmethod
    def _labels(y: Any) -> tf.Tensor:
        return tf.convert_to_tensor(y, tf.int64)

    def reset(self) -> None:
        """Seeded fresh weights (a new draw per reset), zero Adam moments and step."""
        self.weights = self.network.initial_weights(derive_seed(self.seed, 0, self.resets))
        self.resets += 1
        self.m = [tf.zeros(s.shape, tf.float32) for s in self.network.weight_specs]
        self.v = [tf.zeros(s.shape, tf.float32) for s in self.network.weight_specs]
        self.step = tf.constant(0, tf.int64)

    def fit(self, x: Any, y: Any) -> FitInfo:
        start = time.perf_counter()
        x, y = self._rows(x), self._labels(y)
        if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
            raise ValueError(f"fit needs as many labels as rows, at least one: got {x.shape[0]} "
                             f"rows and {y.shape[0]} labels")
        if not self.spec.warm_start:
            self.reset()
        spec, early = self.spec, self.spec.stopping == "early"
        patience = spec.patience if early else spec.max_epochs + 1
        seed = _pair(derive_seed(self.seed, 1, self.fits))
        self.fits += 1
        epochs, _, self.weights, self.m, self.v, self.step = self.network.concrete("fit")(
            x, y, *self._val, self.weights, self.m, self.v,
            self.step, seed, tf.constant(spec.lr, tf.float32), tf.constant(patience, tf.int32),
            tf.constant(spec.max_epochs, tf.int32),
            tf.constant(spec.batch_size or 0, tf.int32), tf.constant(early))
        return FitInfo(epochs=int(epochs), seconds=time.perf_counter() - start)

    def _chunked(self, name: str, x: Any, *args: Any) -> np.ndarray:
        x = self._rows(x)
        fn = self.network.concrete(name)
        parts = [fn(x[i:i + CHUNK], self.weights, *args).numpy()
                 for i in range(0, max(len(x), 1), CHUNK)]
        return np.concatenate(parts, axis=-2) if len(parts) > 1 else parts[0]

    def predict_proba(self, x: Any) -> np.ndarray:
        return self._chunked("proba", x)

    def embed(self, x: Any) -> np.ndarray:
        return self._chunked("embed", x)

    def predict_proba_and_embed(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        x = self._rows(x)
        fn = self.network.concrete("proba_and_embed")
        parts = [fn(x[i:i + CHUNK], self.weights) for i in range(0, max(len(x), 1), CHUNK)]
        return tuple(np.concatenate([p[k].numpy() for p in parts]) for k in (0, 1))

    def score(self, x: Any, y: Any) -> float:
        return float(self.network.concrete("accuracy")(self._rows(x), self._labels(y),
                                                       self.weights))

    def predict_proba_samples(self, x: Any, n_samples: int) -> np.ndarray:
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        draw = self.draws
        self.draws += 1
        x = self._rows(x)
        fn = self.network.concrete("samples")
        parts = []
        for chunk, i in enumerate(range(0, max(len(x), 1), CHUNK)):
            seed = _pair(derive_seed(self.seed, 2, draw, chunk))
            parts.append(fn(x[i:i + CHUNK], self.weights, tf.constant(n_samples, tf.int32),
                            seed).numpy())
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def n_features(input_shape: tuple[int, ...]) -> int:
    return math.prod(input_shape)
