"""How a sweep ends, however it ends: each end step runs once and says in one line what it could
not do; the command's last line says what was kept and which command resumes.

Hydra calls `on_multirun_end` only when every job succeeded; when one failed, it re-raises that
job's error first. So the callbacks `arm` their end steps here: `finish()` runs the ones still
pending, newest first (Hydra's order for end callbacks), from `cli` before its last line, and at
exit for any other way out. `run_step` runs one step: an error becomes one line, its traceback
goes to the sweep's log file (`<sweep dir>/sweep.log`), named in that line.
"""

from __future__ import annotations

import atexit
import logging
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

SWEEP_LOG = "sweep.log"
T = TypeVar("T")


@dataclass
class _Sweep:
    folder: Path
    uri: str
    overrides: list[list[str]]  # each job's
    jobs: list[dict[str, Any]] | None = None  # the account of its jobs (`record_jobs`)
    failed_steps: list[str] = field(default_factory=list)


_sweep: _Sweep | None = None
_steps: list[Callable[[], None]] = []
_at_exit = False


def begin(folder: str | Path, uri: str, overrides: list[list[str]]) -> None:
    """A sweep of these jobs starts in this process (its first callback calls this)."""
    global _sweep
    _sweep = _Sweep(Path(folder), uri, overrides)


def arm(step: Callable[[], None]) -> None:
    """Run `step` when the sweep ends, if Hydra does not reach its end callbacks first."""
    global _at_exit
    _steps.append(step)
    if not _at_exit:
        atexit.register(finish)
        _at_exit = True


def finish() -> None:
    """Run the end steps still pending (each guards itself against running twice)."""
    while _steps:
        _steps.pop()()


def record_jobs(rows: list[dict[str, Any]]) -> None:
    if _sweep is not None:
        _sweep.jobs = rows


def is_store_error(error: BaseException) -> bool:
    from al_research.tracking.outages import is_outage
    from al_research.tracking.store import StoreUnavailable

    return isinstance(error, StoreUnavailable) or is_outage(error)


def write_traceback(folder: Path, what: str, error: BaseException) -> Path:
    """Append `error`'s traceback, headed by `what`, to the sweep's log file; return its path."""
    path = folder / SWEEP_LOG
    text = (f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: {what}\n"
            + "".join(traceback.format_exception(error)))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError:
        log.debug("could not write %s", path, exc_info=True)
    return path


def one_line(error: BaseException, uri: str = "") -> str:
    """An error in one line: a store that does not answer says so in a few words."""
    from al_research.tracking.outages import is_outage, mark_down, short_cause
    from al_research.tracking.store import StoreUnavailable

    if isinstance(error, StoreUnavailable):
        return " ".join(str(error).split())
    if is_outage(error):
        if uri:
            mark_down(uri)
        return f"MLflow store {uri} is not answering ({short_cause(error)})".replace("  ", " ")
    text = " ".join(str(error).split())
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= 240 else text[:237] + "..."


def run_step(what: str, step: Callable[[], T], folder: str | Path, uri: str,
             retry: str = "") -> T | None:
    """Run an end-of-sweep step; if it fails, one line (traceback to the sweep's log file)."""
    try:
        return step()
    except Exception as error:
        path = write_traceback(Path(folder), what, error)
        log.error("%s: not done: %s (details in %s)%s", what, one_line(error, uri), path,
                  f"; retry: {retry}" if retry else "")
        if _sweep is not None:
            _sweep.failed_steps.append(what)
        return None


def resume_command() -> str:
    """The command that started this process, as it can be pasted into a shell."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if argv and Path(argv[0]).name.startswith("python"):
        argv[0] = "python"
    elif argv:
        argv[0] = Path(argv[0]).name
    return shlex.join(argv)


def _counts(rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    return sum(1 for r in rows if r.get("status") == "FINISHED"), len(rows)


def last_line(error: BaseException | None) -> str | None:
    """The command's last line after a sweep that did not end well (a job failed, or an end
    step could not be done); None outside a sweep or after one that ended well."""
    from al_research.sweeps.folders import describe, varying_keys
    from al_research.tracking.outages import clock, down_since

    sweep = _sweep
    if sweep is None or (error is None and not sweep.failed_steps):
        return None
    rows = sweep.jobs if sweep.jobs is not None else _local_rows(sweep)
    finished, total = _counts(rows)
    failed = [r for r in rows if r.get("status") != "FINISHED"]
    lost = down_since(sweep.uri)
    store_lost = lost is not None or any(r.get("store_lost") for r in failed) or (
        error is not None and is_store_error(error))
    again = f"run the same command again to run only those: {resume_command()}"
    if store_lost:
        when = f" at {clock(lost)}" if lost is not None else ""
        if not failed:
            return (f"MLflow store {sweep.uri} stopped answering{when}: all {total} jobs "
                    f"finished and are in the store, but not: {', '.join(sweep.failed_steps)}; "
                    f"when it answers again: al-research report --sweep {sweep.folder} "
                    f"--tracking-uri {shlex.quote(sweep.uri)}")
        return (f"MLflow store {sweep.uri} stopped answering{when}: {finished} of {total} jobs "
                f"finished and are in the store; what the other {len(failed)} measured before "
                f"is kept in their folders under {sweep.folder}; when the store answers again, "
                f"{again}")
    if not failed:
        return (f"all {total} jobs finished, but not: {', '.join(sweep.failed_steps)} "
                f"(details in {sweep.folder / SWEEP_LOG})")
    log_file = sweep.folder / SWEEP_LOG
    where = f"tracebacks in {log_file}; " if log_file.is_file() else ""
    first = failed[0]
    if not first.get("reason"):  # the store's account has none: the sweep's own record may
        local = {r["job"]: r for r in _local_rows(sweep)}
        first = {**first, "reason": local.get(first["job"], {}).get("reason")
                 or "no reason recorded"}
    job = describe(sweep.overrides[first["job"]], varying_keys(sweep.overrides)) \
        if first["job"] < len(sweep.overrides) else first["overrides"]
    return (f"{finished} of {total} jobs finished; job #{first['job']} ({job}) "
            f"{first.get('status', 'FAILED')}: {first.get('reason', 'no reason recorded')}"
            f"{f' (and {len(failed) - 1} more)' if len(failed) > 1 else ''}; {where}{again}")


def _local_rows(sweep: _Sweep) -> list[dict[str, Any]]:
    from al_research.sweeps.folders import local_account

    return local_account(sweep.folder, sweep.overrides)
