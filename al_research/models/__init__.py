"""Models: the learner protocol (`base`), the article's softmax regression (`softmax`), Keras
networks (`networks`) and their compiled training (`training`).

A model is one module here and one yaml in conf/model/ whose `_target_` names its class; the
experiment builds it as `cls(input_shape, n_classes, monitor, training, params, seed)`.
"""

from al_research.models.base import CapabilityError, FitInfo, Learner, TrainingSpec

__all__ = ["CapabilityError", "FitInfo", "Learner", "TrainingSpec"]
