"""The one trainer of every model: a compiled fit loop, Adam, early stopping, one trace each.

An architecture (architecture.py: a Keras network, or softmax regression's `x W + b`) supplies
a pure forward pass `forward(weights, x, training, seed) -> (features, logits)`, its weights'
shapes and their initialisation. Everything else is here, once: `Compiled` wraps the forward
pass in pure functions whose arguments are the weights, Adam's moments, the step count, the
seeds and every hyperparameter; `Trainer` holds one model instance's tensors and calls them. So

* a whole `fit` (every epoch, every mini-batch, the monitored accuracy after each epoch, early
  stopping and the restore of the best weights) is one compiled call, with no Python per epoch;
* the compiled functions belong to the architecture (class, input shape, classes, params), not
  to a model instance: they live in a process-wide cache (`compiled_for`), and every instance of
  the same architecture (each round, seed, job of a sweep worker) reuses the same traces. The
  labelled set's size is a free dimension, and so are the learning rate, patience, epoch cap,
  batch size and stopping mode, so one trace serves every fit of a process.
* `keras.backend.clear_session()` (runtime.reset_tensorflow_state, between jobs) cannot break
  them: a compiled function holds its own graph, and the architecture behind it is kept alive
  by the cache; nothing of one model's numbers is captured (instances hold their own tensors).

Randomness is explicit and seeded: initial weights from a seed derived from (seed, number of
resets); dropout masks and mini-batch order from seeds derived from (seed, number of fits),
folded in per step and epoch inside the graph; Monte Carlo dropout from (seed, number of
sampling calls). Same seed, same calls: same numbers.

This module imports TensorFlow: model modules import it when they build their first model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from al_research.models.base import FitInfo, TrainingSpec
from al_research.runtime import tf

# Keras's Adam defaults (keras.optimizers.Adam); `adam` is its update_step, op for op.
BETA_1 = 0.9
BETA_2 = 0.999
EPSILON = 1e-7


def derive_seed(*entropy: int) -> int:
    """A 31-bit seed from integers (e.g. model seed, purpose, counter): reproducible, spread."""
    return int(np.random.SeedSequence([abs(int(e)) for e in entropy]).generate_state(1)[0]
               % (2**31 - 1))


def _pair(seed: int) -> tf.Tensor:
    """A stateless-RNG seed tensor (shape [2], int64) from an int."""
    return tf.constant([seed, 0], tf.int64)


def adam(params, grads, m, v, step, lr):
    """Keras 3's Adam.update_step on lists of tensors, functional: new (params, m, v).

    `step` is the number of steps taken before this one (Keras's `iterations`)."""
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


class Compiled:
    """One architecture's compiled, pure functions: 'fit', 'hits', 'proba', 'embed',
    'proba_and_embed', and 'samples' when the architecture has dropout.

    Built once per process per architecture (`compiled_for`); each function is traced on first
    use and called through its concrete function afterwards (no per-call argument binding).
    """

    def __init__(self, architecture: Any) -> None:
        self.architecture = architecture
        self.n_features = int(architecture.n_features)
        self.chunk: int | None = architecture.chunk
        self.weight_specs = list(architecture.weight_specs)
        self._traced: dict[str, Any] = {}
        self.functions = self._functions()

    def concrete(self, name: str) -> Any:
        """The concrete function `name`, traced on first use."""
        if name not in self._traced:
            self._traced[name] = self.functions[name].get_concrete_function()
        return self._traced[name]

    def tracing_counts(self) -> dict[str, int]:
        return {k: f.experimental_get_tracing_count() for k, f in self.functions.items()}

    def _functions(self) -> dict[str, Any]:
        arch, chunk = self.architecture, self.chunk
        forward = arch.forward
        rows = tf.TensorSpec([None, self.n_features], tf.float32)
        labels = tf.TensorSpec([None], tf.int64)
        weight_specs = list(self.weight_specs)
        seed_spec = tf.TensorSpec([2], tf.int64)
        scalar = {t: tf.TensorSpec([], t) for t in (tf.float32, tf.int32, tf.int64, tf.bool)}

        def count(x, y, weights):
            _, logits = forward(weights, x, False)
            return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1), y), tf.int64))

        def hits(x, y, weights):
            """Rows of x whose argmax is y (int64), `chunk` rows per forward pass."""
            if chunk is None:
                return count(x, y, weights)
            n = tf.shape(x)[0]
            total = tf.constant(0, tf.int64)
            start = tf.constant(0)
            while start < n:
                end = tf.minimum(start + chunk, n)
                total += count(x[start:end], y[start:end], weights)
                start = end
            return total

        def monitored(early, val_x, val_y, weights):
            """The early-stopping accuracy (float32: only compared, never returned)."""
            def accuracy():
                n = tf.shape(val_x)[0]
                return (tf.cast(hits(val_x, val_y, weights), tf.float32)
                        / tf.cast(tf.maximum(n, 1), tf.float32))
            return tf.cond(early, accuracy, lambda: tf.constant(0.0))

        def fit(x, y, val_x, val_y, weights, m, v, step, seed, lr, patience, max_epochs,
                batch_size, early):
            """Epochs of shuffled mini-batches (one batch when batch_size <= 0 or >= n) of
            Adam steps until `max_epochs` or `patience` epochs without a better accuracy on
            (val_x, val_y) (`early`; else patience > max_epochs, and no accuracy is computed).
            Returns (epochs, best_epoch, weights, m, v, step): with `early` the best epoch's
            weights, else the last ones.
            """
            n = tf.shape(x)[0]
            size = tf.where((batch_size > 0) & (batch_size < n), batch_size, n)
            n_batches = (n + size - 1) // size
            dropout_seed = tf.random.experimental.stateless_fold_in(seed, 0)
            shuffle_seed = tf.random.experimental.stateless_fold_in(seed, 1)

            def train_step(xb, yb, weights, m, v, step, fit_step):
                """One Adam step on (xb, yb); `fit_step` (steps in this fit) seeds dropout."""
                step_seed = (tf.random.experimental.stateless_fold_in(dropout_seed, fit_step)
                             if arch.has_dropout else None)
                with tf.GradientTape() as tape:
                    tape.watch(weights)
                    _, logits = forward(weights, xb, True, step_seed)
                    loss = tf.reduce_mean(
                        tf.nn.sparse_softmax_cross_entropy_with_logits(yb, logits))
                grads = tape.gradient(loss, weights)
                weights, m, v = adam(weights, grads, m, v, step, lr)
                return weights, m, v, step + 1

            weights, m, v = list(weights), list(m), list(v)
            best = [tf.identity(w) for w in weights]
            best_acc = tf.constant(-1.0)
            best_epoch = tf.constant(0)
            epoch = tf.constant(0)
            wait = tf.constant(0)
            fit_step = tf.constant(0, tf.int64)
            while epoch < max_epochs and wait < patience:
                if arch.full_batch:  # known when tracing: no mini-batch machinery at all
                    weights, m, v, step = train_step(x, y, weights, m, v, step, fit_step)
                    fit_step += 1
                elif n_batches > 1:  # the rows shuffled, seeded by the epoch
                    order = tf.argsort(tf.random.stateless_uniform(
                        [n], tf.random.experimental.stateless_fold_in(shuffle_seed, epoch)))
                    batch = tf.constant(0)
                    while batch < n_batches:
                        idx = order[batch * size:tf.minimum((batch + 1) * size, n)]
                        weights, m, v, step = train_step(tf.gather(x, idx), tf.gather(y, idx),
                                                         weights, m, v, step, fit_step)
                        fit_step += 1
                        batch += 1
                else:  # one full-batch step on the set itself (no copy)
                    weights, m, v, step = train_step(x, y, weights, m, v, step, fit_step)
                    fit_step += 1
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

        def proba_and_embed(x, weights):
            features, logits = forward(weights, x, False)
            return tf.nn.softmax(logits), features

        def samples(x, weights, n_samples, seed):
            """n_samples passes with dropout on, each with its own seed."""
            return arch.dropout_passes(weights, x, n_samples, seed)

        functions = {
            "fit": tf.function(fit, input_signature=[
                rows, labels, rows, labels, weight_specs, weight_specs, weight_specs,
                scalar[tf.int64], seed_spec, scalar[tf.float32], scalar[tf.int32],
                scalar[tf.int32], scalar[tf.int32], scalar[tf.bool]]),
            "hits": tf.function(hits, input_signature=[rows, labels, weight_specs]),
            "proba": tf.function(proba, input_signature=[rows, weight_specs]),
            "embed": tf.function(embed, input_signature=[rows, weight_specs]),
            "proba_and_embed": tf.function(proba_and_embed, input_signature=[rows, weight_specs]),
        }
        if arch.has_dropout:
            functions["samples"] = tf.function(samples, input_signature=[
                rows, weight_specs, scalar[tf.int32], seed_spec])
        return functions


_CACHE: dict[Hashable, Compiled] = {}


def compiled_for(key: Hashable, build: Callable[[], Any]) -> Compiled:
    """The process-wide Compiled of an architecture, built by `build()` on first use.

    `key` must identify the architecture completely (class, input shape, classes, params).
    """
    compiled = _CACHE.get(key)
    if compiled is None:
        compiled = _CACHE[key] = Compiled(build())
    return compiled


@dataclass
class Trainer:
    """One model instance's state (weights, Adam's moments and step) and its training.

    `monitor` is the early-stopping set; None only with `spec.stopping == "fixed"`.
    """

    compiled: Compiled
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
        if self.spec.batch_size is not None and self.compiled.architecture.full_batch:
            raise ValueError("this architecture trains full-batch only: batch_size must be None")
        if self.monitor is None and self.spec.stopping == "early":
            raise ValueError("early stopping needs a monitored set (x, y); "
                             "monitor=None only with stopping='fixed'")
        d = self.compiled.n_features
        if self.monitor is None:
            self._val = (tf.zeros([0, d], tf.float32), tf.zeros([0], tf.int64))
        else:
            self._val = (self._rows(self.monitor[0]), self._labels(self.monitor[1]))
        spec, early = self.spec, self.spec.stopping == "early"
        # the fit's hyperparameters as tensors, made once: lr, patience, epochs, batch, early
        self._settings = (tf.constant(spec.lr, tf.float32),
                          tf.constant(spec.patience if early else spec.max_epochs + 1, tf.int32),
                          tf.constant(spec.max_epochs, tf.int32),
                          tf.constant(spec.batch_size or 0, tf.int32), tf.constant(early))
        self.reset()

    def _rows(self, x: Any) -> tf.Tensor:
        x = tf.convert_to_tensor(x, tf.float32)
        if x.shape.rank != 2 or x.shape[1] != self.compiled.n_features:
            raise ValueError(f"expected rows of {self.compiled.n_features} features, "
                             f"got shape {tuple(x.shape)}")
        return x

    @staticmethod
    def _labels(y: Any) -> tf.Tensor:
        return tf.convert_to_tensor(y, tf.int64)

    def _chunks(self, x: tf.Tensor) -> list[tf.Tensor]:
        """x in the architecture's chunks of rows (all of it when it has none)."""
        chunk = self.compiled.chunk
        if chunk is None or len(x) <= chunk:
            return [x]
        return [x[i:i + chunk] for i in range(0, len(x), chunk)]

    def reset(self) -> None:
        """Seeded fresh weights (a new draw per reset), zero Adam moments and step."""
        self.weights = self.compiled.architecture.initial_weights(
            derive_seed(self.seed, 0, self.resets))
        self.resets += 1
        self.m = [tf.zeros(s.shape, tf.float32) for s in self.compiled.weight_specs]
        self.v = [tf.zeros(s.shape, tf.float32) for s in self.compiled.weight_specs]
        self.step = tf.constant(0, tf.int64)

    def fit(self, x: Any, y: Any) -> FitInfo:
        start = time.perf_counter()
        x, y = self._rows(x), self._labels(y)
        if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
            raise ValueError(f"fit needs as many labels as rows, at least one: got {x.shape[0]} "
                             f"rows and {y.shape[0]} labels")
        if not self.spec.warm_start:
            self.reset()
        seed = _pair(derive_seed(self.seed, 1, self.fits))
        self.fits += 1
        epochs, best_epoch, self.weights, self.m, self.v, self.step = self.compiled.concrete(
            "fit")(x, y, *self._val, self.weights, self.m, self.v, self.step, seed,
                   *self._settings)
        return FitInfo(epochs=int(epochs), seconds=time.perf_counter() - start,
                       best_epoch=int(best_epoch))

    def _chunked(self, name: str, x: Any) -> np.ndarray:
        fn = self.compiled.concrete(name)
        parts = [fn(part, self.weights).numpy() for part in self._chunks(self._rows(x))]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def predict_proba(self, x: Any) -> np.ndarray:
        return self._chunked("proba", x)

    def embed(self, x: Any) -> np.ndarray:
        return self._chunked("embed", x)

    def predict_proba_and_embed(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        fn = self.compiled.concrete("proba_and_embed")
        parts = [fn(part, self.weights) for part in self._chunks(self._rows(x))]
        return tuple(np.concatenate([p[k].numpy() for p in parts]) for k in (0, 1))

    def hits(self, x: Any, y: Any) -> int:
        """How many rows of x the model labels y (argmax), exactly."""
        return int(self.compiled.concrete("hits")(self._rows(x), self._labels(y), self.weights))

    def score(self, x: Any, y: Any) -> float:
        """Accuracy: hits / n, an exact fraction (NaN on no rows)."""
        y = self._labels(y)
        n = int(y.shape[0])
        return self.hits(x, y) / n if n else float("nan")

    def predict_proba_samples(self, x: Any, n_samples: int) -> np.ndarray:
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        draw = self.draws
        self.draws += 1
        fn = self.compiled.concrete("samples")
        parts = []
        seed = _pair(derive_seed(self.seed, 2, draw))  # every chunk: the same masks per pass
        for part in self._chunks(self._rows(x)):
            parts.append(fn(part, self.weights, tf.constant(n_samples, tf.int32), seed).numpy())
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
