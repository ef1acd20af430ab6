"""One active-learning run's per-round record: MLflow metrics and images, rounds.csv, selections.

`RoundLog` is what the loop's `on_round` callback feeds. Each round goes to MLflow (metrics with
the labelled count as the step, a confidence histogram and a histogram of the strategy's scores)
and to `rounds.csv` in the job's folder, flushed per round, so an interrupted run keeps what it
measured; `close()` uploads rounds.csv and `selected_indices.json` whatever happened.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

from al_research.experiment.loop import Round
from al_research.process.signals import shielded
from al_research.tracking import plots
from al_research.tracking.names import Metric
from al_research.tracking.recorder import RunRecorder

log = logging.getLogger("al_research")


class RoundLog:
    def __init__(self, recorder: RunRecorder, folder: Path, initial: np.ndarray,
                 histograms: bool, title: str) -> None:
        self.recorder = recorder
        self.title = title
        self.initial = np.asarray(initial)
        self.rounds: list[Round] = []
        self.path = folder / "rounds.csv"
        self._file = self.path.open("w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["n_labelled", *Round.METRICS, "selected"])
        self._confidence = plots.ConfidenceHistogram() if histograms else None
        self._scores = plots.ScoreHistogram() if histograms else None

    def __call__(self, r: Round) -> None:
        with shielded():  # a stop signal waits: the round lands in MLflow and rounds.csv, or not
            self._record(r)

    def _record(self, r: Round) -> None:
        self.recorder.log_metrics(r.metrics(), step=r.n_labelled)
        if self._confidence is not None and len(r.confidence):
            self.recorder.log_image(self._confidence.render(r.confidence, r.n_labelled),
                                    key="confidence_histogram", step=r.n_labelled)
        if self._scores is not None and r.scores is not None and len(r.scores):
            self.recorder.log_image(
                self._scores.render(r.scores, r.n_labelled, r.score_name or "score"),
                key="score_histogram", step=r.n_labelled)
        self._csv.writerow([r.n_labelled, *r.metrics().values(),
                            " ".join(map(str, r.selected))])
        self._file.flush()
        log.info("round %2d  labelled %4d  test acc %.4f  val acc %.4f  epochs %3d  (%.2fs)",
                 len(self.rounds) + 1, r.n_labelled, r.test_accuracy, r.val_accuracy,
                 r.epochs, r.fit_seconds)
        self.rounds.append(r)

    def close(self) -> None:
        """Upload rounds.csv and the selections: called whether the run ended well or not."""
        for histogram in (self._confidence, self._scores):
            if histogram is not None:
                histogram.close()
        self._file.close()
        self.recorder.log_file(self.path)
        selections = self.path.with_name("selected_indices.json")  # kept in the job's folder too
        selections.write_text(json.dumps(
            {"initial": self.initial.tolist(),
             **{str(r.n_labelled): np.asarray(r.selected).tolist() for r in self.rounds}},
            indent=1))
        self.recorder.log_file(selections)

    def log_summary(self) -> Round:
        """The final metrics and the learning curve; returns the last round."""
        last = self.rounds[-1]
        self.recorder.log_metrics({Metric.FINAL_TEST_ACCURACY: last.test_accuracy,
                                   Metric.FINAL_VAL_ACCURACY: last.val_accuracy})
        self.recorder.log_figure(
            plots.learning_curve(
                [r.n_labelled for r in self.rounds],
                {"test": [r.test_accuracy for r in self.rounds],
                 "validation": [r.val_accuracy for r in self.rounds]},
                title=f"{self.title}: accuracy by labels spent"),
            "plots/learning_curve.png")
        return last
