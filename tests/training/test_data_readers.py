"""The real readers (IDX, image folders) on files built in a temporary directory."""

from __future__ import annotations

import gzip
import socket
import struct
import time

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


def test_mnist_remedies_are_the_ones_that_provide_mnist(tmp_path, monkeypatch):
    """Debian packages Fashion-MNIST only (`apt-cache search mnist`): MNIST's message offers
    IDX files, Keras's mnist.npz and a TFDS copy, never `apt-get install`."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("mnist", data_dir=str(tmp_path / "empty"))
    message = str(info.value)
    assert "apt-get" not in message and "Debian has no mnist package" in message
    assert str(tmp_path / "keras" / "datasets" / "mnist.npz") in message
    assert "train-images-idx3-ubyte.gz" in message and "--dataset tfds:mnist" in message


@pytest.fixture
def offline(monkeypatch):
    """Every HTTPS connection goes to a local port where nothing listens: no download can
    succeed (nor hang), on a connected machine too."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(key, f"http://127.0.0.1:{port}")
    for key in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(key, raising=False)
    return port


def test_tfds_data_set_missing_offline_says_how_to_provide_it(tmp_path, offline):
    """Not prepared in --data-dir and not downloadable: the message says so (not "it has no
    splits", what TFDS's metadata looks like offline), fast, and writes nothing."""
    started = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("tfds:mnist", data_dir=str(tmp_path))
    message = str(info.value)
    assert message.startswith("tfds:mnist is not on this machine")
    assert f"not prepared in --data-dir {tmp_path}" in message
    assert f"could not be downloaded (no connection to the HTTPS proxy 127.0.0.1:{offline}" in (
        message
    )
    assert "`tfds build mnist --data_dir DIR`" in message and "--data-dir DIR" in message
    assert "splits" not in message and "\n" not in message
    assert time.perf_counter() - started < 30
    assert list(tmp_path.iterdir()) == []


def test_manual_tfds_data_set_names_the_manual_dir(tmp_path, offline):
    with pytest.raises(FileNotFoundError, match=r"downloads/manual.*MANUAL_DOWNLOAD_INSTRUCTIONS"):
        load_dataset("tfds:imagenet2012", data_dir=str(tmp_path))


def test_network_probe(monkeypatch, offline):
    from training import data

    assert "no connection to the HTTPS proxy" in data.network_problem(timeout=2)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert data.network_problem(timeout=2) is None


def test_unknown_spec():
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'.*tfds:<name>"):
        load_dataset("cifar")


@pytest.mark.parametrize(
    "spec, suggestion",
    [
        ("cifar10", "'tfds:cifar10'"),  # a TFDS name given bare
        ("Fashion_MNSIT", "'fashion_mnist'"),
        ("cifar", "'tfds:cifar10'"),
    ],
)
def test_unknown_dataset_suggests_the_closest_name(spec, suggestion):
    with pytest.raises(ValueError) as info:
        load_dataset(spec)
    assert f"unknown dataset {spec!r} (did you mean {suggestion}?); accepted:" in str(info.value)


def test_unknown_tfds_name_suggests_the_closest():
    with pytest.raises(ValueError, match=r"tfds:cifar: no such.*did you mean tfds:cifar10"):
        load_dataset("tfds:cifar")


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


def test_folder_reader_says_once_how_many_images_it_converted(tmp_path, capsys):
    _write_folder(tmp_path, ["a", "b"], 5, size=(8, 8))
    Image.fromarray(np.zeros((16, 16, 4), np.uint8), "RGBA").save(tmp_path / "a" / "x.png")
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(tmp_path / "b" / "x.png")
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.image_shape == (8, 8, 3)
    err = capsys.readouterr().err
    assert err == (
        f"note: folder:{tmp_path}: resized 1 (bilinear) to 8x8 and converted 2 from L/RGBA to "
        f"RGB of 12 images, to match the first image\n"
    )
    _write_folder(tmp_path / "same", ["a", "b"], 3)
    load_dataset(f"folder:{tmp_path / 'same'}")
    assert capsys.readouterr().err == ""  # nothing converted: nothing said


def test_folder_with_one_class_is_refused(tmp_path):
    _write_folder(tmp_path / "one", ["cat"], 3)
    with pytest.raises(ValueError) as info:
        load_dataset(f"folder:{tmp_path / 'one'}")
    message = str(info.value)
    assert message.startswith(f"folder:{tmp_path / 'one'}: only one class found ('cat', 3 ")
    assert "at least 2" in message
    _write_folder(tmp_path / "split" / "train", ["cat"], 3)
    _write_folder(tmp_path / "split" / "test", ["cat"], 1)
    with pytest.raises(ValueError, match="only one class found"):
        load_dataset(f"folder:{tmp_path / 'split'}")


def test_folder_reader_errors(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images found"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    _write_folder(tmp_path / "bad", ["a", "b"], 2)
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
