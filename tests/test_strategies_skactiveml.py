"""Every strategy scikit-activeml also has, fed identical inputs in both implementations.

Same probabilities, MC samples, embeddings, labelled set and random state; the same selected
indices, or, where the two differ by design, the documented difference and the same
utilities. The differences (docstrings of the strategies say the same):

- ties: we take the lower position, scikit-activeml draws among the tied (`rand_argmax`);
- BALD: scikit-activeml clips probabilities at 1e-7 before the logarithm, we use 0 log 0 = 0;
- BADGE: scikit-activeml keeps the origin as an extra k-means++ centre (its D^2 starts at
  ||g||^2); the paper and its code do not, nor do we. With the origin added (a test-only switch)
  and scikit-activeml's random draws, the picks are identical;
- TypiClust: we skip clusters of at most `min_cluster_size` items (the reference code's 5),
  scikit-activeml keeps them; typicality's guard is 1e-5 on the mean distance (reference code)
  against 1e-7 on the sum;
- ProbCover: identical δ and graph; degrees (utilities) equal at every step.

scikit-activeml is a test-only dependency (the `dev` extra).
"""

from __future__ import annotations

import numpy as np
import pytest
from skactiveml.base import SkactivemlClassifier
from skactiveml.pool import Badge as SkBadge
from skactiveml.pool import CoreSet as SkCoreSet
from skactiveml.pool import GreedyBALD, UncertaintySampling
from skactiveml.pool import ProbCover as SkProbCover
from skactiveml.pool import TypiClust as SkTypiClust
from skactiveml.utils import check_random_state as sk_random_state

from al_research.strategies.badge import Badge, kmeanspp_gradients, residuals
from al_research.strategies.bald import BALD
from al_research.strategies.coreset import CoreSet
from al_research.strategies.features import draw_seed, radius_graph
from al_research.strategies.probcover import ProbCover, greedy_coverage
from al_research.strategies.typiclust import TypiClust
from al_research.strategies.uncertainty import Entropy, LeastConfident, Margin
from tests.test_strategies import TableLearner, picked, softmax, table_context


class Fixed(SkactivemlClassifier):
    """A fitted scikit-activeml classifier whose outputs are tables indexed by the item id in
    column 0 of X (the same tables our TableLearner serves)."""

    def __init__(self, proba=None, embeddings=None, samples=None, classes=None,
                 missing_label=np.nan):
        super().__init__(classes=classes, missing_label=missing_label)
        self.proba, self.embeddings, self.samples = proba, embeddings, samples
        self.classes_ = classes

    def fit(self, X, y, sample_weight=None):
        return self

    def predict_proba(self, X, return_embeddings=False):
        ids = np.asarray(X)[:, 0].astype(int)
        if return_embeddings:
            return self.proba[ids].copy(), self.embeddings[ids].copy()
        return self.proba[ids].copy()

    def sample_proba(self, X):
        return self.samples[:, np.asarray(X)[:, 0].astype(int)].copy()  # it clips in place


def ids(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64)[:, None]


def labels_for(n: int, labelled, n_classes: int = 3) -> np.ndarray:
    y = np.full(n, np.nan)
    y[labelled] = np.arange(len(labelled)) % n_classes
    return y


N, C = 400, 10
RNG = np.random.default_rng(2026)
PROBA = softmax(RNG.normal(size=(N, C)) * 2)
LABELLED = np.sort(RNG.choice(N, 40, replace=False))
UNLABELLED = np.setdiff1d(np.arange(N), LABELLED)


# --- uncertainty sampling ---------------------------------------------------------------------

UNCERTAINTY = [(LeastConfident, "least_confident"), (Margin, "margin_sampling"),
               (Entropy, "entropy")]


@pytest.mark.parametrize(("ours", "method"), UNCERTAINTY, ids=[m for _, m in UNCERTAINTY])
def test_uncertainty_sampling_same_picks_and_utilities(ours, method):
    clf = Fixed(PROBA, classes=np.arange(C))
    sk_picks, sk_util = UncertaintySampling(method=method, random_state=0).query(
        ids(N), labels_for(N, LABELLED), clf, fit_clf=False, batch_size=10,
        return_utilities=True)
    ctx = table_context(N, LABELLED, TableLearner(proba=PROBA))
    query = ours().query(ctx, 10)
    assert UNLABELLED[query.positions].tolist() == sk_picks.tolist()
    np.testing.assert_allclose(ours().scores(ctx), sk_util[0][UNLABELLED], rtol=1e-12, atol=0)


@pytest.mark.parametrize(("ours", "method"), UNCERTAINTY, ids=[m for _, m in UNCERTAINTY])
def test_uncertainty_ties_lower_position_here_random_there(ours, method):
    tied = PROBA.copy()
    tied[[30, 60, 90, 120]] = 0.1  # uniform: the most uncertain for every utility
    clf = Fixed(tied, classes=np.arange(C))
    ours_picks = picked(table_context(N, [], TableLearner(proba=tied)), ours(), 2)
    assert ours_picks == [30, 60]
    drawn: set[int] = set()
    for seed in range(6):
        sk_picks, sk_util = UncertaintySampling(method=method, random_state=seed).query(
            ids(N), np.full(N, np.nan), clf, fit_clf=False, batch_size=2,
            return_utilities=True)
        assert set(sk_picks.tolist()) <= {30, 60, 90, 120}
        drawn |= set(sk_picks.tolist())
        np.testing.assert_allclose(ours().scores(table_context(N, [], TableLearner(
            proba=tied))), sk_util[0], rtol=1e-12)
    assert drawn != {30, 60}  # scikit-activeml draws among the tied


# --- BALD ----------------------------------------------------------------------------------

def test_bald_same_picks_and_utilities_as_greedy_bald():
    samples = softmax(RNG.normal(size=(8, N, C)) * 2)
    assert samples.min() > 1e-6  # away from scikit-activeml's clipping at 1e-7
    clf = Fixed(samples.mean(axis=0), samples=samples, classes=np.arange(C))
    sk_picks, sk_util = GreedyBALD(sample_predictions_method_name="sample_proba",
                                   random_state=0).query(
        ids(N), labels_for(N, LABELLED), clf, fit_ensemble=False, batch_size=10,
        return_utilities=True)
    learner = TableLearner(proba=samples.mean(axis=0), samples=samples)
    query = BALD(BALD.Params(mc_samples=8)).query(table_context(N, LABELLED, learner), 10)
    assert UNLABELLED[query.positions].tolist() == sk_picks.tolist()
    np.testing.assert_allclose(query.scores, sk_util[0][UNLABELLED], atol=1e-6)


# --- core-set ------------------------------------------------------------------------------

EMBEDDINGS = RNG.normal(size=(N, 16))


def test_coreset_same_picks_and_distances():
    sk_picks, sk_util = SkCoreSet(random_state=0).query(
        EMBEDDINGS, labels_for(N, LABELLED), batch_size=10, return_utilities=True)
    query = CoreSet().query(table_context(N, LABELLED, TableLearner(embeddings=EMBEDDINGS)), 10)
    assert UNLABELLED[query.positions].tolist() == sk_picks.tolist()
    np.testing.assert_allclose(query.scores, sk_util[0][UNLABELLED], rtol=1e-9)


def test_coreset_ties_lower_position_here_random_there():
    e = EMBEDDINGS.copy()
    e[[100, 200]] = 40.0  # two identical items, farthest from everything
    learner = TableLearner(embeddings=e)
    assert picked(table_context(N, LABELLED, learner), CoreSet(), 2)[0] == 100
    firsts = {int(SkCoreSet(random_state=seed).query(e, labels_for(N, LABELLED))[0])
              for seed in range(12)}
    assert firsts == {100, 200}


# --- BADGE ---------------------------------------------------------------------------------

def _badge_inputs():
    rng = np.random.default_rng(5)
    return softmax(rng.normal(size=(N, 4)) * 2), rng.normal(size=(N, 6))


def _sk_badge(proba, h, seed, batch):
    clf = Fixed(proba, embeddings=h, classes=np.arange(proba.shape[1]))
    return SkBadge(clf_embedding_flag_name="return_embeddings", random_state=seed).query(
        ids(N), labels_for(N, LABELLED), clf, fit_clf=False, batch_size=batch,
        return_utilities=True)


def test_badge_with_the_origin_as_a_centre_and_the_same_draws_is_scikit_activeml():
    proba, h = _badge_inputs()
    sk_picks, _ = _sk_badge(proba, h, 7, 10)
    # scikit-activeml's random state for this query, drawn as it draws it
    state = sk_random_state(7, len(UNLABELLED) + 1)
    picks, _ = kmeanspp_gradients(
        proba[UNLABELLED], h[UNLABELLED], 10,
        lambda p: int(state.choice(len(p), 1, replace=False, p=p)[0]), origin_as_center=True)
    assert UNLABELLED[picks].tolist() == list(map(int, sk_picks))


def test_badge_differs_from_scikit_activeml_only_by_the_origin_centre():
    proba, h = _badge_inputs()
    sk_picks, sk_util = _sk_badge(proba, h, 3, 6)
    replay = iter(np.searchsorted(UNLABELLED, sk_picks[1:]).tolist())
    seen: list[np.ndarray] = []

    def draw(p):
        seen.append(p)
        return next(replay)

    picks, norms = kmeanspp_gradients(proba[UNLABELLED], h[UNLABELLED], 6, draw)
    assert UNLABELLED[picks].tolist() == list(map(int, sk_picks))  # same first: the max norm
    g = (residuals(proba[UNLABELLED])[:, :, None] * h[UNLABELLED][:, None, :]).reshape(
        len(UNLABELLED), -1)
    for step, p in enumerate(seen, start=1):
        d2 = ((g[:, None] - g[picks[:step]][None]) ** 2).sum(axis=2).min(axis=1)
        np.testing.assert_allclose(p, d2 / d2.sum(), atol=1e-12)  # ours: the paper's D^2
        with_origin = np.minimum(d2, norms**2)  # scikit-activeml's: the origin as a centre
        theirs = np.nan_to_num(sk_util[step][UNLABELLED])
        np.testing.assert_allclose(theirs, with_origin / with_origin.sum(), atol=1e-9)
    assert not np.allclose(seen[0], np.nan_to_num(sk_util[1][UNLABELLED]), atol=1e-6)


def test_badge_strategy_uses_the_loops_rng():
    proba, h = _badge_inputs()
    learner = TableLearner(proba=proba, embeddings=h)
    a = picked(table_context(N, LABELLED, learner, seed=1), Badge(), 10)
    b = picked(table_context(N, LABELLED, learner, seed=1), Badge(), 10)
    c = picked(table_context(N, LABELLED, learner, seed=2), Badge(), 10)
    assert a == b and a != c and a[0] == c[0]  # the first centre is the largest gradient


# --- TypiClust -----------------------------------------------------------------------------

def _blobs(sizes, dim=6, spread=1.0, distance=20.0, seed=0):
    rng = np.random.default_rng(seed)
    parts = [np.eye(dim)[i] * distance + rng.normal(scale=spread, size=(size, dim))
             for i, size in enumerate(sizes)]
    blob = np.repeat(np.arange(len(sizes)), sizes)
    return np.concatenate(parts), blob


def _first_of(blob, which):
    """Item order with one item of each blob in `which` first (to be labelled)."""
    heads = [int(np.flatnonzero(blob == b)[0]) for b in which]
    return np.concatenate([heads, np.setdiff1d(np.arange(len(blob)), heads)])


def test_typiclust_same_clusters_picks_and_typicality():
    x, blob = _blobs([40, 36, 32, 28, 24, 20])
    order = _first_of(blob, [0, 1])
    x, blob = x[order], blob[order]
    labelled, n = np.array([0, 1]), len(x)
    seed = draw_seed(np.random.default_rng(9))  # what our strategy draws from the loop's rng
    sk_picks, sk_util = SkTypiClust(k=5, random_state=seed).query(
        x, labels_for(n, labelled), batch_size=4, return_utilities=True)
    strategy = TypiClust(TypiClust.Params(features="embedding", normalize=False, k_neighbors=5,
                                          min_cluster_size=0))
    ctx = table_context(n, labelled, TableLearner(embeddings=x), seed=9)
    query = strategy.query(ctx, 4)
    chosen = ctx.unlabelled[query.positions]
    assert chosen.tolist() == list(map(int, sk_picks))
    assert blob[chosen].tolist() == [2, 3, 4, 5]  # the uncovered blobs, largest first
    for step in range(4):
        theirs = sk_util[step][ctx.unlabelled]
        evaluated = np.isfinite(theirs) & (theirs > 0)
        # ours: 1 / (mean + 1e-5); theirs: k / (sum + 1e-7)
        np.testing.assert_allclose(1 / query.scores[evaluated] - 1e-5,
                                   1 / theirs[evaluated] - 1e-7 / 5, rtol=1e-9)


def test_typiclust_skips_small_clusters_where_scikit_activeml_does_not():
    x, blob = _blobs([40, 36, 30, 3])  # blob 3: three items
    order = _first_of(blob, [0])
    x, blob = x[order], blob[order]
    labelled, n = np.array([0]), len(x)
    seed = draw_seed(np.random.default_rng(4))
    sk_picks = SkTypiClust(k=5, random_state=seed).query(x, labels_for(n, labelled),
                                                         batch_size=3)
    ctx = table_context(n, labelled, TableLearner(embeddings=x), seed=4)
    ours = picked(ctx, TypiClust(TypiClust.Params(features="embedding", normalize=False,
                                                  k_neighbors=5)), 3)
    assert sorted(blob[list(map(int, sk_picks))].tolist()) == [1, 2, 3]
    # blob 3 skipped (<= 5 items); the third pick goes to the next least covered: blob 0
    assert blob[ours].tolist() == [1, 2, 0]


# --- ProbCover -----------------------------------------------------------------------------

def test_probcover_same_delta_and_the_same_degrees_at_every_step():
    x, blob = _blobs([50, 40, 30], dim=3, spread=1.5, distance=5.0, seed=3)
    order = _first_of(blob, [0])
    x = x[order]
    labelled, n = np.array([0]), len(x)
    grid = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    seed = draw_seed(np.random.default_rng(6))
    sk = SkProbCover(n_classes=3, deltas=grid, alpha=0.9, random_state=seed)
    sk_picks, sk_util = sk.query(x, labels_for(n, labelled), batch_size=6,
                                 return_utilities=True)
    strategy = ProbCover(ProbCover.Params(features="embedding", normalize=False, deltas=grid,
                                          alpha=0.9))
    delta = strategy.delta(table_context(n, labelled, None, seed=6, n_classes=3), x)
    assert delta == sk.delta_max_ == 2.0  # purity 0.925 at 2.0, 0.833 at 2.5
    graph = radius_graph(x, delta)
    np.testing.assert_array_equal(graph.toarray().astype(bool), sk.distances_ <= delta)

    candidates = np.arange(1, n)
    replay = iter(map(int, sk_picks))
    steps = []

    def choose(degrees, is_candidate):  # replay scikit-activeml's picks, comparing degrees
        step = len(steps)
        theirs = sk_util[step][is_candidate]
        np.testing.assert_array_equal(degrees[is_candidate], theirs)
        pick = next(replay)
        assert degrees[pick] == degrees[is_candidate].max()  # theirs is one of our argmaxes
        steps.append(pick)
        return pick

    greedy_coverage(graph, labelled, candidates, 6, choose)
    assert len(steps) == 6
    # our own picks: the same degrees, ties to the lower position
    ctx = table_context(n, labelled, TableLearner(embeddings=x), seed=6, n_classes=3)
    query = strategy.query(ctx, 6)
    np.testing.assert_array_equal(query.scores, sk_util[0][candidates])
    first = int(np.flatnonzero(sk_util[0] == np.nanmax(sk_util[0]))[0])
    assert ctx.unlabelled[query.positions[0]] == first
