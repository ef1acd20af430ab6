"""What one pool's model-independent quantities cost once: kept for a whole experiment.

The raw features as a NumPy array, PCA projections, squared norms, ProbCover's δ-ball graphs,
core-set's distances to the labelled set, k-means of the pool and Cluster-Margin's clusters of
a model-independent space do not depend on the model. The
experiment creates one `PoolCache` and hands it to the initial selection and to every round's
`QueryContext`, so each is computed once; each kind has its own typed field, keyed by the
feature space it belongs to (`FeatureKey`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from al_research.strategies.clustering import Clustering

# (kind "raw" | "pca", pca_dim for pca else None, normalize): a model-independent feature space
FeatureKey = tuple[str, int | None, bool]


@dataclass
class PoolCache:
    """Model-independent quantities of one pool (see the module doc)."""

    pool_x: Any  # the pool's features: a NumPy array or a TF tensor
    seed: int = 0  # the experiment's seed: model-independent quantities of one split are shared
    features: dict[FeatureKey, np.ndarray] = field(default_factory=dict)  # rows in pool order
    sq_norms: dict[FeatureKey, np.ndarray] = field(default_factory=dict)  # of those rows
    # ProbCover: the δ-ball graph of a feature space, by (space, its params)
    graphs: dict[tuple[FeatureKey, tuple], Any] = field(default_factory=dict)
    # core-set: (labelled pool indices, each pool row's squared distance to the nearest of them)
    distances: dict[FeatureKey, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # k-means of the raw features, by (k, seed, n_init): the kmeans stage's and initial=kmeans's
    clusterings: dict[tuple[int, int, int], Clustering] = field(default_factory=dict)
    # Cluster-Margin: each pool item's HAC cluster by (space, params), with the model whose
    # embeddings were clustered (None: a model-independent space)
    hac: dict[tuple[FeatureKey, tuple], tuple[np.ndarray, Any]] = field(default_factory=dict)
    _array: np.ndarray | None = field(default=None, repr=False)

    def array(self) -> np.ndarray:
        """The pool's raw features as a NumPy array (converted once)."""
        if self._array is None:
            x = self.pool_x
            self._array = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
        return self._array
