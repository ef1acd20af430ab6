"""The summary MLflow run: the report's files and headline metrics beside the runs it reads."""

from __future__ import annotations

import math
from collections import defaultdict
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
    sweep has one (`tracking.sweep_run`), else in a `summary-...` run beside the runs it
    summarises, which replaces the earlier summary runs of the same sweep (or experiment): once
    it is logged, they are deleted (MLflow keeps deleted runs restorable until garbage
    collection)."""
    from al_research.tracking.sweep_run import parent_of

    sel = report.selection
    store = Store(sel.uri)
    tags = {Tag.SUMMARY: TRUE, Tag.SUMMARY_OF: summary_key(sel),
            Tag.SUMMARISED_RUNS: report.n_runs,
            Tag.TEST_SELECTED: flag(report.test_selected_runs > 0),
            Tag.NOTE: render_markdown(report)[:NOTE_LIMIT]}
    if sel.sweep:
        tags[Tag.SWEEP] = sel.sweep
    parent = parent_of(sel.sweep) if sel.sweep else None
    if parent is not None and parent["uri"] == sel.uri:
        recorder = store.recorder(parent["run_id"])
        try:
            recorder.set_tags(tags)
            _log_contents(recorder, report, files)
        finally:
            recorder.close()
        return parent["run_id"]

    per_experiment: dict[str, int] = defaultdict(int)
    for r in report.runs:
        per_experiment[r.experiment_id] += 1
    experiment_id = max(per_experiment, key=per_experiment.get)  # type: ignore[arg-type]
    label = Path(sel.sweep).name if sel.sweep else (
        sel.experiment or sel.experiment_names[experiment_id])
    with mlflow_run(sel.uri, experiment_id, f"summary-{label}", tags) as recorder:
        _log_contents(recorder, report, files)
        run_id = recorder.run_id
    for old in store.search_runs([experiment_id], f"tags.{Tag.SUMMARY} = '{TRUE}'"):
        if old.info.run_id != run_id and old.data.tags.get(Tag.SUMMARY_OF) == summary_key(sel):
            store.delete_run(old.info.run_id)
    return run_id


def _log_contents(recorder: RunRecorder, report: Report, files: Sequence[Path]) -> None:
    sel = report.selection
    settings = {"target": report.target, "confidence": CONFIDENCE,
                "experiment": sel.experiment or "", "sweep": sel.sweep or "",
                "runs": report.n_runs, "test_selected_runs": report.test_selected_runs,
                "factors": report.factors.text()}
    if recorder.params():  # a report logged here before: params cannot change, tags can
        recorder.set_tags({f"{Tag.REPORT_SETTING_PREFIX}{key}": str(value)[:5000]
                           for key, value in settings.items()})
    else:
        recorder.log_params(settings)
    recorder.log_metrics({SummaryMetric.TEST_SELECTED_RUNS: report.test_selected_runs})
    recorder.log_metric_batch(
        (key, value, step) for section in applying(report)
        for key, value, step in section.run_metrics(report)
        if value is not None and math.isfinite(value))
    for path in files:
        recorder.log_file(path, "report")
