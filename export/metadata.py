"""What an app needs to run an exported file: the model's metadata and each file's own.

Two levels:

- the model's (`app_metadata`): name, task, data set, class names, and the Keras model's input
  (raw pixels, float32, `[0, 255]`, normalized inside the model) and output;
- each file's own (`file_metadata`): its input and output tensors as that file has them (name,
  shape, dtype, and scale and zero point for integer tensors), the pixel range and
  normalization, how a raw image becomes the input tensor, and what the output means.

`metadata.json` beside the files keeps the model's keys at the top (the readers of the first
layout, and the web page's `metadata.json`, read those) and adds `files`: each file's path
relative to the export directory -> its own entry, read back from the file itself. Each
`.tflite` embeds the model's keys and its own entry as its `convzoo` JSON metadata, each
`.onnx` as `convzoo.<key>` metadata_props (`read_file_metadata` reads either).

Example (LeNet-5 modern exported with `--io int8`):

>>> entry = file_metadata(metadata, FORMATS["tflite_int8"], tflite_tensors(content, "logits"))
>>> entry["input"]["dtype"], entry["input"]["quantization"]
('int8', {'scale': 1.0, 'zero_point': -128})
>>> entry["input"]["from_pixels"]
'q = clip(round(pixel / scale) + zero_point, -128, 127) as int8'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from export.formats import RUNTIMES, ExportFormat

if TYPE_CHECKING:
    from export.source import ModelSource

METADATA_VERSION = 2
LABELS_FILE = "labels.txt"
# The keys of a file's own entry (in `metadata.json`'s `files` and inside the file).
FILE_KEYS = ("format", "description", "runtime", "input", "output")
# What `metadata.json`'s top-level input and output describe, and where each file's own are.
ABOUT = (
    "input/output: the Keras model, and every file with float32 input and output; each "
    "exported file's own tensors (dtype, scale, zero point) and preprocessing: files"
)


def _output_kind(model: Any, task: str) -> str:
    """`"image"` for reconstruction, else `"probabilities"` for a softmax head, else
    `"logits"` (every classifier of the zoo returns logits)."""
    if task != "classification":
        return "image"
    last = model.layers[-1] if getattr(model, "layers", None) else None
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    is_softmax = activation == "softmax" or type(last).__name__ == "Softmax"
    return "probabilities" if is_softmax else "logits"


def _output_range(model: Any) -> list[float] | None:
    """The value range of a reconstruction model's output image: a sigmoid's [0, 1], scaled
    by any `Rescaling` after it (the zoo's autoencoder: [0, 255]); None when unknown."""
    layers = list(getattr(model, "layers", []))
    scale, offset = 1.0, 0.0
    while layers and type(layers[-1]).__name__ == "Rescaling":
        layer = layers.pop()
        scale, offset = scale * float(layer.scale), offset * float(layer.scale)
        offset += float(layer.offset)
    last = layers[-1] if layers else None
    if getattr(getattr(last, "activation", None), "__name__", "") != "sigmoid":
        return None
    return [offset, scale + offset]


def app_metadata(source: ModelSource, class_names: list[str] | None) -> dict[str, Any]:
    """The model's metadata: what every file shares (task, labels, the Keras model's input,
    output meaning); each file's own tensors are added by `file_metadata`."""
    pixel_range = source.record.pixel_range if source.record else (0.0, 255.0)
    kind = _output_kind(source.model, source.task)
    output: dict[str, Any] = {
        "name": {"logits": "logits", "image": "reconstruction"}.get(kind, kind),
        "kind": kind,
    }
    if kind == "image":
        output["range"] = _output_range(source.model)
    return {
        "metadata_version": METADATA_VERSION,
        "name": source.name,
        "model": source.model_name,
        "task": source.task,
        "dataset": source.dataset,
        "about": ABOUT,
        "input": {
            "name": "input",
            "shape": [1, *source.input_shape],
            "layout": "NHWC",
            "dtype": "float32",
            "range": [float(v) for v in pixel_range],
            "normalization": "inside: feed raw pixels; model does (x/255-mean)/std",
            "mean": list(source.mean) if source.mean else None,
            "std": list(source.std) if source.std else None,
        },
        "output": output,
        "class_names": class_names,
        "labels_file": LABELS_FILE if class_names else None,
    }


def _integer_range(dtype: str) -> tuple[int, int] | None:
    kind = np.dtype(dtype)
    return (int(np.iinfo(kind).min), int(np.iinfo(kind).max)) if kind.kind in "iu" else None


def _quantization(tensor: Mapping[str, Any]) -> dict[str, Any] | None:
    """Scale and zero point of an integer tensor; None for a float tensor."""
    if _integer_range(tensor["dtype"]) is None or not tensor.get("scale"):
        return None
    return {"scale": float(tensor["scale"]), "zero_point": int(tensor["zero_point"])}


def _from_pixels(dtype: str, quantization: Mapping[str, Any] | None) -> str:
    """How a raw pixel value becomes an element of the input tensor."""
    if quantization is None:
        return f"x = pixel as {dtype}"
    low, high = _integer_range(dtype)  # type: ignore[misc]
    return f"q = clip(round(pixel / scale) + zero_point, {low}, {high}) as {dtype}"


def _preprocessing(model_input: Mapping[str, Any], tensor: Mapping[str, Any]) -> list[str]:
    """The steps from a decoded image to the input tensor, in order."""
    batch, height, width, channels = tensor["shape"]
    low, high = model_input["range"]
    colour = {1: "grayscale (1 channel)", 3: "RGB (3 channels)"}.get(
        channels, f"{channels} channels"
    )
    batching = (
        f"stack images into a batch of shape [N, {height}, {width}, {channels}] (any N)"
        if batch is None
        else f"add a batch dimension: shape [{batch}, {height}, {width}, {channels}]"
    )
    return [
        f"decode the image to 8-bit pixels, {colour}",
        f"resize to {height} x {width} (height x width), channels last (NHWC)",
        f"keep the raw pixel values in [{low:g}, {high:g}]: no /255 and no mean/std, the "
        "model normalizes inside",
        _from_pixels(tensor["dtype"], _quantization(tensor)),
        batching,
    ]


def input_entry(metadata: Mapping[str, Any], tensor: Mapping[str, Any]) -> dict[str, Any]:
    """A file's input: `tensor` (name, shape, dtype, scale, zero_point) with the pixel range,
    normalization and the steps from a raw image."""
    model_input = metadata["input"]
    quantization = _quantization(tensor)
    return {
        "name": tensor["name"],
        "shape": list(tensor["shape"]),
        "layout": "NHWC",
        "dtype": tensor["dtype"],
        "quantization": quantization,
        "pixel_range": list(model_input["range"]),
        "normalization": "inside the model: feed raw pixels; the model computes "
        "(pixel / 255 - mean) / std",
        "mean": model_input.get("mean"),
        "std": model_input.get("std"),
        "from_pixels": _from_pixels(tensor["dtype"], quantization),
        "preprocessing": _preprocessing(model_input, tensor),
    }


def _meaning(kind: str, value_range: list[float] | None, labels: bool) -> str:
    if kind == "image":
        where = f" with values in [{value_range[0]:g}, {value_range[1]:g}]" if value_range else ""
        return f"the reconstructed image, NHWC like the input{where}"
    what = {"logits": "an unnormalized score (logit)", "probabilities": "a probability"}[kind]
    line = " (line i of labels.txt names class i)" if labels else ""
    softmax = "; softmax gives probabilities" if kind == "logits" else ""
    return f"{what} per class; the predicted class is the argmax{line}{softmax}"


def output_entry(metadata: Mapping[str, Any], tensor: Mapping[str, Any]) -> dict[str, Any]:
    """A file's output: `tensor` with what its values mean and how to dequantize them."""
    model_output = metadata["output"]
    kind = model_output["kind"]
    quantization = _quantization(tensor)
    labels = bool(metadata.get("class_names")) and kind != "image"
    entry = {
        "name": tensor["name"],
        "shape": list(tensor["shape"]),
        "dtype": tensor["dtype"],
        "quantization": quantization,
        "kind": kind,
        "meaning": _meaning(kind, model_output.get("range"), labels),
        "to_values": "value = (q - zero_point) * scale (the argmax of q is the argmax of "
        "the values)"
        if quantization
        else "value = x",
    }
    if kind == "image":
        entry["range"] = model_output.get("range")
    if labels:
        entry["labels"] = metadata.get("labels_file") or LABELS_FILE
    return entry


def file_metadata(
    metadata: Mapping[str, Any], fmt: ExportFormat, tensors: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """A file's own entry (`FILE_KEYS`): its format and its input and output as the file has
    them (`tensors`: `{"input": {...}, "output": {...}}`, see `tflite_tensors`)."""
    return {
        "format": fmt.name,
        "description": fmt.description,
        "runtime": RUNTIMES.get(fmt.runtime, fmt.runtime),
        "input": input_entry(metadata, tensors["input"]),
        "output": output_entry(metadata, tensors["output"]),
    }


def embedded_metadata(
    metadata: Mapping[str, Any], entry: Mapping[str, Any], **extra: Any
) -> dict[str, Any]:
    """What goes into a file: the model's keys, the file's own entry over them, and `extra`
    (the TFLite files keep their `quantization` block for the readers of the first layout)."""
    model_keys = {k: v for k, v in metadata.items() if k not in ("about", "files")}
    return {**model_keys, **entry, **extra}


def own_entry(embedded: Mapping[str, Any]) -> dict[str, Any]:
    """The file's own entry out of its embedded metadata."""
    return {key: embedded[key] for key in FILE_KEYS if key in embedded}


def tflite_tensors(content: bytes, output_name: str) -> dict[str, dict[str, Any]]:
    """Input and output tensors of a TFLite file (shape, dtype, scale, zero point) with the
    names `export.tflite_export.embed_metadata` gives them."""
    from export.tflite_export import INPUT_NAME, io_quantization

    details = io_quantization(content)
    return {
        "input": dict(details["input"], name=INPUT_NAME),
        "output": dict(details["output"], name=output_name),
    }


def embed_in_tflite(
    content: bytes, metadata: Mapping[str, Any], fmt: ExportFormat, output_name: str
) -> bytes:
    """`content` with its signature, its input and output tensors named, and the metadata
    describing it (the model's keys, its own entry, and its `quantization` block)."""
    from export.tflite_export import embed_metadata, io_quantization

    entry = file_metadata(metadata, fmt, tflite_tensors(content, output_name))
    embedded = embedded_metadata(metadata, entry, quantization=io_quantization(content))
    return embed_metadata(content, embedded, output_name=output_name)


def embed_in_onnx(content: bytes, metadata: Mapping[str, Any], fmt: ExportFormat) -> bytes:
    """`content` with the metadata describing it as `convzoo.<key>` metadata_props."""
    import onnx

    from export.onnx_export import io_tensors, set_metadata

    entry = file_metadata(metadata, fmt, io_tensors(content))
    proto = set_metadata(onnx.load_from_string(content), embedded_metadata(metadata, entry))
    return proto.SerializeToString()


def read_file_metadata(path: str | os.PathLike) -> dict[str, Any] | None:
    """The convzoo metadata embedded in a `.tflite` or `.onnx` file, or None."""
    path = Path(path)
    if path.suffix == ".tflite":
        from export.tflite_export import read_metadata

        return read_metadata(path.read_bytes())
    if path.suffix == ".onnx":
        from export.onnx_export import read_metadata

        props = read_metadata(path.read_bytes())
        prefix = "convzoo."
        found = {k[len(prefix) :]: v for k, v in props.items() if k.startswith(prefix)}
        return {key: _json_or_text(value) for key, value in found.items()} or None
    return None


def _json_or_text(value: str) -> Any:
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return value if isinstance(decoded, str) else decoded


def files_metadata(out_dir: Path, path: Path) -> dict[str, dict[str, Any]]:
    """`metadata.json` entries of a written row: the file, or the model files in its folder
    (tflm/, web/), keyed by their path relative to `out_dir`, each read from the file."""
    candidates = [path] if path.is_file() else sorted(path.glob("*.tflite"))
    entries = {}
    for candidate in candidates:
        embedded = read_file_metadata(candidate)
        if embedded and "input" in embedded:
            entries[candidate.relative_to(out_dir).as_posix()] = own_entry(embedded)
    return entries
