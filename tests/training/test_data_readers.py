"""The real readers (IDX, image folders) on files built in a temporary directory."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from training.data import IDX_FILES, load_dataset, read_idx, train_val_split

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


def write_idx(path, array: np.ndarray, compress: bool = True) -> None:
    """Writes `array` in the IDX format (big-endian), gzip-compressed if `compress`."""
    code = _CODES[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if compress:
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def make_idx_dir(directory, n_train=30, n_test=20, size=(28, 28), seed=0, compress=True):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, *size), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, *size), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, stem in IDX_FILES.items():
        write_idx(directory / (stem + (".gz" if compress else "")), arrays[key], compress)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32])
def test_read_idx_round_trip(tmp_path, compress, dtype):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((3, 5, 4)) * 50).astype(dtype)
    path = tmp_path / "a.idx"
    write_idx(path, array, compress)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, array)


def test_read_idx_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*(corrupt|truncated)"):
        read_idx(path)


def test_read_idx_truncated_payload(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.zeros(100, np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"labels.*\(100,\).*truncated"):
        read_idx(path)


def test_read_idx_bad_magic_and_missing(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_idx(tmp_path / "nothere")


def test_load_dataset_from_data_dir(tmp_path):
    arrays = make_idx_dir(tmp_path / "fm")
    ds = load_dataset("fashion_mnist", data_dir=str(tmp_path / "fm"))
    assert ds.x_train.shape == (30, 28, 28, 1) and ds.x_train.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.x_test.shape == (20, 28, 28, 1)
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])
    assert ds.image_shape == (28, 28, 1)
    assert ds.class_names[0] == "T-shirt/top" and len(ds.class_names) == 10
    assert ds.allows_flips


def test_env_dir_with_hyphen_spelling_and_raw_files(tmp_path, monkeypatch):
    make_idx_dir(tmp_path / "fashion-mnist", compress=False)
    make_idx_dir(tmp_path / "mnist", n_train=40)
    monkeypatch.setenv("CONVZOO_DATA", str(tmp_path))
    fashion = load_dataset("fashion_mnist")
    assert fashion.source == str(tmp_path / "fashion-mnist") and len(fashion.y_train) == 30
    digits = load_dataset("mnist")
    assert len(digits.y_train) == 40 and not digits.allows_flips


def test_count_mismatch_is_an_error(tmp_path):
    make_idx_dir(tmp_path)
    write_idx(tmp_path / (IDX_FILES["y_train"] + ".gz"), np.zeros(29, np.uint8))
    with pytest.raises(ValueError, match=r"30 images.*29 labels"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_missing_file_and_empty_data_dir(tmp_path):
    make_idx_dir(tmp_path / "partial")
    (tmp_path / "partial" / (IDX_FILES["x_test"] + ".gz")).unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_dataset("fashion_mnist", data_dir=str(tmp_path / "partial"))


def test_nowhere_found_names_places_and_remedy(tmp_path, monkeypatch):
    from training import data

    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", tmp_path / "system")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONVZOO_DATA", raising=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty.*apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", data_dir=str(tmp_path / "empty"))

    def offline(name, data_dir):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(data, "_load_tfds", offline)
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion_mnist")
    message = str(info.value)
    assert str(tmp_path / "system" / "fashion-mnist") in message
    # The places searched and the fix come first, the download's failure last.
    fix = message.index("apt-get install dataset-fashion-mnist")
    assert message.index(str(tmp_path / "system")) < fix < message.index("no route to host")
    assert "--data-dir" in message[: fix + 200] and "\n" not in message


def test_unknown_spec():
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'.*tfds:<name>"):
        load_dataset("cifar")


def _write_folder(root, classes, per_class, size=(12, 10), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    pixels = {}
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            shape = (*size, 3) if mode == "RGB" else size
            arr = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(arr, mode).save(root / name / f"{i:03d}.png")
            pixels[(label, i)] = arr
    return pixels


def test_folder_reader_with_train_test_subfolders(tmp_path):
    train_px = _write_folder(tmp_path / "train", ["cat", "dog", "eel"], 4)
    _write_folder(tmp_path / "test", ["cat", "dog", "eel"], 2, seed=1)
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.class_names == ["cat", "dog", "eel"]
    assert ds.x_train.shape == (12, 12, 10, 3) and ds.x_test.shape == (6, 12, 10, 3)
    np.testing.assert_array_equal(ds.y_train, np.repeat([0, 1, 2], 4))
    np.testing.assert_array_equal(ds.x_train[5], train_px[(1, 1)])  # PNG is lossless


def test_folder_reader_grayscale_split_and_resize(tmp_path):
    _write_folder(tmp_path, ["a", "b"], 10, size=(8, 8), mode="L")
    Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(tmp_path / "a" / "zzz.png")
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.image_shape == (8, 8, 1)
    assert len(ds.y_train) + len(ds.y_test) == 21
    assert set(np.unique(ds.y_test)) == {0, 1}


def test_folder_reader_errors(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images found"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    _write_folder(tmp_path / "bad", ["a"], 2)
    (tmp_path / "bad" / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"broken\.png.*cannot decode"):
        load_dataset(f"folder:{tmp_path / 'bad'}")


def test_train_val_split_is_seeded_stratified_and_disjoint():
    x = np.arange(1000)[:, None]
    y = np.arange(1000) % 10
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, 0.1, seed=3)
    np.testing.assert_array_equal(y[x_tr[:, 0]], y_tr)
    assert len(x_val) == 100 and len(x_tr) == 900
    np.testing.assert_array_equal(np.bincount(y_val), np.full(10, 10))
    assert not set(x_tr[:, 0]) & set(x_val[:, 0])
    np.testing.assert_array_equal(y[x_val[:, 0]], y_val)
    (_, _), (x_val2, _) = train_val_split(x, y, 0.1, seed=3)
    np.testing.assert_array_equal(x_val, x_val2)
    (_, _), (x_val3, _) = train_val_split(x, y, 0.1, seed=4)
    assert not np.array_equal(x_val, x_val3)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(x, y, 1.5)
