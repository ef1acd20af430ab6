"""A sweep run sequentially (Hydra's basic launcher) and in parallel (the joblib launcher).

    .venv/bin/python benchmarks/parallel_sweep.py                 # 2 strategies x 10 seeds
    .venv/bin/python benchmarks/parallel_sweep.py --seeds 4 --extra clustering.enabled=false

Both sweeps are the real command line, `python -m al_research -m strategy=random,least_confident
seed=range(0,N)` with the default experiment (40 rounds, k-means on, a histogram per round),
each into a SQLite store of its own, created before the clock starts (the one-time schema
creation is not the sweep's). The parallel one adds `hydra/launcher=joblib
hydra.launcher.n_jobs=<cores>`: loky worker processes, each running jobs one after another with
its share of the cores as TensorFlow threads (al_research.runtime.launcher_threads).

It prints both wall times and their ratio (target: parallel <= 0.6 x sequential), counts the
FINISHED runs in each store (target: all of them, each with a test_accuracy point per round),
looks for "database is locked" in the jobs' logs, and checks that both sweeps measured the same
final accuracies.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import al_research  # noqa: E402, F401, I001  (quiet TF, BLAS threads, before numpy)

RATIO_TARGET = 0.6
EXPERIMENT = "parallel-sweep-benchmark"


def sweep(mode: str, work: Path, seeds: int, strategies: str, n_jobs: int,
          extra: list[str]) -> dict:
    from al_research.tracking import prepare_store

    uri = f"sqlite:///{work / mode / 'mlflow.db'}"
    prepare_store(uri, EXPERIMENT)
    args = [sys.executable, "-m", "al_research", "-m", f"strategy={strategies}",
            f"seed=range(0,{seeds})", f"tracking.uri={uri}",
            f"tracking.experiment_name={EXPERIMENT}", f"hydra.sweep.dir={work / mode / 'sweep'}",
            *extra]
    if mode == "parallel":
        args += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    wall_start = time.time()
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    logs = done.stdout + done.stderr + "".join(
        p.read_text(errors="replace") for p in (work / mode / "sweep").rglob("*.log"))
    return {"seconds": seconds, "returncode": done.returncode, "uri": uri,
            "wall_start": wall_start, "wall_end": wall_start + seconds,
            "locked": logs.lower().count("database is locked"), "stderr": done.stderr[-3000:]}


def runs_in(uri: str, rounds: int) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    runs = [r for r in runs if r.data.tags.get("summary") != "true"]  # the sweep report's run
    finished = [r for r in runs if r.info.status == "FINISHED"]
    complete = [r for r in finished
                if len(client.get_metric_history(r.info.run_id, "test_accuracy")) == rounds]
    final = {(r.data.tags.get("strategy"), r.data.tags.get("seed")):
             r.data.metrics.get("final_test_accuracy") for r in finished}
    spans = [(r.info.start_time / 1000, r.info.end_time / 1000) for r in finished]
    return {"runs": len(runs), "finished": len(finished), "complete": len(complete),
            "final": final, "spans": spans}


def timeline(r: dict) -> str:
    """Start-up (until the first MLflow run opens), the runs, the tail (report, exit)."""
    if not r["spans"]:
        return "no runs"
    first = min(s for s, _ in r["spans"])
    last = max(e for _, e in r["spans"])
    per_run = sum(e - s for s, e in r["spans"]) / len(r["spans"])
    return (f"start-up {first - r['wall_start']:5.1f} s, runs {last - first:5.1f} s "
            f"(an MLflow run lasts {per_run:.2f} s on average), tail {r['wall_end'] - last:4.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--strategies", default="random,least_confident")
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=40, help="rounds per run (budget 400)")
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides for both sweeps")
    args = parser.parse_args(argv)

    jobs = args.seeds * len(args.strategies.split(","))
    work = Path(tempfile.mkdtemp(prefix="parallel-sweep-"))
    print(f"{jobs} jobs ({args.strategies} x seeds 0-{args.seeds - 1}), "
          f"{os.cpu_count()} cores; outputs in {work}", flush=True)
    results = {}
    for mode in ("sequential", "parallel"):
        print(f"{mode} sweep ...", flush=True)
        results[mode] = sweep(mode, work, args.seeds, args.strategies, args.n_jobs, args.extra)
        if results[mode]["returncode"] != 0:
            sys.stderr.write(results[mode]["stderr"])
            print(f"{mode} sweep FAILED (exit {results[mode]['returncode']})")
        results[mode].update(runs_in(results[mode]["uri"], args.rounds))

    seq, par = results["sequential"], results["parallel"]
    ratio = par["seconds"] / seq["seconds"]
    same = sum(1 for key, value in seq["final"].items() if par["final"].get(key) == value)
    print()
    print(f"sequential (basic launcher):         {seq['seconds']:7.1f} s wall")
    print(f"parallel (joblib, n_jobs={args.n_jobs}):         {par['seconds']:7.1f} s wall")
    print(f"ratio parallel / sequential:         {ratio:7.2f}  "
          f"[<= {RATIO_TARGET}: {'PASS' if ratio <= RATIO_TARGET else 'FAIL'}]")
    for mode in ("sequential", "parallel"):
        r = results[mode]
        ok = r["finished"] == jobs and r["complete"] == jobs and r["locked"] == 0
        print(f"{mode:>10}: {r['finished']}/{jobs} runs FINISHED, {r['complete']} with "
              f"{args.rounds} test_accuracy points, {r['runs'] - r['finished']} not finished, "
              f"'database is locked' x{r['locked']}  [{'PASS' if ok else 'FAIL'}]")
    print(f"final test accuracy identical in both sweeps: {same}/{len(seq['final'])} runs")
    for mode in ("sequential", "parallel"):
        print(f"{mode:>10}: {timeline(results[mode])}")
    print(f"TF threads: sequential = TF's default ({os.cpu_count()} cores); parallel = "
          f"max(1, {os.cpu_count()} // {args.n_jobs}) per worker")
    return 0 if ratio <= RATIO_TARGET and par["finished"] == jobs else 1


if __name__ == "__main__":
    sys.exit(main())
