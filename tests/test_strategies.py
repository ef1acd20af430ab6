"""Query strategies on hand-made probabilities."""

import numpy as np

from al_research.strategies import least_confident, most_confident, random_sampling

PROBA = np.array([
    [0.90, 0.05, 0.05],  # 0: confident
    [0.40, 0.35, 0.25],  # 1: least confident
    [0.60, 0.20, 0.20],  # 2: tie with 4
    [0.50, 0.45, 0.05],  # 3
    [0.20, 0.60, 0.20],  # 4: tie with 2
])


def test_least_confident_picks_lowest_max_softmax():
    assert least_confident(PROBA, 2, np.random.default_rng(0)).tolist() == [1, 3]


def test_least_confident_breaks_ties_by_lower_position():
    assert least_confident(PROBA, 3, np.random.default_rng(0)).tolist() == [1, 3, 2]
    flipped = PROBA[[4, 1, 2, 3, 0]]  # the tie now sits at positions 0 and 2
    assert least_confident(flipped, 3, np.random.default_rng(0)).tolist() == [1, 3, 0]


def test_most_confident_is_the_reverse_with_the_same_tie_rule():
    assert most_confident(PROBA, 3, np.random.default_rng(0)).tolist() == [0, 2, 4]


def test_random_sampling_is_distinct_seeded_and_in_range():
    proba = np.full((100, 10), 0.1)
    a = random_sampling(proba, 10, np.random.default_rng(7))
    b = random_sampling(proba, 10, np.random.default_rng(7))
    c = random_sampling(proba, 10, np.random.default_rng(8))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert len(set(a.tolist())) == 10 and a.min() >= 0 and a.max() < 100


def test_strategies_never_ask_for_more_than_there_is():
    proba = np.full((3, 10), 0.1)
    assert len(random_sampling(proba, 10, np.random.default_rng(0))) == 3
    assert len(least_confident(proba, 10, np.random.default_rng(0))) == 3
