"""Self-training: pseudo-labels are free, never repeated, and their accuracy is measured."""

import numpy as np
import pytest

from al_research.config import DataConfig
from al_research.data import make_split
from al_research.experiment.loop import Evaluation, LabelledPool
from al_research.experiment.oracle import Oracle
from al_research.experiment.self_training import run_self_training
from al_research.models.softmax import SoftmaxRegression


@pytest.fixture(scope="module")
def split():
    return make_split(DataConfig(name="mnist_5k", pool_size=300), seed=2)


def _start(split, n_labelled=30):
    model = SoftmaxRegression((784,), 10, (split.val_x, split.val_y))
    pool = LabelledPool(split.pool_x, Oracle(split.pool_y))
    pool.add(np.arange(n_labelled))
    model.fit(*pool.training_set())
    return model, pool, Evaluation(split.test_x, split.test_y, split.val_x, split.val_y)


def test_batches_pseudo_label_the_most_confident_without_spending(split):
    model, pool, held_out = _start(split)
    proba = model.predict_proba(split.pool_x[30:])
    expected_first = 30 + np.argsort(-proba.max(axis=1), kind="stable")[:10]
    expected_labels = proba.argmax(axis=1)[expected_first - 30]
    result = run_self_training(model, pool, held_out, batch_size=10, max_rounds=5)
    assert pool.oracle.spent == 30
    assert len(result.rounds) == 5 and result.rounds[-1].n_pseudo == 50
    assert result.indices[:10].tolist() == expected_first.tolist()
    assert result.pseudo_labels[:10].tolist() == expected_labels.tolist()
    assert len(np.unique(result.indices)) == 50
    assert not set(result.indices) & set(range(30))


def test_pseudo_label_accuracy_matches_a_hand_count(split):
    model, pool, held_out = _start(split)
    result = run_self_training(model, pool, held_out, batch_size=7, max_rounds=3)
    truth = split.pool_y[result.indices]
    for r in range(3):
        upto = 7 * (r + 1)
        by_hand = (result.pseudo_labels[:upto] == truth[:upto]).mean()
        assert result.rounds[r].pseudo_accuracy == pytest.approx(by_hand)
        batch = slice(7 * r, upto)
        assert result.rounds[r].batch_accuracy == pytest.approx(
            (result.pseudo_labels[batch] == truth[batch]).mean())
    confusion = result.confusion(10)
    assert confusion.sum() == 21 and np.trace(confusion) == (result.pseudo_labels == truth).sum()


def test_runs_until_the_pool_is_used_up(split):
    model, pool, held_out = _start(split, n_labelled=250)
    result = run_self_training(model, pool, held_out, batch_size=20)
    assert result.rounds[-1].n_pseudo == 50 and len(result.rounds) == 3
    assert len(pool.unlabelled) == 0 and pool.oracle.spent == 250


def test_confidence_threshold_stops_it(split):
    model, pool, held_out = _start(split)
    result = run_self_training(model, pool, held_out, batch_size=10, min_confidence=1.01)
    assert result.rounds == [] and len(pool.indices) == 30


def test_all_at_once_is_the_classical_variant(split):
    model, pool, held_out = _start(split)
    result = run_self_training(model, pool, held_out, batch_size=10, mode="all_at_once")
    assert len(result.rounds) == 1 and result.rounds[0].n_pseudo == 270
    assert pool.oracle.spent == 30
