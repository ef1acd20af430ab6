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

PRIVATE_TMP_PREFIX = "al-research-tmp-"


def use_private_tempdir() -> str:
    """Send this process's temporary files (and its workers', through $TMPDIR) to a folder of
    its own, removed when the process exits.

    TensorFlow's autograph writes a `__autograph_generated_file*.py` per traced function to the
    temp folder and removes it only at a clean exit, which a killed sweep worker never reaches.
    A worker inherits $TMPDIR and writes into the same private folder; the process that made it
    removes it at exit, workers' leftovers included. Called once by the command line.
    """
    import atexit
    import shutil
    import tempfile

    current = os.environ.get("TMPDIR", "")
    if os.path.basename(current.rstrip("/")).startswith(PRIVATE_TMP_PREFIX):
        return current  # a worker of a process that already made one
    folder = tempfile.mkdtemp(prefix=PRIVATE_TMP_PREFIX)
    os.environ["TMPDIR"] = folder
    tempfile.tempdir = folder
    atexit.register(shutil.rmtree, folder, True)
    return folder
