"""Query-by-committee (Seung, Opper & Sompolinsky 1992): an MC-dropout or a bootstrap committee.

`committee: mc_dropout` (the default): `mc_samples` stochastic forward passes with dropout on
(`Learner.predict_proba_samples`, as BALD's), each pass a member; needs a model with dropout.
`committee: bootstrap` (Abe & Mamitsuka 1998, "query by bagging"): `members` models of the run's
own configuration trained from scratch each round, each on a bootstrap resample of the labelled
set (`QueryContext.bootstrap_committee`); any model of conf/model/ can, softmax regression
included, at `members` extra fits per round. Two disagreement measures,
one strategy (and one yaml) each, as scikit-activeml's `QueryByCommittee` computes them:

- vote entropy (Dagan & Engelson 1995): each member votes for its most probable class (ties:
  the lower class index, as `argmax`); the utility is the entropy (nats) of the distribution of
  the votes, in [0, log min(T, C)];
- KL divergence to the consensus (McCallum & Nigam 1998): the mean over members of
  KL(p_t || p̄), p̄ the members' mean distribution. Since
  mean_t KL(p_t || p̄) = H[p̄] - mean_t H[p_t], with an MC-dropout committee this is BALD's
  mutual information, number for number (a bootstrap committee's members are independently
  trained models: then it is not).

Ties go to the lower position (vote entropy takes few distinct values: ties are common), where
scikit-activeml draws among the tied. scikit-activeml clips probabilities at 1e-7 before the
logarithm of the KL; we use 0 log 0 = 0 (the same values away from 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from al_research.models.base import Capability
from al_research.strategies.bald import mutual_information
from al_research.strategies.base import QueryContext, ScoringStrategy
from al_research.strategies.uncertainty import entropy


def _check(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.ndim != 3:
        raise ValueError(f"committee outputs must have shape (members, n, classes), got "
                         f"{samples.shape}")
    return samples


def vote_entropy(samples: np.ndarray) -> np.ndarray:
    """The entropy (nats, 0 log 0 = 0) of the members' argmax votes, from probabilities of
    shape (members, n, classes): 0 when all vote alike, log(min(members, classes)) at most."""
    samples = _check(samples)
    t, n, c = samples.shape
    votes = samples.argmax(axis=2)  # (t, n); ties: the lower class
    counts = np.bincount((votes + np.arange(n) * c).ravel(), minlength=n * c).reshape(n, c)
    return entropy(counts / t)


def kl_to_consensus(samples: np.ndarray) -> np.ndarray:
    """mean_t KL(p_t || p̄) in nats, p̄ = mean_t p_t, from (members, n, classes) probabilities:
    0 when all members agree, >= 0 up to rounding. The sum regroups as H[p̄] - mean_t H[p_t],
    BALD's mutual information, which computes it (0 log 0 = 0; sums in float64)."""
    return mutual_information(_check(samples))


COMMITTEES = ("mc_dropout", "bootstrap")


class _QueryByCommittee(ScoringStrategy):
    """The `n` items on which the committee disagrees most (module doc)."""

    @dataclass
    class Params:
        """Query-by-committee's hyperparameters.

        committee: mc_dropout (MC-dropout passes of the run's model) | bootstrap (models
            trained from scratch on bootstrap resamples of the labelled set).
        mc_samples: the MC-dropout committee's size: stochastic forward passes T per round,
            each pass a member (>= 2: one member cannot disagree). The same key as BALD's.
        members: the bootstrap committee's size (>= 2): models trained per round.
        """

        committee: str = "mc_dropout"
        mc_samples: int = 20
        members: int = 5

        who: ClassVar[str] = "qbc"

        def __post_init__(self) -> None:
            if self.committee not in COMMITTEES:
                raise ValueError(f"{self.who}: committee must be one of "
                                 f"{', '.join(COMMITTEES)}; got {self.committee!r}")
            for key in ("mc_samples", "members"):
                if getattr(self, key) < 2:
                    raise ValueError(
                        f"{self.who}: {key} (the committee size) must be >= 2: one member "
                        f"cannot disagree, got {getattr(self, key)}")

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self.needs = frozenset({Capability.MC_SAMPLES if self.params.committee == "mc_dropout"
                                else Capability.RETRAIN})

    @staticmethod
    def disagreement(samples: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def scores(self, ctx: QueryContext) -> np.ndarray:
        if self.params.committee == "bootstrap":
            return self.disagreement(ctx.bootstrap_committee(self.params.members))
        return self.disagreement(ctx.mc_samples(self.params.mc_samples))


class QBCVoteEntropy(_QueryByCommittee):
    """Query-by-committee, vote entropy (Dagan & Engelson 1995)."""

    @dataclass
    class Params(_QueryByCommittee.Params):
        __doc__ = _QueryByCommittee.Params.__doc__
        who: ClassVar[str] = "qbc_vote_entropy"

    name: ClassVar[str] = "qbc_vote_entropy"
    score_name: ClassVar[str] = "vote_entropy"
    disagreement = staticmethod(vote_entropy)


class QBCKL(_QueryByCommittee):
    """Query-by-committee, mean KL divergence to the consensus (McCallum & Nigam 1998)."""

    @dataclass
    class Params(_QueryByCommittee.Params):
        __doc__ = _QueryByCommittee.Params.__doc__
        who: ClassVar[str] = "qbc_kl"

    name: ClassVar[str] = "qbc_kl"
    score_name: ClassVar[str] = "kl_to_consensus"
    disagreement = staticmethod(kl_to_consensus)
