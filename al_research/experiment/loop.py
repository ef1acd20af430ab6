"""The pool-based active-learning loop: fit, evaluate, select, label, until the budget is spent.

The loop owns every piece of state (the labelled set, the rng, the model); strategies get a
`QueryContext` each round and keep nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from al_research.experiment.oracle import Oracle
from al_research.models.base import Capability, Learner
from al_research.process.timings import phase
from al_research.runtime import tf
from al_research.strategies.base import QueryContext, Strategy
from al_research.strategies.pool_cache import PoolCache

EMBEDDING_NEEDS = frozenset({Capability.EMBEDDINGS, Capability.GRAD_EMBEDDINGS})


@dataclass
class Round:
    """What one round measured. `selected` is the batch labelled after this round's fit."""

    n_labelled: int
    test_accuracy: float
    val_accuracy: float
    epochs: int
    best_epoch: int  # the epoch whose weights the fit kept (early stopping's best)
    fit_seconds: float
    mean_confidence: float
    confidence: np.ndarray = field(repr=False)  # max-softmax of each unlabelled pool item
    selected: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    select_seconds: float = 0.0
    scores: np.ndarray | None = field(default=None, repr=False)  # the strategy's utilities
    score_name: str | None = None

    METRICS = ("test_accuracy", "val_accuracy", "epochs", "best_epoch", "fit_seconds",
               "select_seconds", "mean_confidence")

    def metrics(self) -> dict[str, float]:
        """The round's figures; timings rounded to 0.1 ms (their noise is larger)."""
        values = {name: getattr(self, name) for name in self.METRICS}
        for name in ("fit_seconds", "select_seconds"):
            values[name] = round(values[name], 4)
        return values


@dataclass
class Evaluation:
    """The held-out sets. The model trains on neither; early stopping watches one of them."""

    test_x: np.ndarray
    test_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    _tensors: tuple[tf.Tensor, ...] = field(default=(), init=False, repr=False, compare=False)

    def tensors(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """(test_x, test_y, val_x, val_y) as tensors, made once: a round scores both sets
        without copying them into TensorFlow again (~1 ms a round)."""
        if not self._tensors:
            self._tensors = (tf.constant(self.test_x, tf.float32),
                             tf.constant(self.test_y, tf.int64),
                             tf.constant(self.val_x, tf.float32),
                             tf.constant(self.val_y, tf.int64))
        return self._tensors  # type: ignore[return-value]


class LabelledPool:
    """The pool as TF tensors (copied to the device once) and which items carry labels."""

    def __init__(self, pool_x: np.ndarray, oracle: Oracle) -> None:
        self.x = tf.constant(pool_x, tf.float32)
        self.size = int(pool_x.shape[0])
        self.oracle = oracle
        self.indices = np.empty(0, np.int64)
        self.labels = np.empty(0, np.int64)
        self._mask = np.zeros(self.size, dtype=bool)

    @property
    def unlabelled(self) -> np.ndarray:
        return np.flatnonzero(~self._mask)

    def add(self, indices: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Label `indices` through the oracle, or with given (pseudo-)labels, which cost none."""
        indices = np.asarray(indices, dtype=np.int64)
        if self._mask[indices].any() or len(np.unique(indices)) != len(indices):
            raise ValueError("an item was added to the labelled set twice")
        if labels is None:
            labels = self.oracle.label_manually(indices)
        self._mask[indices] = True
        self.indices = np.concatenate([self.indices, indices])
        self.labels = np.concatenate([self.labels, np.asarray(labels, dtype=np.int64)])

    def training_set(self) -> tuple[tf.Tensor, np.ndarray]:
        return tf.gather(self.x, self.indices), self.labels


def fit_and_measure(
    model: Learner, pool: LabelledPool, held_out: Evaluation, embed: bool = False
) -> tuple[Round, np.ndarray, np.ndarray | None]:
    """Fit on the labelled set, score on the held-out sets; return the round, the
    probabilities of the unlabelled pool items (in `pool.unlabelled` order) and, with `embed`
    and a model that gives both from one forward pass (`predict_proba_and_embed`), their
    embeddings (else None: a strategy asks the model for them)."""
    with phase("fit"):  # the labelled rows gathered, then the fit
        x, y = pool.training_set()
        info = model.fit(x, y)
    with phase("predict"):
        unlabelled = pool.unlabelled
        embeddings = None
        if not len(unlabelled):
            proba = np.empty((0, 0), np.float32)
        elif embed:
            proba, embeddings = model.predict_proba_and_embed(tf.gather(pool.x, unlabelled))
        else:
            proba = model.predict_proba(tf.gather(pool.x, unlabelled))
        test_x, test_y, val_x, val_y = held_out.tensors()
        test_accuracy = model.score(test_x, test_y)
        val_accuracy = model.score(val_x, val_y)
        confidence = proba.max(axis=1) if len(proba) else np.empty(0, np.float32)
    result = Round(
        n_labelled=len(pool.indices),
        test_accuracy=test_accuracy,
        val_accuracy=val_accuracy,
        epochs=info.epochs,
        best_epoch=info.best_epoch,
        fit_seconds=info.seconds,
        mean_confidence=(float(confidence.astype(np.float64).mean()) if len(confidence)
                         else float("nan")),
        confidence=confidence,
    )
    return result, proba, embeddings


def run_active_learning(
    model: Learner,
    pool: LabelledPool,
    held_out: Evaluation,
    strategy: Strategy,
    initial: np.ndarray,
    batch_size: int,
    budget: int,
    rng: np.random.Generator,
    on_round: Callable[[Round], None] | None = None,
    n_classes: int | None = None,
    cache: PoolCache | None = None,
    stopping: Callable[[Learner, LabelledPool, Round, np.ndarray], bool] | None = None,
) -> list[Round]:
    """Label `initial`, then rounds of `batch_size` chosen by `strategy` until `budget` labels.

    Each round fits, evaluates and reports (`on_round`) before it selects the next batch, so the
    last round measures the model trained on the whole budget. `cache` keeps the pool's
    model-independent quantities (e.g. PCA features) across rounds. `stopping` (the stopping
    criteria, `al_research.stopping`) sees each round after its selection, with the unlabelled
    pool's probabilities; True ends the loop there, the round's batch unlabelled.
    """
    cache = PoolCache(pool.x) if cache is None else cache
    # a strategy that reads the model's embeddings gets them from the forward pass that gives
    # the round's probabilities (not a second pass over the pool); softmax regression embeds
    # its input, which strategies take from the pool array instead
    embed = bool(strategy.needs & EMBEDDING_NEEDS) and not model.embeds_input
    pool.add(initial)
    rounds: list[Round] = []
    while True:
        remaining = budget - pool.oracle.spent  # a round that will query needs the embeddings
        result, proba, embeddings = fit_and_measure(model, pool, held_out,
                                                    embed and remaining > 0)
        unlabelled = pool.unlabelled
        if remaining > 0 and len(unlabelled):
            started = time.perf_counter()
            ctx = QueryContext(pool.x, pool.indices, unlabelled, rng, model, n_classes, cache,
                               pool.labels)
            ctx.provide("proba", proba)  # computed for the round's measurements already
            if embeddings is not None:
                ctx.provide("embed", embeddings)
            with phase("select"):
                query = strategy.query(ctx, min(batch_size, remaining))
            positions = np.asarray(query.positions, dtype=np.int64)
            if len(np.unique(positions)) != len(positions) or len(positions) > min(
                    batch_size, remaining):
                raise RuntimeError(f"strategy {strategy.name!r} returned {len(positions)} "
                                   f"positions (distinct: {len(np.unique(positions))}) for a "
                                   f"batch of {min(batch_size, remaining)}")
            result.selected = unlabelled[positions]
            result.select_seconds = time.perf_counter() - started
            result.scores, result.score_name = query.scores, query.score_name
        if stopping is not None:
            with phase("stopping"):
                fired = stopping(model, pool, result, proba)
            if fired:
                result.selected = np.empty(0, np.int64)  # a criterion fired: no batch bought
        rounds.append(result)
        if on_round is not None:
            with phase("round_log"):
                on_round(result)
        if not len(result.selected):
            return rounds
        pool.add(result.selected)
