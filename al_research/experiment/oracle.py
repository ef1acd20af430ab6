"""The labelling oracle: the only holder of the pool's true labels."""

from __future__ import annotations

import numpy as np


class Oracle:
    """Emulates a human annotator (the article's `label_manually`) and counts labels spent."""

    def __init__(self, pool_labels: np.ndarray) -> None:
        self._labels = np.asarray(pool_labels).copy()
        self._labels.flags.writeable = False
        self._labelled = np.zeros(len(self._labels), dtype=bool)

    @property
    def spent(self) -> int:
        """How many distinct pool items have been labelled."""
        return int(self._labelled.sum())

    @property
    def labelled_indices(self) -> np.ndarray:
        return np.flatnonzero(self._labelled)

    def label_manually(self, indices: np.ndarray) -> np.ndarray:
        """Reveal the true labels of `indices`; each newly labelled item costs one label."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self._labels)):
            raise IndexError(f"pool indices must be in [0, {len(self._labels)})")
        if len(np.unique(indices)) != len(indices):
            raise ValueError("label_manually was asked for the same item twice in one call")
        self._labelled[indices] = True
        return self._labels[indices].copy()

    def audit(self, indices: np.ndarray) -> np.ndarray:
        """True labels for evaluation only (pseudo-label accuracy, cluster purity).

        Nothing returned here may reach training; it is not counted as spent.
        """
        return self._labels[np.asarray(indices, dtype=np.int64)].copy()
