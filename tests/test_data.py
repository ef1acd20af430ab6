"""Splits are disjoint and seeded; the npz loader reads Keras files and names missing paths."""

import numpy as np
import pytest

from al_research.config import DataConfig
from al_research.data import load_mnist_5k, make_split


def test_embedded_data_is_real_mnist_scaled_to_unit_range():
    x, y = load_mnist_5k()
    assert x.shape == (5000, 784) and x.dtype == np.float32
    assert 0.0 == x.min() and x.max() == 1.0
    assert np.bincount(y).tolist() == [500] * 10


def test_split_sizes_and_disjointness():
    split = make_split(DataConfig(name="mnist_5k"), seed=0)
    assert (len(split.pool_x), len(split.test_x), len(split.val_x)) == (4000, 400, 600)
    ids = [set(split.pool_ids), set(split.test_ids), set(split.val_ids)]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    x, y = load_mnist_5k()
    np.testing.assert_array_equal(split.test_x, x[split.test_ids])
    np.testing.assert_array_equal(split.pool_y, y[split.pool_ids])


def test_same_seed_same_split_other_seed_other_split():
    a = make_split(DataConfig(name="mnist_5k"), seed=3)
    b = make_split(DataConfig(name="mnist_5k"), seed=3)
    c = make_split(DataConfig(name="mnist_5k"), seed=4)
    np.testing.assert_array_equal(a.pool_ids, b.pool_ids)
    assert not np.array_equal(a.pool_ids, c.pool_ids)


def test_sizes_larger_than_the_data_are_rejected():
    with pytest.raises(ValueError, match="data.val_size"):
        make_split(DataConfig(name="mnist_5k", val_size=700), seed=0)


def _write_npz(path, n_train=300, n_test=50):
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, n_train, dtype=np.uint8),
        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, n_test, dtype=np.uint8),
    )


def test_npz_loader_draws_pool_and_val_from_train_and_test_from_test(tmp_path):
    path = tmp_path / "mnist.npz"
    _write_npz(path)
    cfg = DataConfig(name="mnist", source="npz", path=str(path), pool_size=200, test_size=40,
                     val_size=60)
    split = make_split(cfg, seed=1)
    assert (len(split.pool_x), len(split.val_x), len(split.test_x)) == (200, 60, 40)
    assert split.pool_x.shape[1] == 784 and split.pool_x.max() <= 1.0
    assert not set(split.pool_ids) & set(split.val_ids)
    with np.load(path) as raw:
        expected = raw["x_test"][split.test_ids].reshape(40, -1) / 255.0
        np.testing.assert_allclose(split.test_x, expected, rtol=1e-6)
        np.testing.assert_array_equal(split.pool_y, raw["y_train"][split.pool_ids])


def test_missing_npz_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "mnist.npz"
    cfg = DataConfig(name="mnist", source="npz", path=str(missing))
    with pytest.raises(FileNotFoundError, match=str(missing)):
        make_split(cfg, seed=0)


def test_npz_without_keras_arrays_is_rejected(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="x_train"):
        make_split(DataConfig(name="mnist", source="npz", path=str(path)), seed=0)


def test_embedded_data_is_loaded_once_and_cannot_be_changed():
    x, _ = load_mnist_5k()
    assert load_mnist_5k()[0] is x
    with pytest.raises(ValueError):
        x[0, 0] = 1.0
