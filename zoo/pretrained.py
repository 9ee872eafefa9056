"""Pretrained weights: the files the zoo ships, their manifests, and loading weights into a model.

The package carries, in `zoo/weights/`, one weights file per (model, data set) this project
trained to its mark with its own `python -m training` and its defaults (`make weights`), and
beside it a manifest:

    zoo/weights/lenet5-fashion_mnist.npz    one array per layer variable
    zoo/weights/lenet5-fashion_mnist.json   the manifest

The `.npz` holds one array per variable, keyed `"<layer name>/<index>_<variable name>"` in
the layer's `weights` order. Both Keras worlds build the same layers with the same names and
variable order, so the same file loads into Keras 3 and tf_keras alike (a `.weights.h5` file
does not: the two worlds lay it out differently).

The manifest (`MANIFEST_VERSION` 1) holds:

| key | meaning |
| --- | --- |
| `model`, `dataset` | the registry name and the data set it was trained on |
| `weights` | `{"file", "sha256", "bytes"}` of the `.npz` |
| `trained` | `{"date", "commit", "dirty", "command", "wall_seconds"}`: how and from what code |
| `run` | the training run's record (`training.record`): builder options, input shape, |
| | normalization, class names, the saved model's test metrics, versions, full config |

Example:

>>> from zoo import create_model, list_pretrained
>>> list_pretrained()
['conv_autoencoder:fashion_mnist', 'lenet5:fashion_mnist', 'lenet5_modern:fashion_mnist']
>>> model = create_model("lenet5_modern", pretrained="fashion_mnist")
>>> weights_manifest("lenet5_modern")["run"]["metrics"]["test_accuracy"]
0.9163
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.errors import first_line

__all__ = [
    "MANIFEST_VERSION",
    "WEIGHTS_DIR",
    "build_options",
    "list_pretrained",
    "load_weights_into",
    "npz_weights_bytes",
    "read_npz_weights",
    "resolve_pretrained",
    "split_pretrained_tag",
    "weights_file",
    "weights_manifest",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST_VERSION = 1
# A user's own weights: `pretrained=` takes a path ending in one of these.
USER_WEIGHT_SUFFIXES = (".weights.h5", ".keras", ".npz")


def _manifest_paths() -> dict[tuple[str, str], Path]:
    paths = {}
    for path in sorted(WEIGHTS_DIR.glob("*.json")):
        model, _, dataset = path.stem.partition("-")
        paths[(model, dataset)] = path
    return paths


def list_pretrained(pattern: str = "*") -> list[str]:
    """Sorted `"model:dataset"` tags of the shipped weights whose model matches `pattern`."""
    return [
        f"{model}:{dataset}"
        for model, dataset in sorted(_manifest_paths())
        if fnmatch.fnmatchcase(model, pattern)
    ]


def _datasets_of(name: str) -> list[str]:
    return [dataset for model, dataset in sorted(_manifest_paths()) if model == name]


def _no_weights_error(name: str, dataset: str | None) -> ValueError:
    shipped = ", ".join(list_pretrained()) or "none"
    datasets = _datasets_of(name)
    if datasets:
        return ValueError(
            f"Model {name!r} has no pretrained weights for data set {dataset!r}; it has "
            f"weights for: {', '.join(datasets)}."
        )
    return ValueError(
        f"Model {name!r} has no pretrained weights; shipped weights: {shipped}. Pass a path "
        "to your own .weights.h5, .keras or .npz file instead, or train it with "
        f"`python -m training --model {name}`."
    )


def weights_manifest(name: str, dataset: str | None = None) -> dict[str, Any]:
    """The manifest of the weights shipped for `name` on `dataset` (default: its first).

    Raises:
        ValueError: no weights for that model or data set (the message lists what exists),
            or an unreadable manifest.
    """
    datasets = _datasets_of(name)
    if not datasets or (dataset is not None and dataset not in datasets):
        raise _no_weights_error(name, dataset)
    path = _manifest_paths()[(name, dataset or datasets[0])]
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable weights manifest ({error})") from None
    version = manifest.get("manifest_version") if isinstance(manifest, dict) else None
    if version != MANIFEST_VERSION:
        raise ValueError(
            f"{path}: manifest_version {version!r} is not one this convzoo reads "
            f"({MANIFEST_VERSION}); reinstall convzoo"
        )
    return manifest


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shipped_weights_path(manifest: Mapping[str, Any]) -> Path:
    """The `.npz` a manifest describes, after checking it exists and its SHA-256.

    Raises:
        FileNotFoundError: the file is missing (a broken installation).
        ValueError: its SHA-256 differs from the manifest's (corrupt or replaced).
    """
    path = WEIGHTS_DIR / manifest["weights"]["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"The weights file {path} of {manifest['model']}:{manifest['dataset']} is missing; "
            "reinstall convzoo or run `make weights`"
        )
    actual, expected = sha256_of(path), manifest["weights"]["sha256"]
    if actual != expected:
        raise ValueError(
            f"The weights file {path} is corrupt: its SHA-256 is {actual[:16]}..., the "
            f"manifest says {expected[:16]}...; reinstall convzoo or run `make weights`"
        )
    return path


def resolve_pretrained(
    name: str, pretrained: bool | str | os.PathLike
) -> tuple[Path, dict[str, Any] | None]:
    """What `create_model(name, pretrained=...)` loads: `(weights file, manifest or None)`.

    Args:
        name: the registry name.
        pretrained: `True` (the model's default weights), a data set name
            (`"fashion_mnist"`), or a path to the user's own `.weights.h5`, `.keras` or
            `.npz` file (no manifest then).

    Raises:
        ValueError: no such shipped weights (naming what exists), or a corrupt file.
        FileNotFoundError: a path that does not exist, or a shipped file that is missing.
    """
    if pretrained is True:
        manifest = weights_manifest(name)
    elif isinstance(pretrained, os.PathLike) or str(pretrained).endswith(USER_WEIGHT_SUFFIXES):
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained={str(pretrained)!r}: no such weights file")
        return path, None
    elif isinstance(pretrained, str):
        manifest = weights_manifest(name, pretrained)
    else:
        datasets = ", ".join(_datasets_of(name)) or "none shipped"
        raise ValueError(
            f"`pretrained` must be True, False, a data set name ({datasets}) or a path "
            f"to a {', '.join(USER_WEIGHT_SUFFIXES)} file, got {pretrained!r}."
        )
    return shipped_weights_path(manifest), manifest


def split_pretrained_tag(text: str | os.PathLike) -> tuple[str, str] | None:
    """`("lenet5", "fashion_mnist")` for the tag `"lenet5:fashion_mnist"`; None for anything
    else, and for a path that exists (a file may have a colon in its name)."""
    model, colon, dataset = str(text).partition(":")
    if colon and model.isidentifier() and dataset.isidentifier() and not Path(text).exists():
        return model, dataset
    return None


def weights_file(source: str | os.PathLike) -> Path:
    """The file a `--weights` source names: shipped `MODEL:DATASET` weights (SHA-256
    checked), a run directory (its `model.keras`), or a `.keras`/`.npz`/`.weights.h5` file.

    Raises:
        ValueError: shipped weights that do not exist, or a file of another kind.
        FileNotFoundError: nothing at that path.
    """
    text = str(source)
    tag = split_pretrained_tag(text)
    if tag is not None:
        return shipped_weights_path(weights_manifest(*tag))
    path = Path(text)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise FileNotFoundError(
            f"weights {text!r}: no such file or run directory (expected a run directory, a "
            f"{', '.join(USER_WEIGHT_SUFFIXES)} file, or shipped weights MODEL:DATASET)"
        )
    if not path.name.endswith(USER_WEIGHT_SUFFIXES):
        raise ValueError(
            f"weights {text!r}: not a {', '.join(USER_WEIGHT_SUFFIXES)} file or a run directory"
        )
    return path


def build_options(
    manifest: Mapping[str, Any],
    num_classes: int | None,
    input_shape: Sequence[int] | None,
    overrides: Mapping[str, Any],
) -> tuple[int, tuple[int, int, int], dict[str, Any]]:
    """The builder arguments that fit shipped weights: the manifest's, checked against the
    caller's `num_classes` and `input_shape`; other `overrides` win over the manifest's.

    Raises:
        ValueError: a `num_classes` or `input_shape` the weights cannot take.
    """
    run = manifest["run"]
    tag = f"{manifest['model']}:{manifest['dataset']}"
    trained_classes = len(run["class_names"]) if run["task"] == "classification" else None
    trained_shape = tuple(run["input_shape"])
    if num_classes is not None and trained_classes is not None and num_classes != trained_classes:
        raise ValueError(
            f"The {tag} weights have {trained_classes} classes, got num_classes={num_classes}; "
            "build with num_classes=None (or omit it) to load them, or fine-tune a new head "
            "from them"
        )
    if input_shape is not None and tuple(input_shape) != trained_shape:
        raise ValueError(
            f"The {tag} weights were trained on inputs of shape {trained_shape}, got "
            f"input_shape={tuple(input_shape)}; omit input_shape to load them"
        )
    options = {**run["model_options"], "mean": tuple(run["mean"]), "std": tuple(run["std"])}
    options.update(overrides)
    return trained_classes or 0, trained_shape, options  # type: ignore[return-value]


def _variable_name(variable) -> str:
    # Keras 3 names a variable "kernel"; tf_keras "conv1/kernel:0".
    return variable.name.split("/")[-1].split(":")[0]


def _weight_keys(layer: tf.keras.layers.Layer) -> list[str]:
    return [f"{layer.name}/{i}_{_variable_name(v)}" for i, v in enumerate(layer.weights)]


def npz_weights_bytes(model: tf.keras.Model) -> bytes:
    """Every layer variable of `model` as `.npz` file content (keyed as the module says)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **_model_arrays(model))
    return buffer.getvalue()


def read_npz_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an `.npz` weights file, by key; a clear error for anything else."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable .npz weights file ({error})") from None


def _model_arrays(model: tf.keras.Model) -> dict[str, np.ndarray]:
    arrays = {}
    for layer in model.layers:
        arrays.update(zip(_weight_keys(layer), layer.get_weights(), strict=True))
    return arrays


def _head(model: tf.keras.Model) -> tf.keras.layers.Layer | None:
    """The last layer with weights: a classifier's head."""
    return next((layer for layer in reversed(model.layers) if layer.weights), None)


def _shape_mismatch(where: str, model, key: str, stored, variable) -> ValueError:
    return ValueError(
        f"{where} does not fit model {model.name!r}: {key} has shape {tuple(stored.shape)} in "
        f"the file, {tuple(variable.shape)} in the model (a different num_classes or "
        "input_shape?)"
    )


def _load_arrays(
    model: tf.keras.Model, arrays: Mapping[str, np.ndarray], where: str, replace_head: bool
) -> list[str]:
    expected = {key for layer in model.layers for key in _weight_keys(layer)}
    missing, unused = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
    if missing or unused:
        raise ValueError(
            f"{where} does not fit model {model.name!r}: variables missing from the file "
            f"{missing[:4]}, variables the model lacks {unused[:4]}"
        )
    head, replaced = _head(model) if replace_head else None, []
    for layer in model.layers:
        pairs = list(zip(_weight_keys(layer), layer.weights, strict=True))
        keys = [key for key, _ in pairs]
        fits = [tuple(arrays[k].shape) == tuple(v.shape) for k, v in pairs]
        if layer is head and not all(fits):
            replaced = [f"{k}: {tuple(arrays[k].shape)} -> {tuple(v.shape)}" for k, v in pairs]
            continue  # the new head keeps its fresh initialization
        for key, variable, fit in zip(keys, layer.weights, fits, strict=True):
            if not fit:
                raise _shape_mismatch(where, model, key, arrays[key], variable)
        if keys:
            layer.set_weights([arrays[key] for key in keys])
    return replaced


def _keras_file_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        source = tf.keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a bad archive
        first = first_line(error)
        raise ValueError(f"{path} is not a loadable Keras model: {first}") from None
    return _model_arrays(source)


def load_weights_into(
    model: tf.keras.Model, path: str | os.PathLike, replace_head: bool = False
) -> list[str]:
    """Loads a `.npz` (this module's layout), `.keras` or `.weights.h5` file into `model`.

    `.npz` and `.keras` files are matched by layer name and variable, and every shape is
    checked; `.weights.h5` goes through Keras's own `load_weights` (it matches layers by
    position, so the architecture must be identical).

    Args:
        model: the built model to load into.
        path: the weights file.
        replace_head: fine-tuning: the model's last layer with weights (a classifier's head)
            may differ in shape from the file's (another `num_classes`); it then keeps its
            fresh initialization. `.npz` and `.keras` files only.

    Returns:
        The head's variables that were not loaded, as `"key: file shape -> model shape"`.

    Raises:
        ValueError: the file does not fit the model (naming the variable and both shapes) or
            cannot be read.
    """
    path = Path(path)
    if path.name.endswith(".npz"):
        return _load_arrays(model, read_npz_weights(path), str(path), replace_head)
    if path.suffix == ".keras":
        return _load_arrays(model, _keras_file_arrays(path), str(path), replace_head)
    try:
        model.load_weights(path)
    except Exception as error:  # Keras raises many kinds for a mismatch
        first = first_line(error)
        hint = "; to replace a head of another size, use a .keras or .npz file" * replace_head
        raise ValueError(f"{path} does not fit model {model.name!r}: {first}{hint}") from None
    return []
