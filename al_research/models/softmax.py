"""The article's model: softmax regression, trained by the one trainer (trainer.py).

`W x + b` with softmax outputs, sparse cross-entropy and Adam; one epoch is one full-batch Adam
step on the labelled set (the article's "training attempt"). Its architecture is
`architecture.Linear` (the article's ops, weights at zero); the fit loop, Adam and early
stopping are the trainer's, shared with the networks, and as before a whole fit is one compiled
call, traced once per process per input size. TensorFlow is imported when the first model is
built, not when this module is imported, so the config can be validated without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from al_research.models.base import TrainingSpec
from al_research.models.trained import TrainedModel


@dataclass
class SoftmaxParams:
    """Softmax regression has no hyperparameters beyond the shared training ones."""


class SoftmaxRegression(TrainedModel):
    """`W x + b` with softmax outputs, sparse cross-entropy, Adam (the article's model).

    Weights start at zero (the article's `tf.zeros`), so `reset()` needs no seed. With
    `warm_start` (the article), `reset()` happens once, at construction, and each `fit`
    continues from the previous weights; without it, every `fit` starts from scratch.
    It has no dropout: no MC samples (CapabilityError).
    """

    Params: ClassVar[type] = SoftmaxParams
    name: ClassVar[str] = "softmax"
    embeds_input: ClassVar[bool] = True  # `embed(x)` is `x`: strategies may use the pool array

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_classes: int,
        monitor: tuple[np.ndarray, np.ndarray] | None,
        training: TrainingSpec | None = None,
        params: Any = None,
        seed: int = 0,
    ) -> None:
        training = training or TrainingSpec()
        if training.batch_size is not None:
            raise ValueError("model=softmax trains full-batch (the article's epochs); set "
                             "model.batch_size=null")
        super().__init__(input_shape, n_classes, monitor, training, params, seed)

    def _architecture(self) -> Any:
        from al_research.models.architecture import Linear

        return Linear(self.n_features, self.n_classes)

    def embed(self, x: Any) -> np.ndarray:
        """The input itself: softmax regression's only layer reads the features directly."""
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)

    def predict_proba_and_embed(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """(predict_proba(x), x): the embedding is the input, no pass needed."""
        return self.predict_proba(x), self.embed(x)
