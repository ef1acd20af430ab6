"""Checks on raw arrays, before anything trains on them.

Every check raises a `DataError` whose message starts with `where` (a file's path or a built-in
set's name), names the array at fault and gives one reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from al_research.data.errors import DataError

MAX_PIXEL = 255


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(int(s) for s in shape))


def item_shape(where: str, name: str, x: np.ndarray) -> tuple[int, ...]:
    """The per-item input shape an x array implies: (h, w, c) for images, (d,) for features.

    (n, h, w) is a single-channel image set, (n, h, w, c) one with c in {1, 3, 4} channels, and
    (n, d) a set of feature vectors.
    """
    if x.dtype.kind not in "iuf":
        raise DataError(f"{where}: {name} is not numeric (dtype {x.dtype})")
    if x.ndim == 2:
        return (int(x.shape[1]),)
    if x.ndim == 3:
        return (int(x.shape[1]), int(x.shape[2]), 1)
    if x.ndim == 4:
        if x.shape[3] not in (1, 3, 4):
            raise DataError(f"{where}: {name} has shape {_shape(x.shape)}: images need 1, 3 or 4 "
                            "channels last, (n, h, w, c)")
        return tuple(int(s) for s in x.shape[1:])
    raise DataError(f"{where}: {name} has shape {_shape(x.shape)}: expected (n, d) features, "
                    "(n, h, w) or (n, h, w, c) images")


def label_vector(where: str, name: str, y: np.ndarray) -> np.ndarray:
    """Labels as a 1-D array: (n,) or (n, 1); one-hot (n, k) labels are refused."""
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: {name} has shape {_shape(y.shape)}: expected (n,) class "
                        "indices")
    return y


def check_pair(where: str, x_name: str, x: np.ndarray, y_name: str, y: np.ndarray) -> None:
    """x and y describe the same items, and there is at least one."""
    if len(x) != len(y):
        raise DataError(f"{where}: {x_name} has {len(x)} items but {y_name} has {len(y)}")
    if len(x) == 0:
        raise DataError(f"{where}: {x_name} has no items")


def check_finite(where: str, name: str, x: np.ndarray) -> None:
    """No NaN or infinite value anywhere in x."""
    if x.dtype.kind != "f":
        return
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(f"{where}: {name} has non-finite values (NaN or inf) in {len(bad)} "
                        f"items, the first at index {bad[0]}")


def check_pixels(where: str, name: str, x: np.ndarray) -> None:
    """Image pixels lie in [0, 255] (integers, or floats on either scale)."""
    low, high = x.min(), x.max()
    if low < 0 or high > MAX_PIXEL:
        raise DataError(f"{where}: {name} has pixels outside [0, {MAX_PIXEL}] "
                        f"(min {low}, max {high})")


def integer_labels(where: str, name: str, y: np.ndarray) -> np.ndarray:
    """Labels as int64; floats are accepted only when every value is a whole number."""
    if y.dtype.kind in "iu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if whole.all():
            return y.astype(np.int64)
        first = int(np.flatnonzero(~whole)[0])
        raise DataError(f"{where}: {name} labels are not integers ({y[first]} at index {first})")
    raise DataError(f"{where}: {name} labels are not integers (dtype {y.dtype})")


def class_count(where: str, labels: Sequence[tuple[str, np.ndarray]],
                n_classes: int | None) -> int:
    """The number of classes: `n_classes`, or the largest label + 1; every label in range."""
    given = n_classes is not None
    if n_classes is None:
        n_classes = max(int(y.max()) for _, y in labels) + 1
        if n_classes < 2:
            raise DataError(f"{where}: its labels hold a single class; at least 2 are needed")
    for name, y in labels:
        outside = (y < 0) | (y >= n_classes)
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            bound = f"[0, {n_classes})" + (" (data.n_classes)" if given else "")
            raise DataError(f"{where}: {name} has labels outside {bound}: {y[first]} at "
                            f"index {first}")
    return n_classes
