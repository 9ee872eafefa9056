"""Scoring a run's model: the figures in `metrics.json` and the closing summary.

Every figure is computed from the saved `model.keras` (float32, as written), never from the
model that trained: under mixed precision the training model computes in bfloat16 or float16
and would report numbers the file the user gets does not reproduce.

Classifiers: accuracy, cross-entropy of the logits, per-class accuracy and the confusion
matrix (rows: true class, columns: predicted). Reconstruction models: the mean squared error
against the clean image and `PSNR = 10 log10(peak^2 / MSE)` with `peak = 255`.

Example:

>>> model = load_saved_model("runs/lenet5-fashion_mnist/model.keras")
>>> evaluate_classifier(model, test_ds, y_test, class_names)["test_accuracy"]
0.9044
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

__all__ = [
    "evaluate_classifier",
    "evaluate_reconstruction",
    "float32_policy",
    "load_saved_model",
    "psnr_db",
    "score_logits",
]


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Sets Keras's global dtype policy to float32 for the block, then restores it."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def load_saved_model(path: str | Path) -> tf.keras.Model:
    """Loads a run's `model.keras` as a float32 model, whatever the global policy is.

    Args:
        path: the `.keras` file.

    Returns:
        The uncompiled model.
    """
    import layers  # noqa: F401  (registers the custom layers for loading)

    with float32_policy():
        return tf.keras.models.load_model(path, compile=False)


def evaluate_classifier(
    model: tf.keras.Model,
    ds: tf.data.Dataset,
    y_true: np.ndarray,
    class_names: Sequence[str],
    split: str = "test",
) -> dict:
    """Scores logits on a labelled split.

    Args:
        model: a classifier returning logits.
        ds: the split's unshuffled `(image, label)` batches, in the order of `y_true`.
        y_true: integer labels `(N,)`.
        class_names: one name per class.
        split: the prefix of the keys, e.g. `"test"` or `"val"`.

    Returns:
        `{split}_accuracy`, `{split}_loss`, `per_class_accuracy` and `confusion_matrix`.
    """
    logits = model.predict(ds, verbose=0)[: len(y_true)]
    return score_logits(logits, y_true, class_names, split)


def score_logits(
    logits: np.ndarray, y_true: np.ndarray, class_names: Sequence[str], split: str = "test"
) -> dict:
    """Accuracy, cross-entropy, per-class accuracy and confusion matrix of logits `(N, K)`
    against integer labels `(N,)` (the keys of `evaluate_classifier`)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(y_true)), y_true].mean())
    pred = logits.argmax(axis=1)
    n = len(class_names)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (y_true, pred), 1)
    per_class = {
        name: float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else float("nan")
        for i, name in enumerate(class_names)
    }
    return {
        f"{split}_accuracy": float((pred == y_true).mean()),
        f"{split}_loss": loss,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def evaluate_reconstruction(
    model: tf.keras.Model, ds: tf.data.Dataset, split: str = "test"
) -> dict:
    """Scores a reconstruction model on `(noisy, clean)` batches.

    Returns:
        `{split}_mse`, `{split}_loss` (the same MSE, the training loss) and `{split}_psnr_db`.
    """
    se, count = 0.0, 0
    for noisy, clean in ds:
        out = model(noisy, training=False)
        se += float(tf.reduce_sum(tf.square(tf.cast(out, tf.float32) - clean)))
        count += int(tf.size(clean))
    mse = se / max(count, 1)
    return {f"{split}_mse": mse, f"{split}_loss": mse, f"{split}_psnr_db": psnr_db(mse)}


def psnr_db(mse: float, peak: float = 255.0) -> float:
    """`10 log10(peak^2 / MSE)`; infinite for a perfect reconstruction."""
    return 10 * math.log10(peak**2 / mse) if mse > 0 else float("inf")
