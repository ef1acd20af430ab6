"""A joblib launcher that survives dead workers and stops cleanly on a signal.

Hydra's joblib launcher runs a sweep's jobs on a loky process pool. When one worker dies
without a word (kill -9, the out-of-memory killer), loky declares the pool broken, kills every
other worker (SIGKILL) and the whole sweep aborts: runs stay RUNNING, jobs not yet started
never run. `ResilientJoblibLauncher` (`hydra/launcher=parallel`) instead:

- keeps the results of the jobs that finished, starts a fresh pool for the jobs that had not
  started, and then runs the jobs that were in flight when the pool broke again, one at a
  time: an innocent bystander then finishes, and a job that dies again alone is the culprit and
  is reported (`WorkerDied`) without taking others with it;
- on SIGINT/SIGTERM, writes the sweep's stop file (`sweeps.SweepControl`): each running job
  then stops as on SIGTERM (its run ends KILLED with what it measured), jobs not started are
  not started, and the sweep exits with 128 + the signal. A third signal forces the stop.
  A job stopped by a signal of its own (SLURM signals every process) stops the sweep too.

Its workers start forked from a server that imported TensorFlow, MLflow and the harness once
(`start_method: forkserver`, `al_research.sweeps.workers`), not as fresh interpreters that
each import them again (`start_method: loky`, joblib's default).
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_joblib_launcher import _core as joblib_core
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

from al_research.process.signals import FORCE_AFTER, Terminated, signal_name, stop_on_signals
from al_research.sweeps import composed, workers
from al_research.sweeps.folders import SweepControl, describe

log = logging.getLogger(__name__)


StartMethod = Enum("StartMethod", {m: m for m in workers.START_METHODS})  # type: ignore[misc]


@dataclass
class ParallelLauncherConf(JobLibLauncherConf):
    """`hydra/launcher=parallel`: joblib's keys, plus how its workers start."""

    _target_: str = "hydra_plugins.al_research_launchers.parallel.ResilientJoblibLauncher"
    # forkserver: workers forked from one process that imported everything once (al_research.
    # workers); loky: each worker a fresh interpreter (joblib's default). Off Linux (macOS,
    # Windows), forkserver falls back to loky.
    start_method: StartMethod = StartMethod[workers.FORKSERVER]


class WorkerDied(RuntimeError):
    """A job's worker process died without a word, twice (the second time running alone)."""


@dataclass(frozen=True)
class _Shared:
    """What every job of a launch gets alike, pickled once by the sweep's process instead of
    once a job (~9 ms there, ~8 ms to unpickle in the worker): Hydra's context, the sweep's
    config and the task function, unpickled once per worker (`_unpickled`); and Hydra's
    singletons, unpickled afresh for each job, so that a job starts from the sweep's state as
    with Hydra's own launcher."""

    key: str
    blob: bytes  # (hydra_context, config, task_function)
    singletons: bytes

    @classmethod
    def of(cls, hydra_context: Any, config: Any, task_function: Any, key: str) -> _Shared:
        try:  # loky's own pickler: Hydra's context holds local functions
            import cloudpickle
        except ImportError:  # a joblib that still carries its own copy
            from joblib.externals import cloudpickle  # type: ignore[no-redef]

        return cls(key, cloudpickle.dumps((hydra_context, config, task_function)),
                   cloudpickle.dumps(Singleton.get_state()))


_UNPICKLED: dict[str, tuple[Any, Any, Any]] = {}  # a worker's current launch's `_Shared.blob`


def _unpickled(shared: _Shared) -> tuple[Any, Any, Any]:
    import pickle

    if shared.key not in _UNPICKLED:
        _UNPICKLED.clear()
        _UNPICKLED[shared.key] = pickle.loads(shared.blob)
    return _UNPICKLED[shared.key]


def _returned(overrides: Sequence[str], error: BaseException) -> JobReturn:
    return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=error)


def _execute(idx: int, overrides: Sequence[str], kept: bytes | None, hydra_context: Any,
             config: Any, task_function: Any, singleton_state: dict) -> JobReturn:
    """joblib_core.execute_job, with the job's config composed in the sweep's process when it
    was kept (`sweeps.composed`), else composed here as Hydra does."""
    if kept is None:
        return joblib_core.execute_job(idx, overrides, hydra_context, config, task_function,
                                       singleton_state)
    from hydra.core.utils import run_job
    from omegaconf import open_dict

    setup_globals()
    _set_singleton_state(singleton_state)
    sweep_config = composed.restore(kept, config)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    # run_job sets HydraConfig to the job's config first (no need to here)
    return run_job(hydra_context=hydra_context, config=sweep_config,
                   task_function=task_function, job_dir_key="hydra.sweep.dir",
                   job_subdir_key="hydra.sweep.subdir")


def _set_singleton_state(state: dict) -> None:
    """`Singleton.set_state`, keeping the process's Plugins singleton when it has one: Hydra
    leaves it out of the state and discovers every plugin again (~14 ms a job), which in a
    worker's later jobs finds the same plugins."""
    import copy

    from hydra.core.plugins import Plugins
    from omegaconf.basecontainer import BaseContainer

    plugins = Singleton._instances.get(Plugins)
    if plugins is None:
        Singleton.set_state(state)
        return
    Singleton._instances = {**state["instances"], Plugins: plugins}
    BaseContainer._resolvers = copy.deepcopy(state["omegaconf_resolvers"])


def _run_one(idx: int, overrides: Sequence[str], kept: bytes | None, shared: _Shared,
             sweep_dir: str, token: str) -> tuple[int, JobReturn]:
    """One job in a worker: skipped if the sweep is stopping, else run with stop signals
    turned into a KILLED run, and with the sweep's stop file watched."""
    import pickle

    control = SweepControl(sweep_dir)
    if control.stop_requested():
        return idx, _returned(overrides, Terminated(signal.SIGTERM))
    control.mark_started(token, idx)
    watcher = control.watch()
    try:
        hydra_context, config, task_function = _unpickled(shared)
        with stop_on_signals():
            ret = _execute(idx, overrides, kept, hydra_context, config, task_function,
                           pickle.loads(shared.singletons))
    except KeyboardInterrupt as stop:  # the job's run ended KILLED: the whole sweep stops
        stop = stop if isinstance(stop, Terminated) else Terminated(signal.SIGINT)
        control.request_stop(str(stop))  # (the job may run in the sweep's own process)
        ret = _returned(overrides, stop)
    finally:
        watcher.stop()
    return idx, ret


class _GracefulStop:
    """In the sweep's process: the first SIGINT/SIGTERM asks the jobs to stop (stop file);
    the third forces the process down."""

    def __init__(self, control: SweepControl) -> None:
        self.control = control
        self.signum: int | None = None
        self._count = 0
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self._count += 1
        if self._count >= FORCE_AFTER:
            log.error("%s received %d times: stopping the sweep now", signal_name(signum),
                      self._count)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self.signum is None:
            self.signum = signum
            log.warning("%s received: stopping the sweep; running jobs end their runs as "
                        "KILLED after saving them, queued jobs will not start (signal %d more "
                        "times to force)", signal_name(signum), FORCE_AFTER - self._count)
            self.control.request_stop(f"stopped by {signal_name(signum)}")
        else:
            log.warning("still stopping: waiting for the running jobs to save their runs")

    def __enter__(self) -> _GracefulStop:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


class ResilientJoblibLauncher(JoblibLauncher):
    """Hydra's joblib launcher, surviving dead workers and stopping cleanly (module doc)."""

    def __init__(self, start_method: Any = workers.FORKSERVER, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_method = workers.resolve(start_method)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        from joblib import Parallel, delayed
        from joblib.externals.loky.process_executor import BrokenProcessPool

        setup_globals()
        assert self.config is not None and self.task_function is not None
        assert self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        joblib_cfg = dict(self.joblib)
        joblib_cfg["backend"] = "loky"  # as Hydra's plugin: threads cannot run Hydra jobs
        joblib_core.process_joblib_cfg(joblib_cfg)
        started_by = workers.use_start_method(self.start_method)
        jobs = {initial_job_idx + i: list(o) for i, o in enumerate(job_overrides)}
        log.info("Joblib.Parallel(%s) is launching %d jobs, workers started by %s",
                 ",".join(f"{k}={v}" for k, v in joblib_cfg.items()), len(jobs), started_by)
        log.info("Launching jobs, sweep output dir : %s", sweep_dir)
        for idx, overrides in jobs.items():
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))

        control = SweepControl(sweep_dir)
        control.clear_stop()
        token = uuid.uuid4().hex[:8]
        shared = _Shared.of(self.hydra_context, self.config, self.task_function,
                            f"{os.getpid()}-{token}")
        results: dict[int, JobReturn] = {}

        def run(indices: list[int], config: dict[str, Any]) -> None:
            calls = (delayed(_run_one)(i, jobs[i], composed.pickled(jobs[i]), shared,
                                       str(sweep_dir), token)
                     for i in indices)
            for idx, ret in Parallel(return_as="generator_unordered", **config)(calls):
                results[idx] = ret

        pending, suspects = sorted(jobs), []
        with _GracefulStop(control) as stop:

            def stopping() -> bool:
                return stop.signum is not None or control.stop_requested()

            while pending and not stopping():
                try:
                    run(pending, joblib_cfg)
                except BrokenProcessPool as error:
                    if stopping():
                        break
                    started = control.started(token)
                    in_flight = [i for i in pending if i in started and i not in results]
                    pending = [i for i in pending if i not in started and i not in results]
                    suspects += in_flight
                    log.warning("A worker process died (%s). Jobs in flight: %s; they run "
                                "again one at a time after the %d not yet started.",
                                " ".join(str(error).split())[:160],
                                ", ".join(f"#{i}" for i in in_flight) or "none", len(pending))
                else:
                    pending = []
            for idx in suspects:  # alone: if it dies again, it is the culprit
                if stopping():
                    break
                try:
                    run([idx], joblib_cfg)
                except BrokenProcessPool:
                    log.error("Job #%d (%s) died with its worker again, running alone: it is "
                              "not retried.", idx, describe(jobs[idx]))
                    results[idx] = _returned(jobs[idx], WorkerDied(
                        f"job #{idx} ({describe(jobs[idx])}): its worker process died twice, "
                        "the second time running alone (killed, or out of memory)"))
        if stop.signum is None and control.stop_requested():  # a job was told to stop
            stopped = [r._return_value for r in results.values()
                       if isinstance(r._return_value, Terminated)]
            stop.signum = stopped[0].signum if stopped else signal.SIGTERM
        if stop.signum is not None:
            control.request_stop(f"stopped by {signal_name(stop.signum)}")  # stays for late jobs
            raise Terminated(stop.signum)
        return [results[i] for i in sorted(jobs)]


class WaitForAllSubmititJobs:
    """Hydra's submitit launchers (local and SLURM), waiting for every job of the sweep.

    The plugin returns `[job.results()[0] for job in jobs]`: the first job that died (killed,
    out of memory, past its time limit) raises at once, the sweep's process exits, and on the
    local executor the jobs still running are cancelled. Here every job is waited for; a dead
    one becomes a failed job (`WorkerDied`) like a job that raised, so the others finish and
    the sweep's end names it.
    """

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        import submitit
        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
        from omegaconf import OmegaConf

        # As hydra_plugins.hydra_submitit_launcher.submitit_launcher.BaseSubmititLauncher.launch
        # (Hydra's plugin, MIT licence), up to how the results are collected.
        assert self.config is not None
        assert len(job_overrides) > 0
        params = self.params
        init_params = {"folder": params["submitit_folder"]}
        specific_init_keys = {"max_num_timeout"}
        init_params.update(**{f"{self._EXECUTOR}_{x}": y for x, y in params.items()
                              if x in specific_init_keys})
        init_keys = specific_init_keys | {"submitit_folder"}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)
        baseparams = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{x if x in baseparams else f"{self._EXECUTOR}_{x}": y
                                      for x, y in params.items() if x not in init_keys})
        log.info("Submitit '%s' sweep output dir : %s", self._EXECUTOR,
                 self.config.hydra.sweep.dir)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        job_params: list[Any] = []
        for idx, overrides in enumerate(job_overrides):
            idx = initial_job_idx + idx
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}",
                               Singleton.get_state()))
        jobs = executor.map_array(self, *zip(*job_params, strict=True))

        results = []
        for job, (overrides, _, idx, _, _) in zip(jobs, job_params, strict=True):
            try:
                results.append(job.results()[0])
            except Exception as error:  # no result: the job's process died
                reason = " ".join(str(error).split())[:300]
                log.error("Job #%d (%s) ended without a result: %s", idx, describe(overrides),
                          reason)
                results.append(_returned(overrides, WorkerDied(
                    f"job #{idx} ({describe(overrides)}): its process ended without a result "
                    f"(killed, out of memory or out of time): {reason}")))
        return results
