"""The Hydra entry point: a thin `@hydra.main` over `experiment.run`.

Each job, in whatever process runs it (this one, a joblib worker, a submitit job):
stop signals end its run as KILLED (`signals.stop_on_signals`); its config is checked and the
store reached before TensorFlow loads; a configuration that already has a FINISHED run in the
store is skipped in a sweep unless `rerun=true` (`resume`); then `experiment.run`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from al_research import config as _config  # noqa: F401  (registers the schemas)
from al_research.process.signals import stop_on_signals
from al_research.sweeps.folders import register_resolvers

CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")
log = logging.getLogger("al_research")

register_resolvers()  # ${al_research.unique_dir:...} in hydra.sweep.dir


def run_job(cfg: DictConfig) -> float:
    """One job: the store, resume, then the experiment (which loads TensorFlow). Its config was
    checked whole before it started (`sweeps.callbacks.PrepareMlflowStore`: a run's before the
    run, a sweep's jobs all before the first); `run` checks its ranges again as it reads it."""
    from al_research.process.timings import phase
    from al_research.sweeps.resume import skip_if_finished
    from al_research.tracking.store import prepare_store, resolve_tracking_uri

    with phase("job_setup"):
        uri = resolve_tracking_uri(cfg.tracking.uri)
        prepare_store(uri, cfg.tracking.experiment_name)
        sweep, job_num = _sweep_position()
        if sweep is not None:  # a sweep run again runs only what has no FINISHED run yet
            skipped = skip_if_finished(cfg, uri, cfg.tracking.experiment_name, sweep, job_num)
            if skipped is not None:
                return skipped.final_test_accuracy

    with phase("import"):  # TensorFlow loads only once a job really runs
        from al_research.experiment.runner import run

    return run(cfg)


def _sweep_position() -> tuple[str | None, int | None]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None, None
    return str(hc.sweep.dir), int(hc.job.num)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    with stop_on_signals():
        return run_job(cfg)
