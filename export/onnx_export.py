"""ONNX writers: float32 through tf2onnx, int8 through ONNX Runtime's static QDQ quantization.

The float32 graph has a dynamic batch dimension, opset 17, and passes `onnx.checker`. The int8
graph is the float32 graph with QuantizeLinear/DequantizeLinear pairs (QDQ format: the form
ONNX Runtime, TensorRT and OpenVINO fuse into integer kernels), weights per channel, calibrated
on the same training images as the TFLite int8 file. The input is `input`, the output
`logits` (or `reconstruction`), their first dimension `batch`. Each file carries the metadata
describing it (`export.metadata`) as `metadata_props` (string key/value pairs: `convzoo.input`
and `convzoo.output` are JSON, with the file's own dtype and preprocessing, and so on).

Example:

>>> proto = convert_onnx(model, (28, 28, 1))
>>> int8 = quantize_onnx_int8(proto.SerializeToString(), x_calibration)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from export.data import calibration_batches

INPUT_NAME = "input"
BATCH_DIM = "batch"
OPSET = 17


def convert_onnx(
    model: tf.keras.Model,
    input_shape: Sequence[int],
    opset: int = OPSET,
    output_name: str = "logits",
):
    """`model` in inference mode as a checked `onnx.ModelProto` with a dynamic batch."""
    import onnx
    import tf2onnx

    if opset < 17:
        raise ValueError(f"ONNX opset must be >= 17, got {opset}")
    spec = tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT_NAME)
    function = tf.function(lambda x: {output_name: model(x, training=False)})
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset)
    # tf2onnx names graph outputs after TF tensors; give the app-facing name instead.
    (output,) = proto.graph.output
    for node in proto.graph.node:
        node.output[:] = [output_name if o == output.name else o for o in node.output]
    output.name = output_name
    _name_batch_dimension(proto)
    onnx.checker.check_model(proto)
    return proto


def _name_batch_dimension(proto) -> None:
    """tf2onnx calls the free batch dimension `unk__<n>`: call it `batch` wherever it is."""
    graph = proto.graph
    ends = (*graph.input, *graph.output)
    params = {v.type.tensor_type.shape.dim[0].dim_param for v in ends} - {""}
    for value in (*ends, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in params:
                dim.dim_param = BATCH_DIM


def io_tensors(content: bytes) -> dict[str, dict[str, Any]]:
    """Name, shape (None for a free dimension) and dtype of the input and output of a
    serialized ONNX model with one of each."""
    import onnx

    graph = onnx.load_from_string(content).graph
    result = {}
    for key, (value,) in (("input", graph.input), ("output", graph.output)):
        tensor_type = value.type.tensor_type
        dims = tensor_type.shape.dim
        result[key] = {
            "name": value.name,
            "shape": [d.dim_value if d.HasField("dim_value") else None for d in dims],
            "dtype": np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name,
        }
    return result


def set_metadata(proto, metadata: Mapping[str, Any]):
    """Writes `metadata` into `proto.metadata_props` as `convzoo.<key>` strings (JSON for
    non-strings) and returns `proto`."""
    import onnx

    props = {
        f"convzoo.{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in metadata.items()
    }
    onnx.helper.set_model_props(proto, props)
    return proto


def read_metadata(content: bytes) -> dict[str, str]:
    """The `metadata_props` of a serialized ONNX model as a dict."""
    import onnx

    proto = onnx.load_from_string(content)
    return {prop.key: prop.value for prop in proto.metadata_props}


class _CalibrationReader:
    """ONNX Runtime's CalibrationDataReader protocol over an array of images."""

    def __init__(self, images: np.ndarray, batch_size: int, progress: bool):
        self._batches = calibration_batches(
            images, batch_size, label="calibrating onnx int8", progress=progress
        )

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def quantize_onnx_int8(
    float_content: bytes,
    calibration: np.ndarray,
    *,
    per_channel: bool = True,
    batch_size: int = 16,
    progress: bool = True,
) -> bytes:
    """Static QDQ int8 quantization (activations and weights int8, symmetric per-channel
    weights, MinMax calibration) of a float ONNX model; metadata props are kept.

    Raises:
        ValueError: no calibration images.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration is None or len(calibration) == 0:
        raise ValueError("ONNX int8 quantization needs calibration images")
    float_proto = onnx.load_from_string(float_content)
    with tempfile.TemporaryDirectory(prefix="convzoo-onnx-") as tmp:
        source, target = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
        source.write_bytes(float_content)
        prepared = Path(tmp, "prepared.onnx")
        # ONNX Runtime's recommended pre-processing: shape inference and graph optimization
        # (fuses MatMul+Add into Gemm, so the quantizer sees one node per layer).
        quant_pre_process(os.fspath(source), os.fspath(prepared), skip_symbolic_shape=True)
        quantize_static(
            os.fspath(prepared),
            os.fspath(target),
            _CalibrationReader(np.asarray(calibration, np.float32), batch_size, progress),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        proto = onnx.load(os.fspath(target))
    onnx.helper.set_model_props(proto, {p.key: p.value for p in float_proto.metadata_props})
    onnx.checker.check_model(proto)
    return proto.SerializeToString()
