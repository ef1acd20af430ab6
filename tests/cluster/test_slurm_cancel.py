"""`scancel` of one job of a sweep's array mid-run: the sweep fails naming it, its run keeps the
rounds it logged; the same command run again runs only that job."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from mlflow import MlflowClient

from tests.cluster.conftest import (
    SLURM,
    array_tasks,
    new_experiment,
    rounds,
    sacct_states,
)
from tests.conftest import run_cli

pytestmark = pytest.mark.cluster

# jobs 0, 2: 3 rounds; jobs 1, 3: 300 rounds on the whole pool (~15 s), time to cancel one
SWEEP = ["strategy=random", "seed=0,1", "budget=30,3000", "stages.kmeans.enabled=false",
         "tracking.histograms=false"]
VICTIM = 1  # seed=0 budget=3000


def test_a_job_cancelled_mid_run_fails_the_sweep_and_runs_alone_when_run_again(server_uri,
                                                                              tmp_path):
    experiment, sweep = new_experiment(), tmp_path / "sweep"
    args = ["-m", *SLURM, *SWEEP, f"tracking.uri={server_uri}",
            f"tracking.experiment_name={experiment}", f"hydra.sweep.dir={sweep}"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # as run_cli
    errors = tmp_path / "first.err"  # files, not pipes: nobody reads them while the sweep runs
    with (tmp_path / "first.out").open("w") as out, errors.open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "al_research", *args], cwd=tmp_path,
                                   env=env, stdout=out, stderr=err, text=True)
    deadline = time.monotonic() + 300
    while len(rounds(sweep / f"{VICTIM}-random-s0")) < 5:  # a few rounds logged, many to go
        assert process.poll() is None, errors.read_text()[-3000:]
        assert time.monotonic() < deadline, "the long job did not start"
        time.sleep(0.1)
    ((array, tasks),) = array_tasks(sweep).items()
    victim = f"{array}_{VICTIM}"
    subprocess.run(["scancel", victim], check=True)
    process.wait(timeout=300)
    err = errors.read_text()

    assert process.returncode != 0
    last = err.strip().splitlines()[-1]
    assert last.startswith("al-research: error:") and f"job #{VICTIM} " in last, err[-3000:]
    states = sacct_states(array)
    assert states.pop(victim).startswith("CANCELLED")
    assert states == dict.fromkeys(set(tasks) - {victim}, "COMPLETED")

    client = MlflowClient(tracking_uri=server_uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id

    def job_runs() -> list:
        return [r for r in client.search_runs([experiment_id])
                if r.data.tags.get("summary") != "true"]

    (cancelled,) = [r for r in job_runs() if r.data.tags["job_num"] == str(VICTIM)]
    # KILLED: scancel sends SIGTERM to the job's step; the job ends its run as on Ctrl-C,
    # after writing what it measured (observed: KILLED, never FAILED)
    assert cancelled.info.status == "KILLED"
    logged = sorted(m.step for m in client.get_metric_history(cancelled.info.run_id,
                                                               "test_accuracy"))
    kept = [int(row["n_labelled"]) for row in rounds(sweep / f"{VICTIM}-random-s0")]
    assert len(logged) >= 5 and logged == kept and kept[-1] < 3000

    again = run_cli(args, tmp_path)  # the same command
    assert again.returncode == 0, again.stderr[-3000:]
    logs = "".join(p.read_text() for p in sweep.glob("*/*.log"))  # each job's own log
    assert logs.count("skipped: finished run") == 3
    runs = job_runs()
    assert len(runs) == 5, "one new run: the cancelled job's"
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert sorted(Counter(r.data.tags["config_hash"] for r in finished).values()) == [1] * 4
    assert client.get_run(cancelled.info.run_id).info.status == "KILLED"
