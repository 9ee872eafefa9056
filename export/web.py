"""The `web` format: a page a person uses in the browser, written to `exports/<name>/web/`.

The folder is self-contained and works offline from any static file server
(`python -m http.server -d exports/<name>/web`):

- `index.html`, `app.js`, `style.css`: the page (from `export/web_assets/`);
- `vendor/litert/`: LiteRT.js (npm `@litertjs/core`, Google AI Edge's web runtime for
  `.tflite`) and its WebAssembly files, copied from `web/node_modules` (`make web-deps`);
- `model.tflite`: the full-integer int8 file (the same conversion as `tflite_int8`), which the
  page runs on CPU (WASM, XNNPACK);
- `feature_maps.tflite`: a float32 file with one output per convolution and pooling layer
  (the model cut after each of them) plus the logits, for the feature maps the page draws;
- `metadata.json`: what the page needs: input shape, preprocessing, class names, the int8
  file's input/output quantization, per-layer names, shapes and receptive fields (from
  `layers.arithmetic.receptive_field`), and the learned filters of the first convolution;
- `samples/`: one test image per class, for the page's "try a test image" buttons.

Example:

>>> folder = write_web_folder(out_dir, source.model, metadata, int8_content, data)
>>> sorted(p.name for p in folder.iterdir())[:3]
['app.js', 'feature_maps.tflite', 'index.html']
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from layers.arithmetic import receptive_field
from layers.padding import same_padding
from training.atomic import atomic_write_directory

WEB_DIR = "web"
MODEL_FILE = "model.tflite"
FEATURES_FILE = "feature_maps.tflite"
SCREENSHOT_FILE = "screenshot.png"
ASSETS_DIR = Path(__file__).with_name("web_assets")
ASSET_FILES = ("index.html", "app.js", "style.css")
LITERT_PACKAGE = "@litertjs/core"
# The relaxed-SIMD build (Chromium >= 114, Firefox, Safari 18) and the plain-SIMD fallback
# LiteRT.js picks when the browser lacks relaxed SIMD; the threaded and JSPI builds are not
# used by the page (threads need cross-origin isolation headers a plain server does not send).
LITERT_WASM_FILES = (
    "litert_wasm_internal.js",
    "litert_wasm_internal.wasm",
    "litert_wasm_compat_internal.js",
    "litert_wasm_compat_internal.wasm",
)
NODE_MODULES_ENV = "CONVZOO_WEB_NODE_MODULES"
LOGITS_OUTPUT = "logits"
MAX_MEGAPIXELS = 16.0


def node_modules_dir() -> Path:
    """The `node_modules` folder holding LiteRT.js: `$CONVZOO_WEB_NODE_MODULES`, else the
    repository's `web/node_modules` (installed by `make web-deps`, i.e. `npm ci` in `web/`)."""
    configured = os.environ.get(NODE_MODULES_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1] / WEB_DIR / "node_modules"


def litert_js_files() -> dict[str, Path]:
    """Where each file the page needs from LiteRT.js is, keyed by its path in the folder.

    Returns:
        `{"vendor/litert/core.js": path, ...}`.

    Raises:
        FileNotFoundError: LiteRT.js is not installed, with the command that installs it.
    """
    modules = node_modules_dir()
    core = modules / "@litertjs" / "core"
    utils = modules / "@litertjs" / "wasm-utils"
    files = {
        "vendor/litert/core.js": core / "dist" / "index.js",
        "vendor/litert/wasm-utils.js": utils / "dist" / "index.js",
        "vendor/litert/package.json": core / "package.json",
    }
    files.update({f"vendor/litert/wasm/{name}": core / "wasm" / name for name in LITERT_WASM_FILES})
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"LiteRT.js ({LITERT_PACKAGE}) is not installed ({missing[0]} missing): run "
            f"`make web-deps` (npm ci in web/) or set ${NODE_MODULES_ENV}"
        )
    return files


def litert_js_version() -> str:
    """The installed `@litertjs/core` version."""
    package = node_modules_dir() / "@litertjs" / "core" / "package.json"
    return json.loads(package.read_text())["version"]


def _at(value: Any, axis: int) -> Any:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return value[axis] if len(value) > axis else value[0]
    return value


def _is_feature_layer(layer: tf.keras.layers.Layer) -> bool:
    """A convolution or pooling layer with a 4D output (no transposed convolutions)."""
    window = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    if window is None or "transpose" in type(layer).__name__.lower():
        return False
    return len(layer.output.shape) == 4


def feature_layers(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The model's convolution and pooling layers with 2D feature maps, in order."""
    return [layer for layer in model.layers if _is_feature_layer(layer)]


def _axis_spec(layer: tf.keras.layers.Layer, axis: int) -> tuple[int, int, int, int]:
    """`(kernel, stride, dilation, pad_before)` of a window layer along spatial `axis`."""
    kernel = int(_at(getattr(layer, "kernel_size", None) or layer.pool_size, axis))
    stride = int(_at(getattr(layer, "strides", None) or kernel, axis))
    dilation = getattr(layer, "dilation", None) or getattr(layer, "dilation_rate", 1)
    dilation = int(_at(dilation, axis))
    padding = getattr(layer, "padding", "valid")
    if isinstance(padding, str):
        size = int(layer.input.shape[1 + axis])
        before = same_padding(size, kernel, stride, dilation)[0] if padding == "same" else 0
    else:
        before = int(_at(_at(padding, axis), 0))
    return kernel, stride, dilation, before


def layer_geometry(model: tf.keras.Model) -> list[dict[str, Any]]:
    """Name, kind, output shape and receptive field of every feature layer of a chain model.

    The receptive field of a unit `(i, j)` of a layer's map covers input rows
    `start[0] + i * jump[0] +- (size[0] - 1) / 2` and columns likewise (in input pixels,
    `layers.arithmetic.receptive_field` along each axis). It is None after a layer that changes
    the spatial size without a window (e.g. a resize), where it is not a box of input pixels.

    Returns:
        One dict per feature layer: `name`, `kind`, `shape` (H, W, C), `receptive_field`
        (`size`, `jump`, `start`, each `[rows, cols]`) or None.
    """
    targets = {layer.name for layer in feature_layers(model)}
    specs: list[list[tuple[int, int, int, int]]] = [[], []]
    known = True
    found = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        if getattr(layer, "kernel_size", None) is not None or hasattr(layer, "pool_size"):
            if "transpose" in type(layer).__name__.lower():
                known = False
            else:
                for axis in (0, 1):
                    specs[axis].append(_axis_spec(layer, axis))
        elif (
            len(layer.input.shape) == 4
            and len(layer.output.shape) == 4
            and tuple(layer.input.shape[1:3]) != tuple(layer.output.shape[1:3])
        ):
            known = False
        if layer.name not in targets:
            continue
        field = None
        if known:
            rows, cols = receptive_field(specs[0])[-1], receptive_field(specs[1])[-1]
            field = {
                "size": [rows.size, cols.size],
                "jump": [rows.jump, cols.jump],
                "start": [rows.start, cols.start],
            }
        found.append(
            {
                "name": layer.name,
                "kind": type(layer).__name__,
                "shape": [int(d) for d in layer.output.shape[1:]],
                "receptive_field": field,
            }
        )
    return found


def feature_map_model(model: tf.keras.Model) -> tf.keras.Model:
    """`model` cut after each feature layer: outputs `[map_1, ..., map_n, logits]`."""
    outputs = [layer.output for layer in feature_layers(model)]
    return tf.keras.Model(model.inputs[0], [*outputs, model.outputs[0]], name="feature_maps")


def _name_outputs(content: bytes, names: Sequence[str]) -> bytes:
    """Renames a converted multi-output file's signature outputs `output_<i>` (the i-th output
    of the Keras model) to `names[i]`."""
    from tensorflow.lite.tools import flatbuffer_utils

    flat = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    for signature in flat.signatureDefs:
        for tensor_map in signature.outputs:
            name = (
                tensor_map.name.decode() if isinstance(tensor_map.name, bytes) else tensor_map.name
            )
            tensor_map.name = names[int(name.rsplit("_", 1)[-1])]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(flat))


def run_feature_maps(content: bytes, image: np.ndarray) -> dict[str, np.ndarray]:
    """Runs the feature-map file in the LiteRT interpreter on one raw-pixel image `(H, W, C)`.

    Returns:
        `{output name: array}` with the batch dimension removed.
    """
    from ai_edge_litert.interpreter import Interpreter

    from layers._native_logs import quiet_native_stderr

    with quiet_native_stderr():
        interpreter = Interpreter(model_content=content, num_threads=1)
    runner = interpreter.get_signature_runner("serving_default")
    outputs = runner(input=np.asarray(image, np.float32)[None])
    return {name: np.asarray(value)[0] for name, value in outputs.items()}


def convert_feature_maps(model: tf.keras.Model, check_images: np.ndarray) -> bytes:
    """The float32 feature-map `.tflite` of `model`, its outputs named after the layers.

    Args:
        model: a functional classifier taking raw pixels.
        check_images: raw-pixel images `(N, H, W, C)`; each output of the file is compared
            with the Keras model cut at the same layer on them.

    Raises:
        ValueError: an output of the file does not match its Keras layer (naming or conversion
            gone wrong).
    """
    from export.tflite_export import convert_tflite

    cut = feature_map_model(model)
    names = [layer.name for layer in feature_layers(model)] + [LOGITS_OUTPUT]
    content = convert_tflite(
        cut, tuple(model.input_shape[1:]), "none", output_name="maps", progress=False
    )
    content = _name_outputs(content, names)
    for image in np.asarray(check_images, np.float32):
        expected = [np.asarray(y)[0] for y in cut(image[None], training=False)]
        got = run_feature_maps(content, image)
        for name, reference in zip(names, expected, strict=True):
            scale = max(1.0, float(np.max(np.abs(reference))))
            if got[name].shape != reference.shape or not np.allclose(
                got[name], reference, atol=1e-4 * scale, rtol=0
            ):
                raise ValueError(f"feature-map output {name!r} differs from the Keras layer")
    return content


def first_conv_filters(model: tf.keras.Model) -> dict[str, Any] | None:
    """The first convolution's learned kernel `(k_h, k_w, C_in, F)` as nested lists."""
    for layer in feature_layers(model):
        if getattr(layer, "kernel_size", None) is None:
            continue
        if hasattr(layer, "fused_kernel_and_bias"):
            kernel = np.asarray(layer.fused_kernel_and_bias()[0])
        else:
            kernel = np.asarray(layer.kernel)
        return {
            "layer": layer.name,
            "shape": [int(d) for d in kernel.shape],
            "values": np.round(kernel.astype(np.float64), 6).tolist(),
        }
    return None


def dark_background(images: np.ndarray) -> bool:
    """Whether the data set draws light objects on a dark background (Fashion-MNIST, MNIST):
    the mean of the images' one-pixel border is below mid-grey."""
    x = np.asarray(images, np.float32)
    border = np.concatenate(
        [x[:, 0].reshape(-1), x[:, -1].reshape(-1), x[:, :, 0].reshape(-1), x[:, :, -1].reshape(-1)]
    )
    return bool(border.mean() < 127.5)


def encode_png(image: np.ndarray) -> bytes:
    """A `(H, W, C)` raw-pixel image (integers in [0, 255]) as PNG bytes (8-bit gray or RGB)."""
    pixels = np.clip(np.round(np.asarray(image, np.float32)), 0, 255).astype(np.uint8)
    return tf.io.encode_png(pixels).numpy()


def web_metadata(
    metadata: Mapping[str, Any],
    model: tf.keras.Model,
    quantization: Mapping[str, Any],
    calibration: np.ndarray,
    samples: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """`metadata.json` of the folder: the app metadata plus a `web` section for the page."""
    height, width, channels = (int(d) for d in model.input_shape[1:])
    dark = dark_background(calibration)
    return dict(
        metadata,
        web={
            "runtime": f"LiteRT.js ({LITERT_PACKAGE} {litert_js_version()}), WASM on CPU",
            "model_file": MODEL_FILE,
            "quantization": dict(quantization),
            "feature_maps_file": FEATURES_FILE,
            "feature_maps_dtype": "float32",
            "logits_output": LOGITS_OUTPUT,
            "preprocessing": {
                "size": [height, width],
                "channels": channels,
                "resize": "fit inside (aspect kept), centred on the image's border colour, "
                "canvas drawImage with imageSmoothingQuality 'high'; no resampling when the "
                "image already has the input size",
                "grayscale": "round((299 R + 587 G + 114 B) / 1000)" if channels == 1 else None,
                "range": [0, 255],
                "background": "dark" if dark else "light",
                "invert_drawn": dark,
                "invert_uploaded": "auto: when the border is lighter than mid-grey"
                if dark
                else False,
                "max_megapixels": MAX_MEGAPIXELS,
            },
            "layers": layer_geometry(model),
            "filters": first_conv_filters(model),
            "samples": list(samples),
        },
    )


def write_web_folder(
    out_dir: str | os.PathLike,
    model: tf.keras.Model,
    metadata: Mapping[str, Any],
    model_content: bytes,
    quantization: Mapping[str, Any],
    calibration: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    class_names: Sequence[str] | None,
    before_publish=None,
) -> Path:
    """Writes the page folder `out_dir/web` atomically (built in a temporary folder beside
    it, then renamed over any old one).

    Args:
        out_dir: the export directory.
        model: the Keras classifier (for the feature-map file, geometry and filters).
        metadata: the export's app metadata (`export.exporter.app_metadata`).
        model_content: the int8 `.tflite` bytes the page classifies with.
        quantization: the int8 file's input/output quantization (`io_quantization`).
        calibration: raw-pixel training images (to tell the data set's background).
        x_test, y_test: test images and labels; one per class becomes a sample button.
        class_names: label names.
        before_publish: called with the temporary folder before it is renamed into place
            (the browser check runs there, so the published folder has its screenshot).

    Returns:
        The folder's path.

    Raises:
        FileNotFoundError: LiteRT.js is not installed (`make web-deps`).
        ValueError: the model is not a classifier with a 4D input, or the feature-map file
            does not match Keras.
    """
    if metadata.get("task") != "classification" or len(model.input_shape) != 4:
        raise ValueError("the web page needs an image classifier (task 'classification')")
    vendor = litert_js_files()
    out_dir = Path(out_dir)
    target = out_dir / WEB_DIR

    def fill(tmp: Path) -> None:
        for name in ASSET_FILES:
            shutil.copyfile(ASSETS_DIR / name, tmp / name)
        for relative, source in vendor.items():
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp / relative)
        (tmp / MODEL_FILE).write_bytes(model_content)
        (tmp / FEATURES_FILE).write_bytes(convert_feature_maps(model, x_test[:2]))
        samples = _write_samples(tmp, x_test, y_test, class_names)
        meta = web_metadata(metadata, model, quantization, calibration, samples)
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
        if before_publish is not None:
            before_publish(tmp)

    atomic_write_directory(target, fill)
    return target


def _write_samples(folder: Path, x_test, y_test, class_names) -> list[dict[str, str]]:
    """One test image per class as `samples/<label>.png`, for the page's buttons."""
    (folder / "samples").mkdir()
    samples = []
    for label in sorted(set(int(y) for y in y_test)):
        index = int(np.flatnonzero(np.asarray(y_test) == label)[0])
        name = f"samples/{label}.png"
        (folder / name).write_bytes(encode_png(x_test[index]))
        caption = class_names[label] if class_names and label < len(class_names) else label
        samples.append({"file": name, "label": str(caption)})
    return samples
