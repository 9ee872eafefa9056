"""Calibration and test images for an export, read through `training.data`.

The images come from the same data source and evaluation pipeline as training
(`training.data.load_dataset`, `training.pipeline.make_dataset(training=False)`), as raw pixels
(float32 in [0, 255], the models normalize inside) without augmentation: calibration on a
seeded sample of the training split, verification on the (stratified) test split.

Example:

>>> data = load_export_data("fashion_mnist", (28, 28, 1), calibration_samples=200,
...                         test_samples=1000)
>>> data.x_calibration.shape, data.x_test.dtype
((200, 28, 28, 1), dtype('float32'))
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator, Sequence

import numpy as np


@dataclasses.dataclass
class ExportData:
    """Images for calibration and verification, raw float32 pixels `(N, H, W, C)`.

    Attributes:
        x_calibration: training images for post-training quantization.
        x_test, y_test: test images and int labels (labels are unused for reconstruction).
        class_names: one name per label.
        x_train, y_train: a training sample for quantization-aware fine-tuning (may be empty).
        dataset: the data set spec the images came from.
        x_validation, y_validation: the training run's validation split (None when it is not
            known), never part of `x_train`: QAT selects its epoch on these images.
        allows_flips: whether horizontal flips keep the label (False for digits or when the
            data set is not known).
    """

    x_calibration: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    dataset: str = ""
    x_validation: np.ndarray | None = None
    y_validation: np.ndarray | None = None
    allows_flips: bool = False


def to_model_input(images: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """Images `(N, H, W, C)` -> float32 raw pixels shaped for the model, through training's
    evaluation pipeline (`training.pipeline.make_dataset(training=False)`: no shuffling, no
    augmentation; the same pad/resize and gray<->RGB adaptation as in training)."""
    from training.pipeline import make_dataset

    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    dataset = make_dataset(
        x,
        np.zeros(len(x), np.int64),
        batch_size=512,
        training=False,
        target_shape=tuple(int(d) for d in input_shape),
    )
    batches = [np.asarray(images, dtype=np.float32) for images, _ in dataset]
    return np.ascontiguousarray(np.concatenate(batches), dtype=np.float32)


def load_export_data(
    dataset: str,
    input_shape: Sequence[int],
    *,
    data_dir: str | None = None,
    calibration_samples: int = 500,
    test_samples: int | None = None,
    train_samples: int = 0,
    val_split: float = 0.0,
    val_seed: int = 0,
    val_digest: str | None = None,
    seed: int = 0,
) -> ExportData:
    """Reads `dataset` through `training.data` and prepares model-ready arrays.

    Args:
        dataset: a `training.data.load_dataset` spec (`fashion_mnist`, `tfds:...`, `folder:...`).
        input_shape: the model's `(H, W, C)`.
        data_dir: where the IDX files are (`--data-dir`); None searches the usual places.
        calibration_samples: training images for calibration (class-stratified, seeded).
        test_samples: test images for verification; None or 0 for the whole test split.
        train_samples: training images (with labels) for QAT fine-tuning; 0 for none.
        val_split, val_seed: the training run's `--val-split` and `--seed`. With
            `train_samples` and `val_split > 0`, the run's validation split is carved again
            exactly as `training.data.train_val_split` did it, returned as `x_validation`, and
            the training sample is drawn from the rest only.
        val_digest: the run record's `validation["sha256"]`; the carved split must match it.
        seed: sampling seed.

    Raises:
        ValueError / FileNotFoundError: from `load_dataset` (unknown name, data not found).
    """
    from training.data import load_dataset, train_val_split

    if calibration_samples < 1:
        raise ValueError(f"calibration_samples must be >= 1, got {calibration_samples}")
    ds = load_dataset(dataset, data_dir=data_dir)
    rng = np.random.default_rng(seed)
    calibration_idx = np.sort(
        rng.choice(len(ds.y_train), min(calibration_samples, len(ds.y_train)), replace=False)
    )
    test = ds.subset(test=test_samples or None, seed=seed)
    x_train = y_train = x_validation = y_validation = None
    if train_samples:
        pool = np.arange(len(ds.y_train))
        if val_split:
            (pool, _), (val_idx, _) = train_val_split(pool, ds.y_train, val_split, seed=val_seed)
            _check_validation(val_idx, val_digest, dataset)
            x_validation = to_model_input(ds.x_train[val_idx], input_shape)
            y_validation = np.asarray(ds.y_train[val_idx], dtype=np.int64)
        train_idx = np.sort(rng.choice(pool, min(train_samples, len(pool)), replace=False))
        x_train = to_model_input(ds.x_train[train_idx], input_shape)
        y_train = np.asarray(ds.y_train[train_idx], dtype=np.int64)
    return ExportData(
        x_calibration=to_model_input(ds.x_train[calibration_idx], input_shape),
        x_test=to_model_input(test.x_test, input_shape),
        y_test=np.asarray(test.y_test, dtype=np.int64),
        class_names=list(ds.class_names),
        x_train=x_train,
        y_train=y_train,
        dataset=dataset,
        x_validation=x_validation,
        y_validation=y_validation,
        allows_flips=bool(ds.allows_flips),
    )


def _check_validation(val_idx: np.ndarray, digest: str | None, dataset: str) -> None:
    from training.record import validation_digest

    if digest is not None and validation_digest(val_idx) != digest:
        raise ValueError(
            f"the validation split rebuilt from {dataset} does not match the run record's "
            f"(sha256 {digest[:12]}...): the data set changed or the run trained on a subset "
            f"(--train-limit); QAT needs the run's own validation images"
        )


def calibration_batches(
    x: np.ndarray, batch_size: int = 1, label: str = "calibrating", progress: bool = True
) -> Iterator[np.ndarray]:
    """Yields `x` in batches, drawing a progress bar on stderr while it goes (in a terminal;
    redirected to a file or pipe, one line when done)."""
    total = len(x)
    width = 30
    terminal = sys.stderr.isatty()
    for start in range(0, total, batch_size):
        batch = x[start : start + batch_size]
        yield batch
        done = min(start + batch_size, total)
        if not progress or (not terminal and done < total):
            continue
        if done == total or done * 100 // total != start * 100 // total:
            filled = int(width * done / total)
            start_of_line = "\r" if terminal else ""
            bar = f"[{'=' * filled}{'.' * (width - filled)}]"
            sys.stderr.write(f"{start_of_line}  {label} {bar} {done}/{total}")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
