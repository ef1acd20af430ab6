"""al-research: a harness for pool-based active learning on TensorFlow, Hydra and MLflow."""

from al_research.process import env as _env  # noqa: F401  (sets TF/BLAS variables before any import)

__version__ = "0.1.0"
