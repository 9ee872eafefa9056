"""The run record: what a training run hands to export, QAT, pruning and benchmarks.

`run.json` in a run directory holds one `RunRecord`, a typed and versioned description of the
model the directory's `model.keras` holds and of how it was made. Readers never look the
model up again by name or replay training logic to learn what it is: like timm's pretrained
cfg, the model's own facts travel with it.

Schema (version 1):

| key | meaning |
| --- | --- |
| `schema_version` | `SCHEMA_VERSION`; a reader refuses a newer one |
| `model`, `model_options` | the zoo registry name and the builder keywords given |
| `dataset`, `data_dir`, `class_names` | the data set spec, where it was read, label names |
| `input_shape` | `(H, W, C)` of `model.keras` |
| `pixel_range`, `mean`, `std` | raw input pixels (`[0, 255]`) and the model's own |
| | normalization, `(x / 255 - mean) / std` per channel |
| `task` | `classification` (logits out) or `reconstruction` (an image out) |
| `mixed_precision` | the precision it trained in (`model.keras` is float32 regardless) |
| `validation` | `{"fraction", "seed", "size", "sha256"}`: the held-out split, its digest |
| `metrics` | the saved model's scalar test and validation figures |
| `versions` | TensorFlow, Keras, Python, convzoo |
| `config` | the full training configuration (`config.json`) |

A run directory of the layout before records (`config.json` + `model.keras`, no `run.json`)
is migrated in memory by `read_run_record`, from `config.json` and the zoo's registry.

Example:

>>> record = read_run_record("runs/lenet5-fashion_mnist")
>>> record.task, record.input_shape, record.class_names[:2]
('classification', (28, 28, 1), ['T-shirt/top', 'Trouser'])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from training.atomic import atomic_write_json
from training.config import parse_input_shape

__all__ = [
    "RECORD_FILE",
    "SCHEMA_VERSION",
    "RunRecord",
    "RunRecordError",
    "read_run_record",
    "runtime_versions",
    "scalar_metrics",
    "validation_digest",
    "write_run_record",
]

RECORD_FILE = "run.json"
SCHEMA_VERSION = 1
TASKS = ("classification", "reconstruction")


class RunRecordError(ValueError):
    """A run record that cannot be read: unreadable, of a newer schema, or inconsistent."""


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One training run's record (see the module docstring for every field)."""

    model: str
    model_options: Mapping[str, Any]
    dataset: str
    data_dir: str | None
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    pixel_range: tuple[float, float]
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    task: str
    mixed_precision: str
    validation: Mapping[str, Any]
    metrics: Mapping[str, Any]
    versions: Mapping[str, str]
    config: Mapping[str, Any]
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        if self.task not in TASKS:
            raise RunRecordError(f"run record: task {self.task!r} is not one of {TASKS}")
        if len(self.input_shape) != 3:
            raise RunRecordError(f"run record: input_shape {self.input_shape} is not (H, W, C)")

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = RECORD_FILE) -> RunRecord:
        """Reads a record written by `to_json`, checking its schema version and keys.

        Raises:
            RunRecordError: naming the file, a newer schema or the missing/unknown keys.
        """
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RunRecordError(
                f"{where}: schema_version {version!r} is not one this convzoo reads "
                f"(1..{SCHEMA_VERSION}); upgrade convzoo"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise RunRecordError(f"{where}: missing keys {missing}, unknown keys {unknown}")
        values = dict(data)
        for key in ("class_names", "input_shape", "pixel_range", "mean", "std"):
            if values[key] is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def validation_digest(indices: np.ndarray) -> str:
    """SHA-256 of the validation indices (int64, in order): the split, checked on rebuild."""
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()


def runtime_versions() -> dict[str, str]:
    """The versions a record names: TensorFlow, Keras, Python and convzoo."""
    from importlib.metadata import PackageNotFoundError, version

    import tensorflow as tf

    found = {"tensorflow": tf.__version__, "python": platform.python_version()}
    for package in ("keras", "convzoo"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found


def write_run_record(run_dir: str | Path, record: RunRecord) -> Path:
    """Writes `run_dir/run.json` atomically and returns its path."""
    path = Path(run_dir) / RECORD_FILE
    atomic_write_json(path, record.to_json())
    return path


def read_run_record(
    run_dir: str | Path, input_shape: tuple[int, int, int] | None = None
) -> RunRecord | None:
    """The record of `run_dir`: `run.json`, or one migrated from an older layout.

    Args:
        run_dir: the run directory.
        input_shape: the saved model's `(H, W, C)`, used when migrating a directory whose
            `config.json` names neither a known model nor an input shape.

    Returns:
        The record, or None when the directory has neither `run.json` nor `config.json`.

    Raises:
        RunRecordError: `run.json` or `config.json` is unreadable, or of a newer schema.
    """
    run_dir = Path(run_dir)
    path = run_dir / RECORD_FILE
    if path.is_file():
        return RunRecord.from_json(_read_json(path), str(path))
    if (run_dir / "config.json").is_file():
        return _migrate(run_dir, input_shape)
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RunRecordError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(data, dict):
        raise RunRecordError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _migrate(run_dir: Path, model_input_shape: tuple[int, int, int] | None) -> RunRecord:
    """A record for a run directory written before records, from `config.json` and the zoo."""
    config = _read_json(run_dir / "config.json")
    metrics_path = run_dir / "metrics.json"
    metrics = _read_json(metrics_path) if metrics_path.is_file() else {}
    info = _model_info(config.get("model"))
    task = config.get("task") or (info.task if info else "classification")
    try:
        input_shape = (
            parse_input_shape(config.get("input_shape"))
            or model_input_shape
            or (info.input_shape if info else None)
        )
    except ValueError as error:
        raise RunRecordError(f"{run_dir}/config.json: {error}") from None
    if not input_shape:
        raise RunRecordError(
            f"{run_dir}/config.json names no known model or input_shape; cannot migrate it "
            f"to a run record"
        )
    mean = config.get("mean") or (info.mean if info else None)
    std = config.get("std") or (info.std if info else None)
    return RunRecord(
        model=str(config.get("model") or ""),
        model_options=dict(config.get("model_options") or {}),
        dataset=str(config.get("dataset") or ""),
        data_dir=config.get("data_dir"),
        class_names=tuple(config.get("class_names") or ()),
        input_shape=tuple(int(d) for d in input_shape),  # type: ignore[arg-type]
        pixel_range=(0.0, 255.0),
        mean=tuple(mean) if mean is not None else None,
        std=tuple(std) if std is not None else None,
        task=task,
        mixed_precision=str(config.get("mixed_precision") or "off"),
        validation={
            "fraction": float(config.get("val_split") or 0.0),
            "seed": int(config.get("seed") or 0),
            "size": metrics.get("val_size"),
            "sha256": None,  # not recorded before records: the split is rebuilt unchecked
        },
        metrics=scalar_metrics(metrics),
        versions={"migrated_from": "config.json"},
        config=config,
    )


def _model_info(name: str | None):
    if not name:
        return None
    try:
        from zoo import get_model_info

        return get_model_info(name)
    except (ImportError, ValueError):
        return None


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of `metrics.json` that describe the saved model (no matrices)."""
    return {
        k: v
        for k, v in metrics.items()
        if k.startswith(("test_", "best_val_")) and isinstance(v, int | float)
    }
