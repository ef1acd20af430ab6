"""Config errors are found before TensorFlow or MLflow loads, in under 2 s, and said in one line
(with the valid choices) without a traceback, exit code 2; HYDRA_FULL_ERROR=1 adds the trace.
Nothing is created: no output folder, no sweep folder, no run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import SHORT, experiment_runs

# The real command line, reporting afterwards which heavy modules it imported.
PROBE = (
    "import sys\n"
    "from al_research.cli import main\n"
    "sys.argv = ['al-research', *sys.argv[1:]]\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    loaded = [m for m in ('tensorflow', 'mlflow') if m in sys.modules]\n"
    "    print('LOADED:' + ','.join(loaded), file=sys.stdout, flush=True)\n"
)


def _cli(args: list[str], cwd, env_extra: dict[str, str] | None = None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "HYDRA_FULL_ERROR")}
    env.update(env_extra or {})
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    return result, time.monotonic() - started


@pytest.mark.parametrize(("args", "expected"), [
    (["strategy=foo"], "strategy=foo: no such strategy; valid choices: "),
    (["model.lr=abc"], "model.lr: Value 'abc' of type 'str' could not be converted to Float"),
    (["initial=foo"], "initial=foo: no such initial; valid choices: first, kmeans, probcover"),
    (["batch_size=-1"], "batch_size must be >= 1, got -1"),
    (["budget=501", "data.pool_size=500"], "budget (501) is larger than the pool"),
    (["foo=1"], "foo: no such setting; valid keys: data, model"),
    (["+foo=1"], "foo: no such setting (even with +); valid keys: data, model"),
    (["+model.bar=2"], "model.bar: no such setting (even with +); valid keys of model: "),
    (["seed=[1"], "seed=[1: cannot parse"),
    (["-m", "seed=0,1", "budget=30,501", "data.pool_size=500"],
     "job #1 (seed=0 budget=501 data.pool_size=500 "),
    (["strategy=bald"], "strategy 'bald' needs mc_samples, and model 'softmax' offers "),
    (["strategy=power", "strategy.params.score=bald"], "strategy 'power' needs mc_samples"),
    (["-m", "strategy=random,bald"], "job #1 (strategy=bald "),  # before any job runs
])
def test_a_config_error_is_one_line_exit_2_before_any_heavy_import(tmp_path, args, expected):
    assert expected in config_error_line(tmp_path, args)


def config_error_line(tmp_path, args: list[str]) -> str:
    """The command line with `args` (into a store in `tmp_path`) exits 2 with one line, no
    traceback, before TensorFlow or MLflow load, creating nothing: that line."""
    result, _ = _cli([*args, f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"], tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("al-research: error: "), lines[0]
    assert "LOADED:\n" in result.stdout, "neither TensorFlow nor MLflow may load"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing may be created"
    return lines[0]


@pytest.mark.parametrize("store", ["file:///{tmp}/mlruns", "{tmp}/mlruns"])
def test_a_file_store_is_refused_in_one_whole_line_naming_what_works(tmp_path, store):
    uri = store.format(tmp=tmp_path)
    result, _ = _cli(["budget=30"], tmp_path, {"MLFLOW_TRACKING_URI": uri})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"al-research: error: MLflow store {uri} is a file store")
    assert "sqlite:///" in lines[0] and "http://" in lines[0] and "MLFLOW_TRACKING_URI" in lines[0]
    assert "LOADED:\n" in result.stdout  # neither TensorFlow nor MLflow loaded
    assert not (tmp_path / "mlruns").exists()


def test_valid_choices_are_listed_for_an_unknown_group_option(tmp_path):
    result, _ = _cli(["strategy=foo"], tmp_path)
    line = result.stderr.strip()
    for choice in ("random", "least_confident", "full"):
        assert choice in line


def test_hydra_full_error_still_shows_the_trace(tmp_path):
    result, _ = _cli(["budget=99999"], tmp_path, {"HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("al-research: error: budget")


@pytest.mark.slow
def test_a_failed_job_leaves_no_run_running(tmp_path):
    """A job that fails at run time (here: its data file is missing) ends its sweep with a
    failure and leaves nothing RUNNING."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    missing = tmp_path / "absent.npz"
    result, _ = _cli(["-m", "data=mnist", f"data.params.path={missing}", *SHORT,
                      f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path)
    assert result.returncode != 0 and str(missing) in result.stderr
    _, runs = experiment_runs(uri)
    assert not [r for r in runs if r.info.status == "RUNNING"]
