"""The Keras networks (MLP, CNN): real training on small budgets, compiled fits, one trace.

Small splits and few epochs keep this file fast; the speed and accuracy targets are measured by
benchmarks/models.py, not here.
"""

from __future__ import annotations

import numpy as np
import pytest

from al_research.config import DataConfig
from al_research.data import make_split
from al_research.models.base import Capability, CapabilityError, TrainingSpec, missing
from al_research.models.networks import CNN, MLP

MNIST = (28, 28, 1)


@pytest.fixture(scope="module")
def split():
    return make_split(DataConfig(name="mnist_5k", pool_size=600, test_size=300, val_size=300),
                      seed=0)


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits, pixels / 16, as flat float32 rows: (train, test)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:400], y[:400]), (x[400:700], y[400:700]), (x[700:1000], y[700:1000])


def spec(**kwargs) -> TrainingSpec:
    return TrainingSpec(**{"lr": 1e-3, "patience": 5, "max_epochs": 40, **kwargs})


def mlp(split, seed=0, params=None, **kwargs) -> MLP:
    return MLP(MNIST, 10, (split.val_x, split.val_y), spec(**kwargs),
               params or MLP.Params(hidden=64), seed)


def cnn(split, seed=0, params=None, **kwargs) -> CNN:
    return CNN(MNIST, 10, (split.val_x, split.val_y), spec(**kwargs),
               params or CNN.Params(filters=(8, 16), dense=32), seed)


@pytest.mark.parametrize("make", [mlp, cnn], ids=["mlp", "cnn"])
def test_learns_mnist_above_chance(split, make):
    model = make(split, batch_size=32)
    info = model.fit(split.pool_x[:300], split.pool_y[:300])
    assert 1 <= info.epochs <= 40 and info.seconds > 0
    assert model.score(split.test_x, split.test_y) > 0.7  # chance is 0.1
    proba = model.predict_proba(split.test_x)
    assert proba.shape == (300, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert model.predict(split.test_x).tolist() == proba.argmax(axis=1).tolist()
    assert model.score(split.test_x, split.test_y) == (
        int((proba.argmax(axis=1) == split.test_y).sum()) / 300)


def test_fit_stops_patience_epochs_after_the_best_and_restores_it(split):
    """Full-batch epochs without dropout are a deterministic trajectory: replay it one epoch per
    fit (warm start keeps Adam's state), then check where early stopping ended and what it kept."""
    x, y = split.pool_x[:100], split.pool_y[:100]
    params = MLP.Params(hidden=32, dropout=0.0)
    stepper = mlp(split, params=params, stopping="fixed", max_epochs=1)
    trajectory, weights = [], []
    for _ in range(120):
        assert stepper.fit(x, y).epochs == 1
        trajectory.append(stepper.score(split.val_x, split.val_y))
        weights.append(stepper.weights)
    model = mlp(split, params=params, patience=8, max_epochs=500)
    info = model.fit(x, y)
    epochs = info.epochs
    best, best_epoch, wait, expected = -1.0, 0, 0, 0
    for epoch, acc in enumerate(trajectory, start=1):
        if acc > best:
            best, best_epoch, wait = acc, epoch, 0
        else:
            wait += 1
        if wait == 8:
            expected = epoch
            break
    assert expected, "the trajectory should stop within 120 epochs"
    assert epochs == expected
    assert info.best_epoch == best_epoch == epochs - 8
    assert model.score(split.val_x, split.val_y) == best
    for ours, best_weights in zip(model.weights, weights[best_epoch - 1], strict=True):
        np.testing.assert_array_equal(ours, best_weights)  # the best epoch's, not the last's
    assert not np.array_equal(model.weights[0], weights[epochs - 1][0])


def test_fixed_stopping_runs_max_epochs_and_keeps_the_last_weights(split):
    x, y = split.pool_x[:50], split.pool_y[:50]
    params = MLP.Params(hidden=32, dropout=0.0)
    fixed = MLP(MNIST, 10, None, spec(stopping="fixed", max_epochs=7), params, 0)
    info = fixed.fit(x, y)
    assert (info.epochs, info.best_epoch) == (7, 7)
    stepper = MLP(MNIST, 10, None, spec(stopping="fixed", max_epochs=1), params, 0)
    for _ in range(7):
        stepper.fit(x, y)
    for a, b in zip(fixed.weights, stepper.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="monitor"):
        MLP(MNIST, 10, None, spec(), params, 0)
    with pytest.raises(ValueError, match="at least one"):
        fixed.fit(x[:0], y[:0])
    with pytest.raises(ValueError, match="784 features"):
        fixed.fit(x[:, :64], y)


def test_warm_start_continues_and_cold_start_restarts(split):
    a, b = (split.pool_x[:30], split.pool_y[:30]), (split.pool_x[30:60], split.pool_y[30:60])
    final = (split.pool_x[:80], split.pool_y[:80])

    def weights_after(first, warm_start):
        model = mlp(split, warm_start=warm_start, batch_size=16)
        model.fit(*first)
        model.fit(*final)
        return model.weights

    # cold: nothing of the first fit survives into the second
    for u, v in zip(weights_after(a, False), weights_after(b, False), strict=True):
        np.testing.assert_array_equal(u, v)
    # warm: the second fit continues from the first
    warm_a, warm_b = weights_after(a, True), weights_after(b, True)
    assert any(not np.array_equal(u, v) for u, v in zip(warm_a, warm_b, strict=True))


def test_reset_draws_seeded_weights(split):
    one, two, other = mlp(split, seed=1), mlp(split, seed=1), mlp(split, seed=2)
    first = one.weights
    for u, v in zip(first, two.weights, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(first[0], other.weights[0])
    assert np.abs(first[0]).max() > 0 and not first[1].any()  # Glorot kernel, zero bias
    one.reset()
    two.reset()
    assert not np.array_equal(first[0], one.weights[0])  # each reset draws anew...
    np.testing.assert_array_equal(one.weights[0], two.weights[0])  # ...reproducibly


@pytest.mark.parametrize("make", [mlp, cnn], ids=["mlp", "cnn"])
def test_same_seed_same_numbers(split, make):
    """Dropout, shuffled mini-batches, MC passes: all seeded, so two runs are bit-identical."""
    def run(seed):
        model = make(split, seed=seed, batch_size=16, max_epochs=8)
        epochs = [model.fit(split.pool_x[:n], split.pool_y[:n]).epochs for n in (40, 70)]
        return (epochs, model.weights, model.predict_proba(split.test_x),
                model.predict_proba_samples(split.test_x[:20], 3))

    first, second, other = run(5), run(5), run(6)
    assert first[0] == second[0]
    for u, v in zip(first[1], second[1], strict=True):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(first[2], second[2])
    np.testing.assert_array_equal(first[3], second[3])
    assert not np.array_equal(first[2], other[2])


def test_one_trace_across_growing_sets_instances_and_sessions(split):
    """Every fit of every instance of an architecture runs the same trace, even after
    keras.backend.clear_session() (runtime.reset_tensorflow_state between a worker's jobs)."""
    from al_research.runtime import reset_tensorflow_state

    params = MLP.Params(hidden=48)  # an architecture no other test uses

    def instance(seed, **kwargs):
        model = mlp(split, seed=seed, params=params, max_epochs=10, **kwargs)
        for n in (10, 20, 33, 47):
            model.fit(split.pool_x[:n], split.pool_y[:n])
            model.predict_proba(split.pool_x[n:])
            model.score(split.test_x, split.test_y)
        return model

    first = instance(0)
    before = instance(1, batch_size=8, warm_start=False).predict_proba(split.test_x)
    reset_tensorflow_state()
    after = instance(1, batch_size=8, warm_start=False)
    counts = after.tracing_counts()
    assert counts["fit"] == 1 and counts["proba"] == 1 and counts["hits"] == 1
    assert counts["samples"] == 0  # never asked for
    assert first.tracing_counts() == counts  # one cache entry for the architecture
    np.testing.assert_array_equal(after.predict_proba(split.test_x), before)  # same numbers
    assert after.score(split.test_x, split.test_y) > 0.4


@pytest.mark.parametrize("make", [mlp, cnn], ids=["mlp", "cnn"])
def test_mc_dropout_passes(split, make):
    model = make(split)
    model.fit(split.pool_x[:100], split.pool_y[:100])
    x = split.test_x[:25]
    assert model.has_dropout
    samples = model.predict_proba_samples(x, 6)
    assert samples.shape == (6, 25, 10)
    np.testing.assert_allclose(samples.sum(axis=2), 1.0, rtol=1e-5)
    assert not np.allclose(samples[0], samples[1])  # dropout masks differ between passes
    again = model.predict_proba_samples(x, 6)
    assert not np.array_equal(samples, again)  # each call draws new masks
    np.testing.assert_array_equal(model.predict_proba(x), model.predict_proba(x))  # no dropout


@pytest.mark.parametrize("make", [mlp, cnn], ids=["mlp", "cnn"])
def test_mc_passes_resample_the_head_dropout_once_per_pass_for_every_row(split, make):
    """The passes reuse the features and resample the last layer's dropout alone, one mask per
    pass shared by every row (consistent MC dropout: a pass is one draw of the weights). Dropout
    scales by 1/(1-p), so the head's logits, and the differences of log-probabilities, average
    to the deterministic ones over passes."""
    model = make(split)
    model.fit(split.pool_x[:100], split.pool_y[:100])
    assert model._trainer.compiled.architecture.head_dropout == 0.5
    x = split.test_x[:6]
    samples = np.asarray(model.predict_proba_samples(np.concatenate([x, x]), 4000),
                         dtype=np.float64)
    np.testing.assert_allclose(samples[:, :6], samples[:, 6:], atol=1e-6)  # one mask per pass
    assert not np.allclose(samples[0], samples[1])
    log_odds = np.log(samples) - np.log(samples[..., :1])  # z_c - z_0: linear in the mask
    exact = np.log(model.predict_proba(x)) - np.log(model.predict_proba(x)[:, :1])
    spread = log_odds[:, :6].std(axis=0) / np.sqrt(len(samples))
    assert np.all(np.abs(log_odds[:, :6].mean(axis=0) - exact) < 5 * spread + 1e-4)


def test_proba_and_embed_in_one_pass(split):
    model = mlp(split)
    model.fit(split.pool_x[:60], split.pool_y[:60])
    proba, features = model.predict_proba_and_embed(split.pool_x)  # 600 rows: two chunks
    np.testing.assert_array_equal(proba, model.predict_proba(split.pool_x))
    np.testing.assert_array_equal(features, model.embed(split.pool_x))


def test_without_dropout_there_are_no_stochastic_passes(split):
    model = mlp(split, params=MLP.Params(hidden=32, dropout=0.0))
    assert not model.has_dropout
    assert Capability.MC_SAMPLES not in model.capabilities
    with pytest.raises(CapabilityError, match="dropout"):
        model.predict_proba_samples(split.test_x[:5], 3)


@pytest.mark.parametrize("make", [mlp, cnn], ids=["mlp", "cnn"])
def test_capabilities_are_declared(split, make):
    everything = {Capability.PROBA, Capability.EMBEDDINGS, Capability.GRAD_EMBEDDINGS,
                  Capability.MC_SAMPLES, Capability.RETRAIN}
    with_dropout = make(split)
    assert with_dropout.capabilities == everything and with_dropout.has_dropout
    params = (MLP.Params(hidden=16, dropout=0.0) if make is mlp
              else CNN.Params(filters=(4, 8), dense=16, dropout=0.0))
    without = make(split, params=params)
    assert without.capabilities == everything - {Capability.MC_SAMPLES}
    assert not without.has_dropout and "samples" not in without.tracing_counts()
    assert missing(frozenset({Capability.MC_SAMPLES}), without.capabilities) == ["mc_samples"]
    assert not with_dropout.embeds_input and not without.embeds_input


def test_mlp_score_is_an_exact_fraction(split):
    """Accuracy is an integer count of hits over n, in Python: 100 items give k / 100."""
    model = mlp(split, stopping="fixed", max_epochs=3)
    model.fit(split.pool_x[:40], split.pool_y[:40])
    x, y = split.test_x[:100], split.test_y[:100]
    score = model.score(x, y)
    assert score * 100 == round(score * 100)
    assert score == int((model.predict(x) == y).sum()) / 100
    assert len(repr(score)) <= 4  # e.g. 0.26, not float32's 0.25999999046325684


@pytest.mark.parametrize(("make", "width"), [(mlp, 64), (cnn, 32)], ids=["mlp", "cnn"])
def test_embed_is_the_last_dense_layers_input(split, make, width):
    model = make(split)
    model.fit(split.pool_x[:60], split.pool_y[:60])
    x = split.test_x[:30]
    features = model.embed(x)
    assert features.shape == (30, width)
    assert (features >= 0).all()  # ReLU features
    kernel, bias = model.weights[-2:]
    logits = features @ kernel + bias
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, model.predict_proba(x), rtol=1e-4, atol=1e-6)


def test_adam_steps_as_keras_adam(split):
    """One full-batch epoch per fit, no dropout: the same weights as keras.optimizers.Adam."""
    import keras

    from al_research.runtime import tf

    x, y = split.pool_x[:50], split.pool_y[:50]
    ours = mlp(split, params=MLP.Params(hidden=16, dropout=0.0), lr=0.01, stopping="fixed",
               max_epochs=1)
    reference = keras.Sequential([keras.Input((784,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(10)])
    reference.set_weights(ours.weights)
    adam = keras.optimizers.Adam(learning_rate=0.01)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for _ in range(5):
        ours.fit(x, y)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, reference(x))
        adam.apply_gradients(zip(tape.gradient(loss, reference.trainable_variables),
                                 reference.trainable_variables, strict=True))
    for u, v in zip(ours.weights, reference.get_weights(), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    assert np.abs(ours.weights[0] - mlp(split, params=MLP.Params(hidden=16, dropout=0.0))
                  .weights[0]).max() > 0.01  # it really moved


def test_cnn_refuses_non_image_input_before_any_work():
    for shape in [(64,), (8, 8), (2, 8, 1)]:
        with pytest.raises(ValueError, match=r"model=cnn needs image"):
            CNN.check_input(shape)
    with pytest.raises(ValueError, match=r"model=cnn needs image data.*input_shape \(64,\)"):
        CNN((64,), 10, None, spec(stopping="fixed"), CNN.Params(), 0)
    CNN.check_input((8, 8, 1))
    MLP.check_input((64,))


def test_cnn_learns_8x8_digits(digits):
    (x, y), (vx, vy), (tx, ty) = digits
    model = CNN((8, 8, 1), 10, (vx, vy), spec(batch_size=32, patience=5, max_epochs=60),
                CNN.Params(filters=(8, 16), dense=32), seed=0)
    model.fit(x, y)
    assert model.score(tx, ty) > 0.8
    assert model.embed(tx).shape == (300, 32)


def test_params_are_checked():
    for bad in [dict(hidden=0), dict(dropout=1.0), dict(dropout=-0.1)]:
        with pytest.raises(ValueError, match=f"model.params.{next(iter(bad))}"):
            MLP.Params(**bad)
    for bad in [dict(filters=[8]), dict(filters=[8, 0]), dict(dense=0), dict(kernel_size=0)]:
        with pytest.raises(ValueError, match=f"model.params.{next(iter(bad))}"):
            CNN.Params(**bad)
    assert CNN.Params(filters=[4, 8]).filters == (4, 8)  # a yaml list becomes a tuple


class _Spy:
    """A real MLP, counting its `embed` calls; with `joint=False`, its
    `predict_proba_and_embed` makes two separate passes (`predict_proba`, then `embed`)."""

    def __init__(self, model, joint: bool):
        self._model, self._joint, self.embedded_rows = model, joint, []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def predict_proba_and_embed(self, x):
        if self._joint:
            return self._model.predict_proba_and_embed(x)
        return self._model.predict_proba(x), self.embed(x)

    def embed(self, x):
        self.embedded_rows.append(len(x))
        return self._model.embed(x)


def test_the_loop_takes_embeddings_from_the_probabilities_pass(split):
    """A strategy reading the embeddings (core-set, BADGE) gets the unlabelled items' from the
    forward pass that gives the round's probabilities: the same picks as a second pass."""
    from al_research.experiment.loop import Evaluation, LabelledPool, run_active_learning
    from al_research.experiment.oracle import Oracle
    from al_research.strategies.badge import Badge

    def picks(joint):
        spy = _Spy(mlp(split), joint)
        pool = LabelledPool(split.pool_x, Oracle(split.pool_y))
        initial = np.sort(np.random.default_rng(1).choice(len(split.pool_x), 10, replace=False))
        rounds = run_active_learning(
            spy, pool, Evaluation(split.test_x, split.test_y, split.val_x, split.val_y),
            Badge(), initial, 10, 40, np.random.default_rng(2))
        return [r.selected.tolist() for r in rounds], spy.embedded_rows

    joint, joint_embeds = picks(joint=True)
    separate, separate_embeds = picks(joint=False)
    assert joint == separate and len(joint) == 4 and len(joint[0]) == 10
    assert joint_embeds == [] and separate_embeds == [590, 580, 570]
