"""What the configured parts need against what the configured model will offer, checked with the
config, before TensorFlow loads.

A model's capabilities are known when it is built; the models of `models.trained` declare them
from their `Params` alone (`_offers`), so for them the check runs while the config is checked,
with the one-line errors of every other config mistake: a strategy (unless `skip_incompatible`,
which turns that job into a logged skip) and each stopping criterion. Another learner is checked
when the run builds it, before any training (the runner, `StoppingMonitor`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from al_research.models.base import Capability, CapabilityError, declare

if TYPE_CHECKING:
    from al_research.config import Config, ModelConfig


def model_offers(model: ModelConfig) -> frozenset[Capability] | None:
    """What the configured model will offer, from its class and params without building it;
    None when that is not known before it is built."""
    from al_research.models.trained import TrainedModel
    from al_research.targets import import_target, load_params

    cls = import_target(model._target_, "model")
    if not (isinstance(cls, type) and issubclass(cls, TrainedModel)):
        return None
    probe = cls.__new__(cls)  # no weights, no TensorFlow: `_offers` reads the params only
    probe.params = load_params(model._target_, model.params, "model")
    return declare(*cls.BASE_OFFERS, *probe._offers())


def part_needs(conf: Config) -> Iterable[tuple[str, frozenset[Capability]]]:
    """(who, needs) for the strategy (unless skipped when incompatible) and every criterion."""
    from al_research.targets import build, import_target

    if not conf.skip_incompatible:  # built, not imported: a wrapper needs what its score needs
        strategy = build(conf.strategy._target_, conf.strategy.params, "strategy")
        yield f"strategy {conf.strategy.name!r}", frozenset(getattr(strategy, "needs", ()))
    for name, criterion in conf.stopping.criteria.items():
        cls = import_target(criterion._target_, f"stopping.criteria.{name}")
        yield f"stopping criterion {name!r}", frozenset(getattr(cls, "needs", ()))


def check_model_serves(conf: Config) -> None:
    """A ConfigError naming the first part that needs what the model lacks."""
    from al_research.strategies.base import check_capabilities
    from al_research.targets import ConfigError

    offers = model_offers(conf.model)
    if offers is None:
        return
    for who, needs in part_needs(conf):
        try:
            check_capabilities(needs, offers, who, f"model {conf.model.name!r}")
        except CapabilityError as error:
            raise ConfigError(str(error)) from None
