"""Query-by-committee (Seung, Opper & Sompolinsky 1992) with an MC-dropout committee.

The committee is `mc_samples` stochastic forward passes with dropout on
(`Learner.predict_proba_samples`, as BALD's): each pass is a member. Two disagreement measures,
one strategy (and one yaml) each, as scikit-activeml's `QueryByCommittee` computes them:

- vote entropy (Dagan & Engelson 1995): each member votes for its most probable class (ties:
  the lower class index, as `argmax`); the utility is the entropy (nats) of the distribution of
  the votes, in [0, log min(T, C)];
- KL divergence to the consensus (McCallum & Nigam 1998): the mean over members of
  KL(p_t || p̄), p̄ the members' mean distribution. Since
  mean_t KL(p_t || p̄) = H[p̄] - mean_t H[p_t], with an MC-dropout committee this is BALD's
  mutual information, number for number (a committee of independently trained models would
  make it differ; see the note below).

Ties go to the lower position (vote entropy takes few distinct values: ties are common), where
scikit-activeml draws among the tied. scikit-activeml clips probabilities at 1e-7 before the
logarithm of the KL; we use 0 log 0 = 0 (the same values away from 0).

A committee trained on bootstrap resamples of the labelled set (Abe & Mamitsuka 1998) would
need the strategy to train models, which the `Learner` protocol does not offer strategies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

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


class _QueryByCommittee(ScoringStrategy):
    """The `n` items on which the committee of MC-dropout passes disagrees most (module doc)."""

    @dataclass
    class Params:
        """Query-by-committee's hyperparameters.

        mc_samples: the committee size: stochastic forward passes T per round, each pass a
            member (>= 2: one member cannot disagree). The same key as BALD's (20 by default).
        """

        mc_samples: int = 20

        who: ClassVar[str] = "qbc"

        def __post_init__(self) -> None:
            if self.mc_samples < 2:
                raise ValueError(
                    f"{self.who}: mc_samples (the committee size) must be >= 2: one member "
                    f"cannot disagree, got {self.mc_samples}")

    needs = frozenset({Capability.MC_SAMPLES})

    @staticmethod
    def disagreement(samples: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def scores(self, ctx: QueryContext) -> np.ndarray:
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
