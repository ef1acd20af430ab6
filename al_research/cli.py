"""The `al-research` console script: `report ARGS` writes a report, anything else runs Hydra.

What a user can fix is said in one line without a traceback: config errors exit 2, an
unusable MLflow store exits 1; a job stopped by a signal exits 128 + the signal (130 for Ctrl-C,
143 for SIGTERM). A sweep whose jobs did not all finish, or whose end steps (the report, its
run) could not be done, exits 1 with a last line saying what finished, what was kept where and
the command that resumes it (`sweeps.ending`); tracebacks are in its `sweep.log`.
`HYDRA_FULL_ERROR=1` adds the full traceback.
"""

from __future__ import annotations

import os
import sys
import traceback


def _full_error_wanted() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def _fail(message: str, code: int, error: BaseException | None, full: bool) -> None:
    from al_research.errors import PREFIX

    if full and error is not None:
        traceback.print_exception(error)
    sys.stderr.write(PREFIX + message + "\n")
    sys.stderr.flush()
    sys.exit(code)


def run_hydra() -> None:
    """Hydra's command line, with errors said plainly (module doc)."""
    full = _full_error_wanted()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises; what to print is decided here
    from al_research.process.timings import ended, phase, process_phases

    process_phases()  # benchmarks/breakdown.py's figures, when asked for
    with phase("cli_import"):  # Hydra, the harness's config (not TensorFlow)
        from al_research.app import main as hydra_main
    from al_research.errors import (
        CONFIG_EXIT,
        STORE_EXIT,
        Abort,
        config_error_line,
        is_config_error,
    )
    from al_research.process.signals import Terminated, exit_code, stop_on_signals
    from al_research.sweeps import ending

    try:
        with stop_on_signals(), phase("hydra"):
            hydra_main()
        ended()
    except Abort as stop:
        _fail(stop.message, stop.code, stop.__cause__ or stop, full)
    except KeyboardInterrupt as stop:
        ending.finish()  # the sweep's end steps (report, parent run) before the last line
        what = str(stop) if isinstance(stop, Terminated) else "stopped by Ctrl-C"
        sys.stderr.write(f"al-research: {what}: runs in progress ended KILLED with what they "
                         "measured; run the same command again to run what did not finish\n")
        sys.exit(exit_code(stop))
    except SystemExit:
        raise
    except Exception as error:
        from al_research.data.errors import DataError
        from al_research.models.base import CapabilityError
        from al_research.tracking.store import StoreUnavailable

        ending.finish()
        if not (is_config_error(error) or isinstance(error, (DataError, CapabilityError))):
            line = ending.last_line(error)  # a sweep: what finished, what was kept, resume
            if line is not None:
                _fail(line, STORE_EXIT, error, full)
        if is_config_error(error):
            _fail(config_error_line(error), CONFIG_EXIT, error, full)
        if isinstance(error, (DataError, CapabilityError)):  # bad data, or a strategy the
            _fail(" ".join(str(error).split()), CONFIG_EXIT, error, full)  # model cannot serve
        if isinstance(error, StoreUnavailable):
            _fail(str(error), STORE_EXIT, error, full)
        from al_research.sweeps.launchers import WorkerDied

        if isinstance(error, WorkerDied):
            _fail(str(error), 1, error, full)
        traceback.print_exception(error)
        sys.exit(1)
    ending.finish()
    line = ending.last_line(None)  # every job finished, but an end step could not be done
    if line is not None:
        _fail(line, 1, None, full)


def main() -> None:
    from al_research.process.env import use_private_tempdir

    use_private_tempdir()  # no autograph files left in the system temp folder, even if killed
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        from al_research.report import main as report_main

        sys.exit(report_main(sys.argv[2:]))
    run_hydra()
