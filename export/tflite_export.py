"""TFLite writers: float32, float16, dynamic-range int8, full-integer int8 and int16x8.

The Keras model is traced at batch size 1 (what an app or a microcontroller runs), its variables
frozen into constants, and converted with TFLite built-in ops only (a model needing a Flex/Select
TF op fails the conversion instead of producing a file the edge runtimes cannot run).

The TFLite file carries what an app needs inside the flatbuffer:

- a signature `serving_default` with input `input` and output `logits` (or `reconstruction`),
  and input and output tensors of those names,
- a `convzoo` metadata entry holding JSON that describes this file (`export.metadata`): its
  input and output dtype, shape, scale and zero point, the pixel range and normalization, how
  a raw image becomes the input tensor, what the output means, class labels, task, model and
  data set names.

Example:

>>> content = convert_tflite(model, (28, 28, 1), "int8", calibration=x_train[:200], io="int8")
>>> content = embed_metadata(content, {"class_names": [...]}, output_name="logits")
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from export.data import calibration_batches
from layers._native_logs import quiet_native_stderr

METADATA_NAME = "convzoo"
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "input"
QUANTIZATIONS = ("none", "float16", "dynamic_int8", "int8", "int16x8", "qat_int8")
IO_TYPES = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}


def frozen_inference_function(
    model: tf.keras.Model, input_shape: Sequence[int], output_name: str = "logits"
):
    """`model` in inference mode as a concrete function of a `[1, H, W, C]` float32 input,
    with every variable folded into a constant (so no VAR_HANDLE/READ_VARIABLE ops remain)."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec((1, *input_shape), tf.float32, name=INPUT_NAME)
    function = tf.function(lambda x: {output_name: model(x, training=False)})
    return convert_variables_to_constants_v2(function.get_concrete_function(spec))


def convert_tflite(
    model: tf.keras.Model,
    input_shape: Sequence[int],
    quantization: str = "none",
    *,
    calibration: np.ndarray | None = None,
    io: str = "float32",
    output_name: str = "logits",
    progress: bool = True,
    per_channel: bool = True,
) -> bytes:
    """Converts `model` to a TFLite flatbuffer with built-in ops only.

    Args:
        model: a Keras 3 model taking raw pixels `(None, H, W, C)`.
        input_shape: `(H, W, C)`.
        quantization: one of `QUANTIZATIONS` except `qat_int8` (which has its own process):
            `none` (float32), `float16` (float16 weights), `dynamic_int8` (int8 weights, float
            activations), `int8` (full integer, calibrated), `int16x8` (int16 activations,
            int8 weights, calibrated).
        calibration: raw-pixel float32 images `(N, H, W, C)` for `int8`/`int16x8`.
        io: input/output tensor type of the `int8` file: `float32`, `int8` or `uint8`.
        output_name: the signature's output name.
        progress: draw a progress bar while calibrating.
        per_channel: `int8`: per-channel weight scales for convolutions (dense layers always
            have one); False gives every weight tensor one scale.

    Returns:
        The `.tflite` bytes.

    Raises:
        ValueError: unknown `quantization` or `io`, or a calibrated scheme without images.
    """
    if quantization not in QUANTIZATIONS or quantization == "qat_int8":
        raise ValueError(
            f"Unknown TFLite quantization {quantization!r}; accepted: "
            f"{', '.join(q for q in QUANTIZATIONS if q != 'qat_int8')}"
        )
    if io not in IO_TYPES:
        raise ValueError(f"Unknown --io {io!r}; accepted: {', '.join(IO_TYPES)}")
    if io != "float32" and quantization != "int8":
        raise ValueError(f"--io {io} needs full-integer int8, not {quantization!r}")
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [frozen_inference_function(model, input_shape, output_name)], model
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization in ("int8", "int16x8"):
        if calibration is None or len(calibration) == 0:
            raise ValueError(f"{quantization} quantization needs calibration images")
        images = np.asarray(calibration, dtype=np.float32)

        def representative_dataset():
            label = f"calibrating {quantization}"
            for batch in calibration_batches(images, 1, label=label, progress=progress):
                yield [batch]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        if quantization == "int8":
            # Per-channel scales for convolutions, one scale per dense layer: each per-channel
            # tensor costs 12 bytes a channel (float scale + int64 zero point) for its kernel
            # and its bias, ~5 KB on LeNet-5, for an accuracy change within noise (measured
            # 79.6 vs 79.5 %); it keeps the LeNet-5 file under 0.27x float32.
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
            converter._experimental_disable_per_channel = not per_channel
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = IO_TYPES[io]
            converter.inference_output_type = IO_TYPES[io]
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
    with quiet_native_stderr(), warnings.catch_warnings():
        # The converter's legacy path warns that no input mean/std was given for an integer
        # input; the post-training quantizer takes the input's scale and zero point from the
        # calibration data instead, so the warning does not apply.
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        return bytes(converter.convert())


def _schema():
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def embed_metadata(
    content: bytes,
    metadata: Mapping[str, Any],
    output_name: str = "logits",
    compact_names: bool = True,
) -> bytes:
    """Adds the `convzoo` JSON metadata entry and, if missing, the `serving_default`
    signature (input `input`, output `output_name`) to a TFLite flatbuffer, and gives the
    input and output tensors those names; with `compact_names`, the other tensor names are
    shortened to `t<index>`."""
    from tensorflow.lite.tools import flatbuffer_utils

    schema = _schema()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    subgraph = model.subgraphs[0]
    if not model.signatureDefs:
        signature = schema.SignatureDefT()
        signature.signatureKey = SIGNATURE_KEY
        signature.subgraphIndex = 0
        signature.inputs, signature.outputs = [], []
        for names, indices, target in (
            ([INPUT_NAME], subgraph.inputs, signature.inputs),
            ([output_name], subgraph.outputs, signature.outputs),
        ):
            for name, index in zip(names, indices, strict=True):
                tensor_map = schema.TensorMapT()
                tensor_map.name, tensor_map.tensorIndex = name, int(index)
                target.append(tensor_map)
        model.signatureDefs = [signature]
    for signature in model.signatureDefs:
        # The converter names a frozen function's tensors `input`/`output_0`: use the
        # app-facing names.
        signature.signatureKey = SIGNATURE_KEY
        if len(signature.inputs) == 1:
            signature.inputs[0].name = INPUT_NAME
        if len(signature.outputs) == 1:
            signature.outputs[0].name = output_name
    if compact_names:
        # Graph-internal tensor names ("model/bn3/mul_3;model/relu3/Relu;...") are debug
        # strings of ~100 bytes each; the app-facing names live in the signature.
        for index, tensor in enumerate(subgraph.tensors):
            tensor.name = f"t{index}"
    _name_io_tensors(subgraph, output_name)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(
        json.dumps(dict(metadata), separators=(",", ":")).encode(), dtype=np.uint8
    )
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name_io_tensors(subgraph, output_name: str) -> None:
    """Names the input and output tensors `input` and `output_name`, as the signature does.

    The converter cannot: whatever the Keras layer, `tf.TensorSpec` or dict key is called, it
    names them `serving_default_<argument>:0` and `(Stateful)PartitionedCall:0`; only the
    signature carries the function's names. A tensor name is a plain flatbuffer string, so it
    is set here, for apps that look tensors up by name (`get_input_details()[0]["name"]`).
    """
    for indices, name in ((subgraph.inputs, INPUT_NAME), (subgraph.outputs, output_name)):
        if len(indices) == 1:
            subgraph.tensors[int(indices[0])].name = name


def read_metadata(content: bytes) -> dict[str, Any] | None:
    """The `convzoo` JSON metadata of a TFLite flatbuffer, or None if it has none."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == METADATA_NAME:
            return json.loads(bytes(model.buffers[entry.buffer].data).decode())
    return None


def io_quantization(content: bytes) -> dict[str, Any]:
    """dtype, scale and zero point of the input and output tensors of a TFLite flatbuffer."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet_native_stderr():
        interpreter = Interpreter(model_content=content)
    result = {}
    for key, (detail,) in (
        ("input", interpreter.get_input_details()),
        ("output", interpreter.get_output_details()),
    ):
        scale, zero_point = detail["quantization"]
        result[key] = {
            "shape": [int(d) for d in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name,
            "scale": float(scale),
            "zero_point": int(zero_point),
        }
    return result
