"""Cluster-Margin on a 60,000-item pool: its clustering (once per experiment) and a round's
selection, beside the round of the real models.

    .venv/bin/python benchmarks/cluster_margin_timing.py                 # ~3 min
    .venv/bin/python benchmarks/cluster_margin_timing.py --no-model      # the strategy only
    .venv/bin/python benchmarks/cluster_margin_timing.py --json benchmarks/results/cm.json

Protocol (as benchmarks/strategies.py, whose helpers it reuses). Pool: the embedded 5,000 MNIST
digits tiled 12 times with pixel noise (sigma 0.02, clipped): 60,000 rows of 784 pixels in
[0, 1]. One round in the middle of an experiment: 200 labelled items (a seeded random set),
batches of 10 and 50 from the rest; 10 classes, probabilities the softmax of N(0, 1.5^2) logits
(float32), given to the context as the loop gives them. Three feature spaces are clustered,
with the yaml's defaults otherwise (mean_cluster_size 10: 6,000 clusters; hac_max_items 4,000:
HAC inside k-means cells of at most 4,000 items; unit-norm rows):

- pca: the default, the pixels' first 50 principal components (the PCA fit, once per
  experiment, is timed apart: other strategies share it);
- raw: the 784 pixels;
- embedding: 64-dimensional embeddings served by a table learner (a fixed random ReLU projection
  of the pixels, standing in for a first-round network's hidden layer; the time does not depend
  on what the numbers mean), set beside the MLP's round only (softmax regression's embedding is
  its input: the raw case).

Times: the clustering is one call (the first round's query on a fresh `PoolCache`, wall and CPU
seconds: scikit-learn's k-means runs OpenMP threads, BLAS one thread); a later round's selection
(the clustering kept in the cache) is the median of `--repeats` calls, CPU seconds. With the
model (the default), the round is the warm fit on 200 labels plus the probabilities on the
unlabelled pool of the real softmax regression and MLP of conf/model/ (benchmarks/strategies.py's
`train`, wall-clock). Target: selection under 20% of a round; the clustering is reported both as
the first round's extra cost and spread over the default experiment's 39 queries.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import al_research  # noqa: E402, F401, I001  (before numpy: BLAS reads its threads on load)
import numpy as np  # noqa: E402

from strategies import (  # noqa: E402  (benchmarks/strategies.py)
    LABELLED,
    digits,
    make_pool,
    timed,
)

from al_research.models.base import Capability  # noqa: E402
from al_research.strategies.pool_cache import PoolCache  # noqa: E402

SIZE, CLASSES, EMBED_DIM, PCA_DIM = 60_000, 10, 64, 50
BATCHES = (10, 50)
QUERIES = 39  # the default experiment: 10 initial labels, 39 rounds of 10 up to 400
SELECTION_SHARE_MAX = 0.20


class Table:
    """A learner serving probabilities and embeddings by item id (column 0 of its rows)."""

    embeds_input = False
    has_dropout = False
    capabilities = frozenset({Capability.PROBA, Capability.EMBEDDINGS})

    def __init__(self, proba: np.ndarray, embeddings: np.ndarray) -> None:
        self.proba, self.embeddings = proba, embeddings

    @staticmethod
    def _ids(x) -> np.ndarray:
        return np.asarray(x)[:, 0].astype(np.int64)

    def predict_proba(self, x):
        return self.proba[self._ids(x)]

    def embed(self, x):
        return self.embeddings[self._ids(x)]


def inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    x, y = digits()
    pool_x, pool_y = make_pool(SIZE, x[:-600], y[:-600], rng)
    logits = rng.normal(scale=1.5, size=(SIZE, CLASSES)).astype(np.float32)
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    projection = rng.normal(size=(pool_x.shape[1], EMBED_DIM)).astype(np.float32) / 28.0
    embeddings = np.maximum(pool_x @ projection, 0.0)
    labelled = np.sort(rng.choice(SIZE, LABELLED, replace=False))
    return pool_x, pool_y, proba, embeddings, labelled, (x[-600:], y[-600:])


def context(kind: str, pool_x, table: Table, labelled, cache: PoolCache, seed: int = 0):
    from al_research.strategies import QueryContext

    unlabelled = np.setdiff1d(np.arange(SIZE), labelled)
    # the embedding case reads rows by id: the pool is the ids; pca/raw read the pixels
    x = np.arange(SIZE, dtype=np.float64)[:, None] if kind == "embedding" else pool_x
    ctx = QueryContext(x, labelled, unlabelled, np.random.default_rng(seed), table, CLASSES,
                       cache)
    ctx.provide("proba", table.proba[unlabelled])
    return ctx


def strategy_rows(pool_x, proba, embeddings, labelled, repeats: int, memory: bool
                  ) -> list[dict]:
    from al_research.strategies.cluster_margin import ClusterMargin, clusterings
    from al_research.strategies.features import static_features

    table = Table(proba, embeddings)
    rows = []
    pca_cache = PoolCache(pool_x, seed=0)
    started, cpu = time.perf_counter(), time.process_time()
    static_features(context("pca", pool_x, table, labelled, pca_cache), "pca", PCA_DIM, True)
    print(f"PCA to {PCA_DIM} components (once per experiment, shared with other strategies): "
          f"{time.perf_counter() - started:.2f} s wall, {time.process_time() - cpu:.2f} s CPU",
          flush=True)
    for kind, dim in (("pca", PCA_DIM), ("raw", pool_x.shape[1]), ("embedding", EMBED_DIM)):
        strategy = ClusterMargin(ClusterMargin.Params(features=kind))
        cache = pca_cache if kind == "pca" else PoolCache(pool_x, seed=0)
        if kind == "raw":  # the pool array, converted once per experiment: not the clustering's
            cache.array()
        started, cpu = time.perf_counter(), time.process_time()
        strategy.query(context(kind, pool_x, table, labelled, cache), BATCHES[0])
        first_wall, first_cpu = time.perf_counter() - started, time.process_time() - cpu
        (labels, _), = [v for k, v in clusterings(cache).items() if k[1][0] == "cluster_margin"]
        sizes = np.bincount(labels[labels >= 0])
        row = {"features": kind, "dim": dim, "first_round_wall_s": first_wall,
               "first_round_cpu_s": first_cpu, "clusters": int(len(sizes)),
               "largest_cluster": int(sizes.max()), "singletons": int((sizes == 1).sum())}
        if memory:
            fresh = PoolCache(pool_x, seed=0)
            if kind == "pca":
                fresh.features.update(pca_cache.features)
            tracemalloc.start()
            try:
                strategy.query(context(kind, pool_x, table, labelled, fresh), BATCHES[0])
                row["first_round_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
            finally:
                tracemalloc.stop()
        for batch in BATCHES:
            def later_round(b=batch, s=strategy, k=kind, c=cache):
                return s.query(context(k, pool_x, table, labelled, c), b)

            row[f"round_b{batch}_s"] = timed(later_round, repeats)
        rows.append(row)
        print(f"{kind:>9} ({dim:>3} dims): clustering (first round) {first_wall:6.2f} s wall, "
              f"{first_cpu:6.2f} s CPU; {row['clusters']} clusters, largest "
              f"{row['largest_cluster']}, {row['singletons']} singletons"
              + (f"; peak {row['first_round_peak_mb']:.0f} MB" if memory else "")
              + "; a later round: "
              + ", ".join(f"batch {b} {row[f'round_b{b}_s'] * 1e3:.1f} ms" for b in BATCHES),
              flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-model", action="store_true", help="skip the real models' round")
    parser.add_argument("--memory", action="store_true",
                        help="also the first round's peak traced memory (a second clustering)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()

    pool_x, pool_y, proba, embeddings, labelled, val = inputs()
    rows = strategy_rows(pool_x, proba, embeddings, labelled, args.repeats, args.memory)
    rounds = {}
    if not args.no_model:
        from strategies import train

        previous = labelled[:-10]
        for model_name in ("softmax", "mlp"):
            out = train(model_name, pool_x, pool_y, val, labelled, previous)
            rounds[model_name] = out["fit_s"] + out["predict_s"]
            print(f"{model_name}: warm fit {out['fit_s']:.3f} s + probabilities "
                  f"{out['predict_s']:.3f} s = a round of {rounds[model_name]:.3f} s "
                  "(wall) before selection", flush=True)
    failures = 0
    if rounds:
        print(f"\nSelection share of a round (target < {SELECTION_SHARE_MAX:.0%}); the "
              f"clustering spread over {QUERIES} queries, and as the first round's extra:")
        for row in rows:
            for model_name, base in rounds.items():
                if row["features"] == "embedding" and model_name == "softmax":
                    continue  # softmax regression's embedding is its input: the raw rows
                for batch in BATCHES:
                    select = row[f"round_b{batch}_s"]
                    share = select / (base + select)
                    spread = row["first_round_wall_s"] / QUERIES
                    share_spread = (select + spread) / (base + select + spread)
                    ok = share < SELECTION_SHARE_MAX
                    failures += not ok
                    print(f"{row['features']:>9} {model_name:>7} batch {batch:>2}: selection "
                          f"{select:.4f} s of {base + select:.3f} s: {100 * share:5.2f}% "
                          f"{'PASS' if ok else 'FAIL'}; with the clustering spread: "
                          f"{100 * share_spread:5.1f}%; first round: "
                          f"{row['first_round_wall_s']:.2f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "rounds": rounds}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
