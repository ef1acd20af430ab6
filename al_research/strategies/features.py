"""Feature spaces and chunked distance kernels for the distance-based strategies.

Core-set, TypiClust and ProbCover measure Euclidean distances in a feature space chosen by
`params.features`:

- `embedding`: the model's penultimate features (`Learner.embed`), recomputed every round;
- `raw`: the pool's input features as stored (pixels in [0, 1] for MNIST);
- `pca`: the raw features projected on their first `params.pca_dim` principal components
  (scikit-learn's PCA fitted once on the whole pool, `random_state=0`).

`raw` and `pca` do not depend on the model: they are computed once per experiment and kept in
`ctx.static`, and they are what the initial selection (no model yet) can use. With
`params.normalize`, every feature row is scaled to unit Euclidean norm (as TypiClust's and
ProbCover's reference code does with its self-supervised features), so distances lie in [0, 2].

Distances use ||a - b||^2 = ||a||^2 + ||b||^2 - 2 <a, b> in blocks of rows (a BLAS matrix
product per block, at most `BLOCK_ELEMENTS` entries at a time), so no n x n matrix is ever held
and no Python loop runs over pool items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from al_research.models.base import CapabilityError
from al_research.strategies.base import QueryContext

FEATURES = ("embedding", "raw", "pca")
BLOCK_ELEMENTS = 1 << 22  # entries of one block of the distance matrix (32 MB in float64)


def check_feature_params(owner: str, features: str, pca_dim: int) -> None:
    """Range checks shared by the feature-space strategies' `Params`."""
    if features not in FEATURES:
        raise ValueError(f"{owner}: features must be one of {list(FEATURES)}, got {features!r}")
    if pca_dim < 1:
        raise ValueError(f"{owner}: pca_dim must be >= 1, got {pca_dim}")


def draw_seed(rng: np.random.Generator) -> int:
    """A seed for scikit-learn (k-means) drawn from the loop's rng: runs stay reproducible."""
    return int(rng.integers(2**31 - 1))


@dataclass
class Space:
    """Feature rows of a universe of pool items, and where the labelled / unlabelled items sit.

    `x` rows are the universe; `labelled` and `unlabelled` are row positions into `x` of
    `ctx.labelled` and `ctx.unlabelled` (same order). `key` is set when the features do not
    depend on the model, so derived quantities (a coverage graph) can be cached in `ctx.static`.
    """

    x: np.ndarray
    labelled: np.ndarray
    unlabelled: np.ndarray
    key: tuple | None


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (zero rows stay zero)."""
    norms = np.sqrt(sq_norms(x))
    norms[norms == 0] = 1.0
    return (x / norms[:, None].astype(x.dtype, copy=False)).astype(x.dtype, copy=False)


def static_features(ctx: QueryContext, kind: str, pca_dim: int, normalize: bool) -> np.ndarray:
    """The whole pool's raw or PCA features, in pool order, computed once per experiment."""
    key = ("features", kind, pca_dim if kind == "pca" else None, normalize)
    if key not in ctx.static:
        x = np.asarray(ctx.pool_array())
        x = x.reshape(len(x), -1)
        if kind == "pca":
            from sklearn.decomposition import PCA

            dim = min(pca_dim, x.shape[1], x.shape[0])
            x = PCA(n_components=dim, random_state=0).fit_transform(x.astype(np.float64))
        if normalize:
            x = normalize_rows(x)
        ctx.static[key] = x
    return ctx.static[key]


def feature_space(ctx: QueryContext, kind: str, pca_dim: int, normalize: bool,
                  owner: str) -> Space:
    """The features `kind` of the labelled and unlabelled pool items (see the module doc)."""
    if kind == "embedding":
        if ctx.model is None:
            raise CapabilityError(
                f"strategy {owner!r} with features=embedding needs a trained model, and the "
                "initial selection has none; use features=raw or features=pca")
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


def take_rows(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """`x[positions]`, as a view (no copy) when the positions are one contiguous run."""
    positions = np.asarray(positions)
    if len(positions) and positions[-1] - positions[0] == len(positions) - 1 and (
            len(positions) == 1 or (np.diff(positions) == 1).all()):
        return x[positions[0]:positions[-1] + 1]
    return x[positions]


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


def _block_sq_dist(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray, b_sq: np.ndarray
                   ) -> np.ndarray:
    d2 = a @ b.T
    d2 = a_sq[:, None] + b_sq[None, :] - 2.0 * d2
    return np.maximum(d2, 0.0, out=d2)


def min_sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For every row of `a`, the squared distance to its nearest row of `b` (inf if `b` is
    empty)."""
    if len(b) == 0:
        return np.full(len(a), np.inf)
    a_sq, b_sq = sq_norms(a), sq_norms(b)
    out = np.empty(len(a))
    for rows in _blocks(len(a), len(b)):
        out[rows] = _block_sq_dist(a[rows], a_sq[rows], b, b_sq).min(axis=1)
    return out


def sq_dist_to(x: np.ndarray, x_sq: np.ndarray, j: int) -> np.ndarray:
    """Squared distances of every row of `x` to row `j` (one matrix-vector product)."""
    d2 = x_sq + x_sq[j] - 2.0 * (x @ x[j]).astype(np.float64, copy=False)
    return np.maximum(d2, 0.0, out=d2)


def knn_mean_dist(x: np.ndarray, k: int) -> np.ndarray:
    """For every row, the mean Euclidean distance to its `k` nearest *other* rows."""
    n = len(x)
    if not 1 <= k < n:
        raise ValueError(f"k-nearest neighbours need 1 <= k < {n} rows, got k={k}")
    x_sq = sq_norms(x)
    out = np.empty(n)
    for rows in _blocks(n, n):
        d2 = _block_sq_dist(x[rows], x_sq[rows], x, x_sq)
        d2[np.arange(rows.stop - rows.start), np.arange(rows.start, rows.stop)] = np.inf
        nearest = np.partition(d2, k - 1, axis=1)[:, :k]
        out[rows] = np.sqrt(nearest).mean(axis=1)
    return out


def nearest_other_label_dist(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For every row, the Euclidean distance to its nearest row with another label (inf if
    every row has the same label)."""
    x_sq = sq_norms(x)
    out = np.empty(len(x))
    for rows in _blocks(len(x), len(x)):
        d2 = _block_sq_dist(x[rows], x_sq[rows], x, x_sq)
        d2[labels[rows][:, None] == labels[None, :]] = np.inf
        out[rows] = d2.min(axis=1)
    return np.sqrt(out)


def radius_graph(x: np.ndarray, delta: float):
    """The δ-ball graph: a symmetric CSR matrix (int8 ones) with an edge i -> j when
    ||x_i - x_j|| <= delta, self-loops included (a point always covers itself)."""
    from scipy import sparse

    n = len(x)
    x_sq = sq_norms(x)
    limit = delta * delta
    counts, cols = [], []
    for rows in _blocks(n, n):
        within = _block_sq_dist(x[rows], x_sq[rows], x, x_sq) <= limit
        within[np.arange(rows.stop - rows.start), np.arange(rows.start, rows.stop)] = True
        counts.append(within.sum(axis=1))
        cols.append(np.nonzero(within)[1].astype(np.int32))  # row-major: sorted by row
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
    indices = np.concatenate(cols)
    graph = sparse.csr_matrix((np.ones(len(indices), dtype=np.int8), indices, indptr),
                              shape=(n, n))
    # Rounding can differ between blocks exactly at the radius: make the graph symmetric.
    graph = graph.maximum(graph.T.tocsr())
    graph.sort_indices()
    return graph
