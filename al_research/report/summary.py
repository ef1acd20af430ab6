"""The summary MLflow run: the report's files and headline metrics beside the runs it reads."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from al_research.report.render import applying, render_markdown
from al_research.report.runs import Selection
from al_research.report.section import Report
from al_research.report.stats import CONFIDENCE
from al_research.tracking import RunRecorder, Store, mlflow_run
from al_research.tracking.names import TRUE, SummaryMetric, Tag, flag

NOTE_LIMIT = 7900  # MLflow tag values (the run description) hold at most 8000 characters


def summary_key(selection: Selection) -> str:
    return f"sweep:{selection.sweep}" if selection.sweep else f"experiment:{selection.experiment}"


def log_summary_run(report: Report, files: Sequence[Path]) -> str:
    """The report's files and headline metrics in MLflow: in the sweep's parent run when the
    sweep has one, else in a `summary-...` run beside the runs it summarises (the one an
    earlier report of the same sweep or experiment made, updated in place, or a new one).

    The parent is found by what MLflow records (`parent_run`), from any folder and on any
    store; no run is ever deleted or replaced, and a report run again adds no metric point
    that is already there."""
    sel = report.selection
    store = Store(sel.uri)
    tags = {Tag.SUMMARY: TRUE, Tag.SUMMARY_OF: summary_key(sel),
            Tag.SUMMARISED_RUNS: report.n_runs,
            Tag.TEST_SELECTED: flag(report.test_selected_runs > 0),
            Tag.NOTE: render_markdown(report)[:NOTE_LIMIT]}
    if sel.sweep:
        tags[Tag.SWEEP] = sel.sweep
    run_id = parent_run(store, report) or _earlier_summary(store, report)
    if run_id is not None:
        recorder = store.recorder(run_id)
        try:
            recorder.set_tags(tags)
            _log_contents(store, recorder, report, files)
        finally:
            recorder.close()
        return run_id

    per_experiment: dict[str, int] = defaultdict(int)
    for r in report.runs:
        per_experiment[r.experiment_id] += 1
    experiment_id = max(per_experiment, key=per_experiment.get)  # type: ignore[arg-type]
    label = Path(sel.sweep).name if sel.sweep else (
        sel.experiment or sel.experiment_names[experiment_id])
    with mlflow_run(sel.uri, experiment_id, f"{SUMMARY_PREFIX}{label}", tags) as recorder:
        _log_contents(store, recorder, report, files)
        return recorder.run_id


SUMMARY_PREFIX = "summary-"  # the name of a summary run the report made itself


def _active(store: Store, run_id: str):
    """The run, if it exists and is not deleted; else None."""
    try:
        run = store.run(run_id)
    except Exception:  # noqa: BLE001  (MLflow: no such run)
        return None
    return run if run.info.lifecycle_stage == "active" else None


def parent_run(store: Store, report: Report) -> str | None:
    """The sweep's parent run: the one its folder records (`sweep_run.parent_of`: the run of
    the command that made the folder, or ran it again), if it is in this store and active;
    else as MLflow records it, the run its job runs name as their parent (`mlflow.parentRunId`,
    the most common one: a sweep run again has the first command's finished jobs beside its
    own), if it is still active. None outside a sweep, or for a sweep without a parent run."""
    from al_research.tracking.sweep_run import parent_of

    if not report.selection.sweep:
        return None
    own = parent_of(report.selection.sweep)
    if own and own.get("uri") == report.selection.uri and _active(store, own["run_id"]):
        return own["run_id"]
    parents = Counter(r.parent for r in report.runs if r.parent)
    for run_id, _ in parents.most_common():
        if _active(store, run_id) is not None:
            return run_id
    return None


def _earlier_summary(store: Store, report: Report) -> str | None:
    """The newest active `summary-...` run an earlier report made for the same sweep or
    experiment (so a report run again updates it rather than adding another)."""
    key = summary_key(report.selection).replace("'", "\\'")
    ids = sorted({r.experiment_id for r in report.runs})
    earlier = [r for r in store.search_runs(ids, f"tags.{Tag.SUMMARY_OF} = '{key}'")
               if (r.info.run_name or "").startswith(SUMMARY_PREFIX)
               and r.info.lifecycle_stage == "active"]
    return max(earlier, key=lambda r: r.info.start_time).info.run_id if earlier else None


def _log_contents(store: Store, recorder: RunRecorder, report: Report,
                  files: Sequence[Path]) -> None:
    sel = report.selection
    settings = {"target": report.target, "confidence": CONFIDENCE,
                "experiment": sel.experiment or "", "sweep": sel.sweep or "",
                "runs": report.n_runs, "test_selected_runs": report.test_selected_runs,
                "factors": report.factors.text()}
    earlier = bool(recorder.params())
    if earlier:  # a report logged here before: params cannot change, tags can
        recorder.set_tags({f"{Tag.REPORT_SETTING_PREFIX}{key}": str(value)[:5000]
                           for key, value in settings.items()})
    else:
        recorder.log_params(settings)
    batch = [(SummaryMetric.TEST_SELECTED_RUNS, float(report.test_selected_runs), 0)]
    batch += [(key, value, step) for section in applying(report)
              for key, value, step in section.run_metrics(report)
              if value is not None and math.isfinite(value)]
    logged = {key: {(m.step, m.value) for m in store.metric_history(recorder.run_id, key)}
              for key in {key for key, _, _ in batch}} if earlier else {}
    recorder.log_metric_batch((key, value, step) for key, value, step in batch  # no point twice
                              if (step, value) not in logged.get(key, ()))
    for path in files:
        recorder.log_file(path, "report")
