"""Stopping a job on a signal the way Ctrl-C does: the run ends KILLED with what it measured.

SLURM sends SIGTERM on preemption and time-out, `kill` sends SIGTERM, a terminal sends SIGINT,
and submitit's preemption signal (SIGUSR2 unless `SUBMITIT_PREEMPT_SIGNAL` says otherwise)
comes `signal_delay_s` before a SLURM time limit. Inside `stop_on_signals()` the first of them
raises `Terminated` (a `KeyboardInterrupt`, so everything that handles Ctrl-C handles it) in the
main thread; the code unwinding from it (flushing metrics, uploading rounds.csv) is not
interrupted again: later signals are only logged. A third signal forces the process down.

Inside `shielded()` (each call that writes to the MLflow store) a signal is held back until the
call has returned, so it never lands in the middle of a database transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

FORCE_AFTER = 3  # the third signal ends the process at once, without cleanup


class Terminated(KeyboardInterrupt):
    """The job was told to stop by a signal; handled like Ctrl-C (runs end KILLED)."""

    def __init__(self, signum: int, original: BaseException | None = None) -> None:
        super().__init__(f"stopped by {signal_name(signum)}")
        self.signum = signum
        self.original = original  # what submitit's own handler raised, re-raised at the end

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(error: BaseException) -> int:
    """The conventional exit status for a job stopped by `error` (128 + the signal)."""
    if isinstance(error, Terminated):
        return error.exit_code
    return 128 + signal.SIGINT  # a plain KeyboardInterrupt: Ctrl-C


def submitit_signal() -> int | None:
    """submitit's preemption/time-out signal (its SUBMITIT_PREEMPT_SIGNAL, USR2 by default)."""
    name = "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    value = getattr(signal, name, None)
    return int(value) if value is not None else None


class _State:
    def __init__(self) -> None:
        self.depth = 0  # nesting of stop_on_signals()
        self.count = 0  # signals received since the outermost stop_on_signals() began
        self.raised: Terminated | None = None  # the one Terminated raised
        self.pending: Terminated | None = None  # held back by a shield
        self.shield = 0  # nesting of shielded()
        self.handling = 0  # signal handlers running (a later one can run inside an earlier)


_state = _State()


def _raise_or_hold(stop: Terminated) -> None:
    if _state.raised is not None:
        log.warning("%s received while already stopping: still saving the run (signal %d more "
                    "times to force)", signal_name(stop.signum), FORCE_AFTER - _state.count)
        return
    if _state.shield:
        _state.pending = _state.pending or stop
        return
    # a signal held back by a shield that has just ended, not yet raised: the first one wins
    # (the second can land between the shield's end and its raising the held one)
    first, _state.pending = _state.pending or stop, None
    _state.raised = first
    raise first


def _force(signum: int) -> None:
    log.error("%s received %d times: stopping now without saving", signal_name(signum),
              _state.count)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _handler(signum: int, frame: FrameType | None) -> None:
    _state.handling += 1  # first: Python may run a second signal's handler inside this one
    try:
        _state.count += 1
        if _state.count >= FORCE_AFTER:
            _force(signum)
            return
        if _state.handling > 1:  # it landed while an earlier signal's handler ran (logging,
            return  # say): that one is the first and raises when this returns
        if _state.raised is None and _state.pending is None:
            log.warning("%s received: ending the run as KILLED after saving what it measured",
                        signal_name(signum))
        _raise_or_hold(Terminated(signum))
    finally:
        _state.handling -= 1


def _chained(previous: Callable[[int, FrameType | None], Any]) -> Callable:
    """submitit's preemption handler, run first; what it raises (its requeue exit, or "not
    requeued") stops the job like SIGTERM and is re-raised once the run has been saved."""

    def handler(signum: int, frame: FrameType | None) -> None:
        _state.handling += 1
        try:
            previous(signum, frame)
        except BaseException as error:  # noqa: B036  (SystemExit from submitit's requeue)
            _state.count += 1
            if _state.handling > 1:  # inside an earlier signal's handler: that one is first
                return
            log.warning("%s from the scheduler: ending the run as KILLED, then %s",
                        signal_name(signum), type(error).__name__)
            _raise_or_hold(Terminated(signum, original=error))
        finally:
            _state.handling -= 1

    handler.chained = True  # type: ignore[attr-defined]
    return handler


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM, SIGINT (and submitit's preemption signal, if submitit handles it) raise
    `Terminated` once; a no-op outside the main thread. Re-entrant."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed: dict[int, Any] = {}
    if _state.depth == 0:
        _state.count, _state.raised, _state.pending, _state.handling = 0, None, None, 0
    if signal.getsignal(signal.SIGTERM) is not _handler:  # first, or someone took them since
        for signum in (signal.SIGTERM, signal.SIGINT):
            installed[signum] = signal.signal(signum, _handler)
        preempt = submitit_signal()
        if preempt is not None:
            previous = signal.getsignal(preempt)
            if callable(previous) and not getattr(previous, "chained", False):  # submitit's
                installed[preempt] = signal.signal(preempt, _chained(previous))
    _state.depth += 1
    try:
        yield
        if _state.depth == 1 and _state.raised is None:
            stop = _state.pending
            if stop is not None:  # a signal came but nothing raised it (swallowed, or held)
                _state.raised = stop
                raise stop
    except Terminated as stop:
        if _state.depth == 1 and stop.original is not None:
            raise stop.original from stop  # let submitit requeue or report as it meant to
        raise
    finally:
        _state.depth -= 1
        for signum, previous in installed.items():
            signal.signal(signum, previous)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold a stop signal back until the block is done (a store write stays whole). Signals
    reach only the main thread: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.shield += 1
    try:
        yield
    finally:
        _state.shield -= 1
    if _state.shield == 0 and _state.pending is not None and _state.raised is None:
        stop, _state.pending = _state.pending, None
        _state.raised = stop
        raise stop


def stopping() -> bool:
    """Whether a stop signal has been received (raised or held back)."""
    return _state.raised is not None or _state.pending is not None
