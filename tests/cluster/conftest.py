"""The cluster tests: sweeps submitted to a real SLURM, logging to an `mlflow server` backed by
PostgreSQL, both started by `scripts/cluster.sh up` (`make cluster-up`), which writes the
variables these tests read to `<state>/env.sh`: SLURM_CONF, MLFLOW_TRACKING_URI (the server),
AL_RESEARCH_PG_URI (its database) and AL_RESEARCH_CLUSTER=1. `make test-cluster` does it all.
Without them every test here fails (none is skipped)."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import SHORT, run_cli

NOT_UP = ("no cluster: AL_RESEARCH_CLUSTER is not set. Run `make test-cluster`, or "
          "`make cluster-up` then `source .cluster/env.sh`, before `pytest -m cluster`")

# Each job of the array asks for one CPU: the one node has two, so two jobs run at a time
# (slurm.yaml's default, 2, would run them one after the other). The jobs run the sweep's own
# interpreter (submitit's sbatch script calls sys.executable): no `setup` lines needed.
# (slurm.yaml's submitit folder exists before sbatch runs: a per-job `%j` folder, made by
# submitit after sbatch returns, lost a race to array tasks that started at once.)
SLURM = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1"]
SWEEP = ["strategy=random,least_confident", "seed=0,1", *SHORT]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """A test run without the cluster fails (it is not skipped), saying how to start it."""
    if os.environ.get("AL_RESEARCH_CLUSTER") != "1":
        pytest.fail(NOT_UP, pytrace=False)


def cluster_up() -> bool:
    return os.environ.get("AL_RESEARCH_CLUSTER") == "1"


@pytest.fixture(scope="session")
def server_uri() -> str:
    """The PostgreSQL-backed `mlflow server`."""
    return os.environ.get("MLFLOW_TRACKING_URI", "")


def new_experiment() -> str:
    """An experiment of the test's own: the server keeps its runs from one session to the next."""
    return f"cluster-{uuid.uuid4().hex[:8]}"


def slurm_sweep(sweep: Path, uri: str, experiment: str, overrides: list[str],
                cwd: Path) -> subprocess.CompletedProcess:
    """`python -m al_research -m hydra/launcher=slurm ...` into `sweep`, logging to `uri`."""
    return run_cli(["-m", *SLURM, *overrides, f"tracking.uri={uri}",
                    f"tracking.experiment_name={experiment}", f"hydra.sweep.dir={sweep}"], cwd)


@pytest.fixture(scope="session")
def pg_sweep(tmp_path_factory: pytest.TempPathFactory, server_uri: str
             ) -> tuple[Path, str, subprocess.CompletedProcess] | None:
    """The 4-job sweep (SWEEP) through SLURM into the PostgreSQL-backed server, run once for
    the tests that read it: (its folder, its experiment, the finished command)."""
    if not cluster_up():
        return None
    folder = tmp_path_factory.mktemp("pg_sweep")
    experiment = new_experiment()
    result = slurm_sweep(folder / "sweep", server_uri, experiment, SWEEP, folder)
    return folder / "sweep", experiment, result


def array_tasks(sweep: Path) -> dict[str, list[str]]:
    """SLURM job ids `<array>_<task>` of the sweep's job arrays, from the files submitit keeps
    in `.submitit/` (`<array>_<task>_submitted.pkl`): array id -> its task ids."""
    arrays: dict[str, set[str]] = {}
    for path in (sweep / ".submitit").iterdir():
        if found := re.fullmatch(r"((\d+)_\d+)_submitted\.pkl", path.name):
            arrays.setdefault(found[2], set()).add(found[1])
    return {array: sorted(tasks, key=lambda t: int(t.split("_")[1]))
            for array, tasks in arrays.items()}


def sacct_states(array: str, timeout: float = 60) -> dict[str, str]:
    """SLURM's accounting of a job array once every task has ended there: task id -> state
    (COMPLETED, CANCELLED by 0, ...). slurmctld sends the ends to slurmdbd on its own time: a
    task's result can be in its folder before its end is in the accounting."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", array],
                             capture_output=True, text=True, check=True).stdout
        states = dict(line.split("|", 1) for line in out.splitlines() if line)
        if states and not set(states.values()) & {"PENDING", "RUNNING", "COMPLETING"}:
            return states
        assert time.monotonic() < deadline, f"sacct still says {states}"
        time.sleep(0.5)


def rounds(job_folder: Path) -> list[dict[str, str]]:
    """The rows of a job's rounds.csv so far (none if it is not there yet)."""
    path = job_folder / "rounds.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))
