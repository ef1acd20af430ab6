"""The active-learning loop as a stage: the initial set, then rounds until the budget is spent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from al_research.experiment.stages import Stage
from al_research.process.timings import phase

if TYPE_CHECKING:  # the loop imports TensorFlow, the round log MLflow: loaded when it runs
    from al_research.experiment.loop import Round
    from al_research.experiment.state import Experiment


@dataclass
class LoopResult:
    """The rounds of the loop; the last one measured the model trained on the whole budget."""

    rounds: list[Round]

    @property
    def final_test_accuracy(self) -> float:
        return self.rounds[-1].test_accuracy


class ActiveLearning(Stage):
    """Label the initial selection's set, then rounds of `batch_size` chosen by the strategy
    until `budget` labels are spent; every round is logged (MLflow, rounds.csv) as it ends."""

    gives = LoopResult

    def run(self, exp: Experiment) -> LoopResult:
        from al_research.experiment.loop import run_active_learning
        from al_research.experiment.parts import step_images
        from al_research.experiment.round_log import RoundLog
        from al_research.stopping.monitor import StoppingMonitor
        from al_research.strategies.base import QueryContext
        from al_research.strategies.initial import initial_selection
        from al_research.tracking.names import Metric

        conf, pool = exp.conf, exp.pool
        everything = np.arange(pool.size)
        start = QueryContext(pool.x, np.empty(0, np.int64), everything,
                             np.random.default_rng([conf.seed, 1]), None,
                             exp.split.n_classes, exp.cache)
        with phase("initial"):
            initial = initial_selection(exp.initial, start, conf.initial_size)
        rounds = RoundLog(exp.recorder, exp.folder, initial, conf.tracking.histograms,
                          step_images(conf), exp.title)
        stopping = StoppingMonitor.for_experiment(exp)  # None: no criterion configured
        try:
            run_active_learning(exp.model, pool, exp.held_out, exp.strategy, initial,
                                conf.batch_size, conf.budget,
                                np.random.default_rng([conf.seed, 2]), rounds,
                                exp.split.n_classes, exp.cache, stopping)
        finally:  # an interrupted run keeps what it measured
            with phase("plots"):
                rounds.close()
        with phase("plots"):
            rounds.log_summary()
        if stopping is not None:
            stopping.finish(conf.budget)
        exp.recorder.log_metrics({Metric.LABELS_SPENT: exp.oracle.spent,
                                  Metric.VAL_LABELS: len(exp.split.val_y)})
        return LoopResult(rounds.rounds)
