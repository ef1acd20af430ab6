"""Feature spaces and chunked distance kernels for the distance-based strategies.

Core-set, TypiClust and ProbCover measure Euclidean distances in a feature space chosen by
`params.features`:

- `embedding`: the model's penultimate features (`Learner.embed`), recomputed every round;
- `raw`: the pool's input features as stored (pixels in [0, 1] for MNIST);
- `pca`: the raw features projected on their first `params.pca_dim` principal components
  (scikit-learn's PCA fitted once on the whole pool, `random_state=0`).

`raw` and `pca` do not depend on the model: they are computed once per experiment and kept in
`ctx.cache` (a `PoolCache`), and they are what the initial selection (no model yet) can use. With
`params.normalize`, every feature row is scaled to unit Euclidean norm (as TypiClust's and
ProbCover's reference code does with its self-supervised features), so distances lie in [0, 2].

Distances use ||a - b||^2 = ||a||^2 + ||b||^2 - 2 <a, b> in blocks of rows (a BLAS matrix
product per block, at most `BLOCK_ELEMENTS` entries at a time, in the features' precision:
float32 for PCA features), so no n x n matrix is ever held and no Python loop runs over pool
items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from al_research.models.base import Capability, CapabilityError
from al_research.strategies.base import QueryContext
from al_research.strategies.pool_cache import FeatureKey

FEATURES = ("embedding", "raw", "pca")
BLOCK_ELEMENTS = 1 << 23  # entries of one block of the distance matrix (32 MB in float32)


def check_feature_params(owner: str, features: str, pca_dim: int) -> None:
    """Range checks shared by the feature-space strategies' `Params`."""
    if features not in FEATURES:
        raise ValueError(f"{owner}: features must be one of {list(FEATURES)}, got {features!r}")
    if pca_dim < 1:
        raise ValueError(f"{owner}: pca_dim must be >= 1, got {pca_dim}")


def feature_needs(features: str) -> frozenset[Capability]:
    """What a feature-space strategy needs of the model: embeddings for `features=embedding`,
    nothing for `raw` and `pca` (usable as an initial selection)."""
    return frozenset({Capability.EMBEDDINGS}) if features == "embedding" else frozenset()


def draw_seed(rng: np.random.Generator) -> int:
    """A seed for scikit-learn (k-means) drawn from the loop's rng: runs stay reproducible."""
    return int(rng.integers(2**31 - 1))


@dataclass
class Space:
    """Feature rows of a universe of pool items, and where the labelled / unlabelled items sit.

    `x` rows are the universe; `labelled` and `unlabelled` are row positions into `x` of
    `ctx.labelled` and `ctx.unlabelled` (same order). `key` is set when the features do not
    depend on the model, so derived quantities (a coverage graph) can be cached in `ctx.cache`.
    """

    x: np.ndarray
    labelled: np.ndarray
    unlabelled: np.ndarray
    key: FeatureKey | None


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (zero rows stay zero)."""
    norms = np.sqrt(sq_norms(x))
    norms[norms == 0] = 1.0
    return (x / norms[:, None].astype(x.dtype, copy=False)).astype(x.dtype, copy=False)


def static_features(ctx: QueryContext, kind: str, pca_dim: int, normalize: bool) -> np.ndarray:
    """The whole pool's raw or PCA features, in pool order, computed once per experiment."""
    key = (kind, pca_dim if kind == "pca" else None, normalize)
    cache = ctx.cache.features
    if key not in cache:
        x = np.asarray(ctx.cache.array())
        x = x.reshape(len(x), -1)
        if kind == "pca":
            from sklearn.decomposition import PCA

            dim = min(pca_dim, x.shape[1], x.shape[0])
            x = PCA(n_components=dim, random_state=0).fit_transform(x.astype(np.float64))
        if normalize:
            x = normalize_rows(x)
        if kind == "pca":  # float32 distance kernels: half the memory traffic of float64
            x = x.astype(np.float32)
        cache[key] = x
    return cache[key]


def embeds_input(ctx: QueryContext) -> bool:
    """Whether the model's embedding is its input (softmax regression: `embeds_input = True`):
    then "embedding" features are the raw features, model-independent and cacheable."""
    return ctx.model is not None and ctx.model.embeds_input


def require_model(ctx: QueryContext, owner: str) -> None:
    """Refuse features=embedding without a model (the initial selection), with the way out."""
    if ctx.model is None:
        raise CapabilityError(
            f"strategy {owner!r} with features=embedding needs a trained model, and the "
            "initial selection has none; use features=raw or features=pca")


def feature_space(ctx: QueryContext, kind: str, pca_dim: int, normalize: bool,
                  owner: str) -> Space:
    """The features `kind` of the labelled and unlabelled pool items (see the module doc)."""
    if kind == "embedding" and embeds_input(ctx):
        kind = "raw"
    if kind == "embedding":
        require_model(ctx, owner)
        labelled = np.asarray(ctx.embeddings("labelled")) if len(ctx.labelled) else None
        unlabelled = np.asarray(ctx.embeddings("unlabelled"))
        x = unlabelled if labelled is None else np.concatenate([labelled, unlabelled])
        x = x.reshape(len(x), -1)
        if normalize:
            x = normalize_rows(x)
        n_l = len(ctx.labelled)
        return Space(x, np.arange(n_l), n_l + np.arange(len(ctx.unlabelled)), None)
    x = static_features(ctx, kind, pca_dim, normalize)
    return Space(x, ctx.labelled, ctx.unlabelled,
                 (kind, pca_dim if kind == "pca" else None, normalize))


def static_sq_norms(ctx: QueryContext, space: Space) -> np.ndarray:
    """`sq_norms` of a model-independent space's rows, computed once per experiment."""
    norms = ctx.cache.sq_norms
    if space.key not in norms:
        norms[space.key] = sq_norms(space.x)
    return norms[space.key]


def sq_norms(x: np.ndarray) -> np.ndarray:
    """Squared Euclidean norm of every row, in float64."""
    x = np.asarray(x)
    out = np.zeros(len(x))
    if x.size:
        for rows in _blocks(len(x), x.shape[1]):  # casts one block at a time, not the matrix
            out[rows] = np.einsum("ij,ij->i", x[rows], x[rows], dtype=np.float64)
    return out


def _blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    step = max(1, BLOCK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def _half_gram(a: np.ndarray, b: np.ndarray, b_half_sq: np.ndarray) -> np.ndarray:
    """`<a_i, b_j> - ||b_j||^2 / 2` for a block of rows of `a`, in `a`'s precision, in place.

    Since `||a_i - b_j||^2 = ||a_i||^2 - 2 (<a_i, b_j> - ||b_j||^2 / 2)`, the nearest `b_j`
    is the largest entry of row i and a radius test is one comparison per entry: one pass over
    the block after the matrix product, instead of the four of forming squared distances.
    """
    g = a @ b.T
    g -= b_half_sq[None, :]
    return g


def _half_sq(x: np.ndarray) -> np.ndarray:
    return (sq_norms(x) / 2).astype(x.dtype if x.dtype.kind == "f" else np.float64)


def min_sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For every row of `a`, the squared distance to its nearest row of `b` (inf if `b` is
    empty)."""
    if len(b) == 0:
        return np.full(len(a), np.inf)
    a_sq, b_half = sq_norms(a), _half_sq(b)
    out = np.empty(len(a))
    for rows in _blocks(len(a), len(b)):
        out[rows] = _half_gram(a[rows], b, b_half).max(axis=1)
    return np.maximum(a_sq - 2.0 * out, 0.0)


def sq_dist_to(x: np.ndarray, x_sq: np.ndarray, j: int,
               rows: np.ndarray | None = None) -> np.ndarray:
    """Squared distances of every row of `x` (or of `x[rows]`) to row `j`: one matrix-vector
    product over all of `x`, then the `rows` taken (cheaper than copying `x[rows]`)."""
    d2 = x_sq + x_sq[j] - 2.0 * (x @ x[j]).astype(np.float64, copy=False)
    if rows is not None:
        d2 = d2[rows]
    return np.maximum(d2, 0.0, out=d2)


def knn_mean_dist(x: np.ndarray, k: int) -> np.ndarray:
    """For every row, the mean Euclidean distance to its `k` nearest *other* rows."""
    n = len(x)
    if not 1 <= k < n:
        raise ValueError(f"k-nearest neighbours need 1 <= k < {n} rows, got k={k}")
    x_sq, x_half = sq_norms(x), _half_sq(x)
    out = np.empty(n)
    for rows in _blocks(n, n):
        g = _half_gram(x[rows], x, x_half)
        g[np.arange(rows.stop - rows.start), np.arange(rows.start, rows.stop)] = -np.inf
        top = np.partition(g, n - k, axis=1)[:, n - k:].astype(np.float64)
        d2 = np.maximum(x_sq[rows, None] - 2.0 * top, 0.0)
        out[rows] = np.sqrt(d2).mean(axis=1)
    return out


def nearest_other_label_dist(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For every row, the Euclidean distance to its nearest row with another label (inf if
    every row has the same label).

    Rows are sorted by label; each pair of labels is one block product, read both ways (the
    nearest of the later label for each row, the nearest of the earlier one for each column),
    so each cross-label pair is multiplied once.
    """
    order = np.argsort(labels, kind="stable")
    xs, ls = x[order], np.asarray(labels)[order]
    half = _half_sq(xs)
    best = np.full(len(xs), -np.inf)  # max over other labels' rows o of <x, o> - ||o||^2 / 2
    ends = np.flatnonzero(np.diff(ls)) + 1  # where each label's run ends
    for end in ends:
        start = int(np.searchsorted(ls, ls[end - 1], side="left"))
        later = slice(int(end), len(xs))
        for rows in _blocks(end - start, len(xs) - end):
            rows = slice(start + rows.start, start + rows.stop)
            m = xs[rows] @ xs[later].T
            best[rows] = np.maximum(best[rows], (m - half[None, later]).max(axis=1))
            m -= half[rows, None]
            best[later] = np.maximum(best[later], m.max(axis=0))
    d2 = np.maximum(sq_norms(xs) - 2.0 * best, 0.0)
    out = np.empty(len(xs))
    out[order] = np.sqrt(d2)
    return out


def radius_graph(x: np.ndarray, delta: float):
    """The δ-ball graph: a symmetric CSR matrix (int8 ones) with an edge i -> j when
    ||x_i - x_j|| <= delta, self-loops included (a point always covers itself).

    Only the upper triangle is computed (blocks of rows against the columns from their first
    row on), then mirrored: the graph is symmetric by construction.
    """
    from scipy import sparse

    n = len(x)
    x_half = _half_sq(x)
    # ||x_i - x_j|| <= delta  <=>  <x_i, x_j> - ||x_j||^2 / 2 >= (||x_i||^2 - delta^2) / 2
    threshold = ((sq_norms(x) - delta * delta) / 2).astype(x_half.dtype)
    rows_out, cols_out = [], []
    for rows in _blocks(n, n):
        cols = slice(rows.start, n)
        within = _half_gram(x[rows], x[cols], x_half[cols]) >= threshold[rows, None]
        flat = np.flatnonzero(within)
        width = n - rows.start
        rows_out.append((flat // width + rows.start).astype(np.int32))
        cols_out.append((flat % width + rows.start).astype(np.int32))
    r, c = np.concatenate(rows_out), np.concatenate(cols_out)
    upper = sparse.csr_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    graph = (upper + upper.T + sparse.identity(n, dtype=np.int8, format="csr")).tocsr()
    graph.data[:] = 1
    graph.sort_indices()
    return graph
