"""`folder:<path>` data sets: a directory of class subfolders of images.

`root/<class>/*.png`, or `root/train/<class>/...` + `root/test/<class>/...`, with at least two
classes. Images are decoded once with Pillow, resized (bilinear) to the first image's size and
converted to its mode; how many were is said once on stderr.

Example:

>>> data = load_folder("~/photos")  # ~/photos/cat/*.jpg, ~/photos/dog/*.jpg
>>> data.class_names
['cat', 'dog']
"""

from __future__ import annotations

import sys
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


class _ImageDecoder:
    """Decodes image files to one size and mode, the first image's, counting the images that
    had to be resized or converted to it."""

    def __init__(self) -> None:
        self.size: tuple[int, int] | None = None
        self.mode: str | None = None
        self.first_mode: str | None = None
        self.total = 0
        self.resized = 0
        self.converted_from: list[str] = []

    def decode(self, files: Sequence[Path]) -> np.ndarray:
        from PIL import UnidentifiedImageError

        out = []
        for f in files:
            try:
                arr = self._decode_one(f)
            except (UnidentifiedImageError, OSError, SyntaxError) as e:
                raise ValueError(
                    f"{f}: cannot decode image ({e}); remove or replace the file"
                ) from e
            out.append(arr if arr.ndim == 3 else arr[..., None])
        return np.stack(out) if out else np.zeros((0, 1, 1, 1), np.uint8)

    def _decode_one(self, path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            if self.mode is None:
                self.first_mode = im.mode
                self.mode = "L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB"
            self.total += 1
            if im.mode not in (self.mode, self.first_mode):
                self.converted_from.append(im.mode)
            im = im.convert(self.mode)
            if self.size is None:
                self.size = (im.height, im.width)
            if (im.height, im.width) != self.size:
                self.resized += 1
                im = im.resize((self.size[1], self.size[0]), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)

    def note(self, spec: str) -> str | None:
        """One line saying how many images were resized or converted, or None if none were."""
        parts = []
        if self.resized:
            height, width = self.size
            parts.append(f"resized {self.resized} (bilinear) to {width}x{height}")
        if self.converted_from:
            modes = "/".join(sorted(set(self.converted_from)))
            parts.append(f"converted {len(self.converted_from)} from {modes} to {self.mode}")
        if not parts:
            return None
        return f"{spec}: {' and '.join(parts)} of {self.total} images, to match the first image"


def load_folder(path: str, seed: int = 0, test_fraction: float = 0.2) -> ImageDataset:
    """`root/<class>/*.png`, or `root/train/<class>/...` + `root/test/<class>/...`.

    Images are decoded once; all are resized (bilinear) to the first image's size and converted
    to its mode (grayscale stays 1 channel, everything else becomes RGB), and one line on stderr
    says how many were. Without `train/` and `test/` subfolders a seeded, class-stratified
    `test_fraction` is held out as the test split.

    Raises:
        FileNotFoundError: no such directory.
        ValueError: no images, fewer than 2 classes, a class folder without images, train/
            and test/ classes that differ, or a file that is not a decodable image.
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
    if len(class_names) == 1:
        count = len(train_files[class_names[0]])
        raise ValueError(
            f"folder:{path}: only one class found ({class_names[0]!r}, {count} "
            f"image{'s' if count != 1 else ''}); a classifier needs at least 2: put each "
            f"class's images in its own subfolder of {path}"
        )

    def flatten(files_by_class):
        files, labels = [], []
        for label, c in enumerate(class_names):
            files += files_by_class[c]
            labels += [label] * len(files_by_class[c])
        return files, np.asarray(labels, np.int64)

    decoder = _ImageDecoder()
    files, y = flatten(train_files)
    x = decoder.decode(files)
    if test_files is not None:
        test_list, y_test = flatten(test_files)
        x_test = decoder.decode(test_list)
        x_train, y_train = x, y
    else:
        (x_train, y_train), (x_test, y_test) = train_val_split(x, y, test_fraction, seed=seed)
    note = decoder.note(f"folder:{path}")
    if note:
        sys.stderr.write(f"note: {note}\n")
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
