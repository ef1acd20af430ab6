"""`pip install .` (not editable) gives a working `al-research`: the wheel carries the configs
and the launcher plugin, and the installed command composes, helps and runs from anywhere.

The wheel is built from a copy of the sources (the checkout stays clean) and installed into a
fresh virtual environment that sees this environment's packages (TensorFlow is not installed
again) through a path file, never its editable install of al_research.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the wheel, the new environment's bin folder)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("al_research", "hydra_plugins"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--wheel-dir", str(work / "dist"), str(source)], cwd=work)
    (wheel,) = (work / "dist").glob("al_research-*.whl")

    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=work)
    bin_dir = venv / "bin"
    site = Path(_run([str(bin_dir / "python"), "-c",
                      "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=work).stdout.strip())
    # this environment's packages (TensorFlow, MLflow, Hydra...), appended after the venv's own
    (site / "project_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "--no-index",
          "--ignore-installed", str(wheel)], cwd=work)
    return wheel, bin_dir


@pytest.mark.slow
def test_the_wheel_carries_the_configs_and_the_launcher_plugin(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "al_research" / "conf")
                  .rglob("*.yaml"))
    assert conf and set(conf) <= names, set(conf) - names
    assert "hydra_plugins/al_research_launchers/parallel.py" in names
    assert not any(n.startswith("hydra_plugins/__init__") for n in names), "a namespace"


@pytest.mark.slow
def test_the_installed_command_runs_from_anywhere(installed, tmp_path):
    _, bin_dir = installed
    where = _run([str(bin_dir / "python"), "-c",
                  "import al_research, hydra_plugins.al_research_launchers.parallel as p; "
                  "print(al_research.__file__); print(p.__file__)"], cwd=tmp_path).stdout
    assert all(line.startswith(str(bin_dir.parent)) for line in where.split()), where

    help_text = _run([str(bin_dir / "al-research"), "--help"], cwd=tmp_path).stdout
    assert "al-research" in help_text and "== Config groups" in help_text
    assert "strategy: " in help_text and "least_confident" in help_text

    job = _run([str(bin_dir / "al-research"), "--cfg", "job", "strategy=random", "seed=3"],
               cwd=tmp_path).stdout
    assert "name: random" in job and "seed: 3" in job

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _run([str(bin_dir / "al-research"), "-m", "hydra/launcher=parallel",
          "hydra.launcher.n_jobs=2", "seed=0,1", "budget=30", "data.pool_size=500",
          "stages.kmeans.enabled=false", "tracking.histograms=false", f"tracking.uri={uri}",
          f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    from tests.conftest import experiment_runs

    _, runs = experiment_runs(uri)
    assert sorted((r.data.tags["seed"], r.info.status) for r in runs) == [
        ("0", "FINISHED"), ("1", "FINISHED")]
    assert not (ROOT / "build").exists(), "the checkout stays clean"
