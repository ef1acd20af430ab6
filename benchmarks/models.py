"""The network models (MLP, CNN) against the same networks trained as a Keras user would.

    .venv/bin/python benchmarks/models.py                     # mlp and cnn, seeds 0-4
    .venv/bin/python benchmarks/models.py --quick             # seeds 0-1, Keras recipe on seed 0
    .venv/bin/python benchmarks/models.py --models cnn --set batch_size=64 \
        --set early_stopping.patience=10 --set params.filters=[16,32]    # try other settings

Protocol (every loop): the embedded MNIST 5k split by `make_split(DataConfig(name="mnist_5k"),
seed)` (pool 4000, test 400, validation 600); 10 random initial labels
(`np.sort(default_rng([seed, 1]).choice(4000, 10, replace=False))`, as the harness draws them),
then 39 rounds of the 10 least confident unlabelled pool items
(`np.argsort(proba.max(1), kind="stable")[:10]`) up to 400 labels; test accuracy after the last
fit. Early stopping watches the validation set. Then the ground truth: a fresh model (same
seed) fitted once on all 4000 pool items, its test accuracy.

  ours   the model class and settings of `al_research/conf/model/<name>.yaml` (`--set` overrides
         them): warm start, Adam, compiled fits (trainer.py), `predict_proba` on the
         unlabelled pool each round.
  keras  the same layers as `keras.Sequential`, compiled with Adam(same lr) and sparse
         categorical cross-entropy, `model.fit(x, y, epochs=max_epochs, validation_data=val,
         callbacks=[EarlyStopping("val_accuracy", patience=10, restore_best_weights=True)],
         verbose=0)` each round, with Keras's default batch size (32; `--keras-batch-size ours`
         passes ours instead, len(x) for full batch), warm-started (one model per experiment),
         `model.predict(unlabelled, verbose=0)` each round.

Each loop runs in a child process of its own: ours with the harness's settings
(`runtime.configure_tensorflow`: TF's default threads, op determinism; oneDNN as
`al_research.process.env` leaves it, off unless TF_ENABLE_ONEDNN_OPTS is set: `--onednn` adds a
row with it on), the Keras
recipe as a Keras user has it (TF's defaults: oneDNN on, no op determinism). Times are wall-clock
seconds per experiment in the process: data loading and process start-up excluded, a process's
first experiment (which traces the compiled functions) included and also shown apart.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import al_research  # noqa: E402, F401, I001  (before numpy: BLAS reads its threads on load)
import numpy as np  # noqa: E402

INITIAL, BATCH, BUDGET = 10, 10, 400
KERAS_PATIENCE = 10
ACCURACY_TOLERANCE = 0.01  # "equal accuracy": within 1 point (4 of the 400 test digits)
SPEEDUP_TARGET = 10.0
GROUND_TRUTH_TARGET = {"mlp": 0.93, "cnn": 0.95}
CNN_SECONDS_TARGET = 60.0


# -- the protocol ------------------------------------------------------------------------------
def protocol(seed: int):
    """One seed's split and initial labelled set, identical for every loop."""
    from al_research.config import DataConfig
    from al_research.data import make_split

    split = make_split(DataConfig(name="mnist_5k"), seed)
    rng = np.random.default_rng([seed, 1])
    initial = np.sort(rng.choice(len(split.pool_x), size=INITIAL, replace=False))
    return split, initial


def active_learning(fit, proba, split, initial) -> tuple[float, list[int]]:
    """Label, fit, pick the least confident, repeat; (test accuracy at BUDGET, epochs/round)."""
    labelled = np.zeros(len(split.pool_x), dtype=bool)
    labelled[initial] = True
    epochs = []
    while True:
        idx = np.flatnonzero(labelled)
        epochs.append(fit(split.pool_x[idx], split.pool_y[idx]))
        if labelled.sum() >= BUDGET:
            break
        unlabelled = np.flatnonzero(~labelled)
        confidence = proba(split.pool_x[unlabelled]).max(axis=1)
        labelled[unlabelled[np.argsort(confidence, kind="stable")[:BATCH]]] = True
    accuracy = float((proba(split.test_x).argmax(axis=1) == split.test_y).mean())
    return accuracy, epochs


def model_config(name: str, overrides: list[str]):
    """The model's yaml from al_research/conf/model/, with `--set key=value` overrides."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(ROOT / "al_research" / "conf" / "model" / f"{name}.yaml")
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))


def ours_parts(cfg):
    """(class, TrainingSpec, Params) from a model config."""
    import importlib

    from omegaconf import OmegaConf

    from al_research.models.base import TrainingSpec

    module, _, name = cfg._target_.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    stopping = cfg.early_stopping
    spec = TrainingSpec(lr=float(cfg.lr), warm_start=bool(cfg.warm_start),
                        patience=int(stopping.patience), max_epochs=int(stopping.max_epochs),
                        batch_size=cfg.batch_size,
                        stopping="early" if stopping.get("enabled", True) else "fixed")
    params = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls.Params),
                                                 cfg.get("params") or {}))
    return cls, spec, params


def thread_settings() -> dict:
    out = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")}
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        out["tf_intra_op"] = (tf.config.threading.get_intra_op_parallelism_threads()
                              or f"default ({os.cpu_count()} cores)")
        with contextlib.suppress(Exception):
            out["tf_op_determinism"] = bool(tf.config.experimental.is_op_determinism_enabled())
    return out


# -- children: one loop each ---------------------------------------------------------------------
def child_ours(name: str, seeds: list[int], overrides: list[str]) -> dict:
    from al_research.runtime import configure_tensorflow

    configure_tensorflow(None, True)  # what run(cfg) does with runtime.tf_threads: null
    cls, spec, params = ours_parts(model_config(name, overrides))
    experiments = []
    for seed in seeds:
        split, initial = protocol(seed)
        start, cpu = time.perf_counter(), time.process_time()
        model = cls(split.input_shape, split.n_classes, (split.val_x, split.val_y), spec,
                    params, seed)
        fit_seconds = []

        def fit(x, y, model=model, fit_seconds=fit_seconds):
            info = model.fit(x, y)
            fit_seconds.append(info.seconds)
            return info.epochs

        accuracy, epochs = active_learning(fit, model.predict_proba, split, initial)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        start = time.perf_counter()
        truth = cls(split.input_shape, split.n_classes, (split.val_x, split.val_y), spec,
                    params, seed)
        truth_info = truth.fit(split.pool_x, split.pool_y)
        experiments.append({
            "seed": seed, "seconds": seconds, "cpu_seconds": cpu_seconds, "accuracy": accuracy,
            "epochs": sum(epochs), "fit_seconds": sum(fit_seconds),
            "truth_accuracy": truth.score(split.test_x, split.test_y),
            "truth_seconds": time.perf_counter() - start, "truth_epochs": truth_info.epochs,
            "traces": model.tracing_counts(),
        })
    return {"experiments": experiments, "threads": thread_settings(),
            "spec": repr(spec), "params": repr(params)}


def keras_recipe_model(name: str, input_shape: tuple[int, ...], n_classes: int, params, lr):
    """The same network as ours, written as a Keras user writes it."""
    import keras

    layers = keras.layers
    if name == "mlp":
        stack = [layers.Dense(params.hidden, activation="relu")]
        top = params
    else:
        stack = [layers.Reshape(input_shape)]
        for filters in params.filters:
            stack += [layers.Conv2D(filters, params.kernel_size, padding="same",
                                    activation="relu"), layers.MaxPooling2D(2)]
        stack += [layers.Flatten(), layers.Dense(params.dense, activation="relu")]
        top = params
    if top.dropout > 0:
        stack.append(layers.Dropout(top.dropout))
    stack.append(layers.Dense(n_classes, activation="softmax"))
    model = keras.Sequential([keras.Input((int(np.prod(input_shape)),)), *stack])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def child_keras(name: str, seeds: list[int], overrides: list[str], truth: bool,
                batch: str) -> dict:
    import keras

    _, spec, params = ours_parts(model_config(name, overrides))
    ours_batch = batch == "ours"  # else Keras's default, 32
    experiments = []
    for seed in seeds:
        split, initial = protocol(seed)
        keras.utils.set_random_seed(seed)
        start, cpu = time.perf_counter(), time.process_time()
        model = keras_recipe_model(name, split.input_shape, split.n_classes, params, spec.lr)

        def fit(x, y, model=model, split=split):
            stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=KERAS_PATIENCE,
                                                 restore_best_weights=True)
            size = {"batch_size": spec.batch_size or len(x)} if ours_batch else {}
            history = model.fit(x, y, epochs=spec.max_epochs, **size,
                                validation_data=(split.val_x, split.val_y), callbacks=[stop],
                                verbose=0)
            return len(history.history["loss"])

        def proba(x, model=model):
            return model.predict(x, verbose=0)

        accuracy, epochs = active_learning(fit, proba, split, initial)
        experiment = {"seed": seed, "seconds": time.perf_counter() - start,
                      "cpu_seconds": time.process_time() - cpu, "accuracy": accuracy,
                      "epochs": sum(epochs)}
        if truth:
            start = time.perf_counter()
            model = keras_recipe_model(name, split.input_shape, split.n_classes, params, spec.lr)
            fit(split.pool_x, split.pool_y, model=model)
            experiment["truth_accuracy"] = float(
                (proba(split.test_x, model=model).argmax(1) == split.test_y).mean())
            experiment["truth_seconds"] = time.perf_counter() - start
        experiments.append(experiment)
    return {"experiments": experiments, "threads": thread_settings(),
            "batch_size": (spec.batch_size or "full batch") if ours_batch
            else "Keras's default (32)"}


# -- the parent ---------------------------------------------------------------------------------
def run_child(args: list[str], env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"child failed ({done.returncode}): {' '.join(args)}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def row(label: str, experiments: list[dict], key: str = "accuracy") -> str:
    truth = mean(e["truth_accuracy"] for e in experiments if "truth_accuracy" in e)
    truth_s = mean(e["truth_seconds"] for e in experiments if "truth_seconds" in e)
    return (f"{label:<40}{len(experiments):>6}{mean(e['seconds'] for e in experiments):>10.2f}"
            f"{mean(e['cpu_seconds'] for e in experiments):>8.2f}"
            f"{mean(e['epochs'] for e in experiments):>8.0f}"
            f"{mean(e[key] for e in experiments):>9.4f}{truth:>9.4f}{truth_s:>8.2f}")


def report(name: str, results: dict) -> None:
    ours, keras = results["ours"], results.get("keras")
    ox = ours["experiments"]
    print(f"\n== {name}: seeds {[e['seed'] for e in ox]}, {BUDGET} labels ({INITIAL} random + "
          f"{(BUDGET - INITIAL) // BATCH} rounds of {BATCH} least confident) ==")
    print(f"ours: {ours['spec']}, {ours['params']}")
    for key, value in results.items():
        print(f"threads [{key}]: " + ", ".join(f"{k}={v}" for k, v in value["threads"].items()))
    print(f"{'loop':<40}{'seeds':>6}{'s/exp':>10}{'CPU s':>8}{'epochs':>8}{'acc@400':>9}"
          f"{'truth':>9}{'truth s':>8}")
    print(row("ours, 1st experiment (incl. tracing)", ox[:1]))
    if len(ox) > 1:
        print(row("ours, the rest", ox[1:]))
    print(row("ours, all", ox))
    print(f"  traces after the last experiment: {ox[-1]['traces']}")
    if results.get("ours_onednn"):
        print(row("ours with oneDNN, all", results["ours_onednn"]["experiments"]))
    if keras:
        print(row(f"Keras recipe (patience {KERAS_PATIENCE})", keras["experiments"]))
        print(f"  the Keras recipe's batch size: {keras['batch_size']}")

    for key, label in (("ours", "ours"), ("ours_onednn", "ours with oneDNN")):
        if results.get(key):
            targets(name, label, results[key]["experiments"], keras)


def targets(name: str, label: str, ox: list[dict], keras: dict | None) -> None:
    truth = mean(e["truth_accuracy"] for e in ox)
    print(f"targets, {label}: ground truth at 4000 labels {truth:.4f} "
          f"[>= {GROUND_TRUTH_TARGET[name]}: {verdict(truth >= GROUND_TRUTH_TARGET[name])}]")
    if name == "cnn":
        seconds = mean(e["seconds"] for e in ox)
        print(f"  a 40-round experiment {seconds:.1f} s "
              f"[< {CNN_SECONDS_TARGET:g} s: {verdict(seconds < CNN_SECONDS_TARGET)}]")
    if keras:
        kx = keras["experiments"]
        by_seed = {e["seed"]: e for e in ox}

        def ratio(key):
            return mean(e[key] for e in kx) / mean(by_seed[e["seed"]][key] for e in kx)

        speed, cpu_speed = ratio("seconds"), ratio("cpu_seconds")
        acc_o = mean(by_seed[e["seed"]]["accuracy"] for e in kx)
        acc_k = mean(e["accuracy"] for e in kx)
        print(f"  vs the Keras recipe on seeds {[e['seed'] for e in kx]}: {speed:.1f}x faster "
              f"[>= {SPEEDUP_TARGET:g}x: {verdict(speed >= SPEEDUP_TARGET)}] ({cpu_speed:.1f}x "
              f"in CPU seconds); accuracy at 400 {acc_o:.4f} vs {acc_k:.4f} "
              f"[{verdict(acc_o >= acc_k - ACCURACY_TOLERANCE)}]")


def seeds_arg(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--keras-seeds", type=int, default=None,
                        help="run the Keras recipe on the first N seeds (default: all)")
    parser.add_argument("--keras-truth", action="store_true",
                        help="also fit the Keras recipe on the whole pool (ground truth)")
    parser.add_argument("--keras-batch-size", choices=["keras", "ours"], default="keras",
                        help="the Keras recipe's batch size: Keras's default (32) or ours")
    parser.add_argument("--onednn", action="store_true",
                        help="also run ours with TF_ENABLE_ONEDNN_OPTS=1")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override the model's yaml, e.g. batch_size=64 (repeatable)")
    parser.add_argument("--quick", action="store_true", help="seeds 0-1, Keras on seed 0")
    parser.add_argument("--child", choices=["ours", "keras"])
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    seeds = seeds_arg("0-1" if args.quick else args.seeds)

    if args.child:
        name = args.models
        if args.child == "ours":
            out = child_ours(name, seeds, args.set)
        else:
            out = child_keras(name, seeds, args.set, args.keras_truth, args.keras_batch_size)
        print(json.dumps(out))
        return

    import keras
    import tensorflow as tf

    n_keras = 1 if args.quick and args.keras_seeds is None else args.keras_seeds
    keras_seeds = seeds[:n_keras] if n_keras is not None else seeds
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, TF {tf.__version__}, Keras {keras.__version__}")
    everything = {}
    for name in args.models.split(","):
        common = ["--models", name, *[f"--set={s}" for s in args.set]]
        results = {"ours": run_child(["--child", "ours", "--seeds", ",".join(map(str, seeds)),
                                      *common])}
        if args.onednn:
            results["ours_onednn"] = run_child(
                ["--child", "ours", "--seeds", ",".join(map(str, seeds)), *common],
                env={"TF_ENABLE_ONEDNN_OPTS": "1"})
        if keras_seeds:
            env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
            env["TF_ENABLE_ONEDNN_OPTS"] = "1"  # TF's default, as a Keras user has it
            results["keras"] = run_child(
                ["--child", "keras", "--seeds", ",".join(map(str, keras_seeds)), *common,
                 f"--keras-batch-size={args.keras_batch_size}",
                 *(["--keras-truth"] if args.keras_truth else [])], env=env)
        report(name, results)
        everything[name] = results
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
