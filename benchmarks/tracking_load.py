"""Tracking under load: many job runs logging their rounds at once, to the PostgreSQL-backed
`mlflow server` of `make cluster-up` and to SQLite, measured in the same run.

    make cluster-up && source .cluster/env.sh
    .venv/bin/python benchmarks/tracking_load.py                       # 200 runs, 8 and 32 workers
    .venv/bin/python benchmarks/tracking_load.py --runs 50 --workers 4 --no-sqlite-server

Each run is what a job sends: `create_run` with its tags, its params in one `log_batch`, one
`log_batch` of `--metrics` metrics per round for `--rounds` rounds (a RunRecorder's flush; a job
whose rounds take longer than its flush interval sends one per round), then `set_terminated`.
N worker processes (forked, MLflow imported once, each with its own MlflowClient and the
harness's HTTP retry limits) share the runs and start together. Targets:

- `postgresql server`: $MLFLOW_TRACKING_URI, the cluster's server (PostgreSQL behind it);
- `sqlite direct`: a `sqlite:///` file in a temporary folder, every process writing it itself;
- `sqlite server`: an `mlflow server` on that kind of file, started here with the cluster
  server's settings (2 workers, no job execution).

It prints, per target and worker count: runs/s and round batches/s that went in (wall time from
the common start to the last worker's end), p50/p95 latency of one round's `log_batch` (a failed
one too: the time a job waited before it gave up, MLflow's retries included), failed calls, and
the ratios of batches/s and p95 to `sqlite direct` at the same worker count.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from al_research.tracking.store import limit_http_retries  # noqa: E402

METRICS = ["test_accuracy", "val_accuracy", "fit_seconds", "select_seconds", "epochs",
           "mean_confidence", "best_epoch", "labelled_fraction"]


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)  # each round's log_batch, failed too
    batches: int = 0  # round batches that went in
    errors: int = 0
    first_error: str = ""
    runs: int = 0  # ended FINISHED
    start: float = float("inf")
    end: float = 0.0


def _worker(uri: str, experiment_id: str, runs: list[int], rounds: int, metrics: int,
            barrier, queue) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    limit_http_retries()
    client = MlflowClient(tracking_uri=uri)
    result = Result()
    keys = [METRICS[i] if i < len(METRICS) else f"metric_{i}" for i in range(metrics)]

    def call(fn, *args, **kwargs) -> tuple[bool, Any]:
        try:
            return True, fn(*args, **kwargs)
        except Exception as error:  # counted, and the load goes on
            result.errors += 1
            result.first_error = result.first_error or " ".join(str(error).split())[:200]
            return False, None

    barrier.wait()
    result.start = time.time()
    for index in runs:
        ok, run = call(client.create_run, experiment_id, run_name=f"load-{index}",
                       tags={"seed": str(index), "strategy": "random", "job_num": str(index)})
        if not ok:
            continue
        run_id = run.info.run_id
        call(client.log_batch, run_id, params=[Param(f"param_{i}", str(i)) for i in range(20)])
        for step in range(1, rounds + 1):
            now = int(time.time() * 1000)
            batch = [Metric(key, (index + step + i) / 1000, now, step * 10)
                     for i, key in enumerate(keys)]
            started = time.perf_counter()
            result.batches += call(client.log_batch, run_id, metrics=batch)[0]
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.runs += call(client.set_terminated, run_id, "FINISHED")[0]
    result.end = time.time()
    queue.put(result)


def _experiment(uri: str, queue) -> None:
    """A fresh experiment (in a process of its own: no database engine shared across fork)."""
    from mlflow import MlflowClient

    queue.put(MlflowClient(tracking_uri=uri).create_experiment(f"tracking-load-{uuid.uuid4().hex}"))


def measure(uri: str, n_runs: int, workers: int, rounds: int, metrics: int) -> dict:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    setup = ctx.Process(target=_experiment, args=(uri, queue))
    setup.start()
    experiment_id = queue.get(timeout=300)
    setup.join()
    barrier = ctx.Barrier(workers)
    shares = [list(range(n_runs))[w::workers] for w in range(workers)]
    processes = [ctx.Process(target=_worker, args=(uri, experiment_id, share, rounds, metrics,
                                                   barrier, queue)) for share in shares]
    for p in processes:
        p.start()
    results = [queue.get(timeout=3600) for _ in processes]
    for p in processes:
        p.join()
    wall = max(r.end for r in results) - min(r.start for r in results)
    latencies = sorted(x for r in results for x in r.latencies_ms)
    finished = sum(r.runs for r in results)
    batches = sum(r.batches for r in results)
    return {"wall": wall, "runs/s": finished / wall, "batches/s": batches / wall,
            "p50": statistics.median(latencies),
            "p95": latencies[int(0.95 * (len(latencies) - 1))],
            "errors": sum(r.errors for r in results),
            "first_error": next((r.first_error for r in results if r.first_error), "")}


def start_sqlite_server(folder: Path) -> tuple[str, subprocess.Popen]:
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
         "--artifacts-destination", str(folder / "artifacts")],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return uri, server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"no SQLite-backed mlflow server: see {folder}") from None
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--metrics", type=int, default=6, help="metrics per round")
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--no-sqlite-server", action="store_true")
    args = parser.parse_args()
    server_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not server_uri.startswith("http"):
        raise SystemExit("tracking_load.py: no MLFLOW_TRACKING_URI server: run `make cluster-up` "
                         "and `source .cluster/env.sh` first")

    import mlflow.entities  # noqa: F401  (imported once: the forked workers share it)
    from mlflow import MlflowClient  # noqa: F401

    folder = Path(tempfile.mkdtemp(prefix="tracking-load-"))
    targets = {"postgresql server": server_uri,
               "sqlite direct": f"sqlite:///{folder / 'direct.db'}"}
    server = None
    if not args.no_sqlite_server:
        targets["sqlite server"], server = start_sqlite_server(folder)
    print(f"{args.runs} runs x {args.rounds} rounds x {args.metrics} metrics (one log_batch "
          f"per round), {os.cpu_count()} CPUs; PostgreSQL-backed server {server_uri}", flush=True)
    rows = []
    try:
        for workers in args.workers:
            for name, uri in targets.items():
                found = measure(uri, args.runs, workers, args.rounds, args.metrics)
                rows.append((name, workers, found))
                print(f"  {name}, {workers} workers: {found['wall']:.1f} s", file=sys.stderr)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)

    print("\n| target | workers | runs/s | batches/s | p50 ms | p95 ms | errors | batches/s "
          "vs sqlite direct | p95 vs sqlite direct |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = {w: f for name, w, f in rows if name == "sqlite direct"}
    for name, workers, f in rows:
        print(f"| {name} | {workers} | {f['runs/s']:.2f} | {f['batches/s']:.0f} | "
              f"{f['p50']:.1f} | {f['p95']:.1f} | {f['errors']} | "
              f"{f['batches/s'] / base[workers]['batches/s']:.2f}x | "
              f"{f['p95'] / base[workers]['p95']:.2f}x |")
    for name, workers, f in rows:
        if f["errors"]:
            print(f"{name}, {workers} workers, first error: {f['first_error']}")


if __name__ == "__main__":
    main()
