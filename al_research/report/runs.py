"""Reading runs from MLflow: the selection (experiment, sweep) and each run's record."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from al_research.tracking import Store
from al_research.tracking.names import Metric, Tag, is_true
from al_research.tracking.sweep_run import PARENT_TAG

log = logging.getLogger(__name__)

CURVE_METRIC = Metric.TEST_ACCURACY
FINAL_METRIC = Metric.FINAL_TEST_ACCURACY
SELF_TRAINING_FINAL = Metric.ST_FINAL_TEST_ACCURACY
LEGACY_GROUND_TRUTH = "full"  # the strategy name old runs used before the ground_truth tag


class ReportError(RuntimeError):
    """Nothing to report on: no store, no experiment, or no run matching the selection."""


@dataclass
class RunRecord:
    """One finished run: its tags, params, and test-accuracy curve (labelled count -> acc)."""

    run_id: str
    name: str
    experiment_id: str
    start_time: int
    tags: dict[str, str]
    curve: dict[int, float]
    final: float
    self_training_final: float | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    arm: str = ""
    parent: str | None = None  # the sweep's parent run (MLflow's `mlflow.parentRunId`)

    @property
    def strategy(self) -> str:
        return self.tags.get(Tag.STRATEGY, "?")

    @property
    def seed(self) -> str:
        return self.tags.get(Tag.SEED, f"run:{self.run_id[:8]}")

    @property
    def ground_truth(self) -> bool:
        """The run labelled the whole pool at once (tag `ground_truth`; old runs: `full`)."""
        if Tag.GROUND_TRUTH in self.tags:
            return is_true(self.tags[Tag.GROUND_TRUTH])
        return self.strategy == LEGACY_GROUND_TRUTH

    @property
    def test_selected(self) -> bool:
        """Early stopping watched the test set: its test accuracies are optimistic."""
        return is_true(self.tags.get(Tag.TEST_SELECTED, ""))

    @property
    def final_step(self) -> int:
        return max(self.curve)

    @property
    def steps(self) -> list[int]:
        return sorted(self.curve)

    def values(self) -> list[float]:
        return [self.curve[s] for s in self.steps]


@dataclass
class Selection:
    """What was asked for and what it resolved to."""

    uri: str
    experiment: str | None
    sweep: str | None  # resolved: `latest` becomes the newest sweep tag
    experiment_ids: list[str]
    experiment_names: dict[str, str]


def describe(experiment: str | None, sweep: str | None, uri: str) -> str:
    parts = [f"experiment {experiment!r}" if experiment else "any experiment"]
    if sweep:
        parts.append(f"sweep {sweep!r}")
    return f"{', '.join(parts)} in the MLflow store {uri}"


def same_sweep(tag: str, wanted: str) -> bool:
    if tag == wanted:
        return True
    try:
        return Path(tag).expanduser().resolve() == Path(wanted).expanduser().resolve()
    except (OSError, RuntimeError):
        return False


def is_summary(run) -> bool:
    return is_true(run.data.tags.get(Tag.SUMMARY, ""))


def _sweep_runs(store: Store, ids: list[str], sweep: str, filter_string: str) -> list:
    """The runs a sweep ran and the finished ones it reused (`Store.sweep_runs`); when none
    carry this spelling of the sweep dir, the runs of the same dir spelled another way."""
    runs = store.sweep_runs(ids, sweep, filter_string)
    if runs:
        return runs
    spellings = {r.data.tags[Tag.SWEEP] for r in store.search_runs(ids, filter_string)
                 if same_sweep(r.data.tags.get(Tag.SWEEP, ""), sweep)}
    seen: dict[str, object] = {}
    for spelling in sorted(spellings):
        for run in store.sweep_runs(ids, spelling, filter_string):
            seen.setdefault(run.info.run_id, run)
    return list(seen.values())


def select_runs(uri: str, experiment: str | None, sweep: str | None) -> tuple[Selection, list]:
    """FINISHED, non-summary MLflow runs of the experiment and/or sweep (a sweep's own runs and
    the finished runs it reused instead of running their configuration again); ReportError if
    none."""
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise ReportError(f"no database file for {describe(experiment, sweep, uri)}")
    store = Store(uri)
    if experiment:
        found = store.experiment(experiment)
        if found is None or found.lifecycle_stage == "deleted":
            raise ReportError(f"no experiment named {experiment!r} in the MLflow store {uri}")
        experiments = [found]
    else:
        experiments = store.experiments()
    ids = [e.experiment_id for e in experiments]
    names = {e.experiment_id: e.name for e in experiments}
    finished = "attributes.status = 'FINISHED'"
    if sweep == "latest":
        swept = [r for r in store.search_runs(ids, f"{finished} and tags.{Tag.SWEEP} != ''")
                 if not is_summary(r)]
        if not swept:
            raise ReportError(f"no run with a sweep tag: {describe(experiment, sweep, uri)}")
        sweep = max(swept, key=lambda r: r.info.start_time).data.tags[Tag.SWEEP]
        log.info("latest sweep: %s", sweep)
    runs = _sweep_runs(store, ids, sweep, finished) if sweep else \
        store.search_runs(ids, finished)
    runs = [r for r in runs if not is_summary(r)]
    if not runs:
        raise ReportError(f"no finished run matches {describe(experiment, sweep, uri)}")
    if sweep:  # the runs' own spelling of the sweep dir, for the summary run's tag
        own = Counter(r.data.tags[Tag.SWEEP] for r in runs
                      if same_sweep(r.data.tags.get(Tag.SWEEP, ""), sweep))
        sweep = own.most_common(1)[0][0] if own else sweep
    return Selection(uri, experiment, sweep, ids, names), runs


def read_records(store: Store, runs: Sequence) -> tuple[list[RunRecord], list[str]]:
    """Each run's record with its test-accuracy history; notes on the runs skipped."""
    notes: list[str] = []
    records: list[RunRecord] = []
    for run in runs:
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        history = store.metric_history(run.info.run_id, CURVE_METRIC)
        curve: dict[int, tuple[int, float]] = {}
        for m in history:  # the last value logged at a step wins
            if m.step not in curve or m.timestamp >= curve[m.step][0]:
                curve[m.step] = (m.timestamp, m.value)
        if Tag.STRATEGY not in tags or not curve:
            notes.append(f"run {run.info.run_name} ({run.info.run_id}) has no strategy tag or no "
                         f"{CURVE_METRIC} history: skipped")
            continue
        points = {int(s): float(v) for s, (_, v) in curve.items()}
        metrics = dict(run.data.metrics)
        final = metrics.get(FINAL_METRIC, points[max(points)])
        st = metrics.get(SELF_TRAINING_FINAL) if is_true(tags.get(Tag.SELF_TRAINING)) else None
        records.append(RunRecord(run.info.run_id, run.info.run_name or run.info.run_id,
                                 run.info.experiment_id, int(run.info.start_time or 0), tags,
                                 points, float(final), None if st is None else float(st),
                                 params=dict(run.data.params), metrics=metrics,
                                 parent=run.data.tags.get(PARENT_TAG)))
    return records, notes


def seed_key(seed: str) -> tuple[int, float, str]:
    try:
        return (0, float(seed), "")
    except ValueError:
        return (1, 0.0, seed)
