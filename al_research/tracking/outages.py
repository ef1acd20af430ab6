"""When the store stops answering: a short cause, one retry warning, and the runs left open.

- `short_cause` says why a call failed in a few words ("connection refused"), not as the chain
  of urllib3, requests and MLflow messages around it.
- `quiet_retries` turns urllib3's stream of "Retrying (Retry(total=…))" warnings (one per
  request and attempt, from every MLflow call) into one warning per process.
- `mark_down` / `down_since`: when this process first found a store not answering.
- Runs a lost store leaves open (a job's run, a sweep's parent run) cannot be ended then. They
  are written to a ledger on this machine (`remember_open_run`), and `settle_open_runs`, which
  runs whenever the harness reaches that store again (before any run starts, and before dead
  runs are reaped), ends them FAILED with the true reason: "the store stopped answering at …",
  not the reaper's "its process died". The ledger is `$AL_RESEARCH_STATE_DIR/open_runs.jsonl`,
  by default `$XDG_STATE_HOME/al-research/` (`~/.local/state/al-research/`). A rerun on another
  machine finds the runs through their heartbeat instead (`liveness`), with its reason.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LEDGER = "open_runs.jsonl"
KEEP_SECONDS = 30 * 24 * 3600.0  # entries for a store never reached again are dropped after
_down: dict[str, float] = {}


def short_cause(error: BaseException) -> str:
    """Why a store call failed, in a few words, from the innermost error that says it."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for item in reversed(chain):
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, ConnectionResetError):
            return "connection reset"
        if isinstance(item, TimeoutError) or type(item).__name__ in (
                "ReadTimeout", "ConnectTimeout", "ReadTimeoutError", "ConnectTimeoutError"):
            return "no answer in time"
    text = " ".join(str(error).split()) or type(error).__name__
    for marker in ("Connection refused", "Connection reset", "Name or service not known",
                   "database is locked", "disk I/O error", "unable to open database file"):
        if marker.lower() in text.lower():
            return marker[0].lower() + marker[1:]
    return text if len(text) <= 160 else text[:157] + "..."


def clock(at: float) -> str:
    """`23:14:05 UTC`: when something happened, in the same words on every machine."""
    return time.strftime("%H:%M:%S UTC", time.gmtime(at))


def stopped_answering(at: float) -> str:
    """The reason a run left open by a lost store is ended with (FAILURE_TAG)."""
    return ("the store stopped answering at "
            + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)))


def mark_down(uri: str) -> float:
    """Record that `uri` stopped answering (the first time this process saw it); return when."""
    return _down.setdefault(uri, time.time())


def down_since(uri: str) -> float | None:
    return _down.get(uri)


def is_outage(error: BaseException) -> bool:
    """Whether an error from a store call means the store is down or unwritable (as opposed
    to a call MLflow refused, such as an invalid value)."""
    try:
        from mlflow.exceptions import MlflowException
    except ImportError:  # pragma: no cover
        MlflowException = ()  # type: ignore[assignment]  # noqa: N806
    if isinstance(error, MlflowException):
        return error.error_code in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE",
                                    "REQUEST_LIMIT_EXCEEDED", "ENDPOINT_NOT_FOUND")
    try:
        import requests
        import sqlalchemy.exc

        outage_types: tuple[type[BaseException], ...] = (
            requests.RequestException, sqlalchemy.exc.OperationalError, OSError)
    except ImportError:  # pragma: no cover
        outage_types = (OSError,)
    return isinstance(error, outage_types)


# -- urllib3's retry warnings --------------------------------------------------------------
class _RetrySummary(logging.Filter):
    """The first "Retrying" warning of urllib3 becomes one line; the rest are dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0
        self.shown = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Retrying"):
            return True
        if self.shown:
            self.hidden += 1
            return False
        self.shown = True
        error = record.args[1] if isinstance(record.args, tuple) and len(record.args) > 1 \
            else None
        cause = short_cause(error) if isinstance(error, BaseException) else "no answer"
        record.msg = ("MLflow store not answering (%s): retrying, within the harness's HTTP "
                      "limits (further retry messages are not shown)")
        record.args = (cause,)
        return True


_filter = _RetrySummary()


def quiet_retries() -> None:
    """Install the retry summary on urllib3's pool logger (once per process)."""
    logger = logging.getLogger("urllib3.connectionpool")
    if _filter not in logger.filters:
        logger.addFilter(_filter)


# -- runs a lost store left open -------------------------------------------------------------
def ledger_path() -> Path:
    base = os.environ.get("AL_RESEARCH_STATE_DIR")
    if not base:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        base = str(Path(state) / "al-research")
    return Path(base) / LEDGER


def _entries(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def remember_open_run(uri: str, run_id: str, at: float, what: str = "run") -> None:
    """Note a run the store could not end: the next reach of `uri` ends it (never raises)."""
    entry = {"uri": uri, "run_id": run_id, "at": at, "what": what}
    try:
        path = ledger_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())  # one append: atomic
        finally:
            os.close(fd)
    except OSError as error:
        log.debug("could not note run %s as left open: %s", run_id, error)


def settle_open_runs(client: Any, uri: str) -> list[str]:
    """End FAILED, with the time the store stopped answering, the runs of `uri` a lost store
    left open; return their ids. Entries of other stores stay (old ones are dropped)."""
    from filelock import FileLock

    from al_research.tracking.liveness import FAILURE_TAG

    path = ledger_path()
    if not path.is_file():
        return []
    ended: list[str] = []
    with FileLock(str(path) + ".lock", timeout=30):
        keep = []
        now = time.time()
        for entry in _entries(path):
            if entry.get("uri") != uri:
                if now - float(entry.get("at", now)) < KEEP_SECONDS:
                    keep.append(entry)
                continue
            run_id, at = str(entry["run_id"]), float(entry["at"])
            try:
                run = client.get_run(run_id)
                if run.info.status == "RUNNING":
                    reason = stopped_answering(at)
                    client.set_tag(run_id, FAILURE_TAG, reason)
                    client.set_terminated(run_id, "FAILED", end_time=int(at * 1000))
                    log.warning("Run %s (%s) ended FAILED: %s", run_id, run.info.run_name,
                                reason)
                    ended.append(run_id)
            except Exception as error:  # the store is down again, or the run is gone
                if is_outage(error):
                    keep.append(entry)
        path.write_text("".join(json.dumps(e) + "\n" for e in keep))
    return ended
