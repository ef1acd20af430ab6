"""The loop: budget, disjoint sets, pairing of seeds, determinism."""

import numpy as np
import pytest

from al_research.config import DataConfig
from al_research.data import make_split
from al_research.experiment.loop import (
    Evaluation,
    LabelledPool,
    run_active_learning,
)
from al_research.experiment.oracle import Oracle
from al_research.models.softmax import SoftmaxRegression
from al_research.strategies.random import RandomSampling
from al_research.strategies.uncertainty import LeastConfident

least_confident, random_sampling = LeastConfident(), RandomSampling()


@pytest.fixture(scope="module")
def split():
    return make_split(DataConfig(name="mnist_5k", pool_size=600), seed=5)


def _run(split, strategy, seed=5, budget=50, batch=10):
    model = SoftmaxRegression((784,), 10, (split.val_x, split.val_y))
    oracle = Oracle(split.pool_y)
    pool = LabelledPool(split.pool_x, oracle)
    initial = np.sort(np.random.default_rng([seed, 1]).choice(len(split.pool_x), 10,
                                                              replace=False))
    held_out = Evaluation(split.test_x, split.test_y, split.val_x, split.val_y)
    rounds = run_active_learning(model, pool, held_out, strategy, initial, batch, budget,
                                 np.random.default_rng([seed, 2]))
    return rounds, pool, oracle, initial


def test_spends_exactly_the_budget_in_rounds(split):
    rounds, pool, oracle, initial = _run(split, least_confident, budget=45, batch=10)
    assert [r.n_labelled for r in rounds] == [10, 20, 30, 40, 45]
    assert oracle.spent == 45 == len(np.unique(pool.indices))
    assert len(rounds[-1].selected) == 0
    assert pool.indices[:10].tolist() == initial.tolist()
    assert np.array_equal(pool.labels, split.pool_y[pool.indices])


def test_trains_only_on_pool_items(split):
    _, pool, _, _ = _run(split, random_sampling)
    trained_on = set(split.pool_ids[pool.indices])
    assert not trained_on & set(split.test_ids) and not trained_on & set(split.val_ids)


def test_least_confident_selects_the_least_confident(split):
    rounds, _, _, initial = _run(split, least_confident, budget=20)
    first = rounds[0]
    unlabelled = np.setdiff1d(np.arange(len(split.pool_x)), initial)  # confidence's row order
    assert len(first.confidence) == len(unlabelled)
    picked = first.confidence[np.searchsorted(unlabelled, first.selected)]
    assert np.isin(first.selected, unlabelled).all() and len(set(first.selected)) == 10
    np.testing.assert_array_equal(np.sort(picked), np.sort(first.confidence)[:10])
    assert first.mean_confidence == pytest.approx(first.confidence.mean(), rel=1e-5)


def test_same_seed_same_selection_and_accuracy(split):
    a, _, _, _ = _run(split, least_confident)
    b, _, _, _ = _run(split, least_confident)
    assert [r.selected.tolist() for r in a] == [r.selected.tolist() for r in b]
    assert [r.test_accuracy for r in a] == [r.test_accuracy for r in b]


def test_strategies_share_the_initial_set_for_a_seed(split):
    _, pool_lc, _, init_lc = _run(split, least_confident, budget=20)
    _, pool_rnd, _, init_rnd = _run(split, random_sampling, budget=20)
    assert init_lc.tolist() == init_rnd.tolist()
    assert pool_lc.indices[10:].tolist() != pool_rnd.indices[10:].tolist()


def test_pool_refuses_to_label_an_item_twice(split):
    pool = LabelledPool(split.pool_x, Oracle(split.pool_y))
    pool.add(np.array([1, 2]))
    with pytest.raises(ValueError, match="twice"):
        pool.add(np.array([2, 3]))
