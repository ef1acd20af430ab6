"""Cluster-Margin (Citovsky et al. 2021): the round-robin on hand-made clusters (smallest first,
one per cluster per turn, the exact batch size, only among the k_m lowest margins), its
reduction to margin sampling, its determinism, the clustering (exact HAC equals scikit-learn's;
above `hac_max_items`, HAC per k-means cell with one ε) made once per experiment, and the
refusals of bad hyperparameters on the command line before TensorFlow loads.
"""

from __future__ import annotations

import numpy as np
import pytest

import al_research.strategies.cluster_margin as cm
from al_research.config import ConfigError, load_params, validate
from al_research.models.base import Capability, CapabilityError
from al_research.strategies.base import check_capabilities, top_k
from al_research.strategies.cluster_margin import (
    ClusterMargin,
    hac_clusters,
    kmeans_cells,
    round_robin,
)
from al_research.strategies.pool_cache import PoolCache
from al_research.strategies.uncertainty import Margin, margin_uncertainty
from tests.conftest import SHORT, compose, experiment_runs
from tests.test_errors import config_error_line
from tests.test_strategies import TableLearner, picked, softmax, table_context

TARGET = "al_research.strategies.cluster_margin.ClusterMargin"


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labelings group the items alike (labels may differ by a renaming)."""
    pairs = np.unique(np.column_stack([a, b]), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def two_class(margins) -> np.ndarray:
    """Probabilities (n, 2) whose margins p1 - p2 are `margins`."""
    m = np.asarray(margins, dtype=np.float64)
    return np.column_stack([0.5 + m / 2, 0.5 - m / 2])


# --- the round-robin ---------------------------------------------------------------------------

def test_round_robin_takes_one_per_cluster_per_turn_smallest_first():
    # candidates best first; clusters A (4 candidates), B (2), C (1), D (3)
    clusters = np.array(list("AAAABBCDDD"))
    for seed in range(20):
        order = round_robin(clusters, 7, np.random.default_rng(seed))
        assert len(order) == 7 == len(set(order.tolist()))
        assert "".join(clusters[order]) == "CBDABDA"  # turn 1: C B D A; turn 2: B D A
    everything = round_robin(clusters, 50, np.random.default_rng(0))
    assert "".join(clusters[everything]) == "CBDABDADAA" and len(everything) == 10


def test_round_robin_breaks_size_ties_by_the_best_ranked_candidate():
    # X and Y both have two candidates; Y holds the best one (position 0): Y goes first
    clusters = np.array(list("YXXY"))
    assert "".join(clusters[round_robin(clusters, 4, np.random.default_rng(1))]) == "YXYX"


def test_round_robin_draws_within_a_cluster_at_random_and_reproducibly():
    clusters = np.zeros(12, dtype=np.int64)  # one cluster: a random 3 of the 12
    draws = {tuple(round_robin(clusters, 3, np.random.default_rng(s)).tolist())
             for s in range(30)}
    assert len(draws) > 20  # not the first 3, not one fixed order
    again = round_robin(clusters, 3, np.random.default_rng(5)).tolist()
    assert again == round_robin(clusters, 3, np.random.default_rng(5)).tolist()


# --- the strategy on hand-made clusters ---------------------------------------------------------

# 1-d blobs, far apart: A has 8 items, B 4, C 2, D 1, E 5 (20 items, 5 clusters)
BLOBS = {"A": (0.0, 8), "B": (100.0, 4), "C": (200.0, 2), "D": (300.0, 1), "E": (400.0, 5)}
NAMES = np.array([name for name, (_, size) in BLOBS.items() for _ in range(size)])
POINTS = np.array([centre + 0.1 * i for centre, size in BLOBS.values()
                   for i in range(size)])[:, None]
# margins: every A, C, D item and three B items are the 14 lowest; the 4th B item and E higher
MARGINS = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08,   # A
                    0.09, 0.10, 0.11, 0.90,                            # B (the last: high)
                    0.12, 0.13,                                        # C
                    0.14,                                              # D
                    0.5, 0.6, 0.7, 0.8, 0.95])                         # E


def blob_context(seed: int = 0, cache: PoolCache | None = None, labelled=()):
    learner = TableLearner(proba=two_class(MARGINS))
    x = np.column_stack([np.arange(20.0), POINTS[:, 0]])  # ids, then the position
    return table_context(20, list(labelled), learner, seed, 2, pool_x=x, cache=cache)


def blob_strategy(**params) -> ClusterMargin:
    # raw features, 20 items / 4 = 5 clusters: the 5 blobs
    return ClusterMargin(ClusterMargin.Params(**{"features": "raw", "normalize": False,
                                                 "mean_cluster_size": 4.0, **params}))


def test_the_clustering_finds_the_hand_made_blobs():
    result = hac_clusters(POINTS, 5, 4000, 0)
    assert result.n_clusters == 5 and result.n_cells == 1
    assert same_partition(result.labels, NAMES)
    # the first merge not made: A with B, at their mean distance (1-d: the means' distance)
    assert result.epsilon == pytest.approx(POINTS[8:12].mean() - POINTS[:8].mean())


def test_cluster_margin_round_robin_over_the_candidates_clusters():
    strategy = blob_strategy(margin_multiplier=2.0)  # batch 7: k_m = 14 candidates
    candidates = set(np.argsort(MARGINS, kind="stable")[:14].tolist())
    assert NAMES[sorted(candidates)].tolist() == ["A"] * 8 + ["B"] * 3 + ["C"] * 2 + ["D"]
    seen = set()
    for seed in range(15):
        picks = picked(blob_context(seed), strategy, 7)
        assert len(picks) == 7 == len(set(picks))
        assert set(picks) <= candidates  # never E, never the B item of high margin (11)
        assert "".join(NAMES[picks]) == "DCBACBA"  # sizes among candidates: D1 C2 B3 A8
        seen.update(picks)
    assert len(seen & set(np.flatnonzero(NAMES == "A").tolist())) > 4  # random within A
    ten = picked(blob_context(3), blob_strategy(margin_multiplier=1.4), 10)  # k_m = 14
    assert "".join(NAMES[ten]) == "DCBACBABAA" and len(set(ten)) == 10  # the exact batch size


def test_the_scores_are_the_margin_utilities_of_the_unlabelled():
    query = blob_strategy().query(blob_context(labelled=[0, 19]), 3)
    assert query.score_name == "one_minus_margin"
    np.testing.assert_allclose(query.scores, 1 - np.delete(MARGINS, [0, 19]), atol=1e-12)


def test_labelled_items_are_never_candidates_and_positions_follow_unlabelled():
    strategy = blob_strategy(margin_multiplier=2.0)
    ctx = blob_context(1, labelled=[14, 12])  # D's item and one C item are labelled
    picks = ctx.unlabelled[strategy.query(ctx, 5).positions]
    assert not set(picks.tolist()) & {14, 12}
    # k_m = 10: the lowest unlabelled margins are A's 8 and B's items 8 and 9 (not C's 13)
    assert "".join(NAMES[picks]) == "BABAA"


# --- reductions and determinism ----------------------------------------------------------------

def random_case(n: int, seed: int):
    rng = np.random.default_rng(seed)
    proba = softmax(rng.normal(size=(n, 4)) * 2)
    x = np.column_stack([np.arange(n), rng.normal(size=(n, 3))])
    return TableLearner(proba=proba), x


@pytest.mark.parametrize("multiplier", [1.0, 2.5, 10.0])
def test_one_cluster_per_item_is_margin_sampling(multiplier):
    strategy = ClusterMargin(ClusterMargin.Params(mean_cluster_size=1.0,
                                                  margin_multiplier=multiplier))
    for seed in range(5):
        learner, x = random_case(90, seed)
        labelled = list(range(0, 90, 9))
        ctx = table_context(90, labelled, learner, seed, 4, pool_x=x)
        ours = strategy.query(ctx, 7).positions.tolist()
        margin = Margin().query(table_context(90, labelled, learner, seed, 4, pool_x=x), 7)
        assert ours == margin.positions.tolist()  # the same items, in the same order


def test_with_k_m_equal_to_the_batch_it_labels_the_margin_top_k():
    learner, x = random_case(90, 7)
    strategy = ClusterMargin(ClusterMargin.Params(margin_multiplier=1.0, mean_cluster_size=9.0))
    ctx = table_context(90, [0, 5], learner, 0, 4, pool_x=x)
    ours = strategy.query(ctx, 8).positions
    utility = margin_uncertainty(learner.proba[ctx.unlabelled])
    assert sorted(ours.tolist()) == sorted(top_k(utility, 8).tolist())
    # a larger k_m lets clusters reach past the top 8 (else the test above proves nothing)
    wide = ClusterMargin(ClusterMargin.Params(margin_multiplier=10.0, mean_cluster_size=9.0))
    assert set(wide.query(table_context(90, [0, 5], learner, 0, 4, pool_x=x), 8)
               .positions.tolist()) != set(top_k(utility, 8).tolist())


def test_the_same_seed_gives_the_same_picks_and_seeds_differ():
    learner, x = random_case(200, 1)
    strategy = ClusterMargin(ClusterMargin.Params(mean_cluster_size=40))  # 5 clusters

    def picks(seed: int) -> list[int]:
        return picked(table_context(200, [3, 50], learner, seed, 4, pool_x=x), strategy, 10)

    assert picks(4) == picks(4)
    assert len({tuple(picks(s)) for s in range(8)}) > 1  # the draws use the context's rng


def test_k_m_is_the_multiplier_times_the_batch_capped_by_the_pool():
    strategy = ClusterMargin(ClusterMargin.Params(margin_multiplier=1.1))
    assert strategy.candidates(10, 1000) == 11  # not 12 from 1.1 * 10 = 11.000000000000002
    assert ClusterMargin().candidates(10, 1000) == 100
    assert ClusterMargin().candidates(10, 40) == 40
    assert ClusterMargin(ClusterMargin.Params(margin_multiplier=1.25)).candidates(10, 99) == 13


# --- the clustering ----------------------------------------------------------------------------

@pytest.mark.parametrize("k", [2, 9, 40, 150])
def test_exact_hac_is_scikit_learns_average_linkage(k):
    from sklearn.cluster import AgglomerativeClustering

    x = np.random.default_rng(k).normal(size=(300, 6)).astype(np.float32)
    result = hac_clusters(x, k, 4000, 0)
    theirs = AgglomerativeClustering(n_clusters=k, linkage="average").fit_predict(x)
    assert result.n_cells == 1 and result.n_clusters == k
    assert same_partition(result.labels, theirs)


def test_large_pools_cluster_inside_kmeans_cells_with_one_epsilon():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    result = hac_clusters(x, 150, 100, 3)
    cells = kmeans_cells(x, 100, 3)
    assert result.n_cells == len(cells) > 6 and max(len(c) for c in cells) <= 100
    assert sorted(np.concatenate(cells).tolist()) == list(range(600))
    assert result.n_clusters == 150
    cell_of = np.empty(600, dtype=np.int64)
    for i, rows in enumerate(cells):
        cell_of[rows] = i
    for c in range(150):  # no cluster spans two cells
        assert len(np.unique(cell_of[result.labels == c])) == 1
    # one ε: each cell's own exact HAC at that ε (merges strictly below it) gives its clusters
    for rows in cells:
        from scipy.cluster.hierarchy import fcluster

        z = cm.average_linkage(x[rows])
        made = int((z[:, 2] < result.epsilon).sum())
        if made < len(z):
            own = fcluster(z, len(rows) - made, "maxclust")
            assert same_partition(result.labels[rows], own)


def test_cells_that_split_the_pool_well_change_nothing():
    # 6 tight blobs far apart: HAC in k-means cells finds the same 6 as HAC on all
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(6, 5)) * 50
    x = np.concatenate([c + rng.normal(size=(50, 5)) for c in centres])
    exact = hac_clusters(x, 6, 4000, 0)
    cells = hac_clusters(x, 6, 120, 0)
    assert cells.n_cells > 1 and same_partition(exact.labels, cells.labels)
    assert same_partition(exact.labels, np.repeat(np.arange(6), 50))


def counting(monkeypatch) -> list:
    calls: list = []
    real = cm.hac_clusters

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(cm, "hac_clusters", counted)
    return calls


def test_the_clustering_is_made_once_per_experiment(monkeypatch):
    calls = counting(monkeypatch)
    learner, x = random_case(150, 2)
    strategy = ClusterMargin(ClusterMargin.Params(features="pca", pca_dim=3))
    cache = PoolCache(x, seed=0)
    labelled = [0, 1, 2]
    for _ in range(3):  # three rounds of one experiment
        ctx = table_context(150, labelled, learner, 0, 4, pool_x=x, cache=cache)
        labelled += ctx.unlabelled[strategy.query(ctx, 5).positions].tolist()
    assert len(calls) == 1 and len(labelled) == 18
    strategy.query(table_context(150, [0], learner, 0, 4, pool_x=x), 5)  # another experiment
    assert len(calls) == 2
    other = ClusterMargin(ClusterMargin.Params(features="pca", pca_dim=3, mean_cluster_size=5))
    other.query(table_context(150, [0], learner, 0, 4, pool_x=x, cache=cache), 5)
    assert len(calls) == 3  # other parameters: another clustering, kept apart


def test_embedding_clusters_come_from_the_first_round_model(monkeypatch):
    calls = counting(monkeypatch)
    rng = np.random.default_rng(3)
    n = 120
    proba = softmax(rng.normal(size=(n, 3)))
    first = np.repeat(np.eye(4) * 100, 30, axis=0) + rng.normal(size=(n, 4))  # 4 blobs
    learner = TableLearner(proba=proba, embeddings=first.copy())
    strategy = ClusterMargin(ClusterMargin.Params(features="embedding", mean_cluster_size=30,
                                                  normalize=False))
    assert strategy.needs == frozenset({Capability.PROBA, Capability.EMBEDDINGS})
    cache = PoolCache(np.arange(n, dtype=np.float64)[:, None])
    strategy.query(table_context(n, [0, 1], learner, 0, 3, cache=cache), 4)
    (kept, model), = [v for k, v in cm.clusterings(cache).items() if k[0][0] == "embedding"]
    assert model is learner and same_partition(kept, np.repeat(np.arange(4), 30))
    learner.embeddings = rng.normal(size=(n, 4))  # the model moved on: its clusters do not
    strategy.query(table_context(n, [0, 1, 5, 40, 70, 100], learner, 1, 3, cache=cache), 4)
    assert len(calls) == 1
    other = TableLearner(proba=proba, embeddings=first)  # another model: clustered anew
    strategy.query(table_context(n, [0, 1], other, 0, 3, cache=cache), 4)
    assert len(calls) == 2


def test_raw_and_pca_features_need_only_probabilities():
    assert ClusterMargin().needs == frozenset({Capability.PROBA})
    assert ClusterMargin(ClusterMargin.Params(features="raw")).needs == frozenset(
        {Capability.PROBA})
    with pytest.raises(CapabilityError, match="strategy 'cluster_margin' needs embeddings.*"
                                              "features=raw or features=pca"):
        check_capabilities(ClusterMargin(ClusterMargin.Params(features="embedding")).needs,
                           frozenset({Capability.PROBA}), "strategy 'cluster_margin'",
                           "model 'x'")


# --- configuration -----------------------------------------------------------------------------

def test_the_yaml_spells_out_the_defaults():
    conf = validate(compose(["strategy=cluster_margin"]))
    assert load_params(conf.strategy._target_, conf.strategy.params, "strategy") == (
        ClusterMargin.Params())


@pytest.mark.parametrize(("params", "message"), [
    ({"margin_multiplier": 0.5}, "cluster_margin: margin_multiplier must be >= 1 .*got 0.5"),
    ({"mean_cluster_size": 0}, "cluster_margin: mean_cluster_size must be >= 1 .*got 0"),
    ({"features": "gradients"}, "cluster_margin: features must be one of"),
    ({"hac_max_items": 1}, "cluster_margin: hac_max_items must be >= 2, got 1"),
    ({"pca_dim": 0}, "cluster_margin: pca_dim must be >= 1, got 0"),
])
def test_bad_hyperparameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        load_params(TARGET, params, "strategy")


@pytest.mark.parametrize(("override", "expected"), [
    ("strategy.params.margin_multiplier=0.5",
     "strategy.params: cluster_margin: margin_multiplier must be >= 1 (k_m = margin_multiplier "
     "x batch size candidates), got 0.5"),
    ("strategy.params.mean_cluster_size=0",
     "strategy.params: cluster_margin: mean_cluster_size must be >= 1 (items per cluster on "
     "average), got 0.0"),
    ("strategy.params.features=gradients",
     "strategy.params: cluster_margin: features must be one of ['embedding', 'raw', 'pca'], "
     "got 'gradients'"),
    ("strategy.params.hac_max_items=1",
     "strategy.params: cluster_margin: hac_max_items must be >= 2, got 1"),
])
def test_the_command_line_says_a_bad_hyperparameter_in_one_line_before_tensorflow(
        tmp_path, override, expected):
    line = config_error_line(tmp_path, ["strategy=cluster_margin", override])
    assert line == f"al-research: error: {expected}", line


@pytest.mark.slow
def test_cluster_margin_lands_a_finished_run(store_uri):
    from al_research.experiment.runner import run

    accuracy = run(compose([*SHORT, f"tracking.uri={store_uri}", "strategy=cluster_margin"]))
    _, (r,) = experiment_runs(store_uri)
    assert r.info.status == "FINISHED" and r.data.tags["strategy"] == "cluster_margin"
    assert r.data.metrics["labels_spent"] == 30 and 0 < accuracy <= 1
