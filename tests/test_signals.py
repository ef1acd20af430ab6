"""Stop signals: real signals to real processes; runs end KILLED with every measured round.

In-process tests send the signal to this very process (inside `stop_on_signals`); the command
line tests start `python -m al_research`, wait until rounds are on disk, and signal it.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from al_research.process.signals import Terminated, shielded, stop_on_signals, stopping
from tests.conftest import experiment_runs

# Long enough to be signalled mid-run (100 rounds of a few ms), small enough to load quickly.
LONG = ["budget=1000", "data.pool_size=2000", "stages.kmeans.enabled=false",
        "tracking.histograms=false"]


def _deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # Python runs the handler at the next bytecode; give it the chance


# -- in-process: the signal module and the recorder --------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_raises_terminated_once(signum):
    with pytest.raises(Terminated) as stopped, stop_on_signals():
        _deliver(signum)
        pytest.fail("the signal did not stop the block")
    assert stopped.value.signum == signum and stopped.value.exit_code == 128 + signum
    assert isinstance(stopped.value, KeyboardInterrupt)  # handled wherever Ctrl-C is
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are restored


def test_later_signals_do_not_interrupt_the_cleanup():
    cleaned = []
    with pytest.raises(Terminated) as stopped, stop_on_signals():
        try:
            _deliver(signal.SIGTERM)
        finally:
            _deliver(signal.SIGINT)  # a second signal while unwinding: only logged
            cleaned.append("done")
    assert cleaned == ["done"] and stopped.value.signum == signal.SIGTERM


def test_a_store_write_is_finished_before_the_signal_lands():
    steps = []
    with pytest.raises(Terminated), stop_on_signals():
        with shielded():
            _deliver(signal.SIGTERM)
            assert stopping()
            steps.append("write finished")
        steps.append("after the write")  # never: the held signal lands at the shield's end
    assert steps == ["write finished"]


def test_a_signal_held_by_a_shield_stays_first_when_another_lands_as_the_shield_ends():
    from al_research.process import signals

    with pytest.raises(Terminated) as stopped, stop_on_signals():
        signals._state.shield += 1  # a store write in progress
        try:
            _deliver(signal.SIGINT)  # held back
        finally:
            signals._state.shield -= 1  # the write is done; before the held one is raised,
        _deliver(signal.SIGTERM)  # a second signal lands
    assert stopped.value.signum == signal.SIGINT  # the first one decides the exit (130)


def test_a_signal_landing_while_the_first_ones_handler_runs_does_not_take_its_place(
        monkeypatch):
    """Python runs a signal's handler inside another's when it lands while that one runs (its
    log line, say): the first signal still decides the exit (the e2e test's rare 143)."""
    from al_research.process import signals

    def warning(*args: object) -> None:  # the first handler is logging when SIGTERM lands
        monkeypatch.setattr(signals.log, "warning", lambda *a: None)
        signals._handler(signal.SIGTERM, None)

    with pytest.raises(Terminated) as stopped, stop_on_signals():
        monkeypatch.setattr(signals.log, "warning", warning)
        signals._handler(signal.SIGINT, None)
    assert stopped.value.signum == signal.SIGINT and signals._state.count == 2


def test_the_third_signal_forces_the_process_down(tmp_path):
    """A job that ignores the stop (stuck in cleanup) still dies on the third signal."""
    script = tmp_path / "stuck.py"
    script.write_text(
        "import signal, sys, time\n"
        "from al_research.process.signals import stop_on_signals\n"
        "with stop_on_signals():\n"
        "    try:\n"
        "        print('ready', flush=True); time.sleep(60)\n"
        "    finally:\n"
        "        print('cleaning', flush=True); time.sleep(60)\n")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                               cwd=tmp_path)
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    assert process.stdout.readline().strip() == "cleaning"
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert process.poll() is None, "the second signal must not stop the cleanup"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == -signal.SIGTERM


def test_submitit_preemption_signal_ends_the_run_killed_then_lets_submitit_exit(monkeypatch):
    """submitit's handler (here a stand-in that exits as submitit does after requeueing)
    runs first; the run still ends KILLED before its SystemExit goes on."""
    monkeypatch.setenv("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    calls = []

    def submitit_like(signum, frame):
        calls.append(signum)
        raise SystemExit(-1)

    previous = signal.signal(signal.SIGUSR2, submitit_like)
    try:
        unwound = []
        with pytest.raises(SystemExit) as exited, stop_on_signals():
            try:
                _deliver(signal.SIGUSR2)
            except KeyboardInterrupt:
                unwound.append("killed")  # what mlflow_run sees: KILLED
                raise
        assert calls == [signal.SIGUSR2] and unwound == ["killed"]
        assert exited.value.code == -1
        assert signal.getsignal(signal.SIGUSR2) is submitit_like
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_a_signal_mid_run_flushes_every_buffered_metric(store_uri, client_for):
    from al_research.tracking import mlflow_run, prepare_store

    experiment_id = prepare_store(store_uri, "al-research")
    with pytest.raises(Terminated), stop_on_signals():
        with mlflow_run(store_uri, experiment_id, "signalled", {}) as recorder:
            for step in range(1, 8):
                recorder.log_metrics({"test_accuracy": step / 10}, step=step)  # buffered
            run_id = recorder.run_id
            _deliver(signal.SIGTERM)
    client = client_for(store_uri)
    assert client.get_run(run_id).info.status == "KILLED"
    history = client.get_metric_history(run_id, "test_accuracy")
    assert sorted(m.step for m in history) == list(range(1, 8))


# -- the command line ---------------------------------------------------------------------------
def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen([sys.executable, "-m", "al_research", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_rounds(path: Path, process: subprocess.Popen, rounds: int) -> None:
    deadline = time.monotonic() + 180
    while len(_rows(path)) < rounds:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the job never got going"
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGINT, signal.SIGTERM]],
                         ids=["sigterm", "sigint-then-sigterm-during-the-flush"])
def test_a_signalled_job_ends_killed_with_every_round_in_mlflow(tmp_path, signals):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    job = tmp_path / "job"
    process = _start([*LONG, f"tracking.uri={uri}", f"hydra.run.dir={job}"], tmp_path)
    _wait_for_rounds(job / "rounds.csv", process, 5)
    for signum in signals:
        process.send_signal(signum)
        time.sleep(0.01)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signals[0], err[-3000:]
    assert "Traceback" not in err and f"stopped by {signal.Signals(signals[0]).name}" in err

    client, runs = experiment_runs(uri)
    (run,) = runs
    assert run.info.status == "KILLED"
    local = _rows(job / "rounds.csv")
    assert 5 <= len(local) < 100, "the job was stopped mid-run"
    history = client.get_metric_history(run.info.run_id, "test_accuracy")
    assert sorted(m.step for m in history) == [int(r["n_labelled"]) for r in local]
    uploaded = Path(client.download_artifacts(run.info.run_id, "rounds.csv", str(tmp_path)))
    assert _rows(uploaded) == local
    with open(client.download_artifacts(run.info.run_id, "selected_indices.json",
                                        str(tmp_path))) as f:
        selected = json.load(f)
    assert set(selected) == {"initial", *(r["n_labelled"] for r in local)}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [["hydra/launcher=basic"],
                                      ["hydra/launcher=parallel", "hydra.launcher.n_jobs=1"]],
                         ids=["sequential", "parallel-one-job-at-a-time"])
def test_a_signalled_sweep_stops_and_starts_nothing_more(tmp_path, launcher):
    """Jobs run in the sweep's own process: the signal ends the running job KILLED and the
    sweep with it; no later job starts, nothing stays RUNNING (the report's run included)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep"
    process = _start(["-m", *launcher, "seed=0,1,2", *LONG, f"tracking.uri={uri}",
                      f"hydra.sweep.dir={sweep}"], tmp_path)
    _wait_for_rounds(sweep / "0-least_confident-s0" / "rounds.csv", process, 5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 128 + signal.SIGTERM, err[-3000:]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("al-research")
    runs = client.search_runs([experiment.experiment_id])
    assert not [r for r in runs if r.info.status == "RUNNING"]
    jobs = [r for r in runs if r.data.tags.get("summary") != "true"]
    assert [(r.data.tags["seed"], r.info.status) for r in jobs] == [("0", "KILLED")]
    assert not list(sweep.glob("1-*")) and not list(sweep.glob("2-*"))
    account = json.loads((sweep / "jobs.json").read_text())
    assert [j["status"] for j in account] == ["KILLED", "NOT RUN", "NOT RUN"]
