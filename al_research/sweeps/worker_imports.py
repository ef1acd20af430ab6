"""Imported once by the parallel launcher's fork server (`al_research.sweeps.workers`), which then
forks every worker from itself: a worker starts with TensorFlow, MLflow and the harness already
imported instead of importing them again (~4 s each).

Only imports: nothing here may start TensorFlow's runtime, list devices (CUDA does not survive
a fork), open a store or start a thread. A failure is not fatal: the workers then import what
they need themselves.
"""

from __future__ import annotations

import gc
import importlib
import logging

from al_research.process import env as _env  # noqa: F401  (TF and BLAS settings first)

MODULES = (
    "al_research.app",  # Hydra's job entry point
    "al_research.experiment.runner",  # TensorFlow, MLflow, the models and the loop
    "al_research.models.softmax",
    "al_research.models.networks",
    "al_research.models.trainer",  # the compiled fit (TensorFlow)
    "al_research.models.architecture",
    "al_research.strategies.uncertainty",
    "al_research.strategies.random",
    "al_research.strategies.initial",
    "al_research.experiment.loop",
    "al_research.experiment.self_training",
    "al_research.experiment.stages.kmeans",
    "al_research.experiment.stages.active_learning",
    "al_research.experiment.stages.label_fair",
    "al_research.experiment.stages.self_training",
    "al_research.tracking.recorder",
    "al_research.experiment.round_log",
    "al_research.tracking.plots",
    "al_research.tracking.provenance",
    # imported by a job when it needs them, here once for every worker
    "sklearn.cluster",  # k-means
    "mlflow",
    "mlflow.tracking",
    "mlflow.store.tracking.sqlalchemy_store",  # the default SQLite store
    "git",  # the run's source commit
)

for _name in MODULES:
    try:
        importlib.import_module(_name)
    except Exception:  # noqa: BLE001  (the worker imports it itself, and reports what fails)
        logging.getLogger(__name__).debug("fork server: could not import %s", _name,
                                          exc_info=True)

# The imported modules' objects out of the garbage collector's sight: every forked worker
# shares them copy-on-write, and the server exits in 0.1 s instead of ~1.5 s.
gc.freeze()
