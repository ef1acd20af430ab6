"""BatchBALD (Kirsch, van Amersfoort & Gal 2019): against scikit-activeml's `BatchBALD` (its
NumPy port of batchbald_redux) and against a brute-force enumeration of the joint entropy, on
small problems where every joint is exact; its sampled estimate against the exact value; the
duplicate case that tells it from top-k BALD; its pre-filter, reproducibility and refusals;
and (expected to fail for now) whether the MLP's MC passes are consistent across items, as
BatchBALD's and EPIG's joints assume.

Documented differences from scikit-activeml (also in the module docstring):

- it clips probabilities to [1e-7, 1] before the logarithm; we use 0 log 0 = 0. The inputs here
  stay above 1e-6 where both are compared;
- ties: it breaks them with `rand_argmax` (seed 0), we take the lower position;
- its `n_MC_samples` is the number of joint configurations (batchbald_redux's `num_samples`),
  default T: it then estimates by sampling as soon as C^|A| > T. Given 10,000 (ours
  `num_samples`), both are exact on these problems;
- it considers every candidate; ours pre-filters to the 20 x n items of highest BALD by default
  (`candidates_per_pick: null` turns that off, as here);
- beyond the exact limit it redraws all configurations at every step; we extend the draws.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from skactiveml.pool import BatchBALD as SkBatchBALD
from skactiveml.pool._bald import batch_bald as sk_batch_bald

from al_research.config import ConfigError, load_params
from al_research.models.base import Capability, CapabilityError
from al_research.strategies.bald import BALD, mutual_information
from al_research.strategies.base import check_capabilities, top_k
from al_research.strategies.batchbald import BatchBALD, batchbald
from tests.conftest import SHORT, compose, experiment_runs
from tests.test_errors import config_error_line
from tests.test_strategies import TableLearner, picked, softmax, table_context
from tests.test_strategies_skactiveml import Fixed, ids, labels_for

EXACT = BatchBALD.Params(mc_samples=8, num_samples=10_000, candidates_per_pick=None)


def mc(t: int, n: int, c: int, seed: int, scale: float = 2.0) -> np.ndarray:
    """T random passes over n items (softmax of scaled normal logits), float64."""
    return softmax(np.random.default_rng(seed).normal(size=(t, n, c)) * scale)


def brute_force_batchbald(samples: np.ndarray, chosen: list[int]) -> float:
    """a_BatchBALD(chosen) by enumerating every joint label configuration: the paper's
    definition, H(y_1..y_b) - sum_i E_w H(y_i|w), with 0 log 0 = 0 (slow, obviously correct)."""
    t, _, c = samples.shape
    joint = 0.0
    for config in itertools.product(range(c), repeat=len(chosen)):
        q = np.mean([math.prod(samples[k, i, y] for i, y in zip(chosen, config, strict=True))
                     for k in range(t)])
        joint -= q * math.log(q) if q > 0 else 0.0
    conditional = 0.0
    for i in chosen:
        for k in range(t):
            conditional -= sum(p * math.log(p) for p in samples[k, i] if p > 0) / t
    return joint - conditional


# --- the definition --------------------------------------------------------------------------

def test_every_steps_utilities_are_the_joint_mutual_information_by_enumeration():
    samples = mc(5, 9, 3, seed=1)
    samples[:, 2] = np.eye(3)[[0, 1, 2, 0, 1]]  # certain passes: exact zeros (0 log 0 = 0)
    positions, utilities, gains = batchbald(samples, 4, 10_000, np.random.default_rng(0),
                                            return_utilities=True)
    chosen: list[int] = []
    for step, pick in enumerate(positions.tolist()):
        for item in range(9):
            if item in chosen:
                assert np.isnan(utilities[step, item])
            else:
                assert utilities[step, item] == pytest.approx(
                    brute_force_batchbald(samples, [*chosen, item]), abs=1e-12)
        before = brute_force_batchbald(samples, chosen) if chosen else 0.0
        chosen.append(pick)
        assert gains[step] == pytest.approx(brute_force_batchbald(samples, chosen) - before,
                                            abs=1e-12)
        assert pick == int(np.nanargmax(utilities[step]))
    assert not np.isnan(utilities[1:]).all(axis=1).any()


# --- scikit-activeml ---------------------------------------------------------------------------

@pytest.mark.parametrize(("t", "n", "c", "b", "seed"), [(8, 60, 3, 6, 0), (10, 50, 4, 5, 1),
                                                       (20, 200, 10, 4, 2), (5, 40, 2, 10, 3)])
def test_same_picks_utilities_and_gains_as_scikit_activeml_batch_bald(t, n, c, b, seed):
    samples = mc(t, n, c, seed)
    assert samples.min() > 1e-6  # away from scikit-activeml's clipping at 1e-7
    assert c ** (b - 1) <= 10_000  # exact in both
    theirs = sk_batch_bald(samples.copy(), b, n_MC_samples=10_000, random_state=0)
    positions, utilities, gains = batchbald(samples, b, 10_000, np.random.default_rng(0),
                                            return_utilities=True)
    assert positions.tolist() == np.nanargmax(theirs, axis=1).tolist()
    np.testing.assert_array_equal(np.isnan(utilities), np.isnan(theirs))
    np.testing.assert_allclose(utilities, theirs, atol=1e-12, rtol=0)
    # the marginal gains: a_BatchBALD of the batch so far, step to step
    np.testing.assert_allclose(gains, np.diff(np.nanmax(theirs, axis=1), prepend=0.0),
                               atol=1e-12, rtol=0)
    assert np.all(np.diff(gains) <= 1e-12)  # submodular: the gains only shrink


def test_the_strategy_picks_as_scikit_activeml_batchbald_query():
    n, t, c = 300, 8, 10
    samples = mc(t, n, c, seed=7)
    labelled = np.sort(np.random.default_rng(7).choice(n, 30, replace=False))
    clf = Fixed(samples.mean(axis=0), samples=samples, classes=np.arange(c))
    sk_picks, sk_util = SkBatchBALD(n_MC_samples=10_000, random_state=0,
                                    sample_predictions_method_name="sample_proba").query(
        ids(n), labels_for(n, labelled), clf, fit_ensemble=False, batch_size=4,
        return_utilities=True)
    learner = TableLearner(proba=samples.mean(axis=0), samples=samples)
    ctx = table_context(n, labelled, learner)
    query = BatchBALD(EXACT).query(ctx, 4)
    assert ctx.unlabelled[query.positions].tolist() == sk_picks.tolist()
    # the scores logged are BALD's: scikit-activeml's first step
    assert query.score_name == "mutual_information"
    np.testing.assert_allclose(query.scores, sk_util[0][ctx.unlabelled], atol=1e-12)


# --- BALD and BatchBALD ------------------------------------------------------------------------

def test_the_first_pick_is_balds_top_one_with_or_without_the_prefilter():
    samples = mc(20, 500, 10, seed=3).astype(np.float32)
    learner = TableLearner(proba=samples.mean(axis=0), samples=samples)
    bald = BALD(BALD.Params(mc_samples=20))
    for params in (BatchBALD.Params(), BatchBALD.Params(candidates_per_pick=None)):
        first = picked(table_context(500, [3, 9], learner), BatchBALD(params), 5)[0]
        assert first == picked(table_context(500, [3, 9], learner), bald, 1)[0]
    # with BALD tied at its top, the lower position, as BALD
    tied = samples.copy()
    tied[:, 300] = tied[:, 100] = np.eye(10)[np.arange(20) % 10]  # MI = log 10, the largest
    learner = TableLearner(proba=tied.mean(axis=0), samples=tied)
    assert picked(table_context(500, [], learner), BatchBALD(), 3)[0] == 100
    assert picked(table_context(500, [], learner), bald, 2) == [100, 300]


def test_batchbald_takes_one_of_two_identical_informative_items_where_bald_takes_both():
    samples = mc(8, 40, 3, seed=4, scale=1.0)
    copy = np.eye(3)[[0, 1, 2, 0, 1, 2, 0, 1]]  # the passes disagree completely: MI = log 3
    samples[:, 10] = samples[:, 25] = copy
    learner = TableLearner(proba=samples.mean(axis=0), samples=samples)
    bald = picked(table_context(40, [], learner), BALD(BALD.Params(mc_samples=8)), 2)
    assert bald == [10, 25]
    positions, utilities, gains = batchbald(samples, 2, 10_000, np.random.default_rng(0),
                                            return_utilities=True)
    assert positions.tolist()[0] == 10 and positions.tolist()[1] != 25
    # given the first copy's label the second's is known: it adds nothing
    assert utilities[1, 25] == pytest.approx(utilities[0, 10], abs=1e-12)
    assert gains[1] > 0.05
    assert picked(table_context(40, [], learner), BatchBALD(EXACT), 2) == positions.tolist()


# --- beyond the exact limit -------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2.0, 6.0])  # 6: confident passes, many repeated draws
def test_the_sampled_estimate_is_close_to_the_exact_value(scale):
    samples = mc(10, 40, 10, seed=5, scale=scale)
    exact_picks, exact, _ = batchbald(samples, 5, 10**6, np.random.default_rng(0),
                                      return_utilities=True)
    # 5,000 configurations: the fifth pick (10^4 configurations of the first four) is sampled
    picks, sampled, _ = batchbald(samples, 5, 5_000, np.random.default_rng(1),
                                  return_utilities=True)
    assert picks.tolist()[:4] == exact_picks.tolist()[:4]
    np.testing.assert_allclose(sampled[:4], exact[:4], atol=1e-12)
    error = np.nanmax(np.abs(sampled[4] - exact[4]))
    assert 0 < error < 0.1  # H(y_A) estimated from 5,000 draws: about 1/sqrt(M)
    # the differences between candidates (the ranking) are closer: H(y_A) is one estimate
    # shared by all candidates
    diff = (sampled[4] - exact[4])[~np.isnan(exact[4])]
    spread = np.abs(diff - np.median(diff)).max()
    assert spread < 0.01, spread


def test_sampling_uses_the_given_rng_reproducibly():
    samples = mc(10, 40, 10, seed=6)
    first = batchbald(samples, 6, 500, np.random.default_rng(3), return_utilities=True)
    again = batchbald(samples, 6, 500, np.random.default_rng(3), return_utilities=True)
    other = batchbald(samples, 6, 500, np.random.default_rng(4), return_utilities=True)
    assert first[0].tolist() == again[0].tolist()
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.allclose(first[1][3:], other[1][3:], equal_nan=True)
    np.testing.assert_array_equal(first[1][:3], other[1][:3])  # exact steps: no draws


def test_the_strategy_is_reproducible_with_the_loops_rng():
    samples = mc(20, 400, 10, seed=8).astype(np.float32)
    learner = TableLearner(proba=samples.mean(axis=0), samples=samples)

    def query(seed):
        return picked(table_context(400, [1, 2, 3], learner, seed=seed), BatchBALD(), 12)

    assert query(0) == query(0)
    assert len(set(query(0))) == 12


# --- the pre-filter ----------------------------------------------------------------------------

def test_the_prefilter_keeps_the_top_bald_items_per_pick():
    samples = mc(8, 300, 5, seed=9)
    learner = TableLearner(proba=samples.mean(axis=0), samples=samples)
    ctx = table_context(300, [], learner)
    bald = mutual_information(samples)
    one = BatchBALD(BatchBALD.Params(mc_samples=8, candidates_per_pick=1)).query(ctx, 6)
    assert sorted(one.positions.tolist()) == sorted(top_k(bald, 6).tolist())
    three = BatchBALD(BatchBALD.Params(mc_samples=8, candidates_per_pick=3)).query(ctx, 6)
    assert set(three.positions.tolist()) <= set(top_k(bald, 18).tolist())
    everything = BatchBALD(EXACT).query(table_context(300, [], learner), 6)
    assert everything.positions.tolist() == batchbald(samples, 6, 10_000,
                                                      np.random.default_rng(0)).tolist()
    assert one.positions.tolist() != everything.positions.tolist()


def test_small_pools_and_empty_batches():
    samples = mc(8, 5, 3, seed=10)
    learner = TableLearner(proba=samples.mean(axis=0), samples=samples)
    all_of_them = picked(table_context(5, [1], learner), BatchBALD(EXACT), 10)
    assert sorted(all_of_them) == [0, 2, 3, 4]
    assert BatchBALD(EXACT).query(table_context(5, [1], learner), 0).positions.tolist() == []


# --- refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "message"), [
    ({"mc_samples": 1}, "batchbald: mc_samples must be >= 2 .*got 1"),
    ({"num_samples": 0}, "batchbald: num_samples must be >= 1 .*got 0"),
    ({"candidates_per_pick": 0}, "batchbald: candidates_per_pick must be >= 1 or null"),
])
def test_bad_hyperparameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        load_params("al_research.strategies.batchbald.BatchBALD", params, "strategy")
    assert load_params("al_research.strategies.batchbald.BatchBALD",
                       {"candidates_per_pick": None}, "strategy").candidates_per_pick is None


@pytest.mark.parametrize(("override", "expected"), [
    ("strategy.params.mc_samples=1", "strategy.params: batchbald: mc_samples must be >= 2 "),
    ("strategy.params.num_samples=0", "strategy.params: batchbald: num_samples must be >= 1 "),
    ("strategy.params.candidates_per_pick=-3", "candidates_per_pick must be >= 1 or null"),
])
def test_the_command_line_says_a_bad_hyperparameter_in_one_line_before_tensorflow(
        tmp_path, override, expected):
    assert expected in config_error_line(tmp_path, ["strategy=batchbald", override])


def test_batchbald_needs_mc_dropout_and_says_which_models_have_it():
    assert BatchBALD().needs == frozenset({Capability.MC_SAMPLES})
    with pytest.raises(CapabilityError, match="strategy 'batchbald' needs mc_samples, and "
                                              "model 'softmax' offers .*model=mlp or model=cnn"):
        check_capabilities(BatchBALD().needs, frozenset({Capability.PROBA,
                                                         Capability.EMBEDDINGS}),
                           "strategy 'batchbald'", "model 'softmax'")


def test_batchbald_on_softmax_fails_with_the_config_before_any_run(store_uri):
    from al_research.config import ConfigError
    from al_research.experiment.runner import run

    with pytest.raises(ConfigError, match="strategy 'batchbald' needs mc_samples, and "
                                              "model 'softmax' offers .*model=mlp or model=cnn"):
        run(compose([*SHORT, f"tracking.uri={store_uri}", "strategy=batchbald"]))
    _, runs = experiment_runs(store_uri)
    assert runs == []


@pytest.mark.slow
def test_batchbald_lands_a_finished_run_on_the_mlp(store_uri):
    from al_research.experiment.runner import run

    accuracy = run(compose([*SHORT, f"tracking.uri={store_uri}", "strategy=batchbald",
                            "model=mlp", "model.params.hidden=32",
                            "model.early_stopping.patience=5",
                            "model.early_stopping.max_epochs=60", "seed=2"]))
    _, (r,) = experiment_runs(store_uri)
    assert r.info.status == "FINISHED" and r.data.tags["strategy"] == "batchbald"
    assert r.data.metrics["labels_spent"] == 30 and 0 < accuracy <= 1


def test_the_mlps_passes_are_one_draw_of_the_weights_for_every_item():
    """Consistent MC dropout (Kirsch et al. 2019): two copies of an input get the same
    probabilities in every pass, as they would under one sampled weight vector."""
    from al_research.models.base import TrainingSpec
    from al_research.models.networks import MLP

    rng = np.random.default_rng(0)
    x = rng.random((3, 20)).astype(np.float32)
    model = MLP((20,), 4, None, TrainingSpec(stopping="fixed", max_epochs=1),
                MLP.Params(hidden=32, dropout=0.5), 0)
    model.reset()
    passes = np.asarray(model.predict_proba_samples(np.concatenate([x, x]), 8))
    assert not np.allclose(passes[0], passes[1])  # the passes differ: dropout is on
    np.testing.assert_allclose(passes[:, :3], passes[:, 3:], atol=1e-6)
