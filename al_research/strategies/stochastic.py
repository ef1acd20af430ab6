"""Stochastic batch acquisition (Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron & Gal
2023, "Stochastic Batch Acquisition: A Simple Baseline for Deep Active Learning", TMLR).

Top-k of a one-item utility fills a batch with near-duplicates: the scores do not change as the
batch is chosen. Instead, draw the batch *without replacement* with probabilities derived from
a scoring strategy's utilities `s_i` (higher = label first) and a coldness `beta = 1/T`:

    power:    p_i ∝ s_i^beta           (scores >= 0)
    softmax:  p_i ∝ exp(beta s_i)
    softrank: p_i ∝ r_i^(-beta)        (r_i the rank of item i, 1 = the highest score)

The paper's default is beta = 1 (T = 1). T -> 0 approaches top-k, T -> inf uniform sampling.
The draw is the Gumbel-top-k trick (Vieira 2014; Kool, van Hoof & Welling 2019): the k
largest of `log w_i + G_i`, G_i i.i.d. standard Gumbel, are exactly k successive draws without
replacement with probabilities ∝ w_i (each renormalised over the items left): one pass over the
pool and a sort, not k draws. We take the k largest of `u_i + T G_i`, u_i = log s_i, s_i or
-log r_i (= T log p_i up to a constant): the same order, and no T underflows or overflows the
weights.

The inner scoring strategy is one of `SCORES` (named in `params.score`, its own hyperparameters
in `params.score_params`); it is resolved to its class by name, without importing TensorFlow.
The wrapper needs what its inner score needs, logs the inner utility as its score histogram,
and keeps no state between rounds: the noise comes from the loop's rng (`ctx.rng`), so a seed
reproduces the picks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from al_research.strategies.base import Query, QueryContext, ScoringStrategy, Strategy, top_k

# Scoring strategies whose utilities are >= 0 by definition (power sampling needs that), by
# the name of their yaml: the module path of each, imported when a strategy is built.
SCORES: dict[str, str] = {
    "least_confident": "al_research.strategies.uncertainty.LeastConfident",  # 1 - max p
    "margin": "al_research.strategies.uncertainty.Margin",  # 1 - (p_1 - p_2), in [0, 1]
    "entropy": "al_research.strategies.uncertainty.Entropy",  # nats
    "bald": "al_research.strategies.bald.BALD",  # mutual information, nats
    "qbc_vote_entropy": "al_research.strategies.qbc.QBCVoteEntropy",  # nats
    "qbc_kl": "al_research.strategies.qbc.QBCKL",  # nats
}


def perturbed_top_k(utilities: np.ndarray, n: int, rng: np.random.Generator,
                    temperature: float) -> np.ndarray:
    """`n` positions drawn without replacement with probabilities ∝ `exp(utilities / T)`,
    in the order drawn: the `n` largest `utilities + T * G`, G i.i.d. standard Gumbel from `rng`.

    A utility of -inf or NaN is weight 0: such items come only after every item of positive
    weight, in a uniformly random order (from the same noise), when `n` exceeds the others.
    One Gumbel draw per item, whatever `n`.
    """
    utilities = np.asarray(utilities, dtype=np.float64)
    noise = rng.gumbel(size=len(utilities))
    possible = np.isfinite(utilities)
    keys = np.where(possible, utilities + temperature * noise, -np.inf)
    n = max(0, min(n, len(utilities)))
    picks = top_k(keys, n)
    short = n - int(possible.sum())
    if short > 0:  # fewer items of positive weight than picks: the rest in a random order
        rest = np.flatnonzero(~possible)
        picks = np.concatenate([picks[: n - short], rest[top_k(noise[rest], short)]])
    return picks


def ranks(scores: np.ndarray) -> np.ndarray:
    """1 for the highest score, 2 for the next...: ties (and NaNs, last) in position order, as
    `top_k` orders them, so every rank is distinct."""
    order = top_k(scores, len(scores))
    out = np.empty(len(order), dtype=np.float64)
    out[order] = np.arange(1, len(order) + 1)
    return out


def power_utilities(scores: np.ndarray) -> np.ndarray:
    """`log s_i`: power sampling's log weight at beta = 1. Scores below 0 (rounding: every
    utility in `SCORES` is >= 0 by definition, BALD's up to float error) count as 0, and a
    score of 0 is weight 0 (drawn only when no item of positive weight is left)."""
    scores = np.maximum(np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0), 0.0)
    with np.errstate(divide="ignore"):
        return np.log(scores)


def softmax_utilities(scores: np.ndarray) -> np.ndarray:
    """`s_i` itself (NaN: weight 0)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.where(np.isnan(scores), -np.inf, scores)


def softrank_utilities(scores: np.ndarray) -> np.ndarray:
    """`-log r_i`, r_i the rank (1 = best)."""
    return -np.log(ranks(scores))


def score_class(score: str, who: str) -> type[ScoringStrategy]:
    """The scoring strategy class named `score` (one of `SCORES`), or a ValueError listing them."""
    from al_research.config import import_target

    if score not in SCORES:
        raise ValueError(f"{who}: score must be one of {', '.join(sorted(SCORES))}; "
                         f"got {score!r}")
    return import_target(SCORES[score], f"{who}.score")


def score_params(score: str, params: dict[str, Any] | None, who: str) -> Any:
    """The inner score's `Params` from `params`, checked as the config checks any strategy's
    (unknown keys listed, types, ranges), or a ValueError in one line."""
    from al_research.config import ConfigError, load_params

    score_class(score, who)
    try:
        return load_params(SCORES[score], dict(params or {}), "score")
    except ConfigError as error:
        message = str(error).removeprefix("score.params: ").removeprefix("score.params.")
        raise ValueError(f"{who}: score_params for score={score}: {message}") from None


@dataclass
class StochasticParams:
    """A stochastic acquisition's hyperparameters (each subclass's `Params`).

    score: the scoring strategy whose utilities are sampled from, by its yaml's name
        (`SCORES`: least_confident, margin, entropy, bald, qbc_vote_entropy, qbc_kl).
        Default entropy: it needs only probabilities, so it runs on every model (the default
        softmax regression included); the paper's headline, PowerBALD, is `score: bald` with
        a dropout model (mlp, cnn). Every score is >= 0 as it stands (least confident is
        1 - max p, margin 1 - (p_1 - p_2)): power sampling needs no transform.
    temperature: T = 1 / beta > 0; the paper's default beta = 1. T -> 0: top-k; large T:
        uniform.
    score_params: the inner score's own hyperparameters, e.g. `{mc_samples: 10}` for bald
        (checked as `strategy.params` of that strategy would be); null: its defaults. Null
        in the yaml, so `strategy.params.score_params={mc_samples:10}` needs no `+`.
    """

    score: str = "entropy"
    temperature: float = 1.0
    score_params: dict[str, Any] | None = None

    who: ClassVar[str] = "stochastic"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"{self.who}: temperature must be > 0 (and finite), got "
                             f"{self.temperature}")
        score_params(self.score, self.score_params, self.who)


class StochasticSampling(Strategy):
    """Sample the batch without replacement in proportion to a transform of an inner score
    (module doc). Subclasses name the transform (`utilities`)."""

    Params: ClassVar[type] = StochasticParams

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        p = self.params
        inner_cls = score_class(p.score, self.name)
        self.inner: ScoringStrategy = inner_cls(score_params(p.score, p.score_params, self.name))
        self.needs = self.inner.needs

    @staticmethod
    def utilities(scores: np.ndarray) -> np.ndarray:
        """`log p_i / beta` up to a constant (the perturbed quantity at T = 1)."""
        raise NotImplementedError

    def query(self, ctx: QueryContext, n: int) -> Query:
        scores = np.asarray(self.inner.scores(ctx))
        picks = perturbed_top_k(self.utilities(scores), n, ctx.rng, self.params.temperature)
        logged = scores if self.inner.log_scores else None  # least-confident: mirrored image
        return Query(picks, logged, self.inner.score_name)


class PowerSampling(StochasticSampling):
    """Power acquisition: draw the batch with p_i ∝ s_i^(1/T) (s_i >= 0), without replacement.
    The paper's recommended stochastic acquisition (its headline: PowerBALD)."""

    @dataclass
    class Params(StochasticParams):
        __doc__ = StochasticParams.__doc__
        who: ClassVar[str] = "power"

    name: ClassVar[str] = "power"
    utilities = staticmethod(power_utilities)


class SoftmaxSampling(StochasticSampling):
    """Softmax (Boltzmann) acquisition: p_i ∝ exp(s_i / T). Sensitive to the scale of the
    scores (entropy in nats spans [0, log C]: at T = 1 weights differ at most C-fold)."""

    @dataclass
    class Params(StochasticParams):
        __doc__ = StochasticParams.__doc__
        who: ClassVar[str] = "softmax_sampling"

    name: ClassVar[str] = "softmax_sampling"  # not "softmax": that is a model
    utilities = staticmethod(softmax_utilities)


class SoftRankSampling(StochasticSampling):
    """Soft-rank acquisition: p_i ∝ r_i^(-1/T), r_i the rank of the score (1 = best; ties to the
    lower position). Invariant to any increasing transform of the scores."""

    @dataclass
    class Params(StochasticParams):
        __doc__ = StochasticParams.__doc__
        who: ClassVar[str] = "softrank"

    name: ClassVar[str] = "softrank"
    utilities = staticmethod(softrank_utilities)
