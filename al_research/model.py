"""The article's model: softmax regression in TensorFlow, with a compiled early-stopping fit.

One epoch is one full-batch Adam step on the labelled set (the article's "training attempt").
`fit` runs the whole early-stopping loop inside one `tf.function` call: no Python per epoch,
and input signatures with free dimensions, so the growing labelled set never retraces.

The compiled functions are module-level and pure: weights, Adam's state and the hyperparameters
are arguments, not captured variables. A process traces each of them once, however many models
it builds (the k-means baseline's model, every seed of a benchmark, every job a sweep worker
runs); tracing costs far more than a whole 40-round experiment's arithmetic.
"""

from __future__ import annotations

import numpy as np

from al_research.runtime import tf

# Keras's Adam defaults (keras.optimizers.Adam); the update below is its update, op for op.
BETA_1 = 0.9
BETA_2 = 0.999
EPSILON = 1e-7

_MATRIX = tf.TensorSpec([None, None], tf.float32)
_VECTOR = tf.TensorSpec([None], tf.float32)
_LABELS = tf.TensorSpec([None], tf.int64)
_STEP = tf.TensorSpec([], tf.int64)
_FLOAT = tf.TensorSpec([], tf.float32)
_INT = tf.TensorSpec([], tf.int32)


def _logits(x, w, b):
    return tf.matmul(x, w) + b


def _accuracy_py(x, y, w, b):
    hits = tf.equal(tf.argmax(_logits(x, w, b), axis=1), y)
    return tf.reduce_mean(tf.cast(hits, tf.float32))


def _proba_py(x, w, b):
    return tf.nn.softmax(_logits(x, w, b))


def _adam(param, grad, m, v, step, lr):
    """Keras 3's Adam.update_step, functional: returns the new (param, m, v)."""
    local_step = tf.cast(step + 1, tf.float32)
    beta_1_power = tf.pow(tf.constant(BETA_1, tf.float32), local_step)
    beta_2_power = tf.pow(tf.constant(BETA_2, tf.float32), local_step)
    alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    m = m + (grad - m) * (1 - BETA_1)
    v = v + (tf.square(grad) - v) * (1 - BETA_2)
    param = param - (m * alpha) / (tf.sqrt(v) + EPSILON)
    return param, m, v


def _fit_loop_py(x, y, val_x, val_y, w, b, m_w, v_w, m_b, v_b, step, lr, patience, max_epochs):
    """Full-batch Adam epochs until `patience` epochs bring no better monitored accuracy.

    Returns the number of epochs, the best weights, and Adam's state after the last epoch.
    """
    best_acc = tf.constant(-1.0)
    best_w, best_b = tf.identity(w), tf.identity(b)
    epoch = tf.constant(0)
    wait = tf.constant(0)
    while epoch < max_epochs and wait < patience:
        with tf.GradientTape() as tape:
            tape.watch([w, b])
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(y, _logits(x, w, b))
            )
        grad_w, grad_b = tape.gradient(loss, [w, b])
        w, m_w, v_w = _adam(w, grad_w, m_w, v_w, step, lr)
        b, m_b, v_b = _adam(b, grad_b, m_b, v_b, step, lr)
        step += 1
        acc = _accuracy_py(val_x, val_y, w, b)
        improved = acc > best_acc
        best_acc = tf.where(improved, acc, best_acc)
        best_w = tf.where(improved, w, best_w)
        best_b = tf.where(improved, b, best_b)
        wait = tf.where(improved, 0, wait + 1)
        epoch += 1
    return epoch, best_w, best_b, m_w, v_w, m_b, v_b, step


# One trace per process each: every shape is free, every hyperparameter a tensor argument.
_fit_loop = tf.function(
    _fit_loop_py,
    input_signature=[_MATRIX, _LABELS, _MATRIX, _LABELS, _MATRIX, _VECTOR,
                     _MATRIX, _MATRIX, _VECTOR, _VECTOR, _STEP, _FLOAT, _INT, _INT],
)
_proba = tf.function(_proba_py, input_signature=[_MATRIX, _MATRIX, _VECTOR])
_accuracy = tf.function(_accuracy_py, input_signature=[_MATRIX, _LABELS, _MATRIX, _VECTOR])


class AdamState:
    """Adam's variables for `W x + b`: step count, learning rate, first and second moments."""

    def __init__(self, n_features: int, n_classes: int, lr: float) -> None:
        self.iterations = tf.Variable(0, dtype=tf.int64, name="iterations")
        self.learning_rate = tf.Variable(lr, dtype=tf.float32, name="learning_rate")
        self.m_w = tf.Variable(tf.zeros([n_features, n_classes]), name="m_W")
        self.v_w = tf.Variable(tf.zeros([n_features, n_classes]), name="v_W")
        self.m_b = tf.Variable(tf.zeros([n_classes]), name="m_b")
        self.v_b = tf.Variable(tf.zeros([n_classes]), name="v_b")

    @property
    def variables(self) -> list[tf.Variable]:
        return [self.iterations, self.learning_rate, self.m_w, self.v_w, self.m_b, self.v_b]

    @property
    def moments(self) -> list[tf.Variable]:
        return [self.m_w, self.v_w, self.m_b, self.v_b]


class SoftmaxRegression:
    """`W x + b` with 10 softmax outputs, sparse cross-entropy, Adam.

    `fit` trains until the monitored accuracy has not improved for `patience` epochs, restores the
    best weights and returns the number of epochs run. With `warm_start` (the article), `reset()`
    happens once, at construction, and each `fit` continues from the previous weights; without
    it, every `fit` starts from scratch.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        validation_data: tuple[np.ndarray, np.ndarray],
        lr: float = 0.1,
        patience: int = 10,
        max_epochs: int = 1000,
        warm_start: bool = True,
    ) -> None:
        self.lr = lr
        self.patience = patience
        self.max_epochs = max_epochs
        self.warm_start = warm_start
        self.W = tf.Variable(tf.zeros([n_features, n_classes]), name="W")
        self.b = tf.Variable(tf.zeros([n_classes]), name="b")
        self.optimizer = AdamState(n_features, n_classes, lr)
        self._val_x = tf.convert_to_tensor(validation_data[0], tf.float32)
        self._val_y = tf.convert_to_tensor(validation_data[1], tf.int64)
        # The process-wide compiled functions: tracing counts are per process, not per model.
        self._fit_loop, self._proba, self._accuracy = _fit_loop, _proba, _accuracy
        # Their concrete functions (traced by the first model a process builds): calling these
        # skips tf.function's per-call argument binding, ~1 ms per fit with 14 arguments.
        self._fit_fn = _fit_loop.get_concrete_function()
        self._proba_fn = _proba.get_concrete_function()
        self._accuracy_fn = _accuracy.get_concrete_function()
        self.reset()

    def reset(self) -> None:
        """Zero the weights and the optimizer's state (its step count and moments)."""
        self.W.assign(tf.zeros_like(self.W))
        self.b.assign(tf.zeros_like(self.b))
        for variable in self.optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        self.optimizer.learning_rate.assign(self.lr)

    def fit(self, x, y) -> int:
        """Train on (x, y) with early stopping; return the number of epochs run."""
        if not self.warm_start:
            self.reset()
        opt = self.optimizer
        epochs, w, b, m_w, v_w, m_b, v_b, step = self._fit_fn(
            tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.int64),
            self._val_x, self._val_y, self.W, self.b, *opt.moments, opt.iterations,
            opt.learning_rate, tf.constant(self.patience, tf.int32),
            tf.constant(self.max_epochs, tf.int32),
        )
        for variable, value in zip([self.W, self.b, *opt.moments, opt.iterations],
                                   [w, b, m_w, v_w, m_b, v_b, step], strict=True):
            variable.assign(value)
        return int(epochs)

    def predict_proba(self, x) -> np.ndarray:
        return self._proba_fn(tf.convert_to_tensor(x, tf.float32), self.W, self.b).numpy()

    def predict(self, x) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)

    def score(self, x, y) -> float:
        """Accuracy on (x, y)."""
        x = tf.convert_to_tensor(x, tf.float32)
        return float(self._accuracy_fn(x, tf.convert_to_tensor(y, tf.int64), self.W, self.b))


MODELS = {"softmax": SoftmaxRegression}
