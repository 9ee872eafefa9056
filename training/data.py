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

_INSTALL_HINT = (
    "install Debian's package (`apt-get install dataset-fashion-mnist`) or pass "
    "`--data-dir DIR` (or set $CONVZOO_DATA) pointing at the four IDX files "
    "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz)"
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
    redownload = "delete it and provide an intact copy (e.g. `apt-get install --reinstall "
    redownload += "dataset-fashion-mnist` or `--data-dir`)"
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
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
    candidates += [keras_home / s for s in spellings]
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
                f"{_INSTALL_HINT}"
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
                f"the files do not belong together: {_INSTALL_HINT}"
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
    keras_npz = Path.home() / ".keras" / "datasets" / f"{name}.npz"
    searched.append(str(keras_npz))
    if name == "mnist" and keras_npz.is_file():
        return _load_keras_npz(name, keras_npz)
    if data_dir:
        # An explicit --data-dir that holds nothing is a user mistake: say so, don't download.
        raise FileNotFoundError(
            f"no {name} IDX files ({IDX_FILES['x_train']}(.gz) and the three others) in "
            f"--data-dir {data_dir} nor anywhere else searched ({', '.join(searched)}); "
            f"{_INSTALL_HINT}"
        )
    try:
        dataset = _load_tfds(name, None)
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else ""
        raise FileNotFoundError(
            f"{name} not found: searched {', '.join(searched)}. To fix: {_INSTALL_HINT}. "
            f"(The tensorflow-datasets download was tried last and failed: "
            f"{type(e).__name__}: {reason[:120]})"
        ) from e
    dataset.name = name
    return dataset


# --------------------------------------------------------------------------------------------
# TensorFlow Datasets
# --------------------------------------------------------------------------------------------


def _load_tfds(name: str, data_dir: str | None) -> ImageDataset:
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    info = builder.info
    keys = info.supervised_keys
    if not keys or len(keys) != 2:
        raise ValueError(f"tfds:{name} has no (image, label) supervised keys; not a classifier")
    image_key, label_key = keys
    features = info.features
    if "test" not in info.splits or "train" not in info.splits:
        raise ValueError(
            f"tfds:{name} needs 'train' and 'test' splits, it has {sorted(info.splits)}"
        )
    builder.download_and_prepare()
    splits = {}
    for split in ("train", "test"):
        data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
        x, y = data
        if x.ndim != 4:
            raise ValueError(
                f"tfds:{name} images have shape {x.shape[1:]}; only fixed-size images "
                f"(H, W, C) are supported (use folder:<path> after resizing)"
            )
        splits[split] = (x.astype(np.uint8), y.astype(np.int64))
    label_feature = features[label_key]
    class_names = list(getattr(label_feature, "names", None) or [])
    if not class_names:
        class_names = [str(i) for i in range(int(splits["train"][1].max()) + 1)]
    x_train, y_train = splits["train"]
    x_test, y_test = splits["test"]
    del image_key
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
        except ValueError:
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
        f"unknown dataset {spec!r}; accepted: 'fashion_mnist', 'mnist', 'tfds:<name>', "
        f"'folder:<path>'"
    )


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
