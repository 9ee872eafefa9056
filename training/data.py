"""Data sources: IDX files (MNIST, Fashion-MNIST), TensorFlow Datasets, folders of images.

Every source becomes one `ImageDataset`: uint8 images `(N, H, W, C)` and int64 labels for the
official train and test splits, held in memory (these data sets are small). The validation
split is carved out of the training split with `train_val_split` (seeded, stratified); the
test split is kept for the final evaluation only.

Where the IDX files are looked for, in order (DESIGN.md, "Data"):

1. `data_dir` (the CLI's `--data-dir`),
2. `$CONVZOO_DATA` (the directory itself, or its `<name>` subdirectory),
3. `/usr/share/datasets/<name>` (Debian's `dataset-fashion-mnist` package; both the
   `fashion_mnist` and `fashion-mnist` spellings are accepted),
4. the Keras cache `~/.keras/datasets/<name>` (and `~/.keras/datasets/mnist.npz`),
5. else TensorFlow Datasets downloads them; offline this fails with one error that names
   every place searched and what to do.

Example:

>>> ds = load_dataset("fashion_mnist")
>>> ds.x_train.shape, ds.x_train.dtype, ds.class_names[0]
((60000, 28, 28, 1), dtype('uint8'), 'T-shirt/top')
>>> (x_tr, y_tr), (x_val, y_val) = train_val_split(ds.x_train, ds.y_train, 0.1, seed=0)
"""

from __future__ import annotations

import difflib
import gzip
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "IDX_FILES",
    "ImageDataset",
    "load_dataset",
    "read_idx",
    "train_val_split",
]

# IDX type codes (http://yann.lecun.com/exdb/mnist/): all multi-byte values are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

_CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}

# Digits and characters change meaning when mirrored.
_NO_FLIP_KEYWORDS = ("mnist", "svhn", "digit", "emnist", "kmnist", "omniglot")


# Debian's dataset-* packages install here.
SYSTEM_DATA_DIR = Path("/usr/share/datasets")

_IDX_FILES_HINT = (
    "pass `--data-dir DIR` (or set $CONVZOO_DATA) pointing at the four IDX files "
    "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz)"
)


def _keras_datasets_dir() -> Path:
    """Where Keras caches downloaded data sets (`$KERAS_HOME/datasets`, else ~/.keras)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _install_hint(name: str) -> str:
    """How to provide the IDX data set `name` on a machine without internet.

    Debian packages Fashion-MNIST (`dataset-fashion-mnist`) but not MNIST, so MNIST's remedies
    are the IDX files, Keras's `mnist.npz` or a TFDS copy built on a connected machine.
    """
    if name == "fashion_mnist":
        return (
            f"install Debian's package (`apt-get install dataset-fashion-mnist`) or "
            f"{_IDX_FILES_HINT}"
        )
    return (
        f"{_IDX_FILES_HINT}, or copy Keras's mnist.npz (what `keras.datasets.mnist.load_data()` "
        f"downloads on a connected machine) to {_keras_datasets_dir() / 'mnist.npz'}, or run "
        f"`tfds build {name} --data_dir DIR` on a connected machine, copy DIR here and use "
        f"`--dataset tfds:{name} --data-dir DIR` (Debian has no {name} package)"
    )


@dataclass
class ImageDataset:
    """An image classification data set held in memory.

    Attributes:
        name: the data set's name (`"fashion_mnist"`, `"tfds:cifar10"`, `"folder:/data/x"`).
        class_names: one name per label index.
        image_shape: `(H, W, C)` of every image.
        allows_flips: whether horizontal flips keep the label (False for digits).
        x_train, y_train: the official training split, uint8 `(N, H, W, C)` and int64 `(N,)`.
        x_test, y_test: the official test split, for the final evaluation only.
        source: where the data was read from (a path or "tfds").
    """

    name: str
    class_names: list[str]
    image_shape: tuple[int, int, int]
    allows_flips: bool
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = field(default="")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0):
        """A copy keeping a seeded, class-stratified sample of `train`/`test` examples."""
        rng = np.random.default_rng(seed)

        def pick(x, y, n):
            if n is None or n >= len(y):
                return x, y
            if n <= 0:
                raise ValueError(f"subset size must be positive, got {n}")
            idx = np.sort(_stratified_indices(y, n, rng))
            return x[idx], y[idx]

        x_train, y_train = pick(self.x_train, self.y_train, train)
        x_test, y_test = pick(self.x_test, self.y_test, test)
        return ImageDataset(
            self.name,
            list(self.class_names),
            self.image_shape,
            self.allows_flips,
            x_train,
            y_train,
            x_test,
            y_test,
            self.source,
        )


# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (gzip-compressed or raw) into a native-endian NumPy array.

    The header is 2 zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int,
    0x0D float, 0x0E double), the number of dimensions, then one big-endian int32 per
    dimension; the data follows, big-endian, and must be exactly prod(dims) items long.

    Args:
        path: the file; gzip is detected by its magic bytes, not by the name.

    Returns:
        An array of shape `dims` (uint8 for image and label files).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: corrupt/truncated gzip, bad magic number, or a size mismatch; the message
            names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    redownload = "delete it and provide an intact copy (with `--data-dir`, or for Fashion-MNIST "
    redownload += "`apt-get install --reinstall dataset-fashion-mnist`)"
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip file ({e}); {redownload}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'}, expected "
            f"00 00 <type in {sorted(hex(k) for k in _IDX_DTYPES)}> <ndim>); {redownload}"
        )
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions); {redownload}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        raise ValueError(
            f"{path}: IDX header says shape {tuple(dims)} ({expected} data bytes) but the file "
            f"holds {actual}; the file is truncated or corrupt: {redownload}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _idx_candidates(name: str, data_dir: str | None) -> list[Path]:
    spellings = [name, name.replace("_", "-")]
    spellings = list(dict.fromkeys(spellings))
    candidates: list[Path] = []
    if data_dir:
        candidates.append(Path(data_dir))
        candidates += [Path(data_dir) / s for s in spellings]
    env = os.environ.get("CONVZOO_DATA")
    if env:
        candidates.append(Path(env))
        candidates += [Path(env) / s for s in spellings]
    candidates += [SYSTEM_DATA_DIR / s for s in spellings]
    candidates += [_keras_datasets_dir() / s for s in spellings]
    return list(dict.fromkeys(candidates))


def _find_idx_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / (stem + ".gz"), directory / stem):
        if candidate.is_file():
            return candidate
    # torchvision-style "train-images.idx3-ubyte"
    dotted = directory / (stem.replace("-idx", ".idx"))
    for candidate in (dotted, Path(str(dotted) + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_dir(name: str, directory: Path) -> ImageDataset:
    arrays = {}
    for key, stem in IDX_FILES.items():
        found = _find_idx_file(directory, stem)
        if found is None:
            raise FileNotFoundError(
                f"{directory} has some but not all {name} IDX files: {stem}(.gz) is missing; "
                f"{_install_hint(name)}"
            )
        arrays[key] = (found, read_idx(found))
    for split in ("train", "test"):
        (x_path, x), (y_path, y) = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3:
            raise ValueError(f"{x_path}: expected images of rank 3 (N, H, W), got {x.shape}")
        if y.ndim != 1:
            raise ValueError(f"{y_path}: expected labels of rank 1 (N,), got {y.shape}")
        if len(x) != len(y):
            raise ValueError(
                f"{x_path} holds {len(x)} images but {y_path} holds {len(y)} labels; "
                f"the files do not belong together: {_install_hint(name)}"
            )
    x_train, y_train = arrays["x_train"][1], arrays["y_train"][1]
    x_test, y_test = arrays["x_test"][1], arrays["y_test"][1]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"{directory}: train images are {x_train.shape[1:]} but test images are "
            f"{x_test.shape[1:]}"
        )
    class_names = _CLASS_NAMES.get(name) or [str(i) for i in range(int(y_train.max()) + 1)]
    for split, y, key in (("train", y_train, "y_train"), ("test", y_test, "y_test")):
        if len(y) and (y.min() < 0 or y.max() >= len(class_names)):
            raise ValueError(
                f"{arrays[key][0]}: {split} labels must lie in [0, {len(class_names)}), "
                f"got [{y.min()}, {y.max()}]"
            )
    return ImageDataset(
        name=name,
        class_names=list(class_names),
        image_shape=(*x_train.shape[1:], 1),
        allows_flips=not _is_no_flip(name),
        x_train=x_train[..., None].astype(np.uint8),
        y_train=y_train.astype(np.int64),
        x_test=x_test[..., None].astype(np.uint8),
        y_test=y_test.astype(np.int64),
        source=str(directory),
    )


def _load_keras_npz(name: str, path: Path) -> ImageDataset:
    try:
        with np.load(path) as f:
            x_train, y_train, x_test, y_test = (
                f[k] for k in ("x_train", "y_train", "x_test", "y_test")
            )
    except Exception as e:
        raise ValueError(f"{path}: not a readable Keras {name} archive ({e}); delete it") from e
    return ImageDataset(
        name=name,
        class_names=list(_CLASS_NAMES[name]),
        image_shape=(*x_train.shape[1:], 1),
        allows_flips=not _is_no_flip(name),
        x_train=x_train[..., None].astype(np.uint8),
        y_train=y_train.astype(np.int64),
        x_test=x_test[..., None].astype(np.uint8),
        y_test=y_test.astype(np.int64),
        source=str(path),
    )


def _load_idx_dataset(name: str, data_dir: str | None) -> ImageDataset:
    searched = []
    for directory in _idx_candidates(name, data_dir):
        searched.append(str(directory))
        if not directory.is_dir():
            continue
        if any(_find_idx_file(directory, stem) for stem in IDX_FILES.values()):
            return _load_idx_dir(name, directory)
    keras_npz = _keras_datasets_dir() / f"{name}.npz"
    searched.append(str(keras_npz))
    if name == "mnist" and keras_npz.is_file():
        return _load_keras_npz(name, keras_npz)
    if data_dir:
        # An explicit --data-dir that holds nothing is a user mistake: say so, don't download.
        raise FileNotFoundError(
            f"no {name} IDX files ({IDX_FILES['x_train']}(.gz) and the three others) in "
            f"--data-dir {data_dir} nor anywhere else searched ({', '.join(searched)}); "
            f"{_install_hint(name)}"
        )
    try:
        dataset = _load_tfds(name, None)
    except Exception as e:
        reason = getattr(e, "reason", None)
        if reason is None:
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        raise FileNotFoundError(
            f"{name} not found: searched {', '.join(searched)}. To fix: {_install_hint(name)}. "
            f"(The tensorflow-datasets download was tried last and failed: {reason[:160]})"
        ) from e
    dataset.name = name
    return dataset


# --------------------------------------------------------------------------------------------
# TensorFlow Datasets
# --------------------------------------------------------------------------------------------

# TensorFlow Datasets keeps its metadata and many data sets on Google Cloud Storage. Offline,
# a download retries for minutes (about 200 s for cifar10) before failing; a TCP connection to
# this host (or to the HTTPS proxy, if one is configured) tells that case apart in seconds.
TFDS_HOST = ("storage.googleapis.com", 443)
_PROBE_SECONDS = 3.0


class DataUnavailableError(FileNotFoundError):
    """A data set is not on this machine and could not be downloaded.

    Attributes:
        reason: why the download failed, one short line (for messages that quote it).
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def _probe_target() -> tuple[str, int, str]:
    """The host a TFDS download connects to first, its port and what it is: the HTTPS proxy
    if one applies, else TFDS's storage host."""
    import urllib.parse
    import urllib.request

    host, port = TFDS_HOST
    proxy = urllib.request.getproxies().get("https")
    if not proxy or urllib.request.proxy_bypass(host):
        return host, port, "TFDS's storage host"
    parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    default_port = 443 if parsed.scheme == "https" else 80
    return parsed.hostname or host, parsed.port or default_port, "the HTTPS proxy"


def network_problem(timeout: float = _PROBE_SECONDS) -> str | None:
    """Why TFDS cannot download (no connection to its host within `timeout` s), or None.

    The name lookup and the connection run in a daemon thread, so a lookup that hangs costs
    `timeout` seconds, not the resolver's own minutes.
    """
    import socket
    import threading

    host, port, what = _probe_target()
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(f"no connection to {what} {host}:{port}: {e}")

    thread = threading.Thread(target=connect, name="convzoo-network-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer from {what} {host}:{port} in {timeout:g} s"


def _tfds_builder(name: str, data_dir: str | None):
    """`tfds.builder(name)`; an unknown name is a ValueError with the closest TFDS names."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError as e:
        close = difflib.get_close_matches(name.lower(), _tfds_names(), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join('tfds:' + c for c in close)}? " if close else ""
        raise ValueError(
            f"tfds:{name}: no such TensorFlow Datasets data set; {hint}"
            f"tfds.list_builders() lists them"
        ) from e


def _tfds_names() -> list[str]:
    """The data sets TFDS knows (offline: its own registry, no download), or [] without TFDS."""
    try:
        import tensorflow_datasets as tfds

        return list(tfds.list_builders(with_community_datasets=False))
    except Exception:  # TFDS missing or broken: no suggestions, the error stays the same
        return []


def _manual_dir(builder) -> Path | None:
    """TFDS's manual-download directory, for data sets whose files must be fetched by hand."""
    if not getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        return None
    return Path(os.fspath(builder.data_dir_root)) / "downloads" / "manual"


def _unavailable(name: str, builder, data_dir: str | None, reason: str) -> DataUnavailableError:
    root = os.fspath(builder.data_dir_root)
    where = f"--data-dir {data_dir}" if data_dir else f"{root}, the TFDS data directory"
    message = (
        f"tfds:{name} is not on this machine (not prepared in {where}) and could not be "
        f"downloaded ({reason}); to provide it, run `tfds build {name} --data_dir DIR` on a "
        f"connected machine, copy DIR here and pass `--data-dir DIR`"
    )
    manual = _manual_dir(builder)
    if manual is not None:
        message += (
            f"; {name} also needs files fetched by hand in {manual} first "
            f"(see tfds.builder('{name}').MANUAL_DOWNLOAD_INSTRUCTIONS)"
        )
    return DataUnavailableError(message, reason)


def _is_prepared(builder) -> bool:
    """`builder.is_prepared()` without its log line about a missing variant folder."""
    return Path(os.fspath(builder.data_path)).is_dir() and builder.is_prepared()


def _prepare_tfds(name: str, builder, data_dir: str | None) -> None:
    """Downloads and prepares the data set unless it is there; offline, fails in seconds.

    Raises:
        DataUnavailableError: not prepared here and not downloadable (the message says how to
            provide it).
    """
    if _is_prepared(builder):
        return
    manual = _manual_dir(builder)
    has_manual_files = manual is not None and manual.is_dir() and any(manual.iterdir())
    problem = None if has_manual_files else network_problem()
    if problem is not None:
        raise _unavailable(name, builder, data_dir, problem)
    try:
        builder.download_and_prepare()
    except Exception as e:
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        raise _unavailable(name, builder, data_dir, reason) from e


def _load_tfds(name: str, data_dir: str | None) -> ImageDataset:
    builder = _tfds_builder(name, data_dir)
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2:
        raise ValueError(f"tfds:{name} has no (image, label) supervised keys; not a classifier")
    # The splits are known once the data is prepared (offline, TFDS cannot fetch its metadata).
    _prepare_tfds(name, builder, data_dir)
    info = builder.info
    _, label_key = keys
    if "test" not in info.splits or "train" not in info.splits:
        raise ValueError(
            f"tfds:{name} needs 'train' and 'test' splits, it has {sorted(info.splits)}"
        )
    splits = {split: _tfds_split(name, builder, split) for split in ("train", "test")}
    class_names = list(getattr(info.features[label_key], "names", None) or [])
    if not class_names:
        class_names = [str(i) for i in range(int(splits["train"][1].max()) + 1)]
    x_train, y_train = splits["train"]
    x_test, y_test = splits["test"]
    return ImageDataset(
        name=f"tfds:{name}",
        class_names=class_names,
        image_shape=tuple(int(d) for d in x_train.shape[1:]),
        allows_flips=not _is_no_flip(name),
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        source="tfds",
    )


def _tfds_split(name: str, builder, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One prepared split in memory: uint8 images and int64 labels."""
    import tensorflow_datasets as tfds

    x, y = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
    if x.ndim != 4:
        raise ValueError(
            f"tfds:{name} images have shape {x.shape[1:]}; only fixed-size images "
            f"(H, W, C) are supported (use folder:<path> after resizing)"
        )
    return x.astype(np.uint8), y.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def _is_no_flip(name: str) -> bool:
    name = name.lower()
    return any(k in name for k in _NO_FLIP_KEYWORDS if k != "mnist") or (
        "mnist" in name and "fashion" not in name
    )


def load_dataset(spec: str, data_dir: str | None = None) -> ImageDataset:
    """Loads a data set by spec.

    Args:
        spec: `"fashion_mnist"`, `"mnist"` (IDX files, see the module docstring for where they
            are looked for), `"tfds:<name>"` (any TFDS image classification data set with train
            and test splits) or `"folder:<path>"` (one subfolder of images per class, or
            `train/` and `test/` subfolders of those).
        data_dir: the directory with the IDX files, or the TFDS data directory.

    Returns:
        An `ImageDataset`.

    Raises:
        ValueError: unknown spec, corrupt files, empty folders.
        FileNotFoundError: the data is nowhere to be found (the message says where it looked
            and what to do).
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(
            f"dataset must be 'fashion_mnist', 'mnist', 'tfds:<name>' or 'folder:<path>', "
            f"got {spec!r}"
        )
    key = spec.strip()
    if key.lower().replace("-", "_") in _CLASS_NAMES:
        return _load_idx_dataset(key.lower().replace("-", "_"), data_dir)
    if key.startswith("tfds:"):
        name = key[len("tfds:") :]
        if not name:
            raise ValueError("tfds:<name> needs a data set name, e.g. tfds:cifar10")
        try:
            return _load_tfds(name, data_dir)
        except (ValueError, FileNotFoundError):
            raise
        except Exception as e:
            raise FileNotFoundError(
                f"tfds:{name}: could not load from tensorflow-datasets "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); check the "
                f"name (tfds.list_builders()) and that the data is prepared in --data-dir "
                f"or downloadable"
            ) from e
    if key.startswith("folder:"):
        from training.folder_data import load_folder

        return load_folder(key[len("folder:") :])
    raise ValueError(
        f"unknown dataset {spec!r}{_dataset_suggestion(key)}; accepted: 'fashion_mnist', "
        f"'mnist', 'tfds:<name>', 'folder:<path>'"
    )


def _dataset_suggestion(key: str) -> str:
    """` (did you mean 'tfds:cifar10'?)` for a bare name TFDS knows or a near miss, else ''."""
    name = key.lower().replace("-", "_")
    tfds_names = _tfds_names()
    if name in tfds_names:
        return f" (did you mean 'tfds:{name}'?)"
    close = difflib.get_close_matches(name, list(_CLASS_NAMES), n=1)
    close = close or [f"tfds:{c}" for c in difflib.get_close_matches(name, tfds_names, n=1)]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _stratified_indices(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` indices drawn per class in proportion to the class frequencies (at least 1 each
    where possible)."""
    classes, counts = np.unique(y, return_counts=True)
    quota = np.floor(counts / counts.sum() * n).astype(int)
    quota = np.minimum(np.maximum(quota, 1), counts)
    # Distribute the remainder to the largest classes first.
    while quota.sum() < n:
        room = counts - quota
        quota[np.argmax(room)] += 1
    while quota.sum() > n:
        quota[np.argmax(quota)] -= 1
    picked = [
        rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota, strict=True)
    ]
    return rng.permutation(np.concatenate(picked))


def train_val_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float = 0.1, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Splits the training set into train and validation parts (seeded, stratified by class).

    Args:
        x, y: images and labels.
        val_fraction: the fraction held out for validation, in (0, 1).
        seed: the split is a function of the seed alone.

    Returns:
        `(x_train, y_train), (x_val, y_val)`, each part in the original order.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    val_idx = validation_indices(y, val_fraction, seed)
    mask = np.ones(len(y), bool)
    mask[val_idx] = False
    return (x[mask], y[mask]), (x[val_idx], y[val_idx])


def validation_indices(y: np.ndarray, val_fraction: float = 0.1, seed: int = 0) -> np.ndarray:
    """The sorted indices `train_val_split` holds out for validation (seeded, stratified).

    Raises:
        ValueError: `val_fraction` outside (0, 1), or too few examples to hold any out.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    n_val = max(1, round(len(y) * float(val_fraction)))
    if n_val >= len(y):
        raise ValueError(
            f"cannot hold out {n_val} of {len(y)} examples for validation; use more data or a "
            f"smaller val_fraction"
        )
    rng = np.random.default_rng(seed)
    return np.sort(_stratified_indices(np.asarray(y), n_val, rng))
