"""The parallel launcher's workers: forked from a server that imported everything once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from al_research.sweeps import workers
from tests.conftest import ROOT

PARALLEL = "hydra_plugins.al_research_launchers.parallel.ResilientJoblibLauncher"

# In a process of its own (the start method and the fork server are per process): start two
# workers the way the launcher does, and report what each had imported before its task ran.
PROBE = """
import json, os, sys
from joblib.externals.loky import get_reusable_executor
from al_research.sweeps import workers

def state():
    from tensorflow.python.eager import context  # noqa: imported already, or now
    return {"preloaded": "mlflow.store.tracking.sqlalchemy_store" in sys.modules,
            "runtime_started": context.context()._context_handle is not None,
            "devices_listed": context.context()._physical_devices is not None,
            "pid": os.getpid()}

before = {"tensorflow" in sys.modules, "mlflow" in sys.modules}
workers.use_start_method(sys.argv[1])
executor = get_reusable_executor(max_workers=2)
found = [f.result() for f in [executor.submit(state) for _ in range(4)]]
executor.shutdown(wait=True, kill_workers=True)
print(json.dumps({"parent_imported_nothing": before == {False}, "workers": found}))
"""


def _probe(method: str, env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, method], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not workers.has_forkserver(), reason="no fork server on this platform")
def test_forked_workers_start_with_the_imports_done_and_tensorflow_not_started():
    found = _probe(workers.FORKSERVER)
    assert found["parent_imported_nothing"]  # the imports happened in the server
    assert all(w["preloaded"] for w in found["workers"])
    # the server only imported: each worker starts TF's runtime and devices itself
    assert not any(w["runtime_started"] or w["devices_listed"] for w in found["workers"])
    assert len({w["pid"] for w in found["workers"]}) >= 1


@pytest.mark.skipif(not workers.has_forkserver(), reason="no fork server on this platform")
def test_the_fork_server_runs_under_a_temp_folder_too_deep_for_its_socket(tmp_path):
    """Its Unix socket goes in multiprocessing's temp folder, in $TMPDIR: a path past 107 bytes
    cannot be bound, so a short system folder is used instead, and emptied at exit."""
    import os

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    assert not workers._socket_path_fits(str(deep / "pymp-12345678"))
    found = _probe(workers.FORKSERVER, env={**os.environ, "TMPDIR": str(deep)})
    assert all(w["preloaded"] for w in found["workers"])
    assert list(deep.iterdir()) == []


def test_loky_workers_are_fresh_interpreters():
    found = _probe(workers.LOKY)
    assert not any(w["preloaded"] for w in found["workers"])


def test_start_method_follows_the_launcher_config(monkeypatch):
    assert workers.start_method({"_target_": PARALLEL}) == workers.FORKSERVER
    assert workers.start_method({"_target_": PARALLEL, "start_method": "loky"}) == "loky"
    # Hydra's own joblib launcher: the same loky pool, forked workers too
    assert workers.start_method({"_target_": "x.JoblibLauncher", "n_jobs": 2}) == "forkserver"
    assert workers.start_method({"_target_": "x.submitit_launcher.LocalLauncher"}) is None
    assert workers.start_method(None) is None
    with pytest.raises(ValueError, match="forkserver, loky"):
        workers.start_method({"_target_": PARALLEL, "start_method": "spawn"})
    monkeypatch.setattr(workers, "has_forkserver", lambda: False)  # e.g. Windows
    assert workers.start_method({"_target_": PARALLEL}) == workers.LOKY


def test_a_start_method_typo_lists_the_choices_before_any_work(tmp_path):
    from tests.conftest import run_cli

    result = run_cli(["-m", "hydra/launcher=parallel", "hydra.launcher.start_method=spawn",
                      "seed=0,1", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"],
                     cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "forkserver" in result.stderr and "loky" in result.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "multirun").exists()


def test_what_every_job_shares_is_unpickled_once_per_launch():
    """The parallel launcher pickles Hydra's context, the sweep config and the task function
    once per launch; a worker unpickles them once (the same objects for its next job of that
    launch, fresh ones for another launch); Hydra's singletons are pickled beside them."""
    import pickle

    from hydra.core.singleton import Singleton

    from al_research.sweeps.launchers import _Shared, _unpickled

    context = {"loader": lambda overrides: list(overrides)}  # local functions: cloudpickle
    first = _Shared.of(context, {"seed": 1}, len, "launch-1")
    a, b = _unpickled(first), _unpickled(first)
    assert a is b and a[1] == {"seed": 1} and a[0]["loader"](["x"]) == ["x"] and a[2] is len
    again = _unpickled(_Shared.of(context, {"seed": 2}, len, "launch-2"))
    assert again is not a and again[1] == {"seed": 2}
    assert pickle.loads(first.singletons).keys() == Singleton.get_state().keys()
