"""BALD: Bayesian active learning by disagreement, with MC dropout (Houlsby et al. 2011;
Gal, Islam & Ghahramani 2017)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from al_research.models.base import Capability
from al_research.strategies.base import QueryContext, ScoringStrategy
from al_research.strategies.uncertainty import entropy


def mutual_information(samples: np.ndarray) -> np.ndarray:
    """BALD's utility from `T` stochastic passes `samples` of shape (T, n, classes):

        I[y; w | x] = H[ mean_t p_t(.|x) ] - mean_t H[ p_t(.|x) ]

    the entropy of the mean prediction minus the mean entropy of the passes (nats, >= 0 up to
    rounding), with `0 log 0 = 0`; logarithms in the samples' precision, sums in float64.
    """
    samples = np.asarray(samples)
    if samples.ndim != 3:
        raise ValueError(f"MC samples must have shape (T, n, classes), got {samples.shape}")
    t, n, c = samples.shape
    mean_entropy = entropy(samples.reshape(t * n, c)).reshape(t, n).mean(axis=0)
    return entropy(samples.mean(axis=0, dtype=np.float64)) - mean_entropy


class BALD(ScoringStrategy):
    """Label the items on which the dropout masks disagree most: the `n` highest mutual
    informations between the label and the weights, estimated from `mc_samples` forward passes
    with dropout on (`Learner.predict_proba_samples`). This is top-k BALD (scikit-activeml's
    `GreedyBALD`), not BatchBALD. Ties go to the lower position.

    Needs a model with dropout (`mlp`, `cnn`); `check_capabilities` refuses others before any work.
    """

    @dataclass
    class Params:
        """BALD's hyperparameters.

        mc_samples: stochastic forward passes T per round (>= 2: one pass has no
            disagreement). Gal et al. (2017) use 20.
        """

        mc_samples: int = 20

        def __post_init__(self) -> None:
            if self.mc_samples < 2:
                raise ValueError(
                    f"bald: mc_samples must be >= 2 (mutual information needs at least two "
                    f"stochastic passes), got {self.mc_samples}")

    name: ClassVar[str] = "bald"
    score_name: ClassVar[str] = "mutual_information"
    needs = frozenset({Capability.MC_SAMPLES})

    def scores(self, ctx: QueryContext) -> np.ndarray:
        return mutual_information(ctx.mc_samples(self.params.mc_samples))
