"""Helpers shared by the test suites: the two Keras worlds, and running a model in the real
edge runtimes (LiteRT interpreter, ONNX Runtime) next to Keras.

Imported by tests as `import testing_utils` (pytest's `pythonpath = tests`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

LEGACY_KERAS = os.environ.get("TF_USE_LEGACY_KERAS", "0").lower() in ("1", "true")
KERAS_WORLD = "tf_keras" if LEGACY_KERAS else "keras3"


def model_of(layer: tf.keras.layers.Layer, input_shape: Sequence[int]) -> tf.keras.Model:
    """Wraps one layer in a functional model with a fixed per-example `input_shape`."""
    inputs = tf.keras.Input(shape=tuple(input_shape))
    return tf.keras.Model(inputs, layer(inputs))


def inference_function(model: tf.keras.Model, batch_shape: Sequence[int]):
    """A concrete `tf.function` running `model` in inference mode on one fixed input shape."""
    spec = tf.TensorSpec(tuple(batch_shape), tf.float32, name="input")
    return tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)


def to_tflite(model: tf.keras.Model, batch_shape: Sequence[int]) -> bytes:
    """Converts with TFLite built-in ops only: an op without a built-in fails the conversion.

    The trackable `model` is deliberately not passed to the converter: with it, the weights
    stay TFLite resource variables (VAR_HANDLE) that the interpreter reads as zeros; without
    it they are frozen into constants, as in a deployable file.
    """
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [inference_function(model, batch_shape)]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def run_tflite(content: bytes, x: np.ndarray) -> np.ndarray:
    """Runs a TFLite flatbuffer on `x` in the LiteRT interpreter (one thread)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    (input_detail,) = interpreter.get_input_details()
    interpreter.set_tensor(input_detail["index"], x.astype(input_detail["dtype"]))
    interpreter.invoke()
    (output_detail,) = interpreter.get_output_details()
    return interpreter.get_tensor(output_detail["index"])


def tflite_op_names(content: bytes) -> set[str]:
    """The set of operator names in a TFLite flatbuffer (e.g. {'CONV_2D', 'RESHAPE'})."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    return {op["op_name"] for op in interpreter._get_ops_details()}


def to_onnx(model: tf.keras.Model, batch_shape: Sequence[int], opset: int = 17) -> bytes:
    """Converts through tf2onnx and checks the graph with `onnx.checker`."""
    import onnx
    import tf2onnx

    spec = tf.TensorSpec(tuple(batch_shape), tf.float32, name="input")
    function = tf.function(lambda x: model(x, training=False))
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def run_onnx(content: bytes, x: np.ndarray) -> np.ndarray:
    """Runs an ONNX model on `x` in ONNX Runtime (CPU, one thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
    (input_meta,) = session.get_inputs()
    return session.run(None, {input_meta.name: x.astype(np.float32)})[0]


def assert_edge_runtimes_match(
    model: tf.keras.Model, x: np.ndarray, atol: float = 1e-5, rtol: float = 1e-5
) -> None:
    """Converts `model` to TFLite (built-ins only) and ONNX, runs both on `x` and compares
    with Keras in inference mode."""
    expected = np.asarray(model(x, training=False))
    tflite = to_tflite(model, x.shape)
    op_names = tflite_op_names(tflite)
    assert not any(name.startswith("Flex") for name in op_names), op_names
    assert "VAR_HANDLE" not in op_names, op_names
    np.testing.assert_allclose(run_tflite(tflite, x), expected, atol=atol, rtol=rtol)
    np.testing.assert_allclose(run_onnx(to_onnx(model, x.shape), x), expected, atol=atol, rtol=rtol)
