"""The harness against its peers, one protocol, one machine, one invocation.

    .venv/bin/python benchmarks/compare_peers.py              # 5 seeds, Keras recipe on 2
    .venv/bin/python benchmarks/compare_peers.py --quick      # 2 seeds, Keras on 1, no CLI runs

Protocol (every loop): the embedded MNIST 5k split by `make_split` with `DataConfig` defaults
(pool 4000, test 400, validation 600), 10 random initial labels (the same set for every loop:
`sort(default_rng([seed, 1]).choice(4000, 10, replace=False))`), then 39 rounds of the 10 least
confident pool items (`strategies.uncertainty.LeastConfident`, same tie-breaking) up to 400
labels; test accuracy after the fit on 400 labels.

  harness   models.softmax.SoftmaxRegression + loop.run_active_learning, no MLflow: what
            `run(cfg)` runs. Warm start, validation early stopping, patience 10.
  keras     the article's recipe: keras.Sequential([Dense(10, softmax)]), Adam(0.1), sparse
            categorical cross-entropy, model.fit(epochs=1000, batch_size=len(x), validation_data,
            EarlyStopping(val_accuracy, patience=10, restore_best_weights=True)) per round,
            warm-started across rounds, model.predict on the unlabelled pool per round.
  sklearn   what a modAL user runs: ActiveLearner(LogisticRegression(max_iter=1000)) refits the
            estimator from scratch on all labels at every teach() (lbfgs, C=1), predict_proba on
            the unlabelled pool per round.

Each loop runs in a child process of its own, so each gets its usual settings: the harness as
`run(cfg)` configures TF (runtime.configure_tensorflow: TF's default threads, op determinism,
oneDNN off as al_research.process.env sets it); the Keras recipe as a Keras user has it (TF
defaults: oneDNN on, no op determinism); scikit-learn with OpenBLAS on one thread
(al_research.process.env; on this 2-core machine multithreaded OpenBLAS is much slower on
these small matrices). Every child
prints its thread settings. Times are wall-clock seconds per experiment inside the process
(data loading excluded; process start-up excluded: it is timed separately, for the CLI).

The harness's MLflow cost: the real `al_research.experiment.runner.run(cfg)` (Hydra-composed from
conf/, clustering off, histograms on, into a temporary SQLite store created beforehand) on the
same seeds, in the harness's child after its bare loops, with the time spent in the RunRecorder,
the MLflow run's opening and closing, the store check and the plots
measured by wrapping them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import al_research  # noqa: E402, F401, I001  (before numpy: BLAS reads its threads on load)
import numpy as np  # noqa: E402

INITIAL, BATCH, BUDGET = 10, 10, 400
ACCURACY_TOLERANCE = 0.01  # "equal accuracy": within 1 point (4 of the 400 test digits)
TARGETS = {"keras": 50.0, "sklearn": 2.0}  # minimum speed-ups of the harness
LOGGING_SHARE_MAX = 0.20


# -- the shared protocol ----------------------------------------------------------------------
def protocol(seed: int):
    """One seed's split and initial labelled set, identical for every loop."""
    from al_research.config import DataConfig
    from al_research.data import make_split

    split = make_split(DataConfig(name="mnist_5k"), seed)
    rng = np.random.default_rng([seed, 1])
    initial = np.sort(rng.choice(len(split.pool_x), INITIAL, replace=False))
    return split, initial


def peer_loop(fit, proba, split, initial) -> float:
    """The harness's loop, for a peer's fit/proba: label, fit, select least confident, repeat."""
    from al_research.strategies.base import top_k
    from al_research.strategies.uncertainty import least_confidence

    labelled = np.zeros(len(split.pool_x), dtype=bool)
    labelled[initial] = True
    while True:
        idx = np.flatnonzero(labelled)
        fit(split.pool_x[idx], split.pool_y[idx])
        spent = int(labelled.sum())
        if spent >= BUDGET:
            break
        unlabelled = np.flatnonzero(~labelled)
        chosen = top_k(least_confidence(proba(split.pool_x[unlabelled])),
                       min(BATCH, BUDGET - spent))
        labelled[unlabelled[chosen]] = True
    return float((proba(split.test_x).argmax(axis=1) == split.test_y).mean())


def thread_settings() -> dict:
    out = {k: os.environ.get(k, "unset") for k in
           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")}
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        intra = tf.config.threading.get_intra_op_parallelism_threads()
        inter = tf.config.threading.get_inter_op_parallelism_threads()
        out["tf_intra_op"] = intra or f"default ({os.cpu_count()} cores)"
        out["tf_inter_op"] = inter or "default"
        with contextlib.suppress(Exception):
            out["tf_op_determinism"] = bool(tf.config.experimental.is_op_determinism_enabled())
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_info

        out["blas"] = sorted(f"{Path(p['filepath']).name.split('-')[0]}:{p['num_threads']}"
                             for p in threadpool_info())
    return out


# -- children: one loop each ------------------------------------------------------------------
def child_harness(seeds: list[int], run_seeds: list[int], tf_threads: int | None) -> dict:
    from al_research.experiment.loop import Evaluation, LabelledPool, run_active_learning
    from al_research.experiment.oracle import Oracle
    from al_research.models.softmax import SoftmaxRegression
    from al_research.runtime import configure_tensorflow, seed_everything
    from al_research.strategies.uncertainty import LeastConfident

    configure_tensorflow(tf_threads, True)  # what run(cfg) does with runtime.tf_threads
    experiments = []
    for seed in seeds:
        split, initial = protocol(seed)
        seed_everything(seed)
        start, cpu = time.perf_counter(), time.process_time()
        model = SoftmaxRegression(split.input_shape, split.n_classes,
                                  (split.val_x, split.val_y))
        pool = LabelledPool(split.pool_x, Oracle(split.pool_y))
        held_out = Evaluation(split.test_x, split.test_y, split.val_x, split.val_y)
        rounds = run_active_learning(model, pool, held_out, LeastConfident(), initial, BATCH,
                                     BUDGET, np.random.default_rng([seed, 2]))
        experiments.append({
            "seed": seed, "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu, "accuracy": rounds[-1].test_accuracy,
            "labels": len(pool.indices), "rounds": len(rounds),
            "epochs": sum(r.epochs for r in rounds),
            "fit_seconds": sum(r.fit_seconds for r in rounds),
            "fit_traces": model.tracing_counts()["fit"],
        })
    return {"experiments": experiments, "threads": thread_settings(),
            "runs": instrumented_runs(run_seeds) if run_seeds else []}


class Stopwatch:
    """Wall time by category, counting only the outermost of nested timed calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._depth = 0

    @contextlib.contextmanager
    def timing(self, category: str):
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.seconds[category] = (self.seconds.get(category, 0.0)
                                          + time.perf_counter() - start)

    def wrap(self, category: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self.timing(category):
                return fn(*args, **kwargs)
        return timed


def instrumented_runs(seeds: list[int]) -> list[dict]:
    """`experiment.run(cfg)` per seed, with MLflow, CSV and plotting time measured."""
    from hydra import compose, initialize_config_dir

    from al_research import tracking
    from al_research.experiment import runner as experiment
    from al_research.tracking import histograms, plots

    watch = Stopwatch()
    for name in ("log_params", "log_metrics", "flush", "log_image", "log_figure",
                 "log_text", "log_dict", "log_file", "close"):
        if hasattr(tracking.RunRecorder, name):  # (older versions lack some)
            setattr(tracking.RunRecorder, name,
                    watch.wrap("mlflow", getattr(tracking.RunRecorder, name)))
    for name in ("__init__", "render", "close"):
        setattr(histograms.ConfidenceHistogram, name,
                watch.wrap("plots", getattr(histograms.ConfidenceHistogram, name)))
    for name in ("learning_curve", "centroid_grid", "confusion_matrix_figure"):
        setattr(plots, name, watch.wrap("plots", getattr(plots, name)))
    experiment.prepare_store = watch.wrap("mlflow", experiment.prepare_store)
    experiment.make_split = watch.wrap("data", experiment.make_split)
    original_run = experiment.mlflow_run

    @contextlib.contextmanager
    def timed_mlflow_run(*args, **kwargs):
        manager = original_run(*args, **kwargs)
        with watch.timing("mlflow"):
            recorder = manager.__enter__()
        try:
            yield recorder
        except BaseException:
            with watch.timing("mlflow"):
                if not manager.__exit__(*sys.exc_info()):
                    raise
        else:
            with watch.timing("mlflow"):
                manager.__exit__(None, None, None)

    experiment.mlflow_run = timed_mlflow_run

    store = Path(tempfile.mkdtemp(prefix="compare-peers-store-"))
    uri = f"sqlite:///{store / 'mlflow.db'}"
    tracking.prepare_store(uri, "benchmark")  # the one-time schema creation is not a run's cost
    runs = []
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for seed, drawn in [(s, "true") for s in seeds] + [(s, "false") for s in seeds]:
            cfg = compose(config_name="config", overrides=[
                "stages.kmeans.enabled=false", f"tracking.uri={uri}", f"seed={seed}",
                "tracking.experiment_name=benchmark", f"tracking.histograms={drawn}"])
            watch.seconds.clear()
            start, cpu = time.perf_counter(), time.process_time()
            accuracy = experiment.run(cfg)
            runs.append({"seed": seed, "seconds": time.perf_counter() - start,
                         "cpu_seconds": time.process_time() - cpu, "accuracy": accuracy,
                         **{f"{k}_seconds": v for k, v in watch.seconds.items()},
                         "histograms": bool(cfg.tracking.histograms)})
    return runs


def child_keras(seeds: list[int]) -> dict:
    import keras

    experiments = []
    for seed in seeds:
        split, initial = protocol(seed)
        keras.utils.set_random_seed(seed)
        start, cpu = time.perf_counter(), time.process_time()
        model = keras.Sequential([keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.1),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])

        def fit(x, y, model=model, split=split):
            stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=10,
                                                 restore_best_weights=True)
            model.fit(x, y, epochs=1000, batch_size=len(x), callbacks=[stop], verbose=0,
                      validation_data=(split.val_x, split.val_y))

        def proba(x, model=model):
            return model.predict(x, verbose=0)

        accuracy = peer_loop(fit, proba, split, initial)
        experiments.append({"seed": seed, "seconds": time.perf_counter() - start,
                            "cpu_seconds": time.process_time() - cpu, "accuracy": accuracy})
    return {"experiments": experiments, "threads": thread_settings()}


def child_sklearn(seeds: list[int], numpy_blas_threads: int | None = None) -> dict:
    from sklearn.linear_model import LogisticRegression

    if numpy_blas_threads:  # numpy's OpenBLAS on more threads, SciPy's (L-BFGS-B) left alone
        from threadpoolctl import ThreadpoolController

        controller = ThreadpoolController()
        numpy_blas = [lib for lib in controller.lib_controllers
                      if lib.internal_api == "openblas" and "numpy" in lib.filepath]
        for lib in numpy_blas:
            lib.set_num_threads(numpy_blas_threads)

    experiments = []
    for seed in seeds:
        split, initial = protocol(seed)
        start, cpu = time.perf_counter(), time.process_time()
        learner = {}

        def fit(x, y, learner=learner):  # modAL's teach(): estimator.fit on every label so far
            learner["clf"] = LogisticRegression(max_iter=1000).fit(x, y)

        def proba(x, learner=learner):
            clf = learner["clf"]
            full = np.zeros((len(x), 10))  # columns for classes not yet labelled stay 0
            full[:, clf.classes_] = clf.predict_proba(x)
            return full

        accuracy = peer_loop(fit, proba, split, initial)
        experiments.append({"seed": seed, "seconds": time.perf_counter() - start,
                            "cpu_seconds": time.process_time() - cpu, "accuracy": accuracy})
    return {"experiments": experiments, "threads": thread_settings()}


# -- the parent -------------------------------------------------------------------------------
def run_child(peer: str, seeds: list[int], extra: list[str], env: dict | None = None) -> dict:
    args = [sys.executable, __file__, "--child", peer, "--child-seeds", ",".join(map(str, seeds)),
            *extra]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"the {peer} child failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed_process(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"failed: {' '.join(args)}")
    return seconds


def cli_timings(repeats: int) -> dict:
    """`python -m al_research` as a whole process, 40 rounds, wall clock."""
    from al_research.tracking import prepare_store

    work = Path(tempfile.mkdtemp(prefix="compare-peers-cli-"))
    uri = f"sqlite:///{work / 'mlflow.db'}"
    base = [sys.executable, "-m", "al_research", f"tracking.uri={uri}"]
    out = {"import_seconds": min(timed_process(
        [sys.executable, "-c", "import al_research.experiment.runner"]) for _ in range(repeats))}
    out["fresh_store_seconds"] = timed_process(
        [*base, "stages.kmeans.enabled=false", f"hydra.run.dir={work}/fresh"])
    prepare_store(uri, "al-research")
    for clustering in ("true", "false"):
        out[f"clustering_{clustering}_seconds"] = min(timed_process(
            [*base, f"stages.kmeans.enabled={clustering}",
             f"hydra.run.dir={work}/c{clustering}{i}"])
            for i in range(repeats))
    return out


def mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def row(label: str, experiments: list[dict]) -> str:
    return (f"{label:<46}{len(experiments):>6}{mean(e['seconds'] for e in experiments):>14.3f}"
            f"{mean(e['cpu_seconds'] for e in experiments):>8.2f}"
            f"{mean(e['accuracy'] for e in experiments):>10.4f}")


def steady(experiments: list[dict]) -> list[dict]:
    """All but a process's first experiment (which pays for tracing), if there are others."""
    return experiments[1:] or experiments


def report(results: dict, args) -> None:
    h, k = results["harness"], results.get("keras")
    hx = h["experiments"]
    h_steady = mean(e["seconds"] for e in steady(hx))
    h_all = mean(e["seconds"] for e in hx)
    cores = os.cpu_count() or 1
    print(f"\n== al-research vs peers: seeds {[e['seed'] for e in hx]}, {BUDGET} labels "
          f"({INITIAL} random + {(BUDGET - INITIAL) // BATCH} rounds of {BATCH} least-confident)"
          " ==")
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}, "
          + ", ".join(f"{m} {v}" for m, v in results["versions"].items()))
    for key in ("harness", "harness_1thread", "sklearn_1", f"sklearn_{cores}", "sklearn_mixed",
                "keras"):
        if results.get(key):
            print(f"threads [{key}]: " + ", ".join(
                f"{name}={value}" for name, value in results[key]["threads"].items()))
    print()
    print(f"{'loop (s/experiment: wall clock in the process)':<46}{'seeds':>6}"
          f"{'s/experiment':>14}{'CPU s':>8}{'test acc':>10}")
    print(row("harness, 1st experiment (incl. tracing)", hx[:1]))
    if len(hx) > 1:
        print(row("harness, the rest (mean)", hx[1:]))
    print(row("harness, all (mean)", hx))
    fit_s, epochs = mean(e["fit_seconds"] for e in steady(hx)), mean(e["epochs"] for e in hx)
    print(f"{'  of which the compiled fits':<46}{'':>6}{fit_s:>14.3f}   {epochs:.0f} "
          f"epochs/experiment; traces of the last model's fit function: {hx[-1]['fit_traces']}")
    if results.get("harness_1thread"):
        h1 = results["harness_1thread"]["experiments"]
        print(row("harness, runtime.tf_threads=1, the rest", steady(h1)))
    for key, label in (("sklearn_1", "scikit-learn, BLAS on 1 thread"),
                       (f"sklearn_{cores}", f"scikit-learn, BLAS on {cores} threads"),
                       ("sklearn_mixed", f"scikit-learn, numpy BLAS {cores}, SciPy BLAS 1")):
        if results.get(key) and (key == "sklearn_1" or cores > 1):
            print(row(label, results[key]["experiments"]))
    if k:
        print(row("Keras recipe (the article's)", k["experiments"]))
        print(f"  the Keras recipe ran on seeds {[e['seed'] for e in k['experiments']]} only "
              "(--keras-seeds N; it is slow)")
    print("  scikit-learn: LogisticRegression(max_iter=1000), lbfgs, C=1, refit from scratch each "
          "round (modAL's teach()); the targets use its faster BLAS setting")

    print(f"\ntargets (speed-up = the peer's s/experiment over the harness's; equal accuracy = "
          f"within {ACCURACY_TOLERANCE:.2f}, on the seeds the peer ran):")
    by_seed = {e["seed"]: e for e in hx}
    peers = {"keras": ("the Keras recipe", k),
             "sklearn": ("scikit-learn", results.get("sklearn"))}
    for name, (label, peer) in peers.items():
        if not peer:
            print(f"  harness vs {label}: not run")
            continue
        pe = peer["experiments"]
        peer_s = mean(e["seconds"] for e in pe)
        speed_all, speed_steady = peer_s / h_all, peer_s / h_steady
        acc_h = mean(by_seed[e["seed"]]["accuracy"] for e in pe)
        acc_p = mean(e["accuracy"] for e in pe)
        print(f"  harness vs {label}: {speed_all:.1f}x faster counting the harness's first "
              f"(tracing) experiment, {speed_steady:.1f}x without "
              f"[>= {TARGETS[name]:g}x: {verdict(speed_all >= TARGETS[name])}]; "
              f"accuracy {acc_h:.4f} vs {acc_p:.4f} "
              f"[{verdict(acc_h >= acc_p - ACCURACY_TOLERANCE)}]")

    all_runs = h.get("runs") or []
    runs = [r for r in all_runs if r["histograms"]]
    plain = [r for r in all_runs if not r["histograms"]]
    if runs:
        print("\nMLflow logging and plotting inside the real run(cfg) (clustering off, a "
              "histogram image per round; images are encoded on a background thread: waiting "
              "for it counts):")
        print(f"{'seed':>4}{'run s':>8}{'data s':>8}{'bare loop s':>12}{'mlflow s':>10}"
              f"{'plots s':>9}{'logging':>9}{'w/o data':>10}{'CPU run/loop':>14}"
              f"{'same acc':>10}")
        shares, shares_wo = [], []
        for run in runs:
            bare = by_seed.get(run["seed"])
            logging_s = run.get("mlflow_seconds", 0) + run.get("plots_seconds", 0)
            shares.append(logging_s / run["seconds"])
            shares_wo.append(logging_s / (run["seconds"] - run.get("data_seconds", 0)))
            same = "-" if not bare else ("yes" if bare["accuracy"] == run["accuracy"] else "NO")
            print(f"{run['seed']:>4}{run['seconds']:>8.3f}{run.get('data_seconds', 0):>8.3f}"
                  f"{bare['seconds'] if bare else float('nan'):>12.3f}"
                  f"{run.get('mlflow_seconds', 0):>10.3f}{run.get('plots_seconds', 0):>9.3f}"
                  f"{100 * shares[-1]:>8.1f}%"
                  f"{100 * shares_wo[-1]:>9.1f}%"
                  f"{run['cpu_seconds']:>8.2f}/{bare['cpu_seconds'] if bare else 0:.2f}"
                  f"{same:>10}")
        later = runs[1:] or runs  # the first run(cfg) in the process draws the histogram axes
        wo = mean(r["seconds"] - r.get("data_seconds", 0) for r in later)
        bare_steady = mean(by_seed[r["seed"]]["seconds"] for r in later if r["seed"] in by_seed)
        print(f"  logging + plotting: {100 * mean(shares):.1f}% of run(cfg) "
              f"[< {100 * LOGGING_SHARE_MAX:.0f}%: {verdict(mean(shares) < LOGGING_SHARE_MAX)}]; "
              f"{100 * mean(shares_wo):.1f}% of it without the data loading "
              f"[{verdict(mean(shares_wo) < LOGGING_SHARE_MAX)}]")
        print(f"  run(cfg) without the data loading: {wo:.3f} s vs the bare loop's "
              f"{bare_steady:.3f} s on the same seeds (+{100 * (wo / bare_steady - 1):.0f}%)")
    if plain:
        share = mean((r.get("mlflow_seconds", 0) + r.get("plots_seconds", 0)) / r["seconds"]
                     for r in plain)
        share_wo = mean((r.get("mlflow_seconds", 0) + r.get("plots_seconds", 0))
                        / (r["seconds"] - r.get("data_seconds", 0)) for r in plain)
        wo = mean(r["seconds"] - r.get("data_seconds", 0) for r in plain)
        print(f"  with tracking.histograms=false: logging + plotting {100 * share:.1f}% of "
              f"run(cfg), {100 * share_wo:.1f}% without the data loading; run(cfg) without the "
              f"data loading {wo:.3f} s")

    cli = results.get("cli")
    if cli:
        print(f"\n`python -m al_research` as a whole process (40 rounds, wall clock, best of "
              f"{args.cli_repeats}):")
        print(f"  python -c 'import al_research.experiment.runner' (TF, MLflow, matplotlib): "
              f"{cli['import_seconds']:.2f} s")
        print(f"  clustering on:  {cli['clustering_true_seconds']:.2f} s")
        print(f"  clustering off: {cli['clustering_false_seconds']:.2f} s")
        print(f"  clustering off, into a fresh store (creates the SQLite schema): "
              f"{cli['fresh_store_seconds']:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--keras-seeds", type=int, default=2,
                        help="seeds for the slow Keras recipe (default 2; 0 skips it)")
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, Keras on 1, no whole-process CLI timings")
    parser.add_argument("--no-cli", action="store_true", help="skip the whole-process timings")
    parser.add_argument("--cli-repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--child", choices=["harness", "keras", "sklearn"], help=argparse.SUPPRESS)
    parser.add_argument("--child-seeds", help=argparse.SUPPRESS)
    parser.add_argument("--child-run-seeds", default="", help=argparse.SUPPRESS)
    parser.add_argument("--child-tf-threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-numpy-blas-threads", type=int, default=None,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        seeds = [int(s) for s in args.child_seeds.split(",") if s]
        if args.child == "harness":
            run_seeds = [int(s) for s in args.child_run_seeds.split(",") if s]
            out = child_harness(seeds, run_seeds, args.child_tf_threads)
        else:
            out = (child_keras(seeds) if args.child == "keras"
                   else child_sklearn(seeds, args.child_numpy_blas_threads))
        print(json.dumps(out, default=float))
        return 0

    if args.quick:
        args.seeds, args.keras_seeds = min(args.seeds, 2), min(args.keras_seeds, 1)
        args.no_cli = True
    seeds = list(range(args.seeds))
    keras_seeds = seeds[: args.keras_seeds]
    from importlib.metadata import version

    results: dict = {"versions": {m: version(m) for m in (
        "tensorflow", "keras", "scikit-learn", "mlflow", "numpy")}}
    t0 = time.perf_counter()
    print(f"harness: seeds {seeds}, then run(cfg) on the same seeds ...", flush=True)
    results["harness"] = run_child("harness", seeds, ["--child-run-seeds",
                                                      ",".join(map(str, seeds))])
    print(f"harness with runtime.tf_threads=1: seeds {seeds} ...", flush=True)
    results["harness_1thread"] = run_child("harness", seeds, ["--child-tf-threads", "1"])
    cores = str(os.cpu_count() or 1)
    for threads in ("1", cores):
        print(f"scikit-learn, BLAS on {threads} thread(s): seeds {seeds} ...", flush=True)
        results[f"sklearn_{threads}"] = run_child("sklearn", seeds, [], env={
            var: threads for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    if cores != "1":
        print(f"scikit-learn, numpy's BLAS on {cores} threads, SciPy's on 1: seeds {seeds} ...",
              flush=True)
        results["sklearn_mixed"] = run_child("sklearn", seeds,
                                             ["--child-numpy-blas-threads", cores])
    # the targets compare with scikit-learn at its fastest setting
    results["sklearn"] = min(
        (results[key] for key in ("sklearn_1", f"sklearn_{cores}", "sklearn_mixed")
         if key in results), key=lambda r: mean(e["seconds"] for e in r["experiments"]))
    if keras_seeds:
        print(f"Keras recipe: seeds {keras_seeds} (slow) ...", flush=True)
        # a Keras user's TF: oneDNN on (TF's default on x86 Linux), no op determinism
        results["keras"] = run_child("keras", keras_seeds, [], env={"TF_ENABLE_ONEDNN_OPTS": "1"})
    if not args.no_cli:
        print("whole-process CLI runs ...", flush=True)
        results["cli"] = cli_timings(args.cli_repeats)
    report(results, args)
    print(f"\n(benchmark wall time {time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
