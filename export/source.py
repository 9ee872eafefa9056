"""What an export starts from: a saved Keras model and what its training run recorded.

`load_source(path)` accepts a run directory written by `python -m training` (`run.json` +
`model.keras`; older directories with only `config.json` are migrated), a bare `.keras`
file, or the zoo's shipped weights as `MODEL:DATASET` (`lenet5_modern:fashion_mnist`, see
`zoo.list_pretrained()`), loads the model in the default (Keras 3) world and takes what the
exported files must carry from the run record (`training.record`): input shape,
normalization, task, class names and the data set to calibrate and verify on.

Example:

>>> source = load_source("runs/lenet5-fashion_mnist")
>>> source.name, source.input_shape, source.task
('lenet5-fashion_mnist', (28, 28, 1), 'classification')
>>> load_source("lenet5_modern:fashion_mnist").name
'lenet5_modern-fashion_mnist'
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from training.atomic import atomic_write_directory, atomic_write_json
from training.record import RECORD_FILE, RunRecord, read_run_record
from zoo.errors import first_line

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"


@dataclasses.dataclass
class ModelSource:
    """A loaded model and its provenance.

    Attributes:
        name: export name: the run directory's name or the model file's stem.
        model: the Keras model (inference mode is used throughout).
        model_path: the `.keras` file it was loaded from.
        config: the run's training configuration (empty for a bare model file).
        input_shape: per-example `(H, W, C)`; the model takes raw pixels, float32 in [0, 255].
        task: "classification" (logits out) or "reconstruction" (an image out).
        model_name: the zoo registry name, when known.
        dataset: the data set spec training used (`fashion_mnist`, `tfds:...`), when known.
        data_dir: the `--data-dir` training used, when known.
        class_names: label names, when known (filled in from the data set otherwise).
        mean, std: the per-channel normalization the model applies inside, on [0, 1] pixels.
        record: the run's `training.record.RunRecord` (None for a bare model file).
        origin: where the weights come from when not from a run of this machine (the zoo's
            shipped weights: tag, SHA-256, commit).
    """

    name: str
    model: tf.keras.Model
    model_path: Path
    config: dict[str, Any]
    input_shape: tuple[int, int, int]
    task: str
    model_name: str | None = None
    dataset: str | None = None
    data_dir: str | None = None
    class_names: list[str] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    record: RunRecord | None = None
    origin: str | None = None

    @property
    def num_outputs(self) -> int:
        return int(np.prod(self.model.output_shape[1:]))


def _register_custom_objects() -> None:
    """Imports the zoo (and through it our layers) so `.keras` files with them deserialize."""
    for module in ("zoo", "layers"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:  # pragma: no cover - partial checkouts
            if error.name != module:
                raise


def load_keras_model(path: str | os.PathLike) -> tf.keras.Model:
    """Loads a `.keras` file; a missing or corrupt file becomes one clear error.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is not a readable `.keras` archive.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a Keras model file (expected a valid .keras archive)")
    _register_custom_objects()
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a bad archive
        message = first_line(error)
        raise ValueError(f"{path} is not a loadable Keras model: {message}") from None


def _infer_task(model: tf.keras.Model, input_shape: tuple[int, ...]) -> str:
    output_shape = tuple(model.output_shape[1:])
    return "reconstruction" if output_shape == tuple(input_shape) else "classification"


def pretrained_cache_dir() -> Path:
    """Where shipped weights become run directories: `$CONVZOO_CACHE`, else the user cache."""
    root = os.environ.get("CONVZOO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "convzoo"
    )
    return Path(root) / "pretrained"


def _write_pretrained_run(model_name: str, dataset: str, manifest: dict, directory: Path):
    from zoo import create_model

    def fill(tmp: Path) -> None:
        create_model(model_name, pretrained=dataset).save(tmp / MODEL_FILE)
        atomic_write_json(tmp / RECORD_FILE, manifest["run"])

    atomic_write_directory(directory, fill)


def load_pretrained_source(spec: str) -> ModelSource:
    """The zoo's shipped weights `MODEL:DATASET` as a source, like a run directory.

    The weights (SHA-256 checked) are built into a run directory once, in
    `pretrained_cache_dir()`, with the run record their manifest carries; the export then
    reads it as it reads any run directory.

    Raises:
        ValueError: no such shipped weights (the message lists what exists).
    """
    from zoo import weights_manifest
    from zoo.pretrained import split_pretrained_tag

    tag = split_pretrained_tag(spec)
    if tag is None:
        raise ValueError(f"{spec!r} is not MODEL:DATASET (e.g. lenet5_modern:fashion_mnist)")
    model_name, dataset = tag
    manifest = weights_manifest(model_name, dataset)
    digest = manifest["weights"]["sha256"][:12]
    directory = pretrained_cache_dir() / f"{model_name}-{dataset}-{digest}"
    if not ((directory / MODEL_FILE).is_file() and (directory / RECORD_FILE).is_file()):
        _write_pretrained_run(model_name, dataset, manifest, directory)
    trained = manifest["trained"]
    origin = (
        f"the zoo's {model_name}:{dataset} (sha256 {digest}..., trained at commit "
        f"{trained['commit'][:10]} by `{trained['command']}`)"
    )
    return dataclasses.replace(
        load_source(directory), name=f"{model_name}-{dataset}", origin=origin
    )


def _is_pretrained_spec(path: str | os.PathLike) -> bool:
    from zoo import list_models
    from zoo.pretrained import split_pretrained_tag

    tag = split_pretrained_tag(path)
    return tag is not None and tag[0] in list_models()


def load_source(path: str | os.PathLike) -> ModelSource:
    """Loads a run directory (`run.json` or `config.json`, + `model.keras`), a `.keras` file,
    or shipped weights named `MODEL:DATASET`.

    Raises:
        FileNotFoundError: nothing at `path`, or a run directory without `model.keras`.
        ValueError: `path` is neither a run directory nor a `.keras` file, or is corrupt, or
            names shipped weights that do not exist.
    """
    if _is_pretrained_spec(path):
        return load_pretrained_source(str(path))
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; expected a run directory (with {MODEL_FILE}), a .keras "
            "file, or shipped weights as MODEL:DATASET (python -m zoo lists them)"
        )
    if path.is_dir():
        model_path, run_dir, name = path / MODEL_FILE, path, path.resolve().name
        if not model_path.is_file():
            raise FileNotFoundError(
                f"{path} is not a run directory: it has no {MODEL_FILE} (expected a directory "
                "written by `python -m training`, or a .keras file)"
            )
    else:
        if path.suffix != ".keras":
            raise ValueError(f"{path} is not a model: expected a run directory or a .keras file")
        model_path, name = path, path.stem
        run_dir = path.parent if (path.parent / MODEL_FILE) == path else None
    model = load_keras_model(model_path)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"{model_path}: export supports models with one input and one output, got "
            f"{len(model.inputs)} and {len(model.outputs)}"
        )
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    if len(input_shape) != 3 or any(d is None for d in model.input_shape[1:]):
        raise ValueError(
            f"{model_path}: export needs a fixed (H, W, C) input, got {model.input_shape}"
        )

    record = read_run_record(run_dir, input_shape) if run_dir else None  # type: ignore[arg-type]
    if record is not None:
        return _from_record(name, model, model_path, record, input_shape)
    return ModelSource(
        name=name,
        model=model,
        model_path=model_path,
        config={},
        input_shape=input_shape,  # type: ignore[arg-type]
        task=_infer_task(model, input_shape),
    )


def _from_record(name, model, model_path, record: RunRecord, input_shape) -> ModelSource:
    if tuple(record.input_shape) != tuple(input_shape):
        raise ValueError(
            f"{model_path}: the model takes {input_shape} but its run record says "
            f"{record.input_shape}; the run directory is inconsistent"
        )
    return ModelSource(
        name=name,
        model=model,
        model_path=model_path,
        config=dict(record.config),
        input_shape=input_shape,
        task=record.task,
        model_name=record.model or None,
        dataset=record.dataset or None,
        data_dir=record.data_dir,
        class_names=list(record.class_names) or None,
        mean=record.mean,
        std=record.std,
        record=record,
    )


def run_test_size(source: ModelSource, own_data: bool) -> int | None:
    """The number of test images the run was scored on (`--test-limit`), when the export
    verifies on the run's own data set; None: all of them."""
    limit = source.config.get("test_limit") if own_data else None
    return int(limit) if limit else None


def unfinished_run_warnings(source: ModelSource) -> list[str]:
    """A warning when the source is a run directory whose training did not finish."""
    run_dir = source.model_path.parent
    if source.record is None or source.origin or (run_dir / "metrics.json").is_file():
        return []
    from training.artifacts import read_history
    from training.callbacks import monitored_metric

    rows = read_history(run_dir / "history.csv")
    monitor, mode = monitored_metric(source.task)
    scores = [row.get(monitor) for row in rows]
    best = ""
    if scores and None not in scores:
        pick = max if mode == "max" else min
        best = f", epoch {scores.index(pick(scores)) + 1} (best {monitor})"
    return [
        f"{run_dir} has no metrics.json: its training stopped after {len(rows)} of "
        f"{source.config.get('epochs', '?')} epochs; exporting its checkpoint "
        f"{source.model_path.name}{best}. Finish it with python -m training --resume {run_dir}"
    ]
