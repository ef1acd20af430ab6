"""Stages: an experiment is the ordered list `stages` of the config (conf/stages/*.yaml).

A stage is a class named by `_target_`, with a `Params` dataclass (`stages.<name>.params`,
checked before any work), `needs` (the types of the earlier stages' outputs it reads) and
`gives` (the type of what it returns, or None). `run(experiment)` reads the parts and earlier
outputs from the `Experiment` and logs what it measured to the run. `check_order` refuses a
list in which a stage needs what no earlier stage gives, before any training. A new stage is
one module and one yaml (`# @package stages.<name>`), added to the list:
`'stages=[kmeans,active_learning,label_fair,self_training,<name>]'`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from al_research.config import ConfigError, StageConfig, build
from al_research.models.base import NoParams


class Stage:
    """Base class of a stage (see the module doc)."""

    Params: ClassVar[type] = NoParams
    needs: ClassVar[tuple[type, ...]] = ()
    gives: ClassVar[type | None] = None

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def tags(self) -> dict[str, str]:
        """Run tags saying the stage runs in this job (set when the run opens)."""
        return {}

    def run(self, experiment: Any) -> Any:
        raise NotImplementedError


def build_stages(stages: dict[str, StageConfig], strategy: str) -> list[tuple[str, Stage]]:
    """The stages that apply to this arm (`enabled`, and `strategies` empty or naming it),
    in order, checked by `check_order`."""
    built = [(name, build(s._target_, s.params, f"stages.{name}"))
             for name, s in stages.items() if s.applies(strategy)]
    check_order(built, list(stages))
    return built


def check_order(stages: Sequence[tuple[str, Stage]], configured: Sequence[str]) -> None:
    """Each stage's `needs` given by an earlier one, or a ConfigError naming what is missing."""
    given: set[type] = set()
    for name, stage in stages:
        lacking = [t.__name__ for t in stage.needs if t not in given]
        if lacking:
            raise ConfigError(f"stages.{name} needs {', '.join(lacking)} from an earlier stage; "
                              f"the stages in order: {', '.join(configured)}")
        if stage.gives is not None:
            given.add(stage.gives)
