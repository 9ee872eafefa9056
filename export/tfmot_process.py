"""Quantization-aware training and pruning, run in their own tf_keras process.

tensorflow-model-optimization (tfmot) works only on the legacy `tf_keras`, and importing it
switches the whole process to it (DESIGN.md, "Two Keras worlds"). So the default world never
imports tfmot: `run_tfmot` writes the trained weights and the training images to a temporary
directory and starts `python -m export._tfmot_worker` with `TF_USE_LEGACY_KERAS=1` set before
TensorFlow is imported. The worker rebuilds the same architecture with `zoo.create_model`,
copies the weights over with `set_weights`, and

- `mode="qat"`: folds every BatchNorm into the convolution/dense layer before it, annotates our
  custom layers with their QuantizeConfigs, fine-tunes with fake quantization and converts to a
  full-integer int8 `.tflite` (no float ops between input and output quantization). The
  fine-tuning recipe: Adam with a cosine-decayed learning rate over all `epochs`, targets
  distilled from the float model, the run's cheap augmentation (`qat_augment`), and the epoch
  (or the start) with the best accuracy on held-out validation images is kept (`qat_split`:
  the run's own validation split, never the test split);
- `mode="prune"`: magnitude-prunes the kernels to `sparsity` with a polynomial schedule while
  fine-tuning, strips the pruning wrappers and hands the (sparse) weights back.

Example:

>>> result = run_tfmot(source, data, mode="qat", epochs=3, io="int8")
>>> len(result.tflite) > 0
True
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from export.data import ExportData
from export.source import ModelSource

MODES = ("qat", "prune")
DEFAULT_QAT_LEARNING_RATE = 3e-5
DEFAULT_QAT_DISTILL = 1.0
_LOG_PREFIXES = ("I0000", "W0000", "E0000")
_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class TfmotResult:
    """What the worker produced: a `.tflite` (qat) or the stripped weights (prune)."""

    tflite: bytes | None = None
    weights: list[np.ndarray] | None = None
    summary: dict = dataclasses.field(default_factory=dict)


def model_spec(source: ModelSource) -> dict:
    """How the worker rebuilds the architecture: zoo name, classes, input shape, overrides."""
    if not source.model_name:
        raise ValueError(
            f"QAT/pruning rebuilds the model with zoo.create_model, but {source.model_path} "
            "has no zoo model name (export a run directory whose config.json names the model)"
        )
    kwargs: dict = {"input_shape": list(source.input_shape)}
    if source.task == "classification":
        kwargs["num_classes"] = int(source.model.output_shape[-1])
    kwargs.update(source.config.get("model_options") or {})
    if source.config.get("noise_std") is not None:
        kwargs["noise_stddev"] = source.config["noise_std"]
    return {"name": source.model_name, "kwargs": kwargs, "task": source.task}


@dataclasses.dataclass
class QatSplit:
    """Images for QAT: fine-tuning part, held-out validation part (model-ready), and how."""

    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    allows_flips: bool
    how: str


def qat_split(data: ExportData, val_fraction: float = 0.1) -> QatSplit:
    """Splits the QAT images into fine-tuning and validation (best-epoch selection) parts.

    When `data` carries the training run's validation split (`load_export_data(val_split=...)`,
    which the exporter passes for a run directory exported on its own data set), those images
    are the validation part; `data.x_train` was drawn from the rest, so neither training nor
    QAT ever fits them. Otherwise (a bare `.keras` file, another data set) a seeded,
    class-stratified `val_fraction` of `data.x_train` is held out. The test split is never
    used.
    """
    from training.data import train_val_split

    if data.x_validation is not None and len(data.x_validation):
        return QatSplit(
            data.x_train,
            data.y_train,
            data.x_validation,
            data.y_validation,
            data.allows_flips,
            "the run's validation split",
        )
    (x_fit, y_fit), (x_val, y_val) = train_val_split(
        data.x_train, data.y_train, val_fraction, seed=0
    )
    return QatSplit(
        x_fit, y_fit, x_val, y_val, data.allows_flips, f"{val_fraction:.0%} of the QAT images"
    )


def qat_augment(source: ModelSource, split: QatSplit) -> str:
    """The worker's augmentation from the run's `--augment` level: `flip_erase` for medium and
    strong, `flip` for light and standard (rotation/zoom/contrast are not applied: the tf_keras
    worker has only tf.image ops), `none` for none, digits or a bare model file."""
    from training.augment import resolve_augment

    if source.task != "classification" or not split.allows_flips:
        return "none"
    level = source.config.get("augment")
    if not level:
        return "none"
    level = resolve_augment(level, source.config.get("dataset") or "")
    return {"none": "none", "medium": "flip_erase", "strong": "flip_erase"}.get(level, "flip")


def run_tfmot(
    source: ModelSource,
    data: ExportData,
    *,
    mode: str,
    epochs: int = 3,
    io: str = "float32",
    sparsity: float = 0.0,
    weights: list[np.ndarray] | None = None,
    batch_size: int = 64,
    learning_rate: float | None = None,
    label_smoothing: float | None = None,
    distill: float | None = None,
    seed: int = 0,
    timeout: float = 3600.0,
) -> TfmotResult:
    """Runs QAT or pruning on `source`'s weights in a tf_keras subprocess.

    Classifiers are fine-tuned with the loss they were trained with: `label_smoothing` (None:
    the run's `config.json` value, else 0); fine-tuning a label-smoothed model on hard labels
    moves its logits away from the Keras model's.

    QAT fine-tunes on `qat_split`'s fine-tuning part with `qat_augment`'s augmentation, Adam
    from `learning_rate` (None: `DEFAULT_QAT_LEARNING_RATE`; pruning: 1e-4) cosine-decayed to
    0 over `epochs`, on targets mixing the float model's probabilities (weight `distill`,
    None: `DEFAULT_QAT_DISTILL`) with the run's smoothed labels, and keeps the epoch with the
    best validation accuracy (lowest MSE for reconstruction) among those a paired sign test
    finds better than epoch 0 (the folded model with PTQ-like ranges, before any step), else
    epoch 0. Pruning fine-tunes on all of `data.x_train` at a constant rate. Why this recipe:
    docs/MEASUREMENTS.md, "QAT fine-tuning recipe".

    Args:
        source: the trained model and its run's configuration (the zoo name is required).
        data: the images: `x_train`/`y_train` to fine-tune on, `x_calibration` for the
            quantizer ranges and the converter, the run's validation split if it has one.
        mode: "qat" (an int8 `.tflite`) or "prune" (sparse weights).
        epochs: fine-tuning epochs.
        io: the QAT file's input/output type: "float32", "int8" or "uint8".
        sparsity: pruning's final fraction of zero kernel weights.
        weights: the weights to start from (None: `source.model.get_weights()`).
        batch_size: fine-tuning batch size.
        learning_rate, label_smoothing, distill: as above (None: the defaults named there).
        seed: seed of the shuffling, augmentation and initialization in the worker.
        timeout: seconds before the worker is stopped (`subprocess.TimeoutExpired`).

    Returns:
        A `TfmotResult`: `tflite` (qat) or `weights` (prune), and the worker's `summary`.

    Raises:
        ValueError: bad mode, no zoo model name, or no training images.
        RuntimeError: the worker failed (its last stderr lines are in the message).
    """
    if mode not in MODES:
        raise ValueError(f"Unknown tfmot mode {mode!r}; accepted: {', '.join(MODES)}")
    if data.x_train is None or not len(data.x_train):
        raise ValueError("QAT/pruning needs training images; none were loaded")
    spec = {
        "mode": mode,
        "model": model_spec(source),
        "epochs": int(epochs),
        "io": io,
        "sparsity": float(sparsity),
        "batch_size": int(batch_size),
        "learning_rate": float(
            learning_rate or (DEFAULT_QAT_LEARNING_RATE if mode == "qat" else 1e-4)
        ),
        "seed": int(seed),
        "distill": float(DEFAULT_QAT_DISTILL if distill is None else distill),
        "label_smoothing": float(
            (source.config.get("label_smoothing") or 0.0)
            if label_smoothing is None
            else label_smoothing
        ),
    }
    arrays = {"x_calibration": data.x_calibration}
    if mode == "qat":
        split = qat_split(data)
        spec["augment"] = qat_augment(source, split)
        spec["validation"] = split.how
        arrays.update(x_train=split.x_fit, y_train=split.y_fit, x_val=split.x_val)
        arrays["y_val"] = split.y_val
    else:
        arrays.update(x_train=data.x_train, y_train=data.y_train)
    weights = source.model.get_weights() if weights is None else weights
    with tempfile.TemporaryDirectory(prefix="convzoo-tfmot-") as tmp:
        work = Path(tmp)
        (work / "spec.json").write_text(json.dumps(spec))
        np.savez(work / "weights.npz", *weights)
        np.savez(work / "data.npz", **arrays)
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        process = subprocess.run(
            [sys.executable, "-m", "export._tfmot_worker", str(work)],
            env=env,
            cwd=_REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if process.returncode != 0:
            lines = process.stderr.strip().splitlines()
            tail = [line for line in lines if line.strip() and line[:5] not in _LOG_PREFIXES][-2:]
            raise RuntimeError(f"tfmot {mode} worker failed: {' | '.join(tail)}")
        summary = json.loads((work / "summary.json").read_text())
        if mode == "qat":
            return TfmotResult(tflite=(work / "model.tflite").read_bytes(), summary=summary)
        with np.load(work / "weights_out.npz") as loaded:
            out = [loaded[f"arr_{i}"] for i in range(len(loaded.files))]
        return TfmotResult(weights=out, summary=summary)
