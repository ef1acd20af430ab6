"""Query strategies on hand-checkable cases: each one against its paper's definition, its
tie-break, its determinism, cases where it must pick otherwise than random, and the refusals
of bad hyperparameters and of models that lack what a strategy needs.

The learner here is a table (`TableLearner`): it isolates the strategies' pure logic from
training. Real models run the strategies in tests/test_strategies_e2e.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from al_research.config import ConfigError, load_params, validate
from al_research.models.base import Capability, CapabilityError, NoParams
from al_research.strategies import QueryContext
from al_research.strategies.badge import Badge, kmeanspp_gradients, residuals
from al_research.strategies.bald import BALD, mutual_information
from al_research.strategies.coreset import CoreSet
from al_research.strategies.initial import initial_selection
from al_research.strategies.pool_cache import PoolCache
from al_research.strategies.probcover import ProbCover, choose_delta, purity
from al_research.strategies.random import RandomSampling
from al_research.strategies.typiclust import TypiClust
from al_research.strategies.uncertainty import (
    Entropy,
    LeastConfident,
    Margin,
    entropy,
    margin_uncertainty,
    most_confident,
)
from tests.conftest import compose


class TableLearner:
    """A stand-in learner: pool rows carry an item id in column 0; probabilities, embeddings
    and MC-dropout passes are looked up by id in the given tables."""

    Params = NoParams
    embeds_input = False

    def __init__(self, proba=None, embeddings=None, samples=None) -> None:
        self.proba, self.embeddings, self.samples = proba, embeddings, samples
        self.has_dropout = samples is not None
        offers = {Capability.PROBA: proba, Capability.EMBEDDINGS: embeddings,
                  Capability.MC_SAMPLES: samples}
        self.capabilities = frozenset(c for c, table in offers.items() if table is not None)

    @staticmethod
    def _ids(x) -> np.ndarray:
        return np.asarray(x)[:, 0].astype(np.int64)

    def predict_proba(self, x) -> np.ndarray:
        return self.proba[self._ids(x)]

    def embed(self, x) -> np.ndarray:
        return self.embeddings[self._ids(x)]

    def predict_proba_samples(self, x, n_samples: int) -> np.ndarray:
        if self.samples is None:
            raise CapabilityError("no dropout")
        assert n_samples == len(self.samples), "the strategy asked for another T"
        return self.samples[:, self._ids(x)]


def table_context(n: int, labelled, learner=None, seed: int = 0, n_classes: int | None = None,
                  pool_x=None, cache: PoolCache | None = None) -> QueryContext:
    """A round's context over `n` items (ids as features unless `pool_x` is given)."""
    labelled = np.asarray(labelled, dtype=np.int64)
    unlabelled = np.setdiff1d(np.arange(n), labelled)
    x = np.arange(n, dtype=np.float64)[:, None] if pool_x is None else pool_x
    return QueryContext(x, labelled, unlabelled, np.random.default_rng(seed), learner,
                        n_classes, cache)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def picked(ctx: QueryContext, strategy, n: int) -> list[int]:
    """The pool indices `strategy` labels next."""
    return ctx.unlabelled[strategy.query(ctx, n).positions].tolist()


# --- uncertainty: least confident, margin, entropy -------------------------------------------

PROBA = np.array([
    [0.5, 0.5, 0.0],  # 0: margin 0 (top for margin), entropy ln 2, least confidence 0.5
    [0.4, 0.3, 0.3],  # 1: margin 0.1, entropy 1.0889 (top for entropy), least confidence 0.6
    [0.9, 0.1, 0.0],  # 2: margin 0.8
    [1.0, 0.0, 0.0],  # 3: certain: every utility 0 (0 log 0 = 0)
])


def test_margin_and_entropy_follow_their_formulas():
    assert margin_uncertainty(PROBA) == pytest.approx([1.0, 0.9, 0.2, 0.0])
    h1 = -(0.4 * math.log(0.4) + 2 * 0.3 * math.log(0.3))
    h2 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert entropy(PROBA) == pytest.approx([math.log(2), h1, h2, 0.0])


def test_uncertainty_strategies_rank_as_their_utilities_do():
    learner = TableLearner(proba=PROBA)
    assert picked(table_context(4, [], learner), Margin(), 2) == [0, 1]
    assert picked(table_context(4, [], learner), Entropy(), 2) == [1, 0]
    assert picked(table_context(4, [], learner), LeastConfident(), 2) == [1, 0]
    query = Margin().query(table_context(4, [1], learner), 3)
    assert query.score_name == "one_minus_margin"
    assert query.scores == pytest.approx([1.0, 0.2, 0.0])  # rows 0, 2, 3 (1 is labelled)


def test_uncertainty_ties_go_to_the_lower_position():
    tied = np.array([[0.6, 0.4], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])  # 0, 2, 3 tie
    for strategy in (Margin(), Entropy(), LeastConfident()):
        ctx = table_context(4, [], TableLearner(proba=tied))
        assert picked(ctx, strategy, 2) == [0, 2]
        assert picked(table_context(4, [0], TableLearner(proba=tied)), strategy, 2) == [2, 3]


def test_most_confident_is_the_reverse_with_the_same_tie_rule():
    assert most_confident(PROBA, 2).tolist() == [3, 2]


# --- BALD ------------------------------------------------------------------------------------

MC = np.array([
    # item 0: the passes disagree completely; 1: agree on a coin flip; 2: disagree partly
    [[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]],
    [[0.0, 1.0], [0.5, 0.5], [0.1, 0.9]],
])


def test_mutual_information_is_entropy_of_mean_minus_mean_entropy():
    h09 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert mutual_information(MC) == pytest.approx([math.log(2), 0.0, math.log(2) - h09])


def test_bald_picks_disagreement_not_entropy():
    learner = TableLearner(proba=MC.mean(axis=0), samples=MC)
    bald = BALD(BALD.Params(mc_samples=2))
    assert picked(table_context(3, [], learner), bald, 2) == [0, 2]
    # the mean predictions have equal entropy: entropy sampling cannot tell them apart
    assert picked(table_context(3, [], learner), Entropy(), 2) == [0, 1]


def test_bald_refuses_a_model_without_dropout_naming_the_ones_with_it():
    from al_research.models.base import Capability
    from al_research.strategies.base import check_capabilities

    with pytest.raises(CapabilityError, match="needs mc_samples, and model 'softmax' offers "
                                              "embeddings, .*proba.*mlp.*cnn"):
        check_capabilities(BALD().needs, frozenset({Capability.PROBA, Capability.EMBEDDINGS,
                                                    Capability.GRAD_EMBEDDINGS}),
                           "strategy 'bald'", "model 'softmax'")
    check_capabilities(BALD().needs, frozenset(Capability), "strategy 'bald'", "model 'mlp'")


# --- core-set --------------------------------------------------------------------------------

def test_coreset_is_greedy_k_center_on_labelled_plus_picks():
    # 1-d: labelled at 0; unlabelled at 1, 2, 10, 11. First the farthest (11); then 10 is 1
    # away from 11, so the farthest from {0, 11} is 2.
    points = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    learner = TableLearner(embeddings=points)
    query = CoreSet().query(table_context(5, [0], learner), 2)
    assert table_context(5, [0]).unlabelled[query.positions].tolist() == [4, 2]
    assert query.scores == pytest.approx([1.0, 2.0, 10.0, 11.0])  # distances to the labelled
    assert query.score_name == "distance_to_labelled"


def test_coreset_on_raw_or_pca_features_needs_no_model():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [0.0, 3.0]])
    ctx = table_context(4, [0], None, pool_x=points)
    assert picked(ctx, CoreSet(CoreSet.Params(features="raw")), 2) == [2, 3]
    with pytest.raises(CapabilityError, match="features=raw or features=pca"):
        CoreSet().query(table_context(4, [0], None, pool_x=points), 1)


@pytest.mark.parametrize("normalize", [False, True])
def test_coreset_kept_distances_equal_a_fresh_computation(normalize):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 6))
    strategy = CoreSet(CoreSet.Params(features="raw", normalize=normalize))
    cache = PoolCache(x)
    labelled = list(range(0, 200, 20))
    for _ in range(3):  # rounds: the kept distances grow with each round's picks
        kept = strategy.query(table_context(200, labelled, None, pool_x=x, cache=cache), 5)
        fresh = strategy.query(table_context(200, labelled, None, pool_x=x), 5)
        assert kept.positions.tolist() == fresh.positions.tolist()
        np.testing.assert_allclose(kept.scores, fresh.scores, rtol=1e-9)
        labelled += table_context(200, labelled).unlabelled[kept.positions].tolist()
    # a labelled set that is not a superset of the kept one is computed afresh
    other = strategy.query(table_context(200, [1, 2], None, pool_x=x, cache=cache), 5)
    assert other.positions.tolist() == strategy.query(
        table_context(200, [1, 2], None, pool_x=x), 5).positions.tolist()


class InputEmbedder(TableLearner):
    """A learner whose embedding is its input (as softmax regression's, `embeds_input`); its
    probabilities are looked up by the row's first feature."""

    embeds_input = True

    def __init__(self, proba, x) -> None:
        super().__init__(proba=proba)
        self.index = {float(v): i for i, v in enumerate(x[:, 0])}

    def predict_proba(self, rows):
        return self.proba[[self.index[float(v)] for v in np.asarray(rows)[:, 0]]]

    def embed(self, rows):
        return np.asarray(rows)


@pytest.mark.parametrize("strategy", [CoreSet(), Badge()], ids=["coreset", "badge"])
def test_a_model_that_embeds_its_input_gives_the_same_picks_from_the_pool_array(strategy):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(150, 5))
    proba = softmax(rng.normal(size=(150, 3)) * 2)
    labelled = [3, 40, 77]
    explicit = strategy.query(table_context(150, labelled, TableLearner(proba, x), seed=2), 8)
    cache = PoolCache(x)
    fast = strategy.query(table_context(150, labelled, InputEmbedder(proba, x), seed=2,
                                        pool_x=x, cache=cache), 8)
    assert explicit.positions.tolist() == fast.positions.tolist()
    np.testing.assert_allclose(explicit.scores, fast.scores, rtol=1e-9)
    assert ("raw", None, False) in cache.sq_norms  # the pool array's path was taken


def test_distance_kernels_equal_brute_force():
    from scipy.spatial.distance import cdist

    from al_research.strategies.features import (
        knn_mean_dist,
        min_sq_dist,
        nearest_other_label_dist,
        radius_graph,
    )

    rng = np.random.default_rng(8)
    for dtype in (np.float64, np.float32):
        x = (rng.normal(size=(120, 4)) * rng.uniform(0.5, 3, size=(120, 1))).astype(dtype)
        labels = rng.integers(0, 3, size=120)
        d = cdist(x.astype(np.float64), x.astype(np.float64))
        tol = 1e-9 if dtype == np.float64 else 1e-3
        np.testing.assert_allclose(min_sq_dist(x, x[:7]), (d[:, :7] ** 2).min(axis=1),
                                   atol=tol)
        other = np.where(labels[:, None] != labels[None, :], d, np.inf).min(axis=1)
        np.testing.assert_allclose(nearest_other_label_dist(x, labels), other, atol=tol)
        no_self = d + np.diag(np.full(120, np.inf))
        np.testing.assert_allclose(knn_mean_dist(x, 3), np.sort(no_self, axis=1)[:, :3].mean(1),
                                   atol=tol)
        delta = float(np.median(d))
        graph = radius_graph(x, delta).toarray().astype(bool)
        unsure = np.abs(d - delta) < tol
        assert ((graph == (d <= delta)) | unsure).all() and (graph == graph.T).all()
        assert graph.diagonal().all()


# --- BADGE -----------------------------------------------------------------------------------

def _explicit_gradients(proba, h, bias=False):
    """The gradient embeddings written out: (p - onehot(argmax p)) ⊗ [h (, 1)]."""
    if bias:
        h = np.hstack([h, np.ones((len(h), 1))])
    return (residuals(proba)[:, :, None] * h[:, None, :]).reshape(len(h), -1)


@pytest.mark.parametrize("bias", [False, True])
def test_badge_d2_sampling_equals_kmeanspp_on_explicit_gradient_embeddings(bias):
    rng = np.random.default_rng(3)
    proba, h = softmax(rng.normal(size=(60, 4)) * 2), rng.normal(size=(60, 5))
    g = _explicit_gradients(proba, h, bias)
    seen = []
    replay = iter([7, 21, 40, 3])

    def draw(p):
        seen.append(p)
        return next(replay)

    picks, norms = kmeanspp_gradients(proba, h, 5, draw, bias=bias)
    assert norms == pytest.approx(np.linalg.norm(g, axis=1))
    assert picks[0] == np.argmax(np.linalg.norm(g, axis=1))  # the reference code's first centre
    assert picks.tolist()[1:] == [7, 21, 40, 3]
    for step, p in enumerate(seen):
        centres = g[picks[: step + 1]]
        d2 = ((g[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        assert p == pytest.approx(d2 / d2.sum(), abs=1e-12)
        assert (p[picks[: step + 1]] == 0).all()


def test_badge_never_builds_the_gradient_matrix():
    import tracemalloc

    rng = np.random.default_rng(0)
    n, c, d = 20_000, 10, 256
    proba = softmax(rng.normal(size=(n, c))).astype(np.float32)
    h = rng.normal(size=(n, d)).astype(np.float32)
    tracemalloc.start()
    kmeanspp_gradients(proba, h, 10, lambda p: int(rng.choice(len(p), p=p)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    explicit = n * d * c * 8  # the n x (d*C) float64 gradient matrix: 410 MB
    assert peak < explicit / 20, f"peak {peak / 1e6:.0f} MB"


# --- TypiClust -------------------------------------------------------------------------------

def _plus(center, spread=1.0):
    """A cross of five points: the centre is the most typical (2 nearest at distance 1)."""
    cx, cy = center
    return [(cx, cy), (cx + spread, cy), (cx - spread, cy), (cx, cy + spread),
            (cx, cy - spread)]


def test_typiclust_picks_the_most_typical_item_of_the_largest_uncovered_clusters():
    small = _plus((0.0, 0.0))                    # items 0-4, centre 0
    large = _plus((100.0, 0.0)) + [(103.0, 0.0)]  # items 5-10, centre 5 (6 items: larger)
    points = np.array(small + large)
    strategy = TypiClust(TypiClust.Params(features="raw", normalize=False, k_neighbors=2,
                                          min_cluster_size=0))
    # cold start: 2 clusters for a batch of 2, the larger first
    assert picked(table_context(11, [], None, pool_x=points), strategy, 2) == [5, 0]
    # one label in the large cluster: it is covered, the small one's centre comes first
    assert picked(table_context(11, [6], None, pool_x=points), strategy, 1) == [0]
    query = strategy.query(table_context(11, [6], None, pool_x=points), 1)
    expected = 1.0 / (1.0 + 1e-5)  # the centre: mean distance 1 to its 2 nearest neighbours
    assert query.scores[0] == pytest.approx(expected) and query.score_name == "typicality"


def test_typiclust_refuses_more_clusters_than_items():
    points = np.arange(8, dtype=np.float64).reshape(4, 2)
    strategy = TypiClust(TypiClust.Params(features="raw"))
    with pytest.raises(ValueError, match="5 clusters .* only 4 pool items"):
        strategy.query(table_context(4, [0, 1], None, pool_x=points), 3)


# --- ProbCover -------------------------------------------------------------------------------

LINE = np.array([[0.0], [0.1], [0.2], [0.3], [5.0], [5.1], [9.0]])


def test_probcover_is_greedy_max_coverage_of_delta_balls():
    # δ = 0.15: balls {0, .1}, {0, .1, .2}, {.1, .2, .3}, {.2, .3}, {5, 5.1}, {5, 5.1}, {9}.
    # Degrees 2 3 3 2 2 2 1: take 0.1 (lower of the 3s), which covers 0, .1, .2; then 5
    # (covers 2); then 0.2 (covers .3, tied with .3 and 9, lower position).
    strategy = ProbCover(ProbCover.Params(features="raw", normalize=False, delta=0.15))
    query = strategy.query(table_context(7, [], None, pool_x=LINE), 3)
    assert query.positions.tolist() == [1, 4, 2]
    assert query.scores.tolist() == [2, 3, 3, 2, 2, 2, 1]
    # the labelled set's balls count as covered: 0.1 labelled covers 0, .1, .2
    assert picked(table_context(7, [1], None, pool_x=LINE), strategy, 2) == [4, 2]


def test_probcover_draws_from_the_rng_once_everything_is_covered():
    strategy = ProbCover(ProbCover.Params(features="raw", normalize=False, delta=100.0))
    ctx = table_context(7, [], None, pool_x=LINE, seed=5)
    picks = picked(ctx, strategy, 3)
    assert picks[0] == 0  # one ball covers everything
    expected = np.random.default_rng(5)
    rest = np.arange(1, 7)
    first = rest[expected.choice(len(rest))]
    assert picks[1] == first and len(set(picks)) == 3


def test_probcover_delta_is_the_largest_with_purity_at_least_alpha():
    # two labelled groups on a line, 1.0 apart at their closest (0.5 and 1.5)
    x = np.array([[0.0], [0.5], [1.5], [2.0]])
    labels = np.array([0, 0, 1, 1])
    assert purity(x, labels, [0.4, 0.9, 1.0, 1.6]).tolist() == [1.0, 1.0, 0.5, 0.0]
    assert choose_delta(x, labels, [0.4, 0.9, 1.0, 1.6], 0.75)[0] == 0.9
    assert choose_delta(x, labels, [1.0, 1.6], 0.75)[0] == 1.0  # none reaches it: the smallest


def test_probcover_graph_and_delta_are_computed_once_for_model_free_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    cache = PoolCache(x)
    strategy = ProbCover(ProbCover.Params(features="pca", pca_dim=2))
    strategy.query(table_context(80, [0], None, 4, 3, pool_x=x, cache=cache), 5)
    assert len(cache.graphs) == 1
    [graph] = cache.graphs.values()
    strategy.query(table_context(80, [0, 3], None, 4, 3, pool_x=x, cache=cache), 5)
    assert list(cache.graphs.values()) == [graph] and next(iter(cache.graphs.values())) is graph
    assert (graph != graph.T).nnz == 0 and (graph.diagonal() == 1).all()


# --- initial selection -----------------------------------------------------------------------

def _start(x, n_classes=None, cache=None, seed=0) -> QueryContext:
    """The initial selection's context: every item unlabelled, no model."""
    return QueryContext(x, np.empty(0, np.int64), np.arange(len(x)),
                        np.random.default_rng(seed), None, n_classes, cache)


def test_initial_selection_by_typiclust_and_probcover():
    points = np.array(_plus((0.0, 0.0)) + _plus((100.0, 0.0)) + [(103.0, 0.0)])
    typiclust = TypiClust(TypiClust.Params(features="raw", normalize=False, k_neighbors=2,
                                           min_cluster_size=0))
    assert initial_selection(typiclust, _start(points), 2).tolist() == [5, 0]
    probcover = ProbCover(ProbCover.Params(features="raw", normalize=False, delta=0.15))
    assert initial_selection(probcover, _start(LINE), 2).tolist() == [1, 4]


def test_initial_selection_refuses_what_needs_a_model():
    with pytest.raises(CapabilityError, match="needs embeddings, and the initial selection "
                                              "offers nothing"):
        initial_selection(CoreSet(), _start(LINE), 2)
    with pytest.raises(CapabilityError, match="needs proba"):
        initial_selection(Margin(), _start(LINE), 2)
    with pytest.raises(ValueError, match="number of classes"):
        initial_selection(ProbCover(), _start(LINE), 2)  # no n_classes


def test_first_whole_pool_and_kmeans_initial_selections():
    from al_research.strategies.clustering import cluster_pool
    from al_research.strategies.initial import FirstItems, KMeansAnchors, WholePool

    x = np.random.default_rng(3).normal(size=(60, 4)).astype(np.float32)
    assert initial_selection(FirstItems(), _start(x), 10).tolist() == list(range(10))
    assert initial_selection(WholePool(), _start(x), 10).tolist() == list(range(60))
    cache = PoolCache(x, seed=7)
    anchors = initial_selection(KMeansAnchors(), _start(x, cache=cache), 5)
    assert anchors.tolist() == cluster_pool(x, 5, 7, 4).anchors.tolist()
    assert list(cache.clusterings) == [(5, 7, 4)]  # kept: the kmeans stage's k=5 reuses it


def test_default_cold_start_runs_on_real_digits_with_pca():
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32) / 16.0
    cache = PoolCache(x)
    for strategy in (TypiClust(), ProbCover()):
        chosen = initial_selection(strategy, _start(x, 10, cache), 10)
        assert len(np.unique(chosen)) == 10 and chosen.max() < len(x)
    assert list(cache.features) == [("pca", 50, True)]  # PCA fitted once, shared by both


# --- every strategy: determinism, and picks that differ from random's where they must --------

def _random_tables(seed: int, n: int = 300, c: int = 5, d: int = 8):
    rng = np.random.default_rng(seed)
    samples = softmax(rng.normal(size=(6, n, c)) * 2)
    return TableLearner(proba=samples.mean(axis=0), embeddings=rng.normal(size=(n, d)),
                        samples=samples), rng.normal(size=(n, d))


def all_strategies():
    return [LeastConfident(), Margin(), Entropy(), BALD(BALD.Params(mc_samples=6)), CoreSet(),
            Badge(), TypiClust(TypiClust.Params(features="raw", k_neighbors=5)),
            ProbCover(ProbCover.Params(features="raw", purity_clusters=5)), RandomSampling()]


@pytest.mark.parametrize("strategy", all_strategies(), ids=lambda s: s.name)
def test_every_strategy_is_deterministic_given_the_rng(strategy):
    learner, raw = _random_tables(1)
    labelled = np.arange(0, 300, 15)
    first = strategy.query(table_context(300, labelled, learner, 7, 5, pool_x=raw), 10)
    again = strategy.query(table_context(300, labelled, learner, 7, 5, pool_x=raw), 10)
    assert first.positions.tolist() == again.positions.tolist()
    assert len(set(first.positions.tolist())) == 10
    if first.scores is not None:
        np.testing.assert_array_equal(first.scores, again.scores)
        assert len(first.scores) == 300 - len(labelled)


def _forced_case(name: str):
    """A pool of 100 items in 10 far-apart groups of 10 (`groups`), where `name` must pick the
    10 `special` items (the uncertain, disagreeing, or most typical one of each group), or, for
    the diversity strategies, one item of every group; random is unlikely to do either."""
    n, special = 100, np.arange(5, 100, 10)
    groups = np.repeat(np.arange(10), 10)
    proba = np.tile([0.97, 0.01, 0.01, 0.01], (n, 1))
    proba[special] = [0.3, 0.28, 0.22, 0.2]
    samples = np.stack([proba, proba])
    samples[0, special], samples[1, special] = [0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1]
    # each group: its special item at the centre, the others 0.01 away along distinct axes
    offsets = np.zeros((n, 10))
    others = np.flatnonzero(~np.isin(np.arange(n), special))
    offsets[others, np.arange(len(others)) % 9] = 0.01
    x = np.eye(10)[groups] * 50.0 + offsets
    learner = TableLearner(proba=proba, embeddings=x, samples=samples)
    if name == "badge":  # ten groups of identical gradient embeddings, far apart
        learner.embeddings = np.eye(10)[groups] * 50.0
        learner.proba = np.tile([0.4, 0.3, 0.2, 0.1], (n, 1))
    return learner, x, special, groups


@pytest.mark.parametrize("strategy", all_strategies()[:-1], ids=lambda s: s.name)
def test_every_strategy_picks_otherwise_than_random_where_it_must(strategy):
    learner, x, special, groups = _forced_case(strategy.name)
    model_free = strategy.name in ("typiclust", "probcover")
    if strategy.name == "bald":
        strategy = BALD(BALD.Params(mc_samples=2))
    if strategy.name == "probcover":
        strategy = ProbCover(ProbCover.Params(features="raw", normalize=False, delta=1.0))
    if strategy.name == "typiclust":
        strategy = TypiClust(TypiClust.Params(features="raw", normalize=False, k_neighbors=3))
    labelled = [] if strategy.name in ("typiclust", "probcover", "coreset") else [0]
    pool_x = x if model_free else None  # else item ids, for the table learner

    def context():
        return table_context(100, labelled, learner, 3, 4, pool_x=pool_x)

    chosen = np.asarray(picked(context(), strategy, 10))
    randomly = np.asarray(picked(context(), RandomSampling(), 10))
    if strategy.name in ("coreset", "badge", "probcover"):  # one item from every group
        assert sorted(groups[chosen].tolist()) == list(range(10))
        assert len(set(groups[randomly].tolist())) < 10
    else:  # the uncertain, disagreeing or most typical items exactly
        assert sorted(chosen.tolist()) == special.tolist()
        assert sorted(randomly.tolist()) != special.tolist()


# --- hyperparameters and configs -------------------------------------------------------------

@pytest.mark.parametrize(("name", "override", "message"), [
    ("bald", "mc_samples=1", "mc_samples must be >= 2"),
    ("probcover", "delta=-0.1", "delta must be > 0"),
    ("probcover", "alpha=1.5", "alpha must be in \\(0, 1\\)"),
    ("probcover", "deltas=[0.1,-0.2]", "deltas must be a non-empty list of radii > 0"),
    ("typiclust", "k_neighbors=0", "k_neighbors must be >= 1"),
    ("typiclust", "max_clusters=abc", "could not be converted to Integer"),
    ("coreset", "features=pixels", "features must be one of \\['embedding', 'raw', 'pca'\\]"),
    ("coreset", "pca_dim=0", "pca_dim must be >= 1"),
])
def test_out_of_range_hyperparameters_are_refused_by_the_config(name, override, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose([f"strategy={name}", f"strategy.params.{override}"]))


@pytest.mark.parametrize("name", ["margin", "entropy", "bald", "coreset", "badge", "typiclust",
                                  "probcover"])
def test_every_strategy_config_builds_its_class_with_its_defaults(name):
    conf = validate(compose([f"strategy={name}", "model=mlp"]))
    params = load_params(conf.strategy._target_, conf.strategy.params, "strategy")
    module, _, cls = conf.strategy._target_.rpartition(".")
    import importlib

    strategy = getattr(importlib.import_module(module), cls)(params)
    assert strategy.name == conf.strategy.name == name
    assert params == type(strategy).Params()  # the yaml spells out the class's defaults
