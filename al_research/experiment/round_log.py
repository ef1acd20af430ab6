"""One active-learning run's per-round record: MLflow metrics and images, rounds.csv, selections.

`RoundLog` is what the loop's `on_round` callback feeds. Each round goes to MLflow (metrics with
the labelled count as the step; the histograms of the confidence and of the strategy's scores,
kept as counts and logged at the end as `histograms.csv` and one figure, and with `step_images`
also as step images) and to `rounds.csv` in the job's folder, written through at least once a
second (and by `close()`, which runs on an error or a stop signal too), so an interrupted run
keeps what it measured; `close()` uploads rounds.csv, `selected_indices.json` and the
histograms whatever happened.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

import numpy as np

from al_research.experiment.loop import Round
from al_research.process.signals import shielded
from al_research.tracking import histograms as hist
from al_research.tracking import plots
from al_research.tracking.images import palette_image
from al_research.tracking.names import Metric
from al_research.tracking.recorder import RunRecorder

log = logging.getLogger("al_research")


class RoundLog:
    FLUSH_SECONDS = 1.0

    def __init__(self, recorder: RunRecorder, folder: Path, initial: np.ndarray,
                 histograms: bool, step_images: bool, title: str) -> None:
        self.recorder = recorder
        self.title = title
        self.initial = np.asarray(initial)
        self.rounds: list[Round] = []
        self.path = folder / "rounds.csv"
        self._file = self.path.open("w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["n_labelled", *Round.METRICS, "selected"])
        self._flushed = 0.0  # the first round is written at once
        self._histograms = hist.RoundHistograms() if histograms else None
        steps = histograms and step_images
        self._confidence = hist.ConfidenceHistogram() if steps else None
        self._scores = hist.ScoreHistogram() if steps else None

    def __call__(self, r: Round) -> None:
        with shielded():  # a stop signal waits: the round lands in MLflow and rounds.csv, or not
            self._record(r)

    def _record(self, r: Round) -> None:
        self.recorder.log_metrics(r.metrics(), step=r.n_labelled)
        if self._histograms is not None:
            self._histograms.add(r.n_labelled, r.confidence, r.scores, r.score_name)
        if self._confidence is not None and len(r.confidence):
            self.recorder.log_image(self._confidence.render(r.confidence, r.n_labelled),
                                    key="confidence_histogram", step=r.n_labelled)
        if self._scores is not None and r.scores is not None and len(r.scores):
            self.recorder.log_image(
                self._scores.render(r.scores, r.n_labelled, r.score_name or "score"),
                key="score_histogram", step=r.n_labelled)
        self._csv.writerow([r.n_labelled, *r.metrics().values(),
                            " ".join(map(str, r.selected))])
        if time.monotonic() - self._flushed >= self.FLUSH_SECONDS:  # a write each round: ~0.3 ms
            self._file.flush()
            self._flushed = time.monotonic()
        log.info("round %2d  labelled %4d  test acc %.4f  val acc %.4f  epochs %3d  (%.2fs)",
                 len(self.rounds) + 1, r.n_labelled, r.test_accuracy, r.val_accuracy,
                 r.epochs, r.fit_seconds)
        self.rounds.append(r)

    def close(self) -> None:
        """Upload rounds.csv, the selections and the histograms: called whether the run ended
        well or not."""
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
        if self._histograms is not None and self.rounds:
            self.recorder.log_text(self._histograms.csv_text(), "histograms.csv")
            image = self._histograms.image(f"{self.title}: the unlabelled pool, round by round")
            if image is not None:
                self.recorder.log_image(image, "plots/histograms.png")

    def log_summary(self) -> Round:
        """The final metrics and the learning curve; returns the last round."""
        last = self.rounds[-1]
        self.recorder.log_metrics({Metric.FINAL_TEST_ACCURACY: last.test_accuracy,
                                   Metric.FINAL_VAL_ACCURACY: last.val_accuracy})
        self.recorder.log_image(
            palette_image(plots.learning_curve_image(
                [r.n_labelled for r in self.rounds],
                {"test": [r.test_accuracy for r in self.rounds],
                 "validation": [r.val_accuracy for r in self.rounds]},
                title=f"{self.title}: accuracy by labels spent"), colors=64),
            "plots/learning_curve.png")
        return last
