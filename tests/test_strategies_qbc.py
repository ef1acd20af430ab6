"""Query-by-committee with an MC-dropout committee: vote entropy (Dagan & Engelson 1995) and
the mean KL divergence to the consensus (McCallum & Nigam 1998), on hand-made committees and
against scikit-activeml's `QueryByCommittee` fed the same members.

scikit-activeml gets one classifier per MC pass (each serving that pass's probabilities; it
fits and predicts them itself, so its votes are its own `predict`), and, as a second route, one
classifier sampling all passes (`sample_predictions_method_name`). Same utilities; the same
picks, except:

- ties: we take the lower position, scikit-activeml draws among the tied. Vote entropy takes
  few distinct values, so its ties are common: its picks then have the same utilities as ours;
- KL: scikit-activeml clips probabilities at 1e-7 (and renormalises) before the logarithm, we
  use 0 log 0 = 0: the same away from 0, slightly apart for members certain of a class.

The mean KL to the consensus is BALD's mutual information (mean_t KL(p_t || p̄) =
H[p̄] - mean_t H[p_t]): with an MC-dropout committee `qbc_kl` and `bald` pick alike.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from skactiveml.pool import QueryByCommittee

from al_research.config import ConfigError, load_params, validate
from al_research.models.base import Capability, CapabilityError
from al_research.strategies.bald import BALD, mutual_information
from al_research.strategies.base import check_capabilities
from al_research.strategies.qbc import QBCKL, QBCVoteEntropy, kl_to_consensus, vote_entropy
from tests.conftest import compose
from tests.test_errors import config_error_line
from tests.test_strategies import TableLearner, picked, softmax, table_context
from tests.test_strategies_skactiveml import Fixed, ids, labels_for

# --- hand-made committees ---------------------------------------------------------------------

# three members (rows: members), items along the second axis, two or three classes
AGREE = [[0.7, 0.2, 0.1]] * 3  # identical members
SAME_VOTE = [[0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.4, 0.35, 0.25]]  # all vote 0, unlike
SPLIT = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]  # one vote per class
CERTAIN_APART = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
COMMITTEE = np.array([AGREE, SAME_VOTE, SPLIT, CERTAIN_APART]).transpose(1, 0, 2)  # (3, 4, 3)


def literal_mean_kl(samples: np.ndarray) -> np.ndarray:
    """mean_t sum_c p_tc log(p_tc / p̄_c), term by term (0 log 0 = 0)."""
    mean = samples.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(samples > 0, samples * np.log(samples / mean), 0.0)
    return terms.sum(axis=2).mean(axis=0)


def test_vote_entropy_on_hand_made_committees():
    assert vote_entropy(COMMITTEE) == pytest.approx([0.0, 0.0, math.log(3), math.log(3)])
    two_to_one = np.array([[[0.6, 0.4]], [[0.7, 0.3]], [[0.2, 0.8]]])  # votes 0, 0, 1
    assert vote_entropy(two_to_one) == pytest.approx(
        [-(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)])
    tied = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])  # argmax ties: the lower class, both vote 0
    assert vote_entropy(tied) == pytest.approx([0.0])


def test_kl_to_the_consensus_on_hand_made_committees():
    kl = kl_to_consensus(COMMITTEE)
    assert kl[0] == pytest.approx(0.0, abs=1e-12)  # agreement: no divergence
    assert kl[1] > 0  # the same votes, different beliefs: KL sees it, vote entropy not
    assert kl[3] == pytest.approx(math.log(3))  # each certain, of a different class
    np.testing.assert_allclose(kl, literal_mean_kl(COMMITTEE), atol=1e-12)
    random = softmax(np.random.default_rng(0).normal(size=(7, 50, 5)) * 3)
    np.testing.assert_allclose(kl_to_consensus(random), literal_mean_kl(random), atol=1e-12)
    np.testing.assert_array_equal(kl_to_consensus(random), mutual_information(random))


def test_the_strategies_rank_by_disagreement_ties_to_the_lower_position():
    learner = TableLearner(proba=COMMITTEE.mean(axis=0), samples=COMMITTEE)
    votes = QBCVoteEntropy(QBCVoteEntropy.Params(mc_samples=3))
    kl = QBCKL(QBCKL.Params(mc_samples=3))
    assert picked(table_context(4, [], learner), votes, 2) == [2, 3]  # tied at log 3
    assert picked(table_context(4, [2], learner), votes, 2) == [3, 0]  # then 0, 1 tied at 0
    assert picked(table_context(4, [], learner), kl, 2) == [3, 2]
    query = votes.query(table_context(4, [], learner), 1)
    assert query.score_name == "vote_entropy"
    assert query.scores == pytest.approx([0.0, 0.0, math.log(3), math.log(3)])
    assert kl.query(table_context(4, [], learner), 1).score_name == "kl_to_consensus"


def test_a_committee_needs_mc_dropout_and_two_members():
    for cls in (QBCVoteEntropy, QBCKL):
        assert cls().needs == frozenset({Capability.MC_SAMPLES})
        with pytest.raises(CapabilityError, match="needs mc_samples, and model 'softmax'.*mlp"):
            check_capabilities(cls().needs, frozenset({Capability.PROBA}),
                               f"strategy {cls.name!r}", "model 'softmax'")
        with pytest.raises(ValueError, match=f"{cls.name}: mc_samples .* must be >= 2"):
            cls.Params(mc_samples=1)


# --- scikit-activeml's QueryByCommittee -------------------------------------------------------

N, C, T = 400, 10, 8
RNG = np.random.default_rng(2027)
SAMPLES = softmax(RNG.normal(size=(T, N, C)) * 1.5)
LABELLED = np.sort(RNG.choice(N, 40, replace=False))
UNLABELLED = np.setdiff1d(np.arange(N), LABELLED)
METHODS = [(QBCVoteEntropy, "vote_entropy"), (QBCKL, "KL_divergence")]


class Member(Fixed):
    """One committee member: one MC pass's probabilities. `fit` only does what
    scikit-activeml's classifiers do before predicting (label encoder, cost matrix), so the
    member's votes are scikit-activeml's own `predict`."""

    def fit(self, X, y, sample_weight=None):
        self._validate_data(X, y)
        return self


def sk_query(method: str, seed: int, batch: int, samples=SAMPLES, route: str = "members"):
    y = labels_for(len(samples[0]), LABELLED, C)
    if route == "members":
        ensemble = [Member(member, classes=np.arange(C)) for member in samples]
        return QueryByCommittee(method=method, random_state=seed).query(
            ids(len(y)), y, ensemble, fit_ensemble=True, batch_size=batch,
            return_utilities=True)
    clf = Fixed(samples.mean(axis=0), samples=samples, classes=np.arange(C))
    return QueryByCommittee(method=method, sample_predictions_method_name="sample_proba",
                            random_state=seed).query(
        ids(len(y)), y, clf, fit_ensemble=False, batch_size=batch, return_utilities=True)


def ours(cls, samples=SAMPLES, n: int = 10):
    learner = TableLearner(proba=samples.mean(axis=0), samples=samples)
    return cls(cls.Params(mc_samples=len(samples))).query(
        table_context(len(samples[0]), LABELLED, learner), n)


@pytest.mark.parametrize("route", ["members", "sampled"])
@pytest.mark.parametrize(("cls", "method"), METHODS, ids=[m for _, m in METHODS])
def test_same_utilities_as_scikit_activeml(cls, method, route):
    assert SAMPLES.min() > 1e-6  # away from scikit-activeml's clipping at 1e-7
    _, sk_util = sk_query(method, 0, 10, route=route)
    query = ours(cls)
    np.testing.assert_allclose(query.scores, sk_util[0][UNLABELLED], rtol=1e-9, atol=1e-12)
    assert np.isnan(sk_util[0][LABELLED]).all()


@pytest.mark.parametrize("route", ["members", "sampled"])
def test_kl_same_picks_as_scikit_activeml(route):
    sk_picks, _ = sk_query("KL_divergence", 0, 10, route=route)
    assert UNLABELLED[ours(QBCKL).positions].tolist() == sk_picks.tolist()


def test_vote_entropy_same_picks_up_to_ties():
    query = ours(QBCVoteEntropy)
    mine = UNLABELLED[query.positions]
    utility = np.full(N, np.nan)
    utility[UNLABELLED] = query.scores
    assert len(np.unique(query.scores)) < 30  # few distinct values: ties are the rule
    drawn = set()
    for seed in range(8):
        sk_picks, _ = sk_query("vote_entropy", seed, 10)
        # the same utilities picked, whichever of the tied items
        np.testing.assert_allclose(np.sort(utility[sk_picks]), np.sort(utility[mine]))
        drawn.add(tuple(sorted(sk_picks.tolist())))
    # ours: among the tied, the lowest positions
    cut = np.sort(query.scores)[::-1][9]
    tied_at_cut = UNLABELLED[query.scores == cut]
    assert set(mine[utility[mine] == cut]) == set(tied_at_cut[:np.sum(utility[mine] == cut)])
    assert len(drawn) > 1  # scikit-activeml draws among the tied


def test_kl_apart_from_scikit_activeml_only_at_certain_members():
    certain = np.zeros((2, N, C))
    certain[0, :, 0] = certain[1, :, 1] = 1.0  # two members, each certain, apart
    _, sk_util = sk_query("KL_divergence", 0, 1, samples=certain)
    theirs = sk_util[0][UNLABELLED]
    mine = ours(QBCKL, certain, 1).scores
    np.testing.assert_allclose(mine, math.log(2), rtol=1e-12)  # the exact value
    np.testing.assert_allclose(theirs, math.log(2), rtol=1e-4)  # clipped at 1e-7
    assert np.all(theirs < mine)


def test_qbc_kl_is_bald_with_an_mc_dropout_committee():
    learner = TableLearner(proba=SAMPLES.mean(axis=0), samples=SAMPLES)
    bald = BALD(BALD.Params(mc_samples=T)).query(table_context(N, LABELLED, learner), 10)
    kl = ours(QBCKL)
    assert kl.positions.tolist() == bald.positions.tolist()
    np.testing.assert_array_equal(kl.scores, bald.scores)


# --- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["qbc_vote_entropy", "qbc_kl"])
def test_the_yamls_spell_out_the_defaults_and_refuse_one_member(name):
    conf = validate(compose([f"strategy={name}", "model=mlp"]))
    cls = {"qbc_vote_entropy": QBCVoteEntropy, "qbc_kl": QBCKL}[name]
    assert load_params(conf.strategy._target_, conf.strategy.params, "strategy") == cls.Params()
    with pytest.raises(ConfigError, match=f"{name}: mc_samples \\(the committee size\\) must "
                                          "be >= 2"):
        validate(compose([f"strategy={name}", "strategy.params.mc_samples=1"]))


def test_the_command_line_refuses_one_member_in_one_line_before_tensorflow(tmp_path):
    line = config_error_line(tmp_path, ["strategy=qbc_vote_entropy",
                                        "strategy.params.mc_samples=1"])
    assert line == ("al-research: error: strategy.params: qbc_vote_entropy: mc_samples (the "
                    "committee size) must be >= 2: one member cannot disagree, got 1"), line


# --- a bootstrap committee ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def softmax_round():
    """A real softmax regression after one fit on 30 labels of a 300-item pool."""
    from al_research.data import make_split
    from al_research.experiment.parts import build_model

    conf = validate(compose(["data.pool_size=300", "budget=100",
                             "model.early_stopping.max_epochs=40"]))
    split = make_split(conf.data, seed=0)
    model = build_model(conf, split)
    labelled = np.arange(0, 300, 10)
    model.fit(split.pool_x[labelled], split.pool_y[labelled])
    return split, model, labelled


def _bootstrap_context(softmax_round, seed: int):
    from al_research.strategies.base import QueryContext

    split, model, labelled = softmax_round
    unlabelled = np.setdiff1d(np.arange(300), labelled)
    return QueryContext(split.pool_x, labelled, unlabelled, np.random.default_rng(seed), model,
                        split.n_classes, labels=split.pool_y[labelled])


def test_a_bootstrap_committee_trains_fresh_members_on_resamples(softmax_round):
    split, model, labelled = softmax_round
    committee = _bootstrap_context(softmax_round, 3).bootstrap_committee(4)
    assert committee.shape == (4, 270, split.n_classes)
    # the same draws by hand: per member, n indices with replacement, then a seed
    rng = np.random.default_rng(3)
    x, y = split.pool_x[labelled], split.pool_y[labelled]
    unlabelled = np.setdiff1d(np.arange(300), labelled)
    for member in committee:
        rows = np.sort(rng.integers(0, 30, size=30))
        assert len(np.unique(rows)) < 30  # a resample, not the labelled set itself
        twin = model.spawn(int(rng.integers(2**31 - 1)))
        twin.fit(x[rows], y[rows])
        np.testing.assert_allclose(member, twin.predict_proba(split.pool_x[unlabelled]),
                                   rtol=1e-6, atol=1e-7)
    assert not np.allclose(committee[0], committee[1])  # members differ


@pytest.mark.parametrize("cls", [QBCVoteEntropy, QBCKL])
def test_bootstrap_qbc_serves_softmax_and_picks_reproducibly(softmax_round, cls):
    strategy = cls(cls.Params(committee="bootstrap", members=3))
    assert strategy.needs == frozenset({Capability.RETRAIN})
    first = strategy.query(_bootstrap_context(softmax_round, 5), 8)
    again = strategy.query(_bootstrap_context(softmax_round, 5), 8)
    assert first.positions.tolist() == again.positions.tolist()
    assert len(set(first.positions.tolist())) == 8
    assert first.scores.max() > 0 and first.scores.min() >= 0  # they disagree somewhere
    assert np.all(first.scores[first.positions] >= np.sort(first.scores)[-8])  # top-k


def test_the_committee_choice_decides_what_the_model_must_offer():
    validate(compose(["strategy=qbc_kl", "strategy.params.committee=bootstrap"]))  # softmax
    with pytest.raises(ConfigError, match="strategy 'qbc_kl' needs mc_samples"):
        validate(compose(["strategy=qbc_kl"]))
    with pytest.raises(ConfigError, match="qbc_kl: committee must be one of mc_dropout, "
                                          "bootstrap; got 'bagging'"):
        validate(compose(["strategy=qbc_kl", "strategy.params.committee=bagging",
                          "model=mlp"]))
    with pytest.raises(ConfigError, match="qbc_kl: members \\(the committee size\\) must be "
                                          ">= 2"):
        validate(compose(["strategy=qbc_kl", "strategy.params.committee=bootstrap",
                          "strategy.params.members=1"]))
