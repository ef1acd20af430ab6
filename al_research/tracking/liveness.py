"""Runs whose process died without a word (kill -9, out of memory) are found and marked FAILED.

Every run carries the identity of the process that writes it (`process` tag: host, PID
namespace, PID and the process's start time, so a reused PID is not mistaken for it) and a
`heartbeat` tag, the Unix time, refreshed every `HEARTBEAT_SECONDS` by a background thread.
`reap_dead_runs` marks a RUNNING run FAILED when its process is gone from this host, or,
for a run on another host, when its heartbeat is older than `STALE_SECONDS`. It runs before
each new run opens (any later run in the same experiment) and at the end of a sweep.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

HOST_TAG = "host"
PID_TAG = "pid"
PROCESS_TAG = "process"  # host/pid-namespace/pid/start-ticks
HEARTBEAT_TAG = "heartbeat"  # Unix seconds, refreshed while the run's process lives
FAILURE_TAG = "failure"  # why the harness marked the run FAILED

HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 600.0  # no heartbeat for this long: the run's process is gone


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "" where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").split("[")[-1].rstrip("]")
    except OSError:
        return ""


def process_identity(pid: int | None = None) -> str:
    """This host, PID namespace, the PID and its start time: unique for a process's life."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{_pid_namespace()}/{pid}/{_start_ticks(pid)}"


def process_tags() -> dict[str, str]:
    """The tags a new run carries: who writes it, and a first heartbeat."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()),
            PROCESS_TAG: process_identity(), HEARTBEAT_TAG: str(int(time.time()))}


def process_alive(identity: str) -> bool | None:
    """Whether the process named by `identity` still runs; None if this host cannot tell
    (another host or PID namespace)."""
    try:
        host, namespace, pid_text, ticks = identity.split("/")
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname() or namespace != _pid_namespace():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    return not ticks or _start_ticks(pid) in ("", ticks)  # a reused PID is another process


def dead_reason(tags: dict[str, str], now: float | None = None,
                stale_seconds: float = STALE_SECONDS) -> str | None:
    """Why a RUNNING run with these tags is dead, or None if it may be alive (or is not ours)."""
    identity = tags.get(PROCESS_TAG)
    if not identity:
        return None  # not written by this harness (e.g. a report's summary run)
    host, pid = tags.get(HOST_TAG, "?"), tags.get(PID_TAG, "?")
    if process_alive(identity) is False:
        return (f"its process (pid {pid} on {host}) died without ending the run "
                "(killed, or out of memory)")
    try:
        beat = float(tags.get(HEARTBEAT_TAG, ""))
    except ValueError:
        return None
    age = (time.time() if now is None else now) - beat
    if age > stale_seconds:
        return (f"no heartbeat from its process (pid {pid} on {host}) for {age / 60:.0f} min: "
                "it died without ending the run")
    return None


@dataclass
class Reaped:
    run_id: str
    run_name: str
    reason: str


def reap_dead_runs(client, experiment_ids: Iterable[str], stale_seconds: float = STALE_SECONDS,
                   extra_filter: str = "") -> list[Reaped]:
    """Mark FAILED every RUNNING run of these experiments whose process is gone; return them."""
    ids = [str(e) for e in experiment_ids]
    if not ids:
        return []
    query = "attributes.status = 'RUNNING'" + (f" and {extra_filter}" if extra_filter else "")
    reaped = []
    for run in client.search_runs(ids, query, max_results=1000):
        reason = dead_reason(run.data.tags, stale_seconds=stale_seconds)
        if reason is None:
            continue
        client.set_tag(run.info.run_id, FAILURE_TAG, reason)
        client.set_terminated(run.info.run_id, "FAILED")
        log.warning("Run %s (%s) marked FAILED: %s", run.info.run_id, run.info.run_name, reason)
        reaped.append(Reaped(run.info.run_id, run.info.run_name or "", reason))
    return reaped


class Heartbeat:
    """Refreshes a run's `heartbeat` tag every `interval` seconds on a daemon thread."""

    def __init__(self, client, run_id: str, interval: float = HEARTBEAT_SECONDS) -> None:
        self.client = client
        self.run_id = run_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mlflow-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.client.set_tag(self.run_id, HEARTBEAT_TAG, str(int(time.time())))
            except Exception as error:  # the store may be down: the run's own calls will say
                log.debug("heartbeat of run %s failed: %s", self.run_id, error)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
