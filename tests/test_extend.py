"""A data source, an initial selection and a stage from a folder outside the package: each is
one module and one yaml, found through Hydra's search path, run by the real command line with
no edit anywhere in al_research."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import experiment_runs

MODULE = '''
"""A lab's own parts, outside al_research."""
from dataclasses import dataclass

import numpy as np

from al_research.data.sources import Dataset
from al_research.experiment.stages import Stage
from al_research.experiment.stages.active_learning import LoopResult
from al_research.strategies.base import Query, Strategy


class Blobs:
    """Three Gaussian blobs in 5 dimensions, 300 items each."""

    @dataclass
    class Params:
        spread: float = 0.3

    def __init__(self, params):
        self.params = params

    @property
    def origin(self):
        return "three blobs"

    def load(self, n_classes):
        rng = np.random.default_rng(0)
        y = np.repeat(np.arange(3), 300)
        x = (np.eye(3, 5)[y] + self.params.spread * rng.normal(size=(900, 5))).astype(np.float32)
        x = (x - x.min()) / (x.max() - x.min())
        return Dataset(self.origin, x, y.astype(np.int64), None, None, (5,), 3)


class EveryKth(Strategy):
    """Pool items 0, k, 2k, ...: an initial selection needing no model."""

    name = "every_kth"

    @dataclass
    class Params:
        k: int = 7

    def query(self, ctx, n):
        return Query(np.arange(n) * self.params.k)


class Tally(Stage):
    """Logs how many rounds the loop ran and the best accuracy it saw."""

    needs = (LoopResult,)

    def run(self, exp):
        rounds = exp.output(LoopResult).rounds
        exp.recorder.log_metrics({"tally/rounds": len(rounds),
                                  "tally/best": max(r.test_accuracy for r in rounds)})
'''


@pytest.mark.slow
def test_parts_from_an_outside_folder_run_without_editing_the_package(tmp_path: Path):
    lab = tmp_path / "lab"
    (lab / "conf" / "data").mkdir(parents=True)
    (lab / "conf" / "initial").mkdir()
    (lab / "conf" / "stages").mkdir()
    (lab / "lab_parts.py").write_text(textwrap.dedent(MODULE))
    (lab / "conf" / "data" / "blobs.yaml").write_text(
        "_target_: lab_parts.Blobs\nname: blobs\nparams:\n  spread: 0.2\n"
        "pool_size: 600\ntest_size: 150\nval_size: 150\nn_classes: 3\n")
    (lab / "conf" / "initial" / "every_kth.yaml").write_text(
        "_target_: lab_parts.EveryKth\nname: every_kth\nparams:\n  k: 11\n")
    (lab / "conf" / "stages" / "tally.yaml").write_text(
        "# @package stages.tally\n_target_: lab_parts.Tally\nparams: {}\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
           "PYTHONPATH": os.pathsep.join([str(lab), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "al_research", f"hydra.searchpath=[file://{lab / 'conf'}]",
         "data=blobs", "initial=every_kth", "stages=[active_learning,tally]", "budget=40",
         f"tracking.uri={uri}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    client, (run,) = experiment_runs(uri)
    assert run.info.status == "FINISHED"
    assert (run.data.tags["data"], run.data.tags["initial"]) == ("blobs", "every_kth")
    assert run.data.metrics["tally/rounds"] == 4  # 10 + 3 rounds of 10: four fits
    assert 0.9 <= run.data.metrics["tally/best"] <= 1.0  # three well-separated blobs
    assert "kmeans/purity" not in run.data.metrics  # the kmeans stage was not listed
    with open(client.download_artifacts(run.info.run_id, "selected_indices.json")) as f:
        assert json.load(f)["initial"] == [11 * i for i in range(10)]
