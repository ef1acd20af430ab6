"""The Hydra entry point: a thin `@hydra.main` over `experiment.run`."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from al_research import config as _config  # noqa: F401  (registers the schemas)

CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    from al_research.experiment import run  # TensorFlow loads only once a job really runs

    return run(cfg)
