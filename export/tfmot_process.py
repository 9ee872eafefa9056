"""Quantization-aware training and pruning, run in their own tf_keras process.

tensorflow-model-optimization (tfmot) works only on the legacy `tf_keras`, and importing it
switches the whole process to it (DESIGN.md, "Two Keras worlds"). So the default world never
imports tfmot: `run_tfmot` writes the trained weights and the training images to a temporary
directory and starts `python -m export._tfmot_worker` with `TF_USE_LEGACY_KERAS=1` set before
TensorFlow is imported. The worker rebuilds the same architecture with `zoo.create_model`,
copies the weights over with `set_weights`, and

- `mode="qat"`: folds every BatchNorm into the convolution/dense layer before it, annotates our
  custom layers with their QuantizeConfigs, fine-tunes with fake quantization and converts to a
  full-integer int8 `.tflite` (no float ops between input and output quantization);
- `mode="prune"`: magnitude-prunes the kernels to `sparsity` with a polynomial schedule while
  fine-tuning, strips the pruning wrappers and hands the (sparse) weights back.

Example:

>>> result = run_tfmot(source, data, mode="qat", epochs=1, io="int8")
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


def run_tfmot(
    source: ModelSource,
    data: ExportData,
    *,
    mode: str,
    epochs: int = 1,
    io: str = "float32",
    sparsity: float = 0.0,
    weights: list[np.ndarray] | None = None,
    batch_size: int = 64,
    learning_rate: float = 1e-4,
    label_smoothing: float | None = None,
    timeout: float = 3600.0,
) -> TfmotResult:
    """Runs QAT or pruning on `source`'s weights in a tf_keras subprocess.

    Classifiers are fine-tuned with the loss they were trained with: `label_smoothing` (None:
    the run's `config.json` value, else 0). Fine-tuning a label-smoothed model on hard labels
    moves its logits away from the Keras model's (measured on LeNet-5 modern: +0.32 pp accuracy
    drop and 98.1 % top-1 agreement after one QAT epoch).

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
        "learning_rate": float(learning_rate),
        "label_smoothing": float(
            (source.config.get("label_smoothing") or 0.0)
            if label_smoothing is None
            else label_smoothing
        ),
    }
    weights = source.model.get_weights() if weights is None else weights
    with tempfile.TemporaryDirectory(prefix="convzoo-tfmot-") as tmp:
        work = Path(tmp)
        (work / "spec.json").write_text(json.dumps(spec))
        np.savez(work / "weights.npz", *weights)
        np.savez(
            work / "data.npz",
            x_train=data.x_train,
            y_train=data.y_train,
            x_calibration=data.x_calibration,
        )
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
        with np.load(work / "weights_out.npz") as arrays:
            out = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        return TfmotResult(weights=out, summary=summary)
