"""What the stopping criteria need against what the model offers, before TensorFlow loads.

A model's capabilities are known when it is built; the models of `models.trained` declare them
from their `Params` alone (`_offers`), so for them the check runs while the config is checked,
with the one-line errors of every other config mistake. Another learner is checked when the
run builds it (`StoppingMonitor`), before any training.
"""

from __future__ import annotations

from al_research.config import ConfigError, ModelConfig, StoppingConfig, import_target, load_params
from al_research.models.base import Capability, CapabilityError, declare


def model_offers(model: ModelConfig) -> frozenset[Capability] | None:
    """What the configured model will offer, from its class and params without building it;
    None when that is not known before it is built."""
    from al_research.models.trained import TrainedModel

    cls = import_target(model._target_, "model")
    if not (isinstance(cls, type) and issubclass(cls, TrainedModel)):
        return None
    probe = cls.__new__(cls)  # no weights, no TensorFlow: `_offers` reads the params only
    probe.params = load_params(model._target_, model.params, "model")
    return declare(Capability.PROBA, Capability.EMBEDDINGS, *probe._offers())


def check_model_offers(stopping: StoppingConfig, model: ModelConfig) -> None:
    """A ConfigError naming the first criterion that needs what the model lacks."""
    from al_research.strategies.base import check_capabilities

    offers = model_offers(model)
    if offers is None:
        return
    for name, criterion in stopping.criteria.items():
        needs = frozenset(getattr(import_target(criterion._target_, f"stopping.criteria.{name}"),
                                  "needs", frozenset()))
        try:
            check_capabilities(needs, offers, f"stopping criterion {name!r}",
                               f"model {model.name!r}")
        except CapabilityError as error:
            raise ConfigError(str(error)) from None
