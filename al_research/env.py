"""Process settings that must be in place before TensorFlow or a BLAS library loads."""

from __future__ import annotations

import os

_QUIET_TF = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # no INFO/WARNING lines from TF's C++ runtime
    "TF_ENABLE_ONEDNN_OPTS": "0",  # no oneDNN banner; results bit-identical run to run
    "TF_USE_LEGACY_KERAS": "0",
}
# Multithreaded OpenBLAS on small matrices is 10-100x slower on 2-core machines.
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def configure_process_env() -> None:
    """Silence TF and pin BLAS to one thread, unless the user already chose."""
    for key, value in _QUIET_TF.items():
        os.environ.setdefault(key, value)
    for key in _BLAS_THREADS:
        os.environ.setdefault(key, "1")


configure_process_env()
