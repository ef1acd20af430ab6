"""The one public way to a store's experiments and runs from outside `al_research.tracking`.

`Store(uri)` finds experiments, searches runs (a sweep's included), reads and tags them, marks
dead runs and attaches a `RunRecorder` to an existing run; its MlflowClient stays inside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from al_research.tracking.names import Tag, reused_tag
from al_research.tracking.recorder import RunRecorder
from al_research.tracking.store import _client


class Store:
    """One MLflow store, named by its URI: the way to it from outside `al_research.tracking`
    (which keeps its MlflowClient to itself). Runs and experiments come back as MLflow's own
    entities (`run.info`, `run.data.tags` ...). The client is made on first use, so a Store
    costs nothing until it is asked something."""

    SWEEP_SEARCH_LIMIT = 50000  # MLflow's largest page: the runs of one sweep, in one call
    PAGE = 1000

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._mlflow: Any = None

    @property
    def _mlflow_client(self) -> Any:
        if self._mlflow is None:
            self._mlflow = _client(self.uri)
        return self._mlflow

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    # -- experiments -------------------------------------------------------------------------
    def experiment(self, name: str) -> Any | None:
        """The experiment named `name` (deleted ones too: see `lifecycle_stage`), or None."""
        return self._mlflow_client.get_experiment_by_name(name)

    def experiment_id(self, name: str) -> str | None:
        found = self.experiment(name)
        return None if found is None else found.experiment_id

    def experiments(self) -> list:
        """The store's active experiments."""
        return list(self._mlflow_client.search_experiments())

    # -- runs --------------------------------------------------------------------------------
    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "", *,
                    limit: int | None = None) -> list:
        """The runs matching `filter_string` (MLflow's search syntax), newest first: every
        page of them, or the first `limit`."""
        order = ["attributes.start_time DESC"]
        ids = list(experiment_ids)
        if limit is not None:
            return list(self._mlflow_client.search_runs(ids, filter_string, max_results=limit,
                                                        order_by=order))
        runs, token = [], None
        while True:
            page = self._mlflow_client.search_runs(ids, filter_string, max_results=self.PAGE,
                                                   page_token=token, order_by=order)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def sweep_runs(self, experiment_ids: Sequence[str], sweep: str,
                   filter_string: str = "") -> list:
        """The runs that make up `sweep`: the ones it ran (tag `sweep`) and the finished ones
        it reused instead of running their configuration again (`names.reused_tag`). Each
        run once."""
        extra = f" and {filter_string}" if filter_string else ""
        quoted = str(sweep).replace("'", "\\'")
        ids = list(experiment_ids)
        ran = self._mlflow_client.search_runs(
            ids, f"tags.{Tag.SWEEP} = '{quoted}'{extra}", max_results=self.SWEEP_SEARCH_LIMIT)
        reused = self._mlflow_client.search_runs(
            ids, f"tags.`{reused_tag(sweep)}` = '{quoted}'{extra}",
            max_results=self.SWEEP_SEARCH_LIMIT)
        seen: set[str] = set()
        runs = []
        for run in [*ran, *reused]:
            if run.info.run_id not in seen:
                seen.add(run.info.run_id)
                runs.append(run)
        return runs

    def run(self, run_id: str) -> Any:
        return self._mlflow_client.get_run(run_id)

    def metric_history(self, run_id: str, key: str) -> list:
        """Every value of one metric of a run (`.step`, `.value`, `.timestamp`)."""
        return list(self._mlflow_client.get_metric_history(run_id, key))

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self._mlflow_client.set_tag(run_id, key, str(value))

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted (MLflow keeps it restorable until garbage collection)."""
        self._mlflow_client.delete_run(run_id)

    def reap_dead_runs(self, experiment_ids: Sequence[str]) -> list:
        """End FAILED the runs a lost store left open (`outages.settle_open_runs`), then the
        RUNNING runs whose process is gone (`liveness.reap_dead_runs`)."""
        from al_research.tracking import liveness, outages

        outages.settle_open_runs(self._mlflow_client, self.uri)
        return liveness.reap_dead_runs(self._mlflow_client, experiment_ids)

    def recorder(self, run_id: str, local_dir: Path | None = None) -> RunRecorder:
        """A `RunRecorder` writing into an existing run (which it does not end): close it."""

        return RunRecorder(self._mlflow_client, run_id, local_dir=local_dir, uri=self.uri)
