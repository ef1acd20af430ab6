"""The article's model: softmax regression in TensorFlow, with a compiled early-stopping fit.

One epoch is one full-batch Adam step on the labelled set (the article's "training attempt").
`fit` runs the whole early-stopping loop inside one `tf.function` call: no Python per epoch,
and input signatures with a free batch dimension, so the growing labelled set never retraces.
"""

from __future__ import annotations

import numpy as np

from al_research.runtime import tf


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
        self.optimizer = tf.keras.optimizers.Adam(learning_rate=lr)
        self.optimizer.build([self.W, self.b])
        self._val_x = tf.convert_to_tensor(validation_data[0], tf.float32)
        self._val_y = tf.convert_to_tensor(validation_data[1], tf.int64)
        x_spec = tf.TensorSpec([None, n_features], tf.float32)
        y_spec = tf.TensorSpec([None], tf.int64)
        self._fit_loop = tf.function(self._fit_loop_py, input_signature=[x_spec, y_spec])
        self._proba = tf.function(self._proba_py, input_signature=[x_spec])
        self._accuracy = tf.function(self._accuracy_py, input_signature=[x_spec, y_spec])
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
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.convert_to_tensor(y, tf.int64)
        return int(self._fit_loop(x, y))

    def predict_proba(self, x) -> np.ndarray:
        return self._proba(tf.convert_to_tensor(x, tf.float32)).numpy()

    def predict(self, x) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)

    def score(self, x, y) -> float:
        """Accuracy on (x, y)."""
        x = tf.convert_to_tensor(x, tf.float32)
        return float(self._accuracy(x, tf.convert_to_tensor(y, tf.int64)))

    # -- compiled bodies -------------------------------------------------------------------
    def _logits(self, x):
        return tf.matmul(x, self.W) + self.b

    def _proba_py(self, x):
        return tf.nn.softmax(self._logits(x))

    def _accuracy_py(self, x, y):
        hits = tf.equal(tf.argmax(self._logits(x), axis=1), y)
        return tf.reduce_mean(tf.cast(hits, tf.float32))

    def _fit_loop_py(self, x, y):
        variables = [self.W, self.b]
        best_acc = tf.constant(-1.0)
        best_w, best_b = tf.identity(self.W), tf.identity(self.b)
        epoch = tf.constant(0)
        wait = tf.constant(0)
        while epoch < self.max_epochs and wait < self.patience:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y, self._logits(x))
                )
            grads = tape.gradient(loss, variables)
            self.optimizer.apply_gradients(zip(grads, variables, strict=True))
            acc = self._accuracy_py(self._val_x, self._val_y)
            improved = acc > best_acc
            best_acc = tf.where(improved, acc, best_acc)
            best_w = tf.where(improved, self.W, best_w)
            best_b = tf.where(improved, self.b, best_b)
            wait = tf.where(improved, 0, wait + 1)
            epoch += 1
        self.W.assign(best_w)
        self.b.assign(best_b)
        return epoch


MODELS = {"softmax": SoftmaxRegression}
