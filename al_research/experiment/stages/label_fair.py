"""Label-fair refits: models trained from scratch on exactly the loop's final labelled set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from al_research.config import model_yaml
from al_research.experiment.stages import Stage
from al_research.experiment.stages.active_learning import LoopResult

if TYPE_CHECKING:
    from al_research.experiment.state import Experiment


class LabelFair(Stage):
    """`fresh_test_accuracy`: the run's own model from scratch on the final labels, so a report
    can tell "chose better labels" from "trained along a better path" (warm start); and
    `fresh_test_accuracy/<model>` for each of `models` (conf/model/<name>.yaml)."""

    @dataclass
    class Params:
        models: list[str] = field(default_factory=list)  # other models, e.g. [mlp]

        def __post_init__(self) -> None:
            for name in self.models:
                model_yaml(name, "stages.label_fair.params.models")

    needs = (LoopResult,)

    def run(self, exp: Experiment) -> dict[str, float]:
        from al_research.experiment.parts import build_model, other_model
        from al_research.tracking.names import Metric

        x, y = exp.pool.training_set()
        scores = {}
        for name in [None, *self.params.models]:
            conf = exp.conf if name is None else other_model(exp.conf, name)
            model = build_model(conf, exp.split)
            model.fit(x, y)
            key = Metric.FRESH_TEST_ACCURACY if name is None else (
                f"{Metric.FRESH_TEST_ACCURACY}/{name}")
            scores[key] = model.score(exp.split.test_x, exp.split.test_y)
        exp.recorder.log_metrics(scores)
        return scores
