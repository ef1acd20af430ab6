"""Shared fixtures: composing the real configs, and a real temporary MLflow store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import al_research  # noqa: F401  (quiet TF, one BLAS thread, before anything imports them)
from al_research.runtime import configure_tensorflow

# Runs a lost store leaves open are noted in a ledger (tracking.outages): the suite's own, not
# the user's (subprocesses inherit it).
os.environ.setdefault("AL_RESEARCH_STATE_DIR", tempfile.mkdtemp(prefix="al-research-state-"))

# TensorFlow as every run sets it up (op determinism, threads) before any test traces a
# function: a function traced before op determinism is on can compute differently.
configure_tensorflow()

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "al_research" / "conf"

# A short experiment: 3 rounds on a small pool, no clustering, no images.
SHORT = [
    "budget=30",
    "data.pool_size=500",
    "stages.kmeans.enabled=false",
    "tracking.histograms=false",
]


def compose(overrides: list[str] | None = None):
    """The config the command line would build, composed by Hydra from conf/."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides or [])


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    """An absolute SQLite URI in a fresh temporary folder."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def client_for() -> Callable:
    from mlflow import MlflowClient

    return lambda uri: MlflowClient(tracking_uri=uri)


def experiment_runs(uri: str, experiment: str = "al-research"):
    """(client, the experiment's runs), leaving out the sweep-end report's summary runs."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    return client, [r for r in runs if r.data.tags.get("summary") != "true"]


def run_cli(args: list[str], cwd: Path, timeout: int = 600,
            env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m al_research ARGS` as a user would, in `cwd`."""
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
           **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "al_research", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real `mlflow server` on a free port of 127.0.0.1, backed by SQLite in `folder` (or by
    `backend`, e.g. a postgresql:// URI); it can be killed (SIGKILL) and started again on the
    same port and database."""

    def __init__(self, folder: Path, backend: str | None = None) -> None:
        self.folder = folder
        self.backend = backend or f"sqlite:///{folder / 'server.db'}"
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> MlflowServer:
        import requests

        log = (self.folder / "server.log").open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", "1", "--backend-store-uri", self.backend,
             "--artifacts-destination",
             str(self.folder / "server-artifacts")],
            cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.uri}/health", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            assert self.process.poll() is None, (self.folder / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the MLflow server did not start"
            time.sleep(0.5)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` (`MlflowServer`), killed at the end of the test."""
    server = MlflowServer(tmp_path).start()
    try:
        yield server
    finally:
        server.kill()
