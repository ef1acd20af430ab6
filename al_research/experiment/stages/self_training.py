"""Self-training as a stage: after the budget, pseudo-label the most confident items, refit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from al_research.experiment.self_training import SelfTrainingResult
from al_research.experiment.stages import Stage
from al_research.experiment.stages.active_learning import LoopResult

if TYPE_CHECKING:
    from al_research.experiment.self_training import PseudoRound
    from al_research.experiment.state import Experiment

log = logging.getLogger("al_research")


class SelfTraining(Stage):
    """The article's auto-labelling, continuing the loop's model: batches of the most confident
    unlabelled items get their predicted labels (cost: none; accuracy audited, never trained
    on), each batch followed by a refit, logged with the pseudo-label count as the step."""

    @dataclass
    class Params:
        mode: str = "batches"  # "batches": the batch_size most confident at a time; "all_at_once"
        batch_size: int | None = None  # None: the loop's batch_size
        max_rounds: int | None = None  # None: until the pool is used up or the threshold stops
        min_confidence: float | None = None  # stop when the most confident item is below this

        def __post_init__(self) -> None:
            if self.mode not in ("batches", "all_at_once"):
                raise ValueError(f"mode must be one of [batches, all_at_once], got {self.mode!r}")
            if self.batch_size is not None and self.batch_size < 1:
                raise ValueError(f"batch_size must be >= 1 or null, got {self.batch_size}")
            if self.max_rounds is not None and self.max_rounds < 1:
                raise ValueError(f"max_rounds must be >= 1 or null, got {self.max_rounds}")
            if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
                raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")

    needs = (LoopResult,)
    gives = SelfTrainingResult

    def tags(self) -> dict[str, str]:
        from al_research.tracking.names import Tag, flag

        return {Tag.SELF_TRAINING: flag(True)}

    def run(self, exp: Experiment) -> SelfTrainingResult:
        from al_research.experiment.self_training import run_self_training
        from al_research.tracking import plots
        from al_research.tracking.names import Metric

        p, recorder = self.params, exp.recorder
        batch_size = p.batch_size or exp.conf.batch_size

        def on_round(r: PseudoRound) -> None:
            recorder.log_metrics(r.metrics(), step=r.n_pseudo)  # buffered: one write every few s
            if r.n_pseudo % 250 < batch_size:
                log.info("self-training: %4d pseudo-labels  test acc %.4f  pseudo-label acc %.4f",
                         r.n_pseudo, r.test_accuracy, r.pseudo_accuracy)

        spent_before = exp.oracle.spent
        result = run_self_training(exp.model, exp.pool, exp.held_out, batch_size, p.mode,
                                   p.max_rounds, p.min_confidence, on_round)
        if exp.oracle.spent != spent_before:
            raise RuntimeError("self-training spent labels: pseudo-labels must cost none")
        if not result.rounds:
            log.info("self-training: nothing to pseudo-label (no unlabelled item, or none above "
                     "min_confidence)")
            return result
        last = result.rounds[-1]
        recorder.log_metrics({
            Metric.ST_FINAL_TEST_ACCURACY: last.test_accuracy,
            Metric.ST_FINAL_PSEUDO_LABEL_ACCURACY: last.pseudo_accuracy,
            Metric.ST_N_PSEUDO: last.n_pseudo,
            Metric.ST_ROUNDS: len(result.rounds),
        })
        recorder.log_figure(
            plots.confusion_matrix_figure(result.confusion(exp.split.n_classes),
                                          f"pseudo-labels ({last.n_pseudo}): "
                                          f"accuracy {last.pseudo_accuracy:.3f}"),
            "self_training/confusion_matrix.png")
        recorder.log_figure(
            plots.learning_curve([r.n_pseudo for r in result.rounds],
                                 {"test": [r.test_accuracy for r in result.rounds],
                                  "pseudo-label accuracy": [r.pseudo_accuracy
                                                            for r in result.rounds]},
                                 title="self-training: accuracy by pseudo-labels added"),
            "plots/self_training_curve.png")
        log.info("self-training: %d rounds, %d pseudo-labels, test acc %.4f, pseudo-label acc "
                 "%.4f", len(result.rounds), last.n_pseudo, last.test_accuracy,
                 last.pseudo_accuracy)
        return result
