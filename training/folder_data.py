"""`folder:<path>` data sets: a directory of class subfolders of images.

`root/<class>/*.png`, or `root/train/<class>/...` + `root/test/<class>/...`. Images are decoded
once with Pillow, resized (bilinear) to the first image's size and converted to its mode.

Example:

>>> data = load_folder("~/photos")  # ~/photos/cat/*.jpg, ~/photos/dog/*.jpg
>>> data.class_names
['cat', 'dog']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.data import ImageDataset, train_val_split

__all__ = ["IMAGE_SUFFIXES", "load_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".webp", ".tif")


def _list_class_images(root: Path) -> dict[str, list[Path]]:
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return {
        c.name: sorted(
            f
            for f in c.rglob("*")
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        )
        for c in classes
    }


def _decode_images(
    files: Sequence[Path], size: tuple[int, int] | None, mode: str | None
) -> tuple[np.ndarray, tuple[int, int], str]:
    from PIL import Image, UnidentifiedImageError

    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                if mode is None:
                    mode = "L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB"
                im = im.convert(mode)
                if size is None:
                    size = (im.height, im.width)
                if (im.height, im.width) != size:
                    im = im.resize((size[1], size[0]), Image.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise ValueError(f"{f}: cannot decode image ({e}); remove or replace the file") from e
        out.append(arr if arr.ndim == 3 else arr[..., None])
    return np.stack(out) if out else np.zeros((0, 1, 1, 1), np.uint8), size, mode


def load_folder(path: str, seed: int = 0, test_fraction: float = 0.2) -> ImageDataset:
    """`root/<class>/*.png`, or `root/train/<class>/...` + `root/test/<class>/...`.

    Images are decoded once; all are resized (bilinear) to the first image's size and converted
    to its mode (grayscale stays 1 channel, everything else becomes RGB). Without `train/` and
    `test/` subfolders a seeded, class-stratified `test_fraction` is held out as the test split.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"folder:{path}: no such directory; pass folder:<dir> with one subfolder of images "
            f"per class"
        )
    if (root / "train").is_dir() and (root / "test").is_dir():
        train_files = _list_class_images(root / "train")
        test_files = _list_class_images(root / "test")
        if sorted(train_files) != sorted(test_files):
            raise ValueError(
                f"folder:{path}: train/ classes {sorted(train_files)} differ from test/ "
                f"classes {sorted(test_files)}"
            )
    else:
        train_files, test_files = _list_class_images(root), None
    class_names = sorted(train_files)
    if not class_names or not any(train_files.values()):
        raise ValueError(
            f"folder:{path}: no images found; expected one subfolder per class holding image "
            f"files ({', '.join(IMAGE_SUFFIXES)})"
        )
    empty = [c for c in class_names if not train_files[c]]
    if empty:
        raise ValueError(f"folder:{path}: class folders without images: {empty}")

    def flatten(files_by_class):
        files, labels = [], []
        for label, c in enumerate(class_names):
            files += files_by_class[c]
            labels += [label] * len(files_by_class[c])
        return files, np.asarray(labels, np.int64)

    files, y = flatten(train_files)
    x, size, mode = _decode_images(files, None, None)
    if test_files is not None:
        test_list, y_test = flatten(test_files)
        x_test, _, _ = _decode_images(test_list, size, mode)
        x_train, y_train = x, y
    else:
        (x_train, y_train), (x_test, y_test) = train_val_split(x, y, test_fraction, seed=seed)
    return ImageDataset(
        name=f"folder:{path}",
        class_names=class_names,
        image_shape=tuple(int(d) for d in x_train.shape[1:]),
        allows_flips=True,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        source=str(root),
    )
