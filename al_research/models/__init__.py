"""Models: this package owns what a learner is and how every model trains. `base` is the learner
protocol (`Learner`, `FitInfo`, `TrainingSpec`, declared `Capability`s); `trainer` is the one
compiled fit loop, Adam update and early-stopping rule, traced once per process per
architecture; `architecture` holds the pure forward passes it trains (a Keras network,
softmax regression's `x W + b`); `trained.TrainedModel` puts the protocol over the trainer, and
`softmax` (the article's model) and `networks` (MLP, CNN) are thin classes over it. A model is
one class here and one yaml in conf/model/ whose `_target_` names it; the experiment builds it
as `cls(input_shape, n_classes, monitor, training, params, seed)`. Only `trainer` and
`architecture` import TensorFlow, when the first model is built.
"""

from al_research.models.base import (
    Capability,
    CapabilityError,
    FitInfo,
    Learner,
    TrainingSpec,
    missing,
)

__all__ = ["Capability", "CapabilityError", "FitInfo", "Learner", "TrainingSpec", "missing"]
