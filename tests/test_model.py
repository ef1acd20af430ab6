"""The softmax model: early stopping, restored best weights, warm start, one trace."""

import numpy as np
import pytest

from al_research.config import DataConfig
from al_research.data import make_split
from al_research.models.base import TrainingSpec
from al_research.models.softmax import SoftmaxRegression


@pytest.fixture(scope="module")
def split():
    return make_split(DataConfig(name="mnist_5k", pool_size=1000), seed=0)


def _model(split, **kwargs):
    return SoftmaxRegression((784,), 10, (split.val_x, split.val_y), TrainingSpec(**kwargs))


def test_fit_stops_patience_epochs_after_the_best_and_restores_it(split):
    x, y = split.pool_x[:100], split.pool_y[:100]
    # The trajectory, one full-batch Adam step at a time (a 1-epoch fit keeps its only weights).
    stepper = _model(split, patience=1, max_epochs=1)
    trajectory = []
    for _ in range(80):
        stepper.fit(x, y)
        trajectory.append(stepper.score(split.val_x, split.val_y))
    model = _model(split, patience=10)
    epochs = model.fit(x, y).epochs
    # the first epoch whose accuracy no later epoch (within patience) beats
    best, wait, expected_epochs = -1.0, 0, 0
    for epoch, acc in enumerate(trajectory, start=1):
        if acc > best:
            best, wait = acc, 0
        else:
            wait += 1
        if wait == 10:
            expected_epochs = epoch
            break
    assert expected_epochs, "the trajectory should stop within 80 epochs"
    assert epochs == expected_epochs
    assert model.score(split.val_x, split.val_y) == pytest.approx(best)


def test_probabilities_are_a_distribution(split):
    model = _model(split)
    model.fit(split.pool_x[:50], split.pool_y[:50])
    proba = model.predict_proba(split.test_x)
    assert proba.shape == (400, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert model.predict(split.test_x).tolist() == proba.argmax(axis=1).tolist()


def test_warm_start_continues_and_cold_start_restarts(split):
    x, y = split.pool_x[:40], split.pool_y[:40]
    warm, cold, fresh = _model(split), _model(split, warm_start=False), _model(split)
    for m in (warm, cold):
        m.fit(split.pool_x[:20], split.pool_y[:20])
        m.fit(x, y)
    fresh.fit(x, y)
    np.testing.assert_array_equal(cold.W.numpy(), fresh.W.numpy())
    assert not np.array_equal(warm.W.numpy(), fresh.W.numpy())


def test_reset_zeroes_weights_and_optimizer_but_keeps_the_learning_rate(split):
    model = _model(split, lr=0.05)
    model.fit(split.pool_x[:20], split.pool_y[:20])
    model.reset()
    assert not model.W.numpy().any() and not model.b.numpy().any()
    assert int(model.optimizer.iterations) == 0
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)


def test_models_share_one_trace_across_instances_and_set_sizes(split):
    """Every model in a process uses the same compiled functions, traced once with free
    dimensions: a second model, or a larger labelled set, adds no trace."""
    first, second = _model(split), _model(split, warm_start=False)
    for model in (first, second):
        for n in (10, 20, 47):
            model.fit(split.pool_x[:n], split.pool_y[:n])
            model.predict_proba(split.pool_x[n:])
    assert first._fns is second._fns
    assert first._fns.fit.experimental_get_tracing_count() == 1
    assert first._fns.proba.experimental_get_tracing_count() == 1
    assert len(first._fns.fit._list_all_concrete_functions()) == 1


def test_learns_mnist(split):
    model = _model(split)
    model.fit(split.pool_x, split.pool_y)
    assert model.score(split.test_x, split.test_y) > 0.8


def test_the_adam_update_is_keras_adam(split):
    """The compiled fit writes Adam out; it must step exactly as keras.optimizers.Adam does."""
    from al_research.runtime import tf

    x = tf.constant(split.pool_x[:50])
    y = tf.constant(split.pool_y[:50])
    ours = _model(split, lr=0.1, patience=1, max_epochs=1)  # one step per fit, kept
    w, b = tf.Variable(tf.zeros([784, 10])), tf.Variable(tf.zeros([10]))
    keras_adam = tf.keras.optimizers.Adam(learning_rate=0.1)
    for _ in range(6):
        ours.fit(x, y)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(y, tf.matmul(x, w) + b))
        keras_adam.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b], strict=True))
    assert int(ours.optimizer.iterations) == 6
    np.testing.assert_allclose(ours.W.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.b.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(w.numpy()).max() > 0.1  # it really moved
