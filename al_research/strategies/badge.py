"""BADGE: batch active learning by diverse gradient embeddings (Ash et al. 2020)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from al_research.models.base import Capability
from al_research.strategies.base import Query, QueryContext, Strategy
from al_research.strategies.features import (
    embeds_input,
    feature_space,
    sq_norms,
    static_sq_norms,
)

Draw = Callable[[np.ndarray], int]  # a probability vector -> the position drawn


def residuals(proba: np.ndarray) -> np.ndarray:
    """`p - onehot(argmax p)`: the gradient of the cross-entropy with respect to the logits at
    the predicted label (the label BADGE pretends the model's guess is). float64."""
    proba = np.asarray(proba, dtype=np.float64)
    r = proba.copy()
    r[np.arange(len(r)), proba.argmax(axis=1)] -= 1.0
    return r


def kmeanspp_gradients(proba: np.ndarray, h: np.ndarray, n: int, draw: Draw,
                       bias: bool = False, origin_as_center: bool = False,
                       rows: np.ndarray | None = None, h_sq: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding on the gradient embeddings `g_i = r_i ⊗ h_i`, without building them.

    `r = residuals(proba)` (n x C), `h` the penultimate features (n x d, with a constant 1
    appended when `bias`: the gradient of the last layer's bias too). Since
    `<g_i, g_j> = <r_i, r_j> <h_i, h_j>`, the squared distance to a new centre j is
    `||g_i||^2 + ||g_j||^2 - 2 <r_i, r_j><h_i, h_j>`: one matrix-vector product with R and one
    with H per pick, O(n (C + d)) time and O(n) extra memory, never the n x (d*C) matrix.

    As in BADGE's reference code, the first centre is the largest gradient norm (lowest
    position on ties); each next one is drawn by `draw` with probability proportional to D^2,
    the squared distance to the nearest centre chosen so far (0 for chosen items). If every D^2
    is 0, the draw is uniform over the items not chosen. `origin_as_center` adds the origin as
    a centre that is never picked, which is what scikit-activeml's `Badge` does (it starts
    from D^2 = ||g||^2); BADGE's paper and code do not, and neither does this strategy.

    `rows`: when given, `h` holds more rows (the whole pool) and the items are `h[rows]`; the
    products run over all of `h` and the rows are taken after (no copy of `h[rows]`); `h_sq`:
    `sq_norms(h)` if already known.

    Returns (positions, gradient-embedding norms ||g_i||).
    """
    r = residuals(proba)
    h = np.asarray(h)
    h = h.reshape(len(h), -1)
    n = min(n, len(r))
    h_sq = sq_norms(h) if h_sq is None else h_sq
    if rows is not None:
        h_sq = h_sq[rows]
    g_sq = sq_norms(r) * (h_sq + (1.0 if bias else 0.0))
    # Squared distances within rounding of ||g_i||^2 + ||g_j||^2 (h's precision) are zeros.
    tol = 16 * np.finfo(h.dtype if h.dtype.kind == "f" else np.float64).eps
    d2 = g_sq.copy() if origin_as_center else np.full(len(r), np.inf)
    chosen = np.zeros(len(r), dtype=bool)
    picks = np.empty(n, dtype=np.int64)
    for i in range(n):
        total = d2.sum()
        if i == 0 and g_sq.sum() > 0:
            j = int(np.argmax(g_sq))
        elif 0 < total < np.inf:
            j = draw(d2 / total)
        else:  # every item sits on a centre (or all gradients are 0): uniform
            uniform = (~chosen).astype(np.float64)
            j = draw(uniform / uniform.sum())
        picks[i] = j
        chosen[j] = True
        if i + 1 == n:
            break
        if rows is None:
            hh = (h @ h[j]).astype(np.float64, copy=False)
        else:
            hh = (h @ h[rows[j]]).astype(np.float64, copy=False)[rows]
        if bias:
            hh = hh + 1.0
        new = g_sq + g_sq[j] - 2.0 * (r @ r[j]) * hh
        new[new <= tol * (g_sq + g_sq[j])] = 0.0  # cancellation noise: a duplicate
        np.minimum(d2, new, out=d2)
        d2[chosen] = 0.0
    return picks, np.sqrt(g_sq)


class Badge(Strategy):
    """BADGE (Ash et al. 2020): k-means++ seeding on the gradient embeddings of the last layer
    at the predicted label, `g(x) = (p(x) - onehot(argmax p(x))) ⊗ h(x)` with `h = embed(x)`,
    so the batch is both uncertain (large gradients) and diverse (spread in gradient space).
    Computed from `<g_i, g_j> = <r_i, r_j><h_i, h_j>` without materialising the n x (d*C)
    gradient matrix (see `kmeanspp_gradients`). The draws come from the loop's rng.

    The per-round score is each unlabelled item's gradient-embedding norm ||g(x)||.
    """

    @dataclass
    class Params:
        """BADGE's hyperparameters.

        bias: also take the gradient of the last layer's bias, i.e. append a constant 1 to
            `h` (`g = r ⊗ [h, 1]`). Off by default, as in BADGE's reference code and in
            scikit-activeml, which use the weights' gradient only.
        """

        bias: bool = False

    name: ClassVar[str] = "badge"
    needs = frozenset({Capability.GRAD_EMBEDDINGS})

    def query(self, ctx: QueryContext, n: int) -> Query:
        rng = ctx.rng

        def draw(p: np.ndarray) -> int:
            return int(rng.choice(len(p), p=p))

        if embeds_input(ctx):  # the embedding is the input: products over the pool array
            space = feature_space(ctx, "raw", 0, False, self.name)
            picks, norms = kmeanspp_gradients(ctx.proba(), space.x, n, draw, self.params.bias,
                                              rows=ctx.unlabelled,
                                              h_sq=static_sq_norms(ctx, space))
        else:
            picks, norms = kmeanspp_gradients(ctx.proba(), ctx.embeddings(), n, draw,
                                              bias=self.params.bias)
        return Query(picks, norms, "gradient_embedding_norm")
