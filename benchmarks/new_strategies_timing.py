"""Selection time per round of the stochastic acquisitions (power, softmax, soft-rank) and of
query-by-committee (vote entropy, KL), beside the top-k strategies they build on and
scikit-activeml's `QueryByCommittee`, on synthetic model outputs.

    .venv/bin/python benchmarks/new_strategies_timing.py                # 60,000 items
    .venv/bin/python benchmarks/new_strategies_timing.py --sizes 4000 60000 --repeats 5

Protocol (as benchmarks/strategies.py, its helpers reused): one round with 200 labelled items
(a seeded random set), a batch of 10 from the rest; 10 classes; T = 20 MC-dropout passes of
random probabilities (softmax of N(0, 1.5^2) logits, float32), their mean as the deterministic
probabilities (given to the context, as the loop gives them). The time is the strategy's, not a
model's: a learner serves the tables by item id. CPU seconds, the median of `--repeats` calls
(more while they total under a second); peak traced memory of one call. scikit-activeml's
`QueryByCommittee` samples the same passes (`sample_predictions_method_name`), one call at
60,000.

`new_strategy_rows` is written in the style of `strategy_rows` in benchmarks/strategies.py and
uses only its helpers (`Tables`, `ours_call`, `timed`, `peak_bytes`, `report`), so it can be
pasted there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import al_research  # noqa: E402, F401, I001  (before numpy: BLAS reads its threads on load)
import numpy as np  # noqa: E402

from strategies import (  # noqa: E402  (benchmarks/strategies.py)
    BATCH,
    LABELLED,
    MC_SAMPLES,
    Tables,
    ours_call,
    peak_bytes,
    report,
    sk_classifier,
    timed,
)


def synthetic_outputs(size: int, n_classes: int = 10, seed: int = 0) -> dict:
    """Random MC passes (MC_SAMPLES, size, n_classes) and their mean, float32."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(MC_SAMPLES, size, n_classes)).astype(np.float32)
    samples = np.exp(logits - logits.max(axis=-1, keepdims=True))
    samples /= samples.sum(axis=-1, keepdims=True)
    return {"samples": samples, "proba": samples.mean(axis=0),
            "embeddings": np.zeros((size, 1), np.float32)}


def new_strategy_rows(size: int, model_name: str, outputs: dict, labelled: np.ndarray,
                      repeats: int, sk_repeats: int) -> list[dict]:
    from skactiveml.pool import QueryByCommittee

    from al_research.strategies.bald import BALD
    from al_research.strategies.qbc import QBCKL, QBCVoteEntropy
    from al_research.strategies.stochastic import PowerSampling, SoftmaxSampling, SoftRankSampling
    from al_research.strategies.uncertainty import Entropy

    tables = Tables(outputs["proba"], outputs["embeddings"], outputs["samples"])
    ids = np.arange(size, dtype=np.float64)[:, None]
    y = np.full(size, np.nan)
    y[labelled] = 0
    clf = sk_classifier(tables)

    def sk_qbc(method):
        return lambda: QueryByCommittee(
            method=method, sample_predictions_method_name="sample_proba",
            random_state=0).query(ids, y, clf, fit_ensemble=False, batch_size=BATCH)

    bald = {"mc_samples": MC_SAMPLES}
    cases = [
        ("entropy (top-k)", Entropy(), None),
        ("power[entropy]", PowerSampling(), None),
        ("softmax[entropy]", SoftmaxSampling(), None),
        ("softrank[entropy]", SoftRankSampling(), None),
        ("bald (top-k)", BALD(BALD.Params(mc_samples=MC_SAMPLES)), None),
        ("power[bald]", PowerSampling(PowerSampling.Params(score="bald", score_params=bald)),
         None),
        ("qbc_vote_entropy", QBCVoteEntropy(QBCVoteEntropy.Params(mc_samples=MC_SAMPLES)),
         sk_qbc("vote_entropy")),
        ("qbc_kl", QBCKL(QBCKL.Params(mc_samples=MC_SAMPLES)), sk_qbc("KL_divergence")),
    ]
    rows = []
    for name, ours, theirs in cases:
        call = ours_call(ours, ids, tables, labelled, 10, proba=tables.proba)
        row = {"size": size, "model": model_name, "strategy": name,
               "ours_s": timed(call, repeats), "ours_peak_mb": peak_bytes(call) / 1e6,
               "model_outputs_s": 0.0}
        if theirs is not None:
            row["sk_s"] = timed(theirs, sk_repeats)
            row["sk_peak_mb"] = peak_bytes(theirs) / 1e6
        rows.append(row)
        report(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[60000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("   size    model         strategy     ours s       sk s  sk/ours  ours MB     "
          "sk MB")
    for size in args.sizes:
        rng = np.random.default_rng(size)
        labelled = np.sort(rng.choice(size, LABELLED, replace=False))
        new_strategy_rows(size, "random", synthetic_outputs(size), labelled, args.repeats,
                          args.repeats if size <= 10_000 else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
