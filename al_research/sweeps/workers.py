"""Worker processes for `hydra/launcher=parallel` that start with the imports done.

joblib's default (loky) starts each worker as a fresh interpreter, which imports TensorFlow,
MLflow and the harness again: ~4 s per worker, longer than a short job, so that a two-job
sweep ran slower in parallel than one after the other. With `start_method: forkserver` (the
default on Linux) one server process imports them once
(`al_research.sweeps.worker_imports`) and forks every worker from itself: a worker is ready in
milliseconds, and a worker started again after one died costs nothing either. The server only
imports: it never runs TensorFlow, so a forked worker starts TensorFlow's runtime (threads,
devices) itself, as a fresh process would.

The server is started as early as possible (`prestart`, the first thing the sweep's start does),
so its imports overlap the sweep's own set-up (composing and checking every job's config, the
store check, its MLflow parent run); a config error stops it with the sweep. Hydra's own
`hydra/launcher=joblib` gets the same workers (its loky pool follows the start method set here),
without the `parallel` launcher's resilience.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

FORKSERVER = "forkserver"
LOKY = "loky"
START_METHODS = (FORKSERVER, LOKY)
PRELOAD = "al_research.sweeps.worker_imports"


def has_forkserver() -> bool:
    """Linux only: on macOS system libraries may start threads at import, which a fork does not
    survive (Python itself defaults to spawn there); Windows has no fork."""
    return sys.platform.startswith("linux") and (
        FORKSERVER in multiprocessing.get_all_start_methods())


def start_method(launcher: Mapping[str, Any] | None) -> str | None:
    """The worker start method for a `hydra.launcher` config: its `start_method` for the
    `parallel` launcher, the fork server for Hydra's own joblib launcher too (it has no such
    key; its pool is the same loky pool); None for launchers without a process pool."""
    if not launcher or not str(launcher.get("_target_", "")).endswith("JoblibLauncher"):
        return None
    return resolve(launcher.get("start_method"))


def resolve(method: Any) -> str:
    """A start method (a string or the schema's enum; None: the fork server) checked, and
    the fork server replaced by loky where there is none."""
    method = str(getattr(method, "name", method or FORKSERVER))
    if method not in START_METHODS:
        raise ValueError(f"hydra.launcher.start_method={method!r}: expected one of "
                         f"{', '.join(START_METHODS)}")
    return method if method != FORKSERVER or has_forkserver() else LOKY


# A Unix socket's path holds at most 108 bytes (107 and a NUL on Linux); the fork server's is
# <multiprocessing's temp folder>/listener-<8 characters>.
SOCKET_PATH_MAX = 107
SHORT_TEMP_FOLDERS = ("/tmp", "/var/tmp", "/usr/tmp")  # POSIX's usual ones, as Python 3.12 tries


def _socket_path_fits(folder: str) -> bool:
    return len(os.path.join(folder, "listener-12345678").encode()) <= SOCKET_PATH_MAX


def _short_socket_folder() -> bool:
    """Give multiprocessing a temp folder whose socket paths fit; False if there is none.

    The fork server listens on a Unix socket in multiprocessing's temp folder, made in
    $TMPDIR, which the command line points at a private folder inside the user's: a deep
    $TMPDIR makes the path too long to bind ("AF_UNIX path too long"). Python 3.12 falls back
    to /tmp by itself; on 3.10-3.11 this does the same, with the same clean-up at exit.
    """
    from multiprocessing import process, util

    if _socket_path_fits(util.get_temp_dir()):
        return True
    for base in SHORT_TEMP_FOLDERS:
        if os.path.isdir(base) and os.access(base, os.W_OK) and _socket_path_fits(
                os.path.join(base, "pymp-12345678")):
            folder = tempfile.mkdtemp(prefix="pymp-", dir=base)
            util.Finalize(None, shutil.rmtree, args=[folder, True], exitpriority=-100)
            process.current_process()._config["tempdir"] = folder
            return True
    return False


def start_worker_server() -> bool:
    """Start the fork server (it imports `PRELOAD`, then waits); no-op if it runs already.
    False if it cannot run here (no temp folder short enough for its socket).

    Returns at once: the imports run in the server while this process goes on.
    """
    from multiprocessing import forkserver

    if not _short_socket_folder():
        log.warning("the fork server cannot run here: no temp folder short enough for its "
                    "socket")
        return False
    forkserver.set_forkserver_preload([PRELOAD])
    try:
        forkserver.ensure_running()
    except OSError as error:
        log.warning("the fork server could not start: %s", error)
        return False
    return True


def use_start_method(method: str) -> str:
    """Make this process's loky pools (joblib's) start their workers with `method`; returns
    the method in use (loky if the fork server cannot run here)."""
    from joblib.externals.loky.backend import context

    if method == FORKSERVER and not start_worker_server():
        log.warning("workers start as fresh interpreters (loky) instead")
        method = LOKY
    context.set_start_method(method, force=True)
    log.debug("loky workers start with %s", method)
    return method


def prestart(launcher: Mapping[str, Any] | None) -> None:
    """For a joblib launcher, choose how its workers start and start the fork server now, so
    its imports overlap the sweep's set-up; never raises (the `parallel` launcher chooses
    again when it launches, and says what went wrong)."""
    try:
        method = start_method(launcher)
        if method is not None:
            use_start_method(method)
    except Exception:  # noqa: BLE001
        log.debug("could not choose the workers' start method early", exc_info=True)
