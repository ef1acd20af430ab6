"""The article's model: softmax regression in TensorFlow, with a compiled early-stopping fit.

One epoch is one full-batch Adam step on the labelled set (the article's "training attempt").
`fit` runs the whole early-stopping loop inside one `tf.function` call: no Python per epoch,
and input signatures with free dimensions, so the growing labelled set never retraces.

The compiled functions are built once per process (`_compiled()`) and are pure: weights, Adam's
state and the hyperparameters are arguments, not captured variables. A process traces each of
them once, however many models it builds (the k-means baseline's model, every seed of a
benchmark, every job a sweep worker runs); tracing costs far more than a whole 40-round
experiment's arithmetic. TensorFlow is imported when the first model is built, not when this
module is imported, so the config can be validated without it.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from al_research.models.base import CapabilityError, FitInfo, TrainingSpec

# Keras's Adam defaults (keras.optimizers.Adam); the update below is its update, op for op.
BETA_1 = 0.9
BETA_2 = 0.999
EPSILON = 1e-7


@functools.cache
def _compiled() -> SimpleNamespace:
    """The process-wide compiled functions (fit loop, probabilities, accuracy)."""
    from al_research.runtime import tf

    matrix = tf.TensorSpec([None, None], tf.float32)
    vector = tf.TensorSpec([None], tf.float32)
    labels = tf.TensorSpec([None], tf.int64)
    step_spec = tf.TensorSpec([], tf.int64)
    float_spec = tf.TensorSpec([], tf.float32)
    int_spec = tf.TensorSpec([], tf.int32)
    bool_spec = tf.TensorSpec([], tf.bool)

    def logits(x, w, b):
        return tf.matmul(x, w) + b

    def accuracy(x, y, w, b):
        hits = tf.equal(tf.argmax(logits(x, w, b), axis=1), y)
        return tf.reduce_mean(tf.cast(hits, tf.float32))

    def hits(x, y, w, b):
        return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits(x, w, b), axis=1), y), tf.int64))

    def proba(x, w, b):
        return tf.nn.softmax(logits(x, w, b))

    def adam(param, grad, m, v, step, lr):
        """Keras 3's Adam.update_step, functional: returns the new (param, m, v)."""
        local_step = tf.cast(step + 1, tf.float32)
        beta_1_power = tf.pow(tf.constant(BETA_1, tf.float32), local_step)
        beta_2_power = tf.pow(tf.constant(BETA_2, tf.float32), local_step)
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m = m + (grad - m) * (1 - BETA_1)
        v = v + (tf.square(grad) - v) * (1 - BETA_2)
        param = param - (m * alpha) / (tf.sqrt(v) + EPSILON)
        return param, m, v

    def fit_loop(x, y, val_x, val_y, w, b, m_w, v_w, m_b, v_b, step, lr, patience, max_epochs,
                 keep_last):
        """Full-batch Adam epochs until `patience` epochs bring no better monitored accuracy.

        Returns the number of epochs, the best weights (the last ones with `keep_last`, which
        also runs all `max_epochs`), and Adam's state after the last epoch.
        """
        best_acc = tf.constant(-1.0)
        best_w, best_b = tf.identity(w), tf.identity(b)
        epoch = tf.constant(0)
        wait = tf.constant(0)
        while epoch < max_epochs and (keep_last or wait < patience):
            with tf.GradientTape() as tape:
                tape.watch([w, b])
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits(x, w, b)))
            grad_w, grad_b = tape.gradient(loss, [w, b])
            w, m_w, v_w = adam(w, grad_w, m_w, v_w, step, lr)
            b, m_b, v_b = adam(b, grad_b, m_b, v_b, step, lr)
            step += 1
            if keep_last:
                improved = tf.constant(True)
            else:
                acc = accuracy(val_x, val_y, w, b)
                improved = acc > best_acc
                best_acc = tf.where(improved, acc, best_acc)
            best_w = tf.where(improved, w, best_w)
            best_b = tf.where(improved, b, best_b)
            wait = tf.where(improved, 0, wait + 1)
            epoch += 1
        return epoch, best_w, best_b, m_w, v_w, m_b, v_b, step

    fit_fn = tf.function(fit_loop, input_signature=[
        matrix, labels, matrix, labels, matrix, vector, matrix, matrix, vector, vector,
        step_spec, float_spec, int_spec, int_spec, bool_spec])
    proba_fn = tf.function(proba, input_signature=[matrix, matrix, vector])
    hits_fn = tf.function(hits, input_signature=[matrix, labels, matrix, vector])
    return SimpleNamespace(
        fit=fit_fn, proba=proba_fn, hits=hits_fn,
        # Concrete functions skip tf.function's per-call argument binding (~1 ms per fit).
        fit_concrete=fit_fn.get_concrete_function(),
        proba_concrete=proba_fn.get_concrete_function(),
        hits_concrete=hits_fn.get_concrete_function(),
    )


class AdamState:
    """Adam's variables for `W x + b`: step count, learning rate, first and second moments."""

    def __init__(self, n_features: int, n_classes: int, lr: float) -> None:
        from al_research.runtime import tf

        self.iterations = tf.Variable(0, dtype=tf.int64, name="iterations")
        self.learning_rate = tf.Variable(lr, dtype=tf.float32, name="learning_rate")
        self.m_w = tf.Variable(tf.zeros([n_features, n_classes]), name="m_W")
        self.v_w = tf.Variable(tf.zeros([n_features, n_classes]), name="v_W")
        self.m_b = tf.Variable(tf.zeros([n_classes]), name="m_b")
        self.v_b = tf.Variable(tf.zeros([n_classes]), name="v_b")

    @property
    def variables(self) -> list:
        return [self.iterations, self.learning_rate, self.m_w, self.v_w, self.m_b, self.v_b]

    @property
    def moments(self) -> list:
        return [self.m_w, self.v_w, self.m_b, self.v_b]


@dataclass
class SoftmaxParams:
    """Softmax regression has no hyperparameters beyond the shared training ones."""


class SoftmaxRegression:
    """`W x + b` with softmax outputs, sparse cross-entropy, Adam (the article's model).

    Weights start at zero (the article's `tf.zeros`), so `reset()` needs no seed. With
    `warm_start` (the article), `reset()` happens once, at construction, and each `fit`
    continues from the previous weights; without it, every `fit` starts from scratch.
    """

    Params: ClassVar[type] = SoftmaxParams
    has_dropout = False
    embeds_input: ClassVar[bool] = True  # `embed(x)` is `x`: strategies may use the pool array

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_classes: int,
        monitor: tuple[np.ndarray, np.ndarray] | None,
        training: TrainingSpec | None = None,
        params: Any = None,
        seed: int = 0,
    ) -> None:
        from al_research.runtime import tf

        training = training or TrainingSpec()
        if training.batch_size is not None:
            raise ValueError("model=softmax trains full-batch (the article's epochs); set "
                             "model.batch_size=null")
        if monitor is None and training.stopping != "fixed":
            raise ValueError("early stopping needs a monitored set (validation or test)")
        self.training = training
        n_features = int(np.prod(input_shape))
        self.W = tf.Variable(tf.zeros([n_features, n_classes]), name="W")
        self.b = tf.Variable(tf.zeros([n_classes]), name="b")
        self.optimizer = AdamState(n_features, n_classes, training.lr)
        self._monitor = None if monitor is None else (
            tf.convert_to_tensor(monitor[0], tf.float32),
            tf.convert_to_tensor(monitor[1], tf.int64))
        self._fns = _compiled()
        self.reset()

    def reset(self) -> None:
        """Zero the weights and the optimizer's state (its step count and moments)."""
        from al_research.runtime import tf

        self.W.assign(tf.zeros_like(self.W))
        self.b.assign(tf.zeros_like(self.b))
        for variable in self.optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        self.optimizer.learning_rate.assign(self.training.lr)

    def fit(self, x, y) -> FitInfo:
        """Train on (x, y) with early stopping (or a fixed epoch count)."""
        from al_research.runtime import tf

        started = time.perf_counter()
        if not self.training.warm_start:
            self.reset()
        opt = self.optimizer
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.convert_to_tensor(y, tf.int64)
        val_x, val_y = self._monitor if self._monitor is not None else (x, y)
        keep_last = self.training.stopping == "fixed"
        epochs, w, b, m_w, v_w, m_b, v_b, step = self._fns.fit_concrete(
            x, y, val_x, val_y, self.W, self.b, *opt.moments, opt.iterations,
            opt.learning_rate, tf.constant(self.training.patience, tf.int32),
            tf.constant(self.training.max_epochs, tf.int32), tf.constant(keep_last),
        )
        for variable, value in zip([self.W, self.b, *opt.moments, opt.iterations],
                                   [w, b, m_w, v_w, m_b, v_b, step], strict=True):
            variable.assign(value)
        return FitInfo(int(epochs), time.perf_counter() - started)

    def predict_proba(self, x) -> np.ndarray:
        from al_research.runtime import tf

        return self._fns.proba_concrete(tf.convert_to_tensor(x, tf.float32), self.W,
                                        self.b).numpy()

    def predict(self, x) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)

    def score(self, x, y) -> float:
        """Accuracy on (x, y): an exact fraction of the evaluated rows, as a Python float."""
        from al_research.runtime import tf

        y = tf.convert_to_tensor(y, tf.int64)
        hits = int(self._fns.hits_concrete(tf.convert_to_tensor(x, tf.float32), y, self.W,
                                           self.b))
        return hits / int(y.shape[0]) if y.shape[0] else float("nan")

    def embed(self, x) -> np.ndarray:
        """The input itself: softmax regression's only layer reads the features directly."""
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)

    def predict_proba_samples(self, x, n_samples: int) -> np.ndarray:
        raise CapabilityError("model 'softmax' has no dropout: it gives no MC-dropout samples")
