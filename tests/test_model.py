"""Softmax regression on the shared trainer: early stopping and the kept epoch, restored weights,
warm start, one Adam update (Keras's), one trace per architecture, declared capabilities."""

from pathlib import Path

import numpy as np
import pytest

from al_research.config import DataConfig
from al_research.data import make_split
from al_research.models.base import Capability, CapabilityError, FitInfo, TrainingSpec, missing
from al_research.models.networks import MLP
from al_research.models.softmax import SoftmaxRegression

PACKAGE = Path(__file__).resolve().parent.parent / "al_research"


@pytest.fixture(scope="module")
def split():
    return make_split(DataConfig(name="mnist_5k", pool_size=1000), seed=0)


def _model(split, **kwargs):
    return SoftmaxRegression((784,), 10, (split.val_x, split.val_y), TrainingSpec(**kwargs))


def test_fit_stops_patience_epochs_after_the_best_and_restores_it(split):
    x, y = split.pool_x[:100], split.pool_y[:100]
    # The trajectory, one full-batch Adam step at a time (a 1-epoch fit keeps its only weights).
    stepper = _model(split, patience=1, max_epochs=1)
    trajectory, weights = [], []
    for _ in range(80):
        stepper.fit(x, y)
        trajectory.append(stepper.score(split.val_x, split.val_y))
        weights.append(stepper.weights)
    model = _model(split, patience=10)
    info = model.fit(x, y)
    # the first epoch whose accuracy no later epoch (within patience) beats
    best, best_epoch, wait, expected_epochs = -1.0, 0, 0, 0
    for epoch, acc in enumerate(trajectory, start=1):
        if acc > best:
            best, best_epoch, wait = acc, epoch, 0
        else:
            wait += 1
        if wait == 10:
            expected_epochs = epoch
            break
    assert expected_epochs, "the trajectory should stop within 80 epochs"
    assert (info.epochs, info.best_epoch) == (expected_epochs, best_epoch)
    assert info.best_epoch == info.epochs - 10
    assert model.score(split.val_x, split.val_y) == best
    for ours, kept in zip(model.weights, weights[best_epoch - 1], strict=True):
        np.testing.assert_array_equal(ours, kept)  # the best epoch's weights, bit for bit


def test_fixed_stopping_keeps_the_last_epoch(split):
    x, y = split.pool_x[:60], split.pool_y[:60]
    fixed = SoftmaxRegression((784,), 10, None, TrainingSpec(stopping="fixed", max_epochs=7))
    info = fixed.fit(x, y)
    assert (info.epochs, info.best_epoch) == (7, 7)
    stepper = SoftmaxRegression((784,), 10, None, TrainingSpec(stopping="fixed", max_epochs=1))
    for _ in range(7):
        assert stepper.fit(x, y).best_epoch == 1
    for a, b in zip(fixed.weights, stepper.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert fixed.adam_step == stepper.adam_step == 7
    with pytest.raises(ValueError, match="monitor"):
        SoftmaxRegression((784,), 10, None, TrainingSpec())


def test_fit_info_without_a_best_epoch_kept_the_last():
    assert FitInfo(5, 0.1).best_epoch == 5  # a learner that does not say (e.g. a test double)
    assert FitInfo(5, 0.1, best_epoch=2).best_epoch == 2


def test_softmax_refuses_mini_batches():
    with pytest.raises(ValueError, match=r"model=softmax trains full-batch .*batch_size=null"):
        SoftmaxRegression((784,), 10, None, TrainingSpec(stopping="fixed", batch_size=32))


def test_probabilities_are_a_distribution(split):
    model = _model(split)
    model.fit(split.pool_x[:50], split.pool_y[:50])
    proba = model.predict_proba(split.test_x)
    assert proba.shape == (400, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert model.predict(split.test_x).tolist() == proba.argmax(axis=1).tolist()
    joint, embedded = model.predict_proba_and_embed(split.test_x)
    np.testing.assert_array_equal(joint, proba)
    np.testing.assert_array_equal(embedded, split.test_x)  # its embedding is its input


def test_score_is_an_exact_fraction(split):
    model = _model(split)
    model.fit(split.pool_x[:30], split.pool_y[:30])
    x, y = split.test_x[:100], split.test_y[:100]
    score = model.score(x, y)
    assert score == int((model.predict(x) == y).sum()) / 100
    assert len(repr(score)) <= 4  # '0.73', not float32's '0.7300000190734863'
    assert np.isnan(model.score(x[:0], y[:0]))


def test_warm_start_continues_and_cold_start_restarts(split):
    x, y = split.pool_x[:40], split.pool_y[:40]
    warm, cold, fresh = _model(split), _model(split, warm_start=False), _model(split)
    for m in (warm, cold):
        m.fit(split.pool_x[:20], split.pool_y[:20])
        m.fit(x, y)
    fresh.fit(x, y)
    np.testing.assert_array_equal(cold.weights[0], fresh.weights[0])
    assert not np.array_equal(warm.weights[0], fresh.weights[0])


def test_reset_zeroes_weights_and_the_optimizer(split):
    model = _model(split, lr=0.05)
    model.fit(split.pool_x[:20], split.pool_y[:20])
    assert model.adam_step > 0 and model.weights[0].any()
    model.reset()
    assert not model.weights[0].any() and not model.weights[1].any()
    assert model.adam_step == 0
    assert not any(t.numpy().any() for t in model._trainer.m + model._trainer.v)


def test_one_trace_per_architecture_across_instances_and_set_sizes(split):
    """Every softmax model of an input size uses the same compiled functions, traced once with
    free dimensions: a second model, a larger labelled set or another stopping rule adds no
    trace; another input size is another architecture, traced once too."""
    first = _model(split)
    second = _model(split, warm_start=False, stopping="fixed", max_epochs=5)
    small = SoftmaxRegression((64,), 10, None, TrainingSpec(stopping="fixed", max_epochs=3))
    for model, x in ((first, split.pool_x), (second, split.pool_x),
                     (small, split.pool_x[:, :64])):
        for n in (10, 20, 47):
            model.fit(x[:n], split.pool_y[:n])
            model.predict_proba(x[n:])
            model.score(x[n:], split.pool_y[n:])
    assert first._trainer.compiled is second._trainer.compiled
    assert small._trainer.compiled is not first._trainer.compiled
    for model in (first, small):
        counts = model.tracing_counts()
        assert (counts["fit"], counts["proba"], counts["hits"]) == (1, 1, 1)
        assert "samples" not in counts  # no dropout: no MC function at all
        assert len(model._trainer.compiled.functions["fit"]._list_all_concrete_functions()) == 1


def test_learns_mnist(split):
    model = _model(split)
    model.fit(split.pool_x, split.pool_y)
    assert model.score(split.test_x, split.test_y) > 0.8


def test_the_softmax_fit_steps_as_keras_adam(split):
    """Full-batch fits of one epoch step exactly as keras.optimizers.Adam does."""
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
    assert ours.adam_step == 6
    np.testing.assert_allclose(ours.weights[0], w.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.weights[1], b.numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(w.numpy()).max() > 0.1  # it really moved


@pytest.mark.parametrize("name", ["softmax", "mlp"])
def test_the_one_adam_update_is_keras_adam(name):
    """`trainer.adam`, the only Adam of the package, on a softmax and an MLP weight set: the
    same numbers as keras.optimizers.Adam given the same gradients, step for step."""
    import keras

    from al_research.models.trainer import adam
    from al_research.runtime import tf

    if name == "softmax":
        model = SoftmaxRegression((784,), 10, None, TrainingSpec(stopping="fixed"))
    else:
        model = MLP((784,), 10, None, TrainingSpec(stopping="fixed"), MLP.Params(hidden=16))
    start = model.weights
    assert len(start) == (2 if name == "softmax" else 4)
    rng = np.random.default_rng(0)
    ours = [tf.constant(w) for w in start]
    m = [tf.zeros_like(w) for w in ours]
    v = [tf.zeros_like(w) for w in ours]
    reference = [tf.Variable(w) for w in start]
    optimizer = keras.optimizers.Adam(learning_rate=0.05)
    for step in range(5):
        grads = [tf.constant(rng.normal(size=w.shape).astype(np.float32)) for w in start]
        ours, m, v = adam(ours, grads, m, v, tf.constant(step, tf.int64), tf.constant(0.05))
        optimizer.apply_gradients(zip(grads, reference, strict=True))
    for u, r, w in zip(ours, reference, start, strict=True):
        np.testing.assert_allclose(u.numpy(), r.numpy(), rtol=1e-6, atol=1e-7)
        assert np.abs(u.numpy() - w).max() > 0.1  # five steps of 0.05 moved every tensor


def test_adam_and_the_fit_loop_exist_once():
    """One Adam update and one compiled fit loop in the package: the trainer's."""
    sources = {p.relative_to(PACKAGE).as_posix(): p.read_text()
               for p in PACKAGE.rglob("*.py")}
    assert [p for p, s in sources.items() if "(1 - BETA_2)" in s] == ["models/trainer.py"]
    assert [p for p, s in sources.items() if "tf.GradientTape()" in s] == ["models/trainer.py"]


def test_capabilities_are_declared():
    model = SoftmaxRegression((784,), 10, None, TrainingSpec(stopping="fixed"))
    assert model.capabilities == {Capability.PROBA, Capability.EMBEDDINGS,
                                  Capability.GRAD_EMBEDDINGS, Capability.RETRAIN}
    assert model.embeds_input and not model.has_dropout
    assert missing(frozenset({Capability.MC_SAMPLES, Capability.PROBA}),
                   model.capabilities) == ["mc_samples"]
    assert missing(frozenset({Capability.GRAD_EMBEDDINGS}), model.capabilities) == []
    with pytest.raises(CapabilityError, match="dropout"):
        model.predict_proba_samples(np.zeros((3, 784), np.float32), 2)
