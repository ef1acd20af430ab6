"""The measurements of benchmarks/strategies.py (its docstring has the protocol): adapters that
serve precomputed model outputs to both libraries, the timers, and the row builders, one per
group of strategies. Each row: size, model, strategy (its yaml's name), label (the yaml's
defaults, or the parameter changed), batch, `ours_s`, `ours_peak_mb`, `model_outputs_s` (what
the round's model computes for the strategy beyond the probabilities), and where measured the
scikit-activeml call (`sk_s`, `sk_peak_mb` or `sk_skipped`) and the first round's work kept for
later rounds (`ours_first_s`, `ours_first_wall_s`, `ours_first_peak_mb`).
"""

from __future__ import annotations

import copy
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np  # after al_research, which strategies.py imports first (BLAS threads)

from al_research.models.base import Capability
from al_research.strategies.pool_cache import PoolCache

CONF = Path(__file__).resolve().parent.parent / "al_research" / "conf"
STRATEGIES = sorted(p.stem for p in (CONF / "strategy").glob("*.yaml") if p.stem != "full")
LABELLED, BATCH, MC_SAMPLES, PCA_DIM, CLASSES = 200, 10, 20, 50, 10
GROWS_WITH_BATCH = ("batchbald", "epig", "cluster_margin")  # timed at every --batches
SK_MAX_BYTES = 8e9  # skip a scikit-activeml call whose main matrix would exceed this
EMBEDDING_NEEDS = frozenset({Capability.EMBEDDINGS, Capability.GRAD_EMBEDDINGS})


def make(name: str, **overrides):
    """The strategy of conf/strategy/<name>.yaml: its yaml's params, `overrides` on top."""
    from omegaconf import OmegaConf

    from al_research.config import build

    conf = OmegaConf.to_container(OmegaConf.load(CONF / "strategy" / f"{name}.yaml"))
    return build(conf["_target_"], {**(conf.get("params") or {}), **overrides},
                 f"strategy={name}")


# --- what both libraries are given ------------------------------------------------------------

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


class InputLearner:
    """Softmax regression as strategies see it: its embedding is its input (`embeds_input`);
    the loop provides the probabilities it computed for the round."""

    embeds_input = True
    has_dropout = False
    capabilities = frozenset({Capability.PROBA, Capability.EMBEDDINGS,
                              Capability.GRAD_EMBEDDINGS})

    def embed(self, x):
        return np.asarray(x)


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


# --- measuring --------------------------------------------------------------------------------

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


def ours_call(strategy, pool_x, learner, labelled, cache=None, proba=None, keep=False,
              batch=BATCH, seed=0):
    """One round's query of `batch` items; each call gets a copy of `cache` (what earlier
    rounds kept), or, with `keep`, `cache` itself (to keep what this round computes)."""
    from al_research.strategies import QueryContext

    unlabelled = np.setdiff1d(np.arange(len(pool_x)), labelled)

    def call():
        if cache is None:
            kept = PoolCache(pool_x)
        elif keep:
            kept = cache
        else:  # a shallow copy of each kept table
            kept = copy.copy(cache)
            for name in ("features", "sq_norms", "graphs", "distances", "clusterings"):
                setattr(kept, name, dict(getattr(cache, name)))
        ctx = QueryContext(pool_x, labelled, unlabelled, np.random.default_rng(seed), learner,
                           CLASSES, kept)
        if proba is not None:
            ctx.provide("proba", proba[unlabelled])
        return strategy.query(ctx, batch)

    return call


def first_round(row: dict, first: Callable[[], object], fresh: Callable[[], object]) -> None:
    """`first` computes what later rounds keep (timed once: CPU and wall seconds); `fresh`
    computes it again, for its peak memory."""
    wall, cpu = time.perf_counter(), time.process_time()
    first()
    row["ours_first_s"] = time.process_time() - cpu
    row["ours_first_wall_s"] = time.perf_counter() - wall
    row["ours_first_peak_mb"] = peak_bytes(fresh) / 1e6


def measure(row: dict, call, repeats: int, theirs=None, sk_repeats: int = 1) -> dict:
    row["ours_s"] = timed(call, repeats)
    row["ours_peak_mb"] = peak_bytes(call) / 1e6
    if theirs is not None and "sk_skipped" not in row:
        row["sk_s"] = timed(theirs, sk_repeats)
        row["sk_peak_mb"] = peak_bytes(theirs) / 1e6
    report(row)
    return row


def report(row: dict) -> None:
    sk = row.get("sk_s")
    sk_text = f"{sk:10.4f} {sk / row['ours_s']:7.1f}x" if sk else f"{'-':>10} {'-':>8}"
    sk_mem = f"{row['sk_peak_mb']:8.1f}" if "sk_peak_mb" in row else f"{'-':>8}"
    extra = ""
    if "ours_first_s" in row:
        extra += (f"  first round: {row['ours_first_s']:.3f} s CPU "
                  f"({row['ours_first_wall_s']:.3f} wall), {row['ours_first_peak_mb']:.0f} MB")
        if "sk_first_s" in row:
            extra += f", scikit-activeml's {row['sk_first_s']:.3f} s"
    if row.get("note"):
        extra += f"  {row['note']}"
    if "sk_skipped" in row:
        extra += f"  scikit-activeml skipped ({row['sk_skipped']})"
    print(f"{row['size']:>6} {row['model']:>9} {row['label']:>34} {row['batch']:>3} "
          f"{row['ours_s']:9.4f} {sk_text} {row['ours_peak_mb']:8.1f} {sk_mem}{extra}",
          flush=True)


HEADER = (f"{'size':>6} {'model':>9} {'strategy':>34} {'b':>3} {'ours s':>9} {'sk s':>10} "
          f"{'sk/ours':>8} {'ours MB':>8} {'sk MB':>8}")


# --- the rows ---------------------------------------------------------------------------------

def model_cases(tables: Tables, ids, y):
    """(yaml name, label, our strategy, scikit-activeml's call on the same inputs or None)."""
    from skactiveml.pool import Badge as SkBadge
    from skactiveml.pool import CoreSet as SkCoreSet
    from skactiveml.pool import GreedyBALD, QueryByCommittee, UncertaintySampling

    clf = sk_classifier(tables)

    def sk_uncertainty(method):
        return lambda: UncertaintySampling(method=method, random_state=0).query(
            ids, y, clf, fit_clf=False, batch_size=BATCH)

    def sk_qbc(method):
        return lambda: QueryByCommittee(
            method=method, sample_predictions_method_name="sample_proba",
            random_state=0).query(ids, y, clf, fit_ensemble=False, batch_size=BATCH)

    yield "random", "random", make("random"), None
    yield "least_confident", "least_confident", make("least_confident"), sk_uncertainty(
        "least_confident")
    yield "margin", "margin", make("margin"), sk_uncertainty("margin_sampling")
    yield "entropy", "entropy", make("entropy"), sk_uncertainty("entropy")
    for name in ("power", "softmax_sampling", "softrank"):  # score: entropy
        yield name, name, make(name), None
    yield "power", "power, score=bald", make("power", score="bald"), None
    yield "coreset", "coreset", make("coreset"), lambda: SkCoreSet(random_state=0).query(
        tables.embeddings, y, batch_size=BATCH)
    yield "badge", "badge", make("badge"), lambda: SkBadge(
        clf_embedding_flag_name="return_embeddings", random_state=0).query(
        ids, y, clf, fit_clf=False, batch_size=BATCH)
    yield "bald", "bald", make("bald"), lambda: GreedyBALD(
        sample_predictions_method_name="sample_proba", random_state=0).query(
        ids, y, clf, fit_ensemble=False, batch_size=BATCH)
    yield "qbc_vote_entropy", "qbc_vote_entropy", make("qbc_vote_entropy"), sk_qbc(
        "vote_entropy")
    yield "qbc_kl", "qbc_kl", make("qbc_kl"), sk_qbc("KL_divergence")
    yield "batchbald", "batchbald", make("batchbald"), None
    yield "batchbald", "batchbald, candidates_per_pick=10", make(
        "batchbald", candidates_per_pick=10), None
    yield "batchbald", "batchbald, candidates_per_pick=5", make(
        "batchbald", candidates_per_pick=5), None
    yield "batchbald", "batchbald, num_samples=10000", make("batchbald", num_samples=10_000), None
    yield "epig", "epig", make("epig"), None
    for targets in (50, 20):
        yield "epig", f"epig, n_targets={targets}", make("epig", n_targets=targets), None


def model_rows(size: int, model_name: str, outputs: dict, pool_x, features, labelled,
               previous, kept: dict, args) -> list[dict]:
    """Every strategy the model can serve, on its outputs (`outputs`, see strategies.py)."""
    tables = Tables(outputs["proba"], outputs["embeddings"], outputs["samples"])
    ids = np.arange(size, dtype=np.float64)[:, None]
    y = np.full(size, np.nan)
    y[labelled] = 0
    sk_repeats = args.repeats if size <= 10_000 else 1
    rows = []
    for name, label, ours, theirs in model_cases(tables, ids, y):
        if name not in args.only or not ours.needs <= tables.capabilities:
            continue
        extra = outputs["mc_s"] if Capability.MC_SAMPLES in ours.needs else 0.0
        if ours.needs & EMBEDDING_NEEDS and not outputs["embeds_input"]:
            extra += outputs["embed_s"]
        for batch in args.batches if name in GROWS_WITH_BATCH else args.batches[:1]:
            call = ours_call(ours, ids, tables, labelled, proba=tables.proba, batch=batch)
            if outputs["embeds_input"] and name in ("coreset", "badge"):
                # the embedding is the pixels: the pool array, and what the last round kept
                cache = PoolCache(pool_x)
                ours_call(ours, pool_x, InputLearner(), previous, cache, tables.proba, True)()
                call = ours_call(ours, pool_x, InputLearner(), labelled, cache, tables.proba)
            row = {"size": size, "model": model_name, "strategy": name, "label": label,
                   "batch": batch, "model_outputs_s": extra}
            gradients = size * tables.embeddings.shape[1] * CLASSES * 8
            if name == "badge" and gradients > SK_MAX_BYTES:
                row["sk_skipped"] = f"n x (d*C) gradients: {gradients / 1e9:.1f} GB"
            rows.append(measure(row, call, args.repeats,
                                theirs if batch == BATCH else None, sk_repeats))
    if "cluster_margin" in args.only:
        rows += cluster_margin_rows(size, model_name, outputs, tables, pool_x, features,
                                    labelled, kept, args)
    return rows


def cluster_margin_rows(size: int, model_name: str, outputs: dict, tables: Tables, pool_x,
                        features, labelled, kept: dict, args) -> list[dict]:
    """Cluster-Margin with its yaml's PCA features (clustered once per pool: `kept`) and with
    features=embedding (the model's: clustered at its first query round; softmax: pixels)."""
    from al_research.strategies.cluster_margin import clusterings

    rows = []
    if outputs["embeds_input"]:
        space, learner = pool_x, InputLearner()
    else:
        space, learner = np.arange(size, dtype=np.float64)[:, None], tables
    variants = [("cluster_margin", features, tables, ("features", "raw", False), 0.0),
                ("cluster_margin, features=embedding", space, learner,
                 ("embedding", "embedding", True),
                 0.0 if outputs["embeds_input"] else outputs["embed_s"])]
    for label, x, learner, (kind, setting, normalize), extra in variants:
        strategy = make("cluster_margin", features=setting, normalize=normalize)
        first = {}
        if kind == "features" and "cm_pca" in kept:  # model-independent: clustered once
            cache, first = kept["cm_pca"]
        else:
            cache = PoolCache(x)
            first_round(first, ours_call(strategy, x, learner, labelled, cache,
                                         tables.proba, True),
                        ours_call(strategy, x, learner, labelled, None, tables.proba))
            labels = next(v[0] for k, v in clusterings(cache).items()
                          if k[1][0] == "cluster_margin")
            clusters = np.bincount(labels[labels >= 0])
            first["note"] = (f"{len(clusters)} clusters, largest {clusters.max()}, "
                             f"{(clusters == 1).sum()} singletons")
            if kind == "features":
                kept["cm_pca"] = cache, first
        for batch in args.batches:
            row = {"size": size, "model": model_name, "strategy": "cluster_margin",
                   "label": label, "batch": batch, "model_outputs_s": extra, **first}
            call = ours_call(strategy, x, learner, labelled, cache, tables.proba, batch=batch)
            rows.append(measure(row, call, args.repeats))
    return rows


def model_free_rows(size: int, pool_x, features, labelled, previous, args) -> list[dict]:
    """TypiClust and ProbCover on the PCA features (the same matrix for both libraries), and
    core-set with features=pca (its PCA and distances to the labelled set kept)."""
    from skactiveml.pool import CoreSet as SkCoreSet
    from skactiveml.pool import ProbCover as SkProbCover
    from skactiveml.pool import TypiClust as SkTypiClust

    from al_research.strategies.features import draw_seed

    y = np.full(size, np.nan)
    y[labelled] = 0
    sk_repeats = args.repeats if size <= 10_000 else 1
    seed = draw_seed(np.random.default_rng(0))  # the k-means seed ours draws: the same work
    base = {"size": size, "model": "-", "batch": BATCH, "model_outputs_s": 0.0}
    rows = []
    if "typiclust" in args.only:
        typiclust = make("typiclust", features="raw", normalize=False)
        sk = SkTypiClust(k=typiclust.params.k_neighbors, random_state=seed)
        rows.append(measure({**base, "strategy": "typiclust", "label": "typiclust"},
                            ours_call(typiclust, features, None, labelled), args.repeats,
                            lambda: sk.query(features, y, batch_size=BATCH), sk_repeats))
    if "coreset" in args.only:  # the first round: the last one's, with the 190 labels
        coreset, cache = make("coreset", features="pca"), PoolCache(pool_x)
        row = {**base, "strategy": "coreset", "label": "coreset, features=pca"}
        first_round(row, ours_call(coreset, pool_x, None, previous, cache, keep=True),
                    ours_call(coreset, pool_x, None, previous))
        pca = next(iter(cache.features.values()))
        rows.append(measure(row, ours_call(coreset, pool_x, None, labelled, cache),
                            args.repeats, lambda: SkCoreSet(random_state=0).query(
                                pca, y, batch_size=BATCH), sk_repeats))
    if "probcover" not in args.only:
        return rows
    probcover = make("probcover", features="raw", normalize=False)
    cache = PoolCache(features)
    row = {**base, "strategy": "probcover", "label": "probcover"}
    first_round(row, ours_call(probcover, features, None, labelled, cache, keep=True),
                ours_call(probcover, features, None, labelled))
    graph = next(iter(cache.graphs.values()))
    row["graph_edges_per_item"] = graph.nnz / size
    row["note"] = f"graph: {graph.nnz / size:.1f} edges per item"
    needed = size * size * (features.itemsize + 3)  # distances and three n x n boolean masks
    deltas = probcover.params.deltas
    sk = SkProbCover(n_classes=CLASSES, deltas=deltas, random_state=seed)
    if needed <= SK_MAX_BYTES:
        started = time.process_time()
        sk.query(features, y, batch_size=BATCH)  # keeps δ and its graph on the object
        row["sk_first_s"] = time.process_time() - started
    else:
        row["sk_skipped"] = f"n x n distances and masks: {needed / 1e9:.0f} GB"
    row = measure(row, ours_call(probcover, features, None, labelled, cache), args.repeats,
                  lambda: sk.query(features, y, batch_size=BATCH), sk_repeats)
    if "sk_peak_mb" in row:  # a later round's peak; the first round's, a fresh object's
        fresh = SkProbCover(n_classes=CLASSES, deltas=deltas, random_state=seed)
        row["sk_first_peak_mb"] = peak_bytes(
            lambda: fresh.query(features, y, batch_size=BATCH)) / 1e6
    rows.append(row)
    return rows
