"""What a query strategy sees (`QueryContext`) and returns (`Query`), and top-k selection.

A strategy is a class with a `Params` dataclass (its hyperparameters, `strategy.params.*` in the
config) and a `query(ctx, n)` method. It keeps no state between rounds: the loop owns the
labelled set, the rng and the model; the context computes what strategies ask for
(probabilities, embeddings, MC-dropout samples, raw or PCA features) lazily, once per round.

Scoring is apart from selection: a `ScoringStrategy` only defines `scores(ctx)` (one utility per
unlabelled item, higher = label first) and selection is `top_k`. Strategy modules must not import
TensorFlow at import time (the config is validated before TensorFlow loads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from al_research.models.base import Capability, CapabilityError, Learner, NoParams, missing
from al_research.strategies.pool_cache import PoolCache


def top_k(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the `n` highest scores, best first.

    Tie-break: among equal scores the lower position comes first (a stable sort), so a run is
    reproducible bit for bit. NaN scores rank last.
    """
    scores = np.asarray(scores, dtype=np.float64)
    keyed = np.where(np.isnan(scores), np.inf, -scores)
    return np.argsort(keyed, kind="stable")[: max(0, min(n, len(scores)))]


@dataclass
class Query:
    """A strategy's answer: `positions` into `ctx.unlabelled`, and (optionally) the utility it
    gave every unlabelled item, logged as a per-round histogram named `score_name`."""

    positions: np.ndarray
    scores: np.ndarray | None = None
    score_name: str | None = None


class QueryContext:
    """One round's view of the pool for a strategy; every expensive quantity is computed once.

    `labelled` and `unlabelled` are pool indices; `proba()`, `embeddings()` and `mc_samples()`
    rows follow `unlabelled` (or `labelled` with `which="labelled"`). `model` is None when the
    initial set is chosen (no model trained yet): then only the pool's own features are
    available. `cache` is the experiment's `PoolCache`, kept across rounds for model-independent
    quantities (raw or PCA features of the pool), so they are computed once per experiment.
    `labels` are the labels of `labelled`, in its order (None before any is bought).
    """

    def __init__(
        self,
        pool_x: Any,
        labelled: np.ndarray,
        unlabelled: np.ndarray,
        rng: np.random.Generator,
        model: Learner | None = None,
        n_classes: int | None = None,
        cache: PoolCache | None = None,
        labels: np.ndarray | None = None,
    ) -> None:
        self.pool_x = pool_x
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.labelled = np.asarray(labelled, dtype=np.int64)
        self.unlabelled = np.asarray(unlabelled, dtype=np.int64)
        self.rng = rng
        self.model = model
        self.n_classes = n_classes
        self.cache = PoolCache(pool_x) if cache is None else cache
        self._cache: dict[Any, Any] = {}

    def _rows(self, which: str):
        indices = {"unlabelled": self.unlabelled, "labelled": self.labelled}[which]
        if hasattr(self.pool_x, "numpy") and not isinstance(self.pool_x, np.ndarray):
            from al_research.runtime import tf

            return tf.gather(self.pool_x, indices)
        return np.asarray(self.pool_x)[indices]

    def provide(self, what: str, value: np.ndarray, which: str = "unlabelled") -> None:
        """Hand the context a quantity the loop has already computed ("proba" or "embed")."""
        self._cache[(what, which)] = value

    def _cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _need_model(self, what: str) -> Learner:
        if self.model is None:
            raise CapabilityError(f"{what} needs a trained model; the initial selection has none")
        return self.model

    def proba(self, which: str = "unlabelled") -> np.ndarray:
        """Class probabilities (n, n_classes)."""
        model = self._need_model("proba")
        return self._cached(("proba", which), lambda: np.asarray(
            model.predict_proba(self._rows(which))))

    def embeddings(self, which: str = "unlabelled") -> np.ndarray:
        """The model's penultimate features (n, d)."""
        model = self._need_model("embeddings")
        return self._cached(("embed", which), lambda: np.asarray(model.embed(self._rows(which))))

    def mc_samples(self, n_samples: int, which: str = "unlabelled") -> np.ndarray:
        """`n_samples` MC-dropout passes (n_samples, n, n_classes)."""
        model = self._need_model("MC dropout")
        return self._cached(("mc", n_samples, which), lambda: np.asarray(
            model.predict_proba_samples(self._rows(which), n_samples)))

    def bootstrap_committee(self, members: int) -> np.ndarray:
        """The probabilities on the unlabelled items (members, n, n_classes) of `members`
        models trained from scratch (`spawn`, Capability.RETRAIN) on bootstrap resamples of
        the labelled set (Abe & Mamitsuka 1998): n draws with replacement of the n labelled
        items, each member's draw and seed from `rng`. Once per round and size."""
        model = self._need_model("a bootstrap committee")
        if self.labels is None or len(self.labels) != len(self.labelled):
            raise CapabilityError("a bootstrap committee needs the labels of the labelled set")

        def train() -> np.ndarray:
            x, y = self._rows("labelled"), self.labels
            unlabelled = self._rows("unlabelled")
            out = []
            for _ in range(members):
                rows = np.sort(self.rng.integers(0, len(y), size=len(y)))
                member = model.spawn(int(self.rng.integers(2**31 - 1)))
                member.fit(_take(x, rows), y[rows])
                out.append(np.asarray(member.predict_proba(unlabelled)))
            return np.stack(out)

        return self._cached(("bootstrap", members), train)

    def pool_array(self) -> np.ndarray:
        """The whole pool's raw features as a NumPy array (converted once per experiment)."""
        return self.cache.array()


def _take(x: Any, rows: np.ndarray) -> Any:
    """Rows of a NumPy array or a TF tensor (the loop's pool is a tensor)."""
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        from al_research.runtime import tf

        return tf.gather(x, rows)
    return np.asarray(x)[rows]


# what to do when a model lacks a capability a strategy needs
_HINTS = {
    Capability.MC_SAMPLES: "use a model with dropout (model=mlp or model=cnn with "
                           "model.params.dropout > 0)",
    Capability.EMBEDDINGS: "use features=raw or features=pca",
    Capability.RETRAIN: "use a model of conf/model/ (they can train fresh copies)",
}


def check_capabilities(needs: frozenset[Capability], offers: frozenset[Capability],
                       who: str, model_name: str) -> None:
    """The one check of what a strategy (or an initial selection: `offers` empty, no model)
    needs against what the model offers, before any training; a CapabilityError naming both."""
    lacking = missing(needs, offers)
    if not lacking:
        return
    hints = "; ".join(h for c, h in _HINTS.items() if c.value in lacking)
    have = ", ".join(sorted(c.value for c in offers)) or "nothing (no model yet)"
    raise CapabilityError(f"{who} needs {', '.join(lacking)}, and {model_name} offers {have}"
                          + (f"; {hints}" if hints else ""))


class Strategy:
    """Base class: `query(ctx, n) -> Query`, and `needs`: what it asks of the model.

    `needs` is a set of `Capability` (probabilities, MC samples, embeddings, gradient
    embeddings), compared with the model's `capabilities` by `check_capabilities` before any
    training. `Params` is its hyperparameter dataclass (validated by the config before any work).
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    needs: frozenset[Capability] = frozenset()

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def query(self, ctx: QueryContext, n: int) -> Query:
        raise NotImplementedError


class ScoringStrategy(Strategy):
    """A strategy that scores every unlabelled item and takes the `n` best (`top_k`)."""

    score_name: ClassVar[str] = "score"
    # False when the scores are a function of the max-softmax confidence, whose histogram every
    # round already logs (least-confident: 1 - confidence): no second, mirrored image
    log_scores: ClassVar[bool] = True

    def scores(self, ctx: QueryContext) -> np.ndarray:
        raise NotImplementedError

    def query(self, ctx: QueryContext, n: int) -> Query:
        scores = self.scores(ctx)
        return Query(top_k(scores, n), scores if self.log_scores else None, self.score_name)
