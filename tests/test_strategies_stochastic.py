"""Stochastic batch acquisition (power, softmax, soft-rank; Kirsch et al. 2023) against its
definitions: the Gumbel-top-k draw is sampling without replacement in proportion to the weights
(exact probabilities, and numpy's own sequential sampler, over many draws); each method's
weights are its paper formula; T -> 0 is top-k and a large T uniform; a seed reproduces the
picks; the wrapper needs and logs what its inner score does; bad parameters are one-line
config errors before TensorFlow loads, through the real command line.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from al_research.config import ConfigError, load_params, validate
from al_research.models.base import Capability, CapabilityError
from al_research.strategies.bald import BALD
from al_research.strategies.base import check_capabilities, top_k
from al_research.strategies.stochastic import (
    SCORES,
    PowerSampling,
    SoftmaxSampling,
    SoftRankSampling,
    perturbed_top_k,
    power_utilities,
    ranks,
    softmax_utilities,
    softrank_utilities,
)
from al_research.strategies.uncertainty import Entropy, LeastConfident, entropy
from tests.conftest import compose
from tests.test_errors import config_error_line
from tests.test_strategies import TableLearner, softmax, table_context

METHODS = [(PowerSampling, "power"), (SoftmaxSampling, "softmax_sampling"),
           (SoftRankSampling, "softrank")]


def frequencies(draws: list[np.ndarray], n: int) -> np.ndarray:
    counts = np.zeros(n)
    for picks in draws:
        counts[picks] += 1
    return counts / len(draws)


def close_in_distribution(empirical, exact, draws: int) -> None:
    """Every frequency within 5 standard errors of its probability (fixed seeds: no flakes)."""
    exact = np.asarray(exact, dtype=np.float64)
    tolerance = 5 * np.sqrt(exact * (1 - exact) / draws) + 1e-3
    assert np.all(np.abs(np.asarray(empirical) - exact) <= tolerance), (empirical, exact)


def plackett_luce(weights: np.ndarray, k: int) -> dict[tuple[int, ...], float]:
    """The exact probability of every ordered draw of `k` items without replacement, each draw
    in proportion to the weights of the items left."""
    out = {}
    for order in itertools.permutations(range(len(weights)), k):
        p, left = 1.0, weights.sum()
        for i in order:
            p *= weights[i] / left
            left -= weights[i]
        out[order] = p
    return out


# --- Gumbel-top-k is sampling without replacement ---------------------------------------------

WEIGHTS = np.array([0.05, 0.1, 0.15, 0.2, 0.2, 0.3])


def test_one_pick_has_exactly_the_weights_probabilities():
    rng, draws = np.random.default_rng(0), 40_000
    picks = [perturbed_top_k(np.log(WEIGHTS), 1, rng, 1.0) for _ in range(draws)]
    close_in_distribution(frequencies(picks, 6), WEIGHTS / WEIGHTS.sum(), draws)


def test_k_picks_are_draws_without_replacement_as_numpys_sampler():
    draws, k = 40_000, 3
    exact = plackett_luce(WEIGHTS, k)
    inclusion = np.zeros(6)
    first_two: dict[tuple[int, int], float] = {}
    for order, p in exact.items():
        inclusion[list(order)] += p
        first_two[order[:2]] = first_two.get(order[:2], 0.0) + p
    ours_rng, numpy_rng = np.random.default_rng(1), np.random.default_rng(2)
    ours = [perturbed_top_k(np.log(WEIGHTS), k, ours_rng, 1.0) for _ in range(draws)]
    theirs = [numpy_rng.choice(6, k, replace=False, p=WEIGHTS) for _ in range(draws)]
    for picks in (ours, theirs):
        assert all(len(set(p.tolist())) == k for p in picks)
        close_in_distribution(frequencies(picks, 6), inclusion, draws)  # P(i in the batch)
        pairs = [tuple(p[:2].tolist()) for p in picks]
        close_in_distribution([pairs.count(pair) / draws for pair in first_two],
                              list(first_two.values()), draws)  # the order of the draws
    # not k independent draws with replacement, nor top-k: the inclusion is not k p_i
    assert not np.allclose(inclusion, k * WEIGHTS, atol=0.02)


def test_temperature_scales_the_log_weights():
    """exp(u / T): T = 0.5 squares the weights."""
    rng, draws = np.random.default_rng(3), 40_000
    picks = [perturbed_top_k(np.log(WEIGHTS), 1, rng, 0.5) for _ in range(draws)]
    close_in_distribution(frequencies(picks, 6), WEIGHTS**2 / (WEIGHTS**2).sum(), draws)


def test_zero_weights_come_last_in_a_random_order():
    utilities = np.array([-np.inf, 0.0, -np.inf, math.log(2), -np.inf])  # weights 0, 1, 0, 2, 0
    thirds = set()
    for seed in range(30):
        picks = perturbed_top_k(utilities, 4, np.random.default_rng(seed), 1.0)
        assert sorted(picks[:2].tolist()) == [1, 3] and len(set(picks.tolist())) == 4
        assert set(picks[2:].tolist()) <= {0, 2, 4}
        thirds.add(int(picks[2]))
    assert thirds == {0, 2, 4}  # not always the lowest position
    nan = perturbed_top_k(np.array([np.nan, 0.0, np.nan]), 1, np.random.default_rng(0), 1.0)
    assert nan.tolist() == [1]


def test_a_cold_temperature_is_top_k_and_a_hot_one_uniform():
    scores = np.random.default_rng(4).uniform(0.1, 1.0, size=50)
    for utilities in (power_utilities(scores), softmax_utilities(scores),
                      softrank_utilities(scores)):
        for seed in range(5):
            cold = perturbed_top_k(utilities, 7, np.random.default_rng(seed), 1e-9)
            assert cold.tolist() == top_k(scores, 7).tolist()
    rng, draws = np.random.default_rng(5), 20_000
    hot = [perturbed_top_k(power_utilities(WEIGHTS), 3, rng, 1e6) for _ in range(draws)]
    close_in_distribution(frequencies(hot, 6), np.full(6, 0.5), draws)


def test_the_picks_follow_the_seed():
    scores = np.random.default_rng(6).uniform(size=200)
    a = perturbed_top_k(scores, 10, np.random.default_rng(7), 1.0)
    b = perturbed_top_k(scores, 10, np.random.default_rng(7), 1.0)
    c = perturbed_top_k(scores, 10, np.random.default_rng(8), 1.0)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


# --- the three weightings ---------------------------------------------------------------------

def normalized(utilities: np.ndarray, temperature: float) -> np.ndarray:
    z = np.exp((utilities - utilities[np.isfinite(utilities)].max()) / temperature)
    return z / z.sum()


def test_power_softmax_and_softrank_weights_are_the_papers():
    s = np.array([0.4, 0.0, 1.2, 0.4, 0.9])
    r = np.array([3, 5, 1, 4, 2])  # the tie (0.4, 0.4) to the lower position
    assert ranks(s).tolist() == r.tolist()
    for t in (0.5, 1.0, 3.0):
        np.testing.assert_allclose(normalized(power_utilities(s), t),
                                   s ** (1 / t) / (s ** (1 / t)).sum(), rtol=1e-12)
        np.testing.assert_allclose(normalized(softmax_utilities(s), t),
                                   np.exp(s / t) / np.exp(s / t).sum(), rtol=1e-12)
        np.testing.assert_allclose(normalized(softrank_utilities(s), t),
                                   r ** (-1 / t) / (r ** (-1 / t)).sum(), rtol=1e-12)


def test_power_clips_rounding_below_zero_and_ranks_put_nan_last():
    assert power_utilities(np.array([-1e-12, 0.5, np.nan])).tolist() == [
        -np.inf, math.log(0.5), -np.inf]
    assert ranks(np.array([np.nan, 1.0, 1.0, 2.0])).tolist() == [4, 2, 3, 1]


# --- the strategies ---------------------------------------------------------------------------

N, C = 60, 4
RNG = np.random.default_rng(2026)
PROBA = softmax(RNG.normal(size=(N, C)) * 2)
SAMPLES = softmax(RNG.normal(size=(8, N, C)) * 2)
LABELLED = np.arange(0, N, 6)


@pytest.mark.parametrize(("cls", "name"), METHODS, ids=[m for _, m in METHODS])
def test_one_pick_through_the_strategy_has_the_methods_probabilities(cls, name):
    proba = PROBA[:5]
    s = entropy(proba)
    weight = {"power": s**2, "softmax_sampling": np.exp(s / 0.5),
              "softrank": ranks(s) ** -2.0}[name]  # T = 0.5
    strategy = cls(cls.Params(score="entropy", temperature=0.5))
    rng, draws = np.random.default_rng(9), 20_000
    learner = TableLearner(proba=proba)
    picks = []
    for _ in range(draws):
        ctx = table_context(5, [], learner)
        ctx.rng = rng  # the loop's rng, carried across rounds
        picks.append(strategy.query(ctx, 1).positions)
    close_in_distribution(frequencies(picks, 5), weight / weight.sum(), draws)


@pytest.mark.parametrize(("cls", "name"), METHODS, ids=[m for _, m in METHODS])
def test_a_seed_reproduces_the_batch_and_another_seed_changes_it(cls, name):
    learner = TableLearner(proba=PROBA)
    strategy = cls()

    def batch(seed: int) -> list[int]:
        return strategy.query(table_context(N, LABELLED, learner, seed=seed), 10).positions.tolist()

    assert batch(1) == batch(1)
    assert batch(1) != batch(2)
    assert len(set(batch(3))) == 10


@pytest.mark.parametrize(("cls", "name"), METHODS, ids=[m for _, m in METHODS])
def test_cold_strategies_pick_the_inner_scores_top_k(cls, name):
    learner = TableLearner(proba=PROBA)
    strategy = cls(cls.Params(temperature=1e-9))
    ctx = table_context(N, LABELLED, learner, seed=4)
    assert strategy.query(ctx, 10).positions.tolist() == Entropy().query(
        table_context(N, LABELLED, learner), 10).positions.tolist()


def test_the_wrapper_needs_and_logs_what_its_inner_score_does():
    learner = TableLearner(proba=SAMPLES.mean(axis=0), samples=SAMPLES)
    power = PowerSampling(PowerSampling.Params(score="bald", score_params={"mc_samples": 8}))
    assert power.needs == BALD.needs == frozenset({Capability.MC_SAMPLES})
    assert PowerSampling().needs == frozenset({Capability.PROBA})  # entropy, the default
    query = power.query(table_context(N, LABELLED, learner), 5)
    bald = BALD(BALD.Params(mc_samples=8))
    np.testing.assert_array_equal(query.scores, bald.scores(table_context(N, LABELLED, learner)))
    assert query.score_name == "mutual_information"
    lc = SoftRankSampling(SoftRankSampling.Params(score="least_confident")).query(
        table_context(N, LABELLED, learner), 5)
    assert lc.scores is None and lc.score_name == LeastConfident.score_name  # as the inner's
    with pytest.raises(CapabilityError, match="strategy 'power' needs mc_samples.*mlp"):
        check_capabilities(power.needs, frozenset({Capability.PROBA}), "strategy 'power'",
                           "model 'softmax'")


@pytest.mark.parametrize("score", sorted(SCORES))
def test_every_score_can_be_sampled_from(score):
    learner = TableLearner(proba=SAMPLES.mean(axis=0), samples=SAMPLES)
    params = {"mc_samples": 8} if score in ("bald", "qbc_vote_entropy", "qbc_kl") else None
    for cls, _ in METHODS:
        strategy = cls(cls.Params(score=score, score_params=params))
        assert strategy.inner.name == score
        query = strategy.query(table_context(N, LABELLED, learner), 10)
        assert len(set(query.positions.tolist())) == 10


# --- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", [m for _, m in METHODS])
def test_the_yamls_spell_out_the_defaults(name):
    conf = validate(compose([f"strategy={name}"]))
    params = load_params(conf.strategy._target_, conf.strategy.params, "strategy")
    cls = dict((m, c) for c, m in METHODS)[name]
    assert params == cls.Params() and cls.name == name


@pytest.mark.parametrize(("override", "message"), [
    ("strategy.params.temperature=0", "power: temperature must be > 0"),
    ("strategy.params.temperature=-1", "power: temperature must be > 0"),
    ("strategy.params.score=bal", "power: score must be one of bald, entropy, least_confident, "
                                  "margin, qbc_kl, qbc_vote_entropy; got 'bal'"),
    ("strategy.params.score_params={mc_samples:10}",
     r"score_params for score=entropy: unknown key\(s\) \['mc_samples'\]"),
])
def test_bad_parameters_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose(["strategy=power", override]))
    conf = validate(compose(["strategy=power", "strategy.params.score=bald", "model=mlp",
                             "strategy.params.score_params={mc_samples:10}"]))
    assert conf.strategy.params["score_params"] == {"mc_samples": 10}


def test_every_score_is_built_without_tensorflow():
    import subprocess
    import sys

    code = ("import sys\n"
            "from al_research.config import build\n"
            f"for score in {sorted(SCORES)!r}:\n"
            "    for cls in ('PowerSampling', 'SoftmaxSampling', 'SoftRankSampling'):\n"
            "        s = build('al_research.strategies.stochastic.' + cls, {'score': score},\n"
            "                  'strategy')\n"
            "        assert s.inner.name == score\n"
            "print(sorted(m for m in ('tensorflow', 'mlflow') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(("args", "expected"), [
    (["strategy=power", "strategy.params.temperature=0"],
     "strategy.params: power: temperature must be > 0 (and finite), got 0.0"),
    (["strategy=softrank", "strategy.params.score=foo"],
     "strategy.params: softrank: score must be one of bald, entropy, least_confident, margin, "
     "qbc_kl, qbc_vote_entropy; got 'foo'"),
    (["strategy=softmax_sampling", "strategy.params.score=bald",
      "strategy.params.score_params={mc_samples:1}"],
     "strategy.params: softmax_sampling: score_params for score=bald: bald: mc_samples must be "
     ">= 2"),
])
def test_the_command_line_says_it_in_one_line_before_tensorflow(tmp_path, args, expected):
    line = config_error_line(tmp_path, args)
    assert line.startswith("al-research: error: " + expected), line
