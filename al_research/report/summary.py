"""The summary MLflow run: the report's files and headline metrics beside the runs it reads."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from al_research.report.analysis import Report
from al_research.report.render import render_markdown
from al_research.report.runs import Selection, search_all
from al_research.report.stats import CONFIDENCE
from al_research.tracking import mlflow_run
from al_research.tracking.names import TRUE, Tag, flag

NOTE_LIMIT = 7900  # MLflow tag values (the run description) hold at most 8000 characters


def metric_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)


def summary_key(selection: Selection) -> str:
    return f"sweep:{selection.sweep}" if selection.sweep else f"experiment:{selection.experiment}"


def log_summary_run(report: Report, files: Sequence[Path]) -> str:
    """The report's files and headline metrics in MLflow: in the sweep's parent run when the
    sweep has one (`tracking.sweep_run`), else in a `summary-...` run beside the runs it
    summarises, which replaces the earlier summary runs of the same sweep (or experiment): once
    it is logged, they are deleted (MLflow keeps deleted runs restorable until garbage
    collection)."""
    from al_research.tracking.recorder import RunRecorder
    from al_research.tracking.store import _client
    from al_research.tracking.sweep_run import parent_of

    sel = report.selection
    tags = {Tag.SUMMARY: TRUE, Tag.SUMMARY_OF: summary_key(sel),
            Tag.SUMMARISED_RUNS: report.n_runs,
            Tag.TEST_SELECTED: flag(report.test_selected_runs > 0),
            Tag.NOTE: render_markdown(report)[:NOTE_LIMIT]}
    if sel.sweep:
        tags[Tag.SWEEP] = sel.sweep
    parent = parent_of(sel.sweep) if sel.sweep else None
    if parent is not None and parent["uri"] == sel.uri:
        client = _client(sel.uri)
        for key, value in tags.items():
            client.set_tag(parent["run_id"], key, str(value))
        recorder = RunRecorder(client, parent["run_id"], uri=sel.uri)
        try:
            _log_contents(recorder, report, files)
        finally:
            recorder.close()
        return parent["run_id"]

    per_experiment: dict[str, int] = defaultdict(int)
    for a in report.arms:
        for r in a.runs:
            per_experiment[r.experiment_id] += 1
    experiment_id = max(per_experiment, key=per_experiment.get)  # type: ignore[arg-type]
    label = Path(sel.sweep).name if sel.sweep else (
        sel.experiment or sel.experiment_names[experiment_id])
    with mlflow_run(sel.uri, experiment_id, f"summary-{label}", tags) as recorder:
        _log_contents(recorder, report, files)
        run_id = recorder.run_id
    client = recorder.client
    for old in search_all(client, [experiment_id], f"tags.{Tag.SUMMARY} = '{TRUE}'"):
        if old.info.run_id != run_id and old.data.tags.get(Tag.SUMMARY_OF) == summary_key(sel):
            client.delete_run(old.info.run_id)
    return run_id


def _unit(value: float) -> float:
    """An accuracy bound clipped to [0, 1] (a t-interval can pass 1); NaN stays NaN."""
    return min(1.0, max(0.0, value)) if value == value else value


def _log_contents(recorder, report: Report, files: Sequence[Path]) -> None:
    from mlflow.entities import Metric as MlflowMetric

    sel = report.selection
    settings = {"target": report.target, "confidence": CONFIDENCE,
                "experiment": sel.experiment or "", "sweep": sel.sweep or "",
                "runs": report.n_runs, "test_selected_runs": report.test_selected_runs,
                "factors": report.factors.text()}
    if recorder.client.get_run(recorder.run_id).data.params:  # a report logged here before:
        for key, value in settings.items():  # params cannot change, tags can
            recorder.client.set_tag(recorder.run_id, f"report.{key}", str(value)[:5000])
    else:
        recorder.log_params(settings)
    recorder.log_metrics({"test_selected_runs": report.test_selected_runs})
    for s in report.summaries:
        prefix = metric_name(s.arm)
        recorder.log_metrics({f"{prefix}/final_test_accuracy_mean": s.final.mean,
                              f"{prefix}/final_test_accuracy_ci_low": _unit(s.final.low),
                              f"{prefix}/final_test_accuracy_ci_high": _unit(s.final.high),
                              f"{prefix}/aulc_mean": s.aulc.mean,
                              f"{prefix}/runs": s.n_runs})
    now = int(time.time() * 1000)
    batch = [MlflowMetric(f"mean_test_accuracy/{metric_name(a.name)}", e.mean, now, step)
             for a in report.arms for step, e in a.step_estimates().items()]
    for start in range(0, len(batch), 900):
        recorder.client.log_batch(recorder.run_id, metrics=batch[start:start + 900])
    for path in files:
        recorder.log_file(path, "report")
