"""EPIG (Bickford Smith et al. 2023): against a direct, loop-based evaluation of its formula, its
bounds (>= 0, 0 when the passes agree), a hand-made case where it and BALD disagree, its target
inputs (drawn from the unlabelled pool with the loop's rng: the same seed, the same picks), and
its refusals. scikit-activeml has no EPIG to compare with.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from al_research.config import ConfigError, load_params
from al_research.models.base import Capability, CapabilityError
from al_research.strategies.bald import BALD
from al_research.strategies.base import check_capabilities
from al_research.strategies.epig import EPIG, epig, target_positions
from tests.conftest import SHORT, compose, experiment_runs
from tests.test_errors import config_error_line
from tests.test_strategies import TableLearner, picked, softmax, table_context


def mc(t: int, n: int, c: int, seed: int, scale: float = 2.0) -> np.ndarray:
    return softmax(np.random.default_rng(seed).normal(size=(t, n, c)) * scale)


def epig_by_loops(samples: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The paper's formula term by term (slow, obviously correct):
    mean over x* of sum_{y, y*} p(y, y*) log[p(y, y*) / (p(y) p(y*))], where
    p(y, y*) = mean_t p_t(y|x) p_t(y*|x*) and the marginals are means over t."""
    t, n, c = samples.shape
    out = []
    for i in range(n):
        total = 0.0
        for j in range(targets.shape[1]):
            for y in range(c):
                p_y = sum(samples[k, i, y] for k in range(t)) / t
                for y_star in range(c):
                    p_star = sum(targets[k, j, y_star] for k in range(t)) / t
                    joint = sum(samples[k, i, y] * targets[k, j, y_star] for k in range(t)) / t
                    if joint > 0:
                        total += joint * math.log(joint / (p_y * p_star))
        out.append(total / targets.shape[1])
    return np.array(out)


# --- the formula ------------------------------------------------------------------------------

def test_epig_is_its_formula_computed_by_loops():
    samples = mc(6, 9, 3, seed=0)
    samples[:, 4] = np.eye(3)[[0, 1, 2, 0, 1, 2]]  # certain passes: exact zeros, 0 log 0 = 0
    targets = samples[:, [1, 4, 5, 8]]
    expected = epig_by_loops(samples, targets)
    assert expected.max() > 0.05
    np.testing.assert_allclose(epig(samples, targets, np.float64), expected, atol=1e-13, rtol=0)
    np.testing.assert_allclose(epig(samples, targets), expected, atol=1e-6, rtol=0)  # float32


def test_epig_is_nonnegative_and_zero_when_the_passes_agree():
    samples = mc(20, 300, 10, seed=1)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        scores = epig(samples, samples[:, :50], dtype)
        assert scores.min() > -tol and scores.max() > 0.01
        agree = np.repeat(samples[:1], 20, axis=0)  # every pass the same prediction
        assert np.abs(epig(agree, agree[:, :50], dtype)).max() < tol
        # disagreement about the candidate only, none about the targets: nothing to learn
        assert np.abs(epig(samples, agree[:, :50], dtype)).max() < tol


def test_epig_against_the_whole_pool_is_the_mean_over_its_items():
    samples = mc(8, 30, 4, seed=2)
    whole = epig(samples, samples, np.float64)
    each = np.stack([epig(samples, samples[:, [j]], np.float64) for j in range(30)], axis=1)
    np.testing.assert_allclose(whole, each.mean(axis=1), atol=1e-14)


def test_epig_prefers_what_informs_the_targets_where_bald_ties():
    """Four passes. The targets' predictions split the passes {0, 1} | {2, 3}. Item 0's label
    splits them {0, 2} | {1, 3}: as much information about the weights as item 1's, which
    splits them as the targets do; but none about the targets' labels."""
    split_targets = np.eye(2)[[0, 0, 1, 1]]
    orthogonal, aligned = np.eye(2)[[0, 1, 0, 1]], np.eye(2)[[0, 0, 1, 1]]
    partly = np.array([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9]])
    samples = np.stack([orthogonal, aligned, partly] + [split_targets] * 5, axis=1)  # (4, 8, 2)
    learner = TableLearner(proba=samples.mean(axis=0), samples=samples)
    bald = BALD(BALD.Params(mc_samples=4))
    assert picked(table_context(8, [], learner), bald, 2) == [0, 1]  # tied at log 2
    scores = epig(samples[:, :3], samples[:, 3:], np.float64)
    assert scores == pytest.approx([0.0, math.log(2), scores[2]], abs=1e-12)
    assert 0 < scores[2] < math.log(2)
    # the strategy: every unlabelled item a target (n_targets >= 8), the candidates included
    query = EPIG(EPIG.Params(mc_samples=4, n_targets=8)).query(table_context(8, [], learner), 2)
    expected = epig(samples, samples)
    np.testing.assert_allclose(query.scores, expected, atol=1e-6)
    # items 1 and 3..7 predict alike, and most informatively: two of them, not 0 or 2
    assert expected[0] < expected[1] - 0.1 and expected[2] < expected[1] - 0.1
    assert set(query.positions.tolist()) <= {1, 3, 4, 5, 6, 7}
    assert query.score_name == "epig"


# --- the targets ------------------------------------------------------------------------------

def test_targets_are_drawn_from_the_unlabelled_pool_with_the_loops_rng():
    n = 200
    samples = mc(20, n, 10, seed=3).astype(np.float32)
    learner = TableLearner(proba=samples.mean(axis=0), samples=samples)
    labelled = np.arange(0, n, 10)
    strategy = EPIG(EPIG.Params(n_targets=30))

    def query(seed):
        return strategy.query(table_context(n, labelled, learner, seed=seed), 5)

    first, again, other = query(0), query(0), query(1)
    assert first.positions.tolist() == again.positions.tolist()
    np.testing.assert_array_equal(first.scores, again.scores)
    assert not np.allclose(first.scores, other.scores)
    # exactly: the rows of 30 unlabelled positions the context's rng draws
    ctx = table_context(n, labelled, learner, seed=0)
    unlabelled_samples = samples[:, ctx.unlabelled]
    chosen = target_positions(len(ctx.unlabelled), 30, np.random.default_rng(0))
    assert len(set(chosen.tolist())) == 30 and chosen.max() < len(ctx.unlabelled)
    np.testing.assert_array_equal(first.scores, epig(unlabelled_samples,
                                                     unlabelled_samples[:, chosen]))
    # as many targets as the pool: the whole pool, whatever the seed
    whole = EPIG(EPIG.Params(n_targets=10_000))
    a = whole.query(table_context(n, labelled, learner, seed=0), 5)
    b = whole.query(table_context(n, labelled, learner, seed=1), 5)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.scores, epig(unlabelled_samples, unlabelled_samples))


def test_epig_scores_every_unlabelled_item_in_chunks_alike():
    import al_research.strategies.epig as module

    samples = mc(10, 500, 10, seed=4)
    whole = epig(samples, samples[:, :40], np.float64)
    kept = module._CHUNK_ELEMENTS
    try:
        module._CHUNK_ELEMENTS = 1  # one candidate per chunk
        np.testing.assert_allclose(epig(samples, samples[:, :40], np.float64), whole,
                                   atol=1e-14)
    finally:
        module._CHUNK_ELEMENTS = kept


# --- refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "message"), [
    ({"mc_samples": 1}, "epig: mc_samples must be >= 2 .*got 1"),
    ({"n_targets": 0}, "epig: n_targets must be >= 1 .*got 0"),
])
def test_bad_hyperparameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        load_params("al_research.strategies.epig.EPIG", params, "strategy")


@pytest.mark.parametrize(("override", "expected"), [
    ("strategy.params.mc_samples=1", "strategy.params: epig: mc_samples must be >= 2 "),
    ("strategy.params.n_targets=0", "strategy.params: epig: n_targets must be >= 1 "),
])
def test_the_command_line_says_a_bad_hyperparameter_in_one_line_before_tensorflow(
        tmp_path, override, expected):
    assert expected in config_error_line(tmp_path, ["strategy=epig", override])


def test_epig_needs_mc_dropout_and_says_which_models_have_it():
    assert EPIG().needs == frozenset({Capability.MC_SAMPLES})
    with pytest.raises(CapabilityError, match="strategy 'epig' needs mc_samples, and "
                                              "model 'softmax' offers .*model=mlp or model=cnn"):
        check_capabilities(EPIG().needs, frozenset({Capability.PROBA, Capability.EMBEDDINGS}),
                           "strategy 'epig'", "model 'softmax'")


def test_epig_on_softmax_fails_with_the_config_before_any_run(store_uri):
    from al_research.config import ConfigError
    from al_research.experiment.runner import run

    with pytest.raises(ConfigError, match="strategy 'epig' needs mc_samples, and "
                                              "model 'softmax' offers .*model=mlp or model=cnn"):
        run(compose([*SHORT, f"tracking.uri={store_uri}", "strategy=epig"]))
    _, runs = experiment_runs(store_uri)
    assert runs == []


@pytest.mark.slow
def test_epig_lands_a_finished_run_on_the_mlp(store_uri):
    from al_research.experiment.runner import run

    accuracy = run(compose([*SHORT, f"tracking.uri={store_uri}", "strategy=epig", "model=mlp",
                            "model.params.hidden=32", "model.early_stopping.patience=5",
                            "model.early_stopping.max_epochs=60", "seed=2"]))
    _, (r,) = experiment_runs(store_uri)
    assert r.info.status == "FINISHED" and r.data.tags["strategy"] == "epig"
    assert r.data.metrics["labels_spent"] == 30 and 0 < accuracy <= 1
