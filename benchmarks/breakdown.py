"""Where a job's and a sweep's time goes: the arithmetic (fits, predictions, selection, k-means,
self-training, label-fair refits) apart from the overhead (everything else), beside a minimal
reference of the same loop, with issue 19's targets.

    .venv/bin/python benchmarks/breakdown.py                 # ~3 min on 2 cores
    .venv/bin/python benchmarks/breakdown.py --quick         # 2 seeds per sweep, ~1.5 min
    .venv/bin/python benchmarks/breakdown.py --only job reference
    .venv/bin/python benchmarks/breakdown.py --only job strategies    # ~3 min more
    .venv/bin/python benchmarks/breakdown.py --json benchmarks/results/breakdown.json
    .venv/bin/python benchmarks/breakdown.py --only strategies --keep /tmp/bd  # keep the folders

Cases, each the real command line in a child process, into a fresh SQLite store of its own
(the sweeps' stores made by the sweep itself, as a user's first sweep would), its folders in a
temporary directory:

- `job`: one default run, `python -m al_research` (the article's least-confident loop, k-means,
  label-fair refit), first into a fresh store, then again into the store it made;
- `make run`: `python -m al_research experiment=article_seeds` (60 jobs; `--quick`: 6);
- `lc vs random`: least-confident and random, 50 seeds, clustering off, the parallel launcher
  (100 jobs; `--quick`: 4);
- `strategies` (only with `--only ... strategies`): `experiment=strategies` on
  `--strategies-seeds` seeds (default 2: 72 jobs, 10 of them skipped as incompatible; the
  whole sweep is 10 seeds, 360 jobs);
- `reference`: a minimal TensorFlow loop, in as many child processes at once as a sweep has
  workers (the machine loaded as in a sweep), each on a sweep worker's share of the cores (TF
  threads: cores / 2): softmax regression (x W + b) from zero weights (the article's, the
  harness's), Adam (lr 0.1) as Keras writes it, full-batch epochs in one compiled while-loop,
  early stopping on the validation accuracy (patience 10, best weights restored; a fit's first
  epoch is its best yet, as in Keras's EarlyStopping and the harness: the two loops then train
  the same epochs and pick the same items, same test accuracy per seed), warm-started,
  the harness's initial set for the seed, 40 rounds of the 10 least confident; no logging, no
  harness; seeds 1-5 after a warm-up seed, per seed the median over the processes, compared
  with `make run`'s least-confident jobs of the same seeds.

Each child runs with `AL_RESEARCH_TIMINGS` set: the harness then records its phases
(al_research/process/timings.py, which lists them); a phase's own time is its wall time minus
its nested phases'. A sweep has `wall x cores` core-seconds; what no phase of any process holds
(process start, Hydra's per-job work, dispatch, idle workers) is shown as "outside phases".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import al_research  # noqa: E402, F401, I001  (TF quiet, one BLAS thread, before numpy)
from al_research.process.timings import ARITHMETIC, ENV  # noqa: E402

CORES = os.cpu_count() or 1
JOB_PARTS = ("job_setup", "import", "job")  # a job's time, as a sweep spends it


@dataclass
class Rec:
    phase: str
    start: float
    wall: float
    cpu: float
    pid: int
    label: str = ""  # a `label` phase's text (a job's run name)
    own: float = 0.0  # wall minus the nested phases'
    children: list[Rec] = field(default_factory=list)

    @property
    def end(self) -> float:
        return self.start + self.wall


def load(folder: Path) -> list[Rec]:
    """Every phase the processes recorded, nested per process (a phase holds those inside it)."""
    out: list[Rec] = []
    for path in sorted(folder.glob("*.jsonl")):
        recs = [Rec(**json.loads(line)) for line in path.read_text().splitlines() if line]
        recs.sort(key=lambda r: (r.start, -r.wall))
        stack: list[Rec] = []
        for r in recs:
            while stack and r.start >= stack[-1].end - 1e-6:
                stack.pop()
            if stack:
                stack[-1].children.append(r)
            stack.append(r)
        for r in recs:
            r.own = max(0.0, r.wall - sum(c.wall for c in r.children))
        out += recs
    return out


def own_by_phase(recs: list[Rec]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for r in recs:
        totals[r.phase] += r.own
    return dict(totals)


def inside(rec: Rec) -> list[Rec]:
    """`rec` and every phase nested in it."""
    out = [rec]
    for c in rec.children:
        out += inside(c)
    return out


def jobs(recs: list[Rec]) -> list[dict[str, float]]:
    """Per job (a `job` phase with the `job_setup` and `import` before it in its process): its
    time, its arithmetic, its loop's fits + predictions + selection, its strategy."""
    out = []
    by_pid: dict[int, list[Rec]] = defaultdict(list)
    for r in recs:
        if r.phase in JOB_PARTS:
            by_pid[r.pid].append(r)
    for parts in by_pid.values():
        pending = 0.0
        for r in sorted(parts, key=lambda r: r.start):
            if r.phase != "job":
                pending += r.wall
                continue
            nested = inside(r)
            arithmetic = sum(x.own for x in nested if x.phase in ARITHMETIC)
            loop = next((x for x in nested if x.phase == "stage:active_learning"), None)
            rounds = sum(x.own for x in inside(loop) if x.phase in ("fit", "predict", "select")
                         ) if loop else 0.0
            name = next((x.label for x in nested if x.phase == "label"), "")
            out.append({"name": name, "time": r.wall + pending, "arithmetic": arithmetic,
                        "overhead": r.wall + pending - arithmetic, "rounds": rounds,
                        "has_loop": loop is not None})
            pending = 0.0
    return out


def run_case(name: str, args: list[str], work: Path, store: Path | None = None) -> dict:
    """The command line as a child process with timings on, into `store` (default: a fresh
    one of its own); its wall seconds and its phases."""
    folder = work / "".join(c if c.isalnum() else "_" for c in name)
    timings = folder / "timings"
    store = store or folder / "mlflow.db"
    env = {**os.environ, ENV: str(timings), "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    command = [sys.executable, "-m", "al_research", *args, f"hydra.run.dir={folder / 'run'}",
               f"hydra.sweep.dir={folder / 'sweep'}"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{name}: exit {result.returncode}\n{result.stderr[-3000:]}")
    recs = load(timings)
    return {"name": name, "store": store, "wall": wall, "recs": recs}


def summarise(case: dict, cores: int) -> dict:
    """Core-seconds by phase. One process: its phases. A sweep: the main process's phases but
    `hydra` (while jobs run it waits) hold the whole machine (counted x cores); the jobs
    period (its `hydra` phase's own time) offers `cores` core-seconds per second, spent in the
    workers' phases or outside them (Hydra's per-job work, dispatch, idle workers)."""
    recs = case["recs"]
    main_pid = next((r.pid for r in recs if r.phase == "hydra"), None)
    workers = [r for r in recs if r.pid != main_pid]
    own: dict[str, float] = {}
    if workers:
        main = [r for r in recs if r.pid == main_pid]
        period = sum(r.own for r in main if r.phase == "hydra")
        own = {f"{k} (main, x{cores})": v * cores for k, v in own_by_phase(main).items()
               if k != "hydra"}
        work = own_by_phase(workers)
        own.update(work)
        own["workers: outside phases, idle"] = period * cores - sum(work.values())
    else:
        cores = 1
        own = own_by_phase(recs)
    available = case["wall"] * cores
    arithmetic = sum(v for k, v in own.items() if k in ARITHMETIC)
    return {"name": case["name"], "wall": case["wall"], "cores": cores,
            "own": own, "outside": available - sum(own.values()), "arithmetic": arithmetic,
            "overhead": available - arithmetic, "jobs": jobs(recs)}


def print_table(s: dict) -> None:
    total = s["wall"] * s["cores"]
    print(f"\n== {s['name']}: {s['wall']:.1f} s wall x {s['cores']} core(s) = {total:.1f} "
          f"core-s; {len(s['jobs'])} job(s)")
    rows = sorted(s["own"].items(), key=lambda kv: (kv[0] not in ARITHMETIC, -kv[1]))
    rows.append(("outside phases (process start, exit)", s["outside"]))
    print(f"   {'phase':<36}{'core-s':>9}{'share':>8}  kind")
    for phase, seconds in rows:
        kind = "arithmetic" if phase in ARITHMETIC else "overhead"
        print(f"   {phase:<36}{seconds:9.2f}{seconds / total:8.1%}  {kind}")
    print(f"   arithmetic {s['arithmetic']:.2f} core-s ({s['arithmetic'] / total:.1%}), overhead "
          f"{s['overhead']:.2f} core-s ({s['overhead'] / total:.1%})")
    if len(s["jobs"]) > 1:
        overheads = [j["overhead"] for j in s["jobs"]]
        print(f"   per job: median time {statistics.median(j['time'] for j in s['jobs']):.2f} s, "
              f"median overhead {statistics.median(overheads):.3f} s "
              f"(min {min(overheads):.3f}, max {max(overheads):.3f})")


def reference(seeds: list[int]) -> dict:
    """The minimal loop (module doc) in as many processes at once as a sweep has workers (the
    machine as loaded as in a sweep), each timing every seed after a warm-up seed; per seed,
    the median over the processes."""
    command = [sys.executable, __file__, "--reference-worker", *map(str, seeds)]
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                for _ in range(CORES)]
    runs = [json.loads(child.communicate()[0].splitlines()[-1]) for child in children]
    if any(child.returncode for child in children):
        sys.exit("reference: a worker failed")
    per_seed = {str(seed): {key: statistics.median(run[str(seed)][key] for run in runs)
                            for key in ("seconds", "epochs", "accuracy")} for seed in seeds}
    return {"per_seed": per_seed, "processes": len(runs),
            **{key: statistics.median(r[key] for r in per_seed.values())
               for key in ("seconds", "epochs", "accuracy")}}


def reference_worker(seeds: list[int]) -> dict:
    from al_research.config import DataConfig
    from al_research.data import make_split
    from al_research.runtime import configure_tensorflow

    configure_tensorflow(max(1, CORES // 2), False)  # a sweep worker's share
    out = {}
    for i, seed in enumerate([seeds[0] - 1, *seeds]):
        split = make_split(DataConfig(), seed)
        seconds, epochs, accuracy = reference_loop(split, seed)
        if i:
            out[str(seed)] = {"seconds": seconds, "epochs": epochs, "accuracy": accuracy}
    return out


def reference_loop(split, seed: int, rounds: int = 40, batch: int = 10,
                   patience: int = 10, max_epochs: int = 1000) -> tuple[float, int, float]:
    """The article's loop, minimal (module doc): seconds, epochs, final test accuracy. The
    weights start at zero (the article's model, as the harness's), the initial set is the
    harness's (the seed's stream 1), so a seed trains about as many epochs in both."""
    import numpy as np

    from al_research.runtime import tf

    x = tf.constant(split.pool_x, tf.float32)
    y = tf.constant(split.pool_y, tf.int64)
    vx, vy = tf.constant(split.val_x, tf.float32), tf.constant(split.val_y, tf.int64)
    tx, ty = tf.constant(split.test_x, tf.float32), tf.constant(split.test_y, tf.int64)
    d, c = split.pool_x.shape[1], split.n_classes
    fit = _compiled_fit()
    rng = np.random.default_rng([seed, 1])
    labelled = np.sort(rng.choice(len(split.pool_y), 10, replace=False))
    state = (tf.zeros([d, c]), tf.zeros([c]), tf.zeros([d, c]), tf.zeros([c]),
             tf.zeros([d, c]), tf.zeros([c]), tf.constant(0.0))
    epochs, started = 0, time.perf_counter()
    for r in range(rounds):
        idx = tf.constant(labelled)
        *state, n = fit(tf.gather(x, idx), tf.gather(y, idx), vx, vy, *state,
                        tf.constant(patience), tf.constant(max_epochs))
        epochs += int(n)
        w, b = state[0], state[1]
        accuracy = float(tf.reduce_mean(tf.cast(tf.argmax(tx @ w + b, 1) == ty, tf.float32)))
        if r < rounds - 1:
            rest = np.setdiff1d(np.arange(len(split.pool_y)), labelled)
            confidence = tf.reduce_max(tf.nn.softmax(tf.gather(x, rest) @ w + b), 1).numpy()
            labelled = np.concatenate([labelled, rest[np.argsort(confidence, kind="stable")
                                                      [:batch]]])
    return time.perf_counter() - started, epochs, accuracy


_FIT = []


def _compiled_fit():
    """One compiled full fit: Adam (lr 0.1, Keras defaults) epochs until the validation
    accuracy has not improved for `patience` epochs, the best weights restored."""
    if _FIT:
        return _FIT[0]
    from al_research.runtime import tf

    lr, beta1, beta2, eps = 0.1, 0.9, 0.999, 1e-7

    def accuracy(w, b, vx, vy):
        return tf.reduce_mean(tf.cast(tf.argmax(vx @ w + b, 1) == vy, tf.float32))

    @tf.function(reduce_retracing=True)
    def fit(x, y, vx, vy, w, b, mw, mb, vw, vb, step, patience, max_epochs):
        best, best_w, best_b = tf.constant(-1.0), w, b  # a fit's first epoch is its best yet
        since, epoch = tf.constant(0), tf.constant(0)
        while epoch < max_epochs and since < patience:
            with tf.GradientTape() as tape:
                tape.watch([w, b])
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    y, x @ w + b))
            gw, gb = tape.gradient(loss, [w, b])
            step = step + 1.0  # Adam as Keras writes it
            mw, mb = mw + (gw - mw) * (1 - beta1), mb + (gb - mb) * (1 - beta1)
            vw, vb = vw + (gw ** 2 - vw) * (1 - beta2), vb + (gb ** 2 - vb) * (1 - beta2)
            alpha = lr * tf.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
            w = w - mw * alpha / (tf.sqrt(vw) + eps)
            b = b - mb * alpha / (tf.sqrt(vb) + eps)
            acc = accuracy(w, b, vx, vy)
            better = acc > best
            best = tf.where(better, acc, best)
            best_w, best_b = tf.where(better, w, best_w), tf.where(better, b, best_b)
            since = tf.where(better, 0, since + 1)
            epoch += 1
        return best_w, best_b, mw, mb, vw, vb, step, epoch

    _FIT.append(fit)
    return fit


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds per sweep")
    parser.add_argument("--only", nargs="+", default=["job", "make_run", "lc_random",
                                                      "reference"])
    parser.add_argument("--strategies-seeds", type=int, default=2,
                        help="seeds of the `strategies` case (--only strategies; 36 jobs a seed)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", type=Path, help="run the cases in this folder and keep it "
                        "(their stores, sweep folders and reports); default: a temporary one")
    parser.add_argument("--reference-worker", nargs="+", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_worker:
        print(json.dumps(reference_worker(args.reference_worker)))
        return 0
    seeds = "range(0,2)" if args.quick else None
    out: dict = {}
    with contextlib.ExitStack() as stack:
        work = args.keep or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="breakdown-")))
        if "job" in args.only:
            fresh = run_case("job, fresh store", [], work)
            again = run_case("job, existing store", [], work, fresh["store"])
            for case in (fresh, again):
                out[case["name"]] = summarise(case, 1)
                print_table(out[case["name"]])
        if "make_run" in args.only:
            extra = [f"seed={seeds}"] if seeds else []
            out["make run"] = summarise(run_case("make run", ["experiment=article_seeds",
                                                              *extra], work), CORES)
            print_table(out["make run"])
        if "lc_random" in args.only:
            out["lc vs random"] = summarise(run_case("lc vs random", [
                "-m", "strategy=least_confident,random", f"seed={seeds or 'range(0,50)'}",
                "stages.kmeans.enabled=false", "hydra/launcher=parallel"], work), CORES)
            print_table(out["lc vs random"])
        if "strategies" in args.only:
            name = f"strategies ({args.strategies_seeds} seeds)"
            out[name] = summarise(run_case(name, [
                "experiment=strategies", f"seed=range(0,{args.strategies_seeds})"], work), CORES)
            print_table(out[name])
    if "reference" in args.only:
        out["reference"] = reference([1, 2, 3, 4, 5])
        r = out["reference"]
        print(f"\n== reference loop (minimal TF, no harness; {r['processes']} processes at once, "
              f"as a sweep's workers): {r['seconds']:.3f} s per seed's 40 rounds (median of "
              f"seeds 1-5), {r['epochs']:.0f} epochs, test accuracy {r['accuracy']:.4f}")
        for seed, x in r["per_seed"].items():
            print(f"   seed {seed}: {x['seconds']:.3f} s, {x['epochs']:.0f} epochs, "
                  f"test accuracy {x['accuracy']:.4f}")
    targets(out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for s in out.values():
            s.pop("recs", None)
        args.json.write_text(json.dumps(out, indent=2, default=float))
    return 0


def targets(out: dict) -> None:
    print("\n== targets")
    job = out.get("job, existing store")
    start = None
    if job is not None:  # one process start: the whole process but its job's own work
        imports = job["own"].get("import", 0.0)  # TensorFlow, which the job imports itself
        start = job["wall"] - sum(j["time"] for j in job["jobs"]) + imports
        print(f"   one process start: {start:.2f} s (a default run's process minus its job's "
              f"own work: Python, Hydra, MLflow and TensorFlow's import, {imports:.2f} s, which "
              f"a sweep's fork server does before its first job; without TensorFlow's import, "
              f"as counted before issue 19's second round: {start - imports:.2f} s)")
    for name in ("make run", "lc vs random", *(k for k in out if k.startswith("strategies"))):
        s = out.get(name)
        if s is None or start is None:
            continue
        bound = 1.5 * s["arithmetic"] / s["cores"] + start
        print(f"   {name}: wall {s['wall']:.1f} s <= 1.5 x arithmetic {s['arithmetic']:.1f} "
              f"core-s / {s['cores']} + start {start:.1f} s = {bound:.1f} s: "
              f"{verdict(s['wall'] <= bound)}")
        overhead = statistics.median(j["overhead"] for j in s["jobs"])
        print(f"   {name}: median per-job overhead {overhead:.3f} s <= 0.15 s: "
              f"{verdict(overhead <= 0.15)}")
    s, ref = out.get("make run"), out.get("reference")
    if s is not None and ref is not None:  # the same seeds' least-confident rounds
        pairs = [(j["rounds"], ref["per_seed"][j["name"].rsplit("-s", 1)[1]]["seconds"])
                 for j in s["jobs"] if j["name"].startswith("least_confident-softmax-s")
                 and j["name"].rsplit("-s", 1)[1] in ref["per_seed"] and j["rounds"] > 0]
        if pairs:
            ratio = statistics.median(h / r for h, r in pairs)
            print(f"   one seed's rounds (fits, predictions, selection; make run's least-"
                  f"confident jobs of seeds {', '.join(ref['per_seed'])}) vs the reference, the "
                  f"same seeds: median {ratio:.2f}x (harness "
                  f"{statistics.median(h for h, _ in pairs):.3f} s, reference "
                  f"{statistics.median(r for _, r in pairs):.3f} s) <= 1.3x: "
                  f"{verdict(ratio <= 1.3)}")
    if s is not None and job is not None:
        ratio = s["wall"] / out["job, fresh store"]["wall"]
        print(f"   make run's whole process {s['wall']:.1f} s = {ratio:.1f}x one default run's "
              f"{out['job, fresh store']['wall']:.1f} s <= 6x: {verdict(ratio <= 6)}")


if __name__ == "__main__":
    sys.exit(main())
