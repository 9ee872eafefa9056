"""QAT of a grouped convolution (AlexNet's conv2/4/5): the tfmot worker's QAT graph converts to
an integer-only TFLite file that computes what the float model does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.keras3_only  # the worker runs in its own tf_keras process

# Runs in the worker's world (tf_keras), as `python -m export._tfmot_worker` does.
SCRIPT = r"""
import json
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from export import _tfmot_worker as worker
from layers.batch_norm import BatchNorm
from layers.convolution import Conv2D

tf.keras.utils.set_random_seed(0)
inputs = tf.keras.Input((12, 12, 4))
x = Conv2D(8, 3, groups=2, name="grouped")(inputs)
x = BatchNorm(name="bn")(x)
x = tf.keras.layers.ReLU(name="relu")(x)
x = tf.keras.layers.Flatten(name="flatten")(x)
outputs = tf.keras.layers.Dense(5, name="fc")(x)
model = tf.keras.Model(inputs, outputs)
rng = np.random.default_rng(0)
gamma, beta, mean, var = model.get_layer("bn").get_weights()
model.get_layer("bn").set_weights(
    [gamma * 1.5, beta + 0.1, rng.normal(0, 0.2, mean.shape), var * 0.5 + 0.2]
)
images = rng.uniform(0, 1, (64, 12, 12, 4)).astype("float32")

qat, folded = worker.build_qat_model(model)
worker.init_quantizer_ranges(qat, folded, images)
content = worker._to_tflite(qat, "float32", images)

interpreter = Interpreter(
    model_content=content,
    experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
)
interpreter.allocate_tensors()
(inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
got = []
for image in images:
    interpreter.set_tensor(inp["index"], image[None])
    interpreter.invoke()
    got.append(interpreter.get_tensor(out["index"])[0])
expected = model.predict(images, verbose=0)
ops = [op["op_name"] for op in interpreter._get_ops_details()]
print(json.dumps({
    "ops": ops,
    "kernels": worker.quantized_kernels(qat),
    "max_abs_diff": float(np.max(np.abs(np.array(got) - expected))),
    "output_range": float(np.ptp(expected)),
    "top1_agreement": float(np.mean(np.argmax(got, 1) == np.argmax(expected, 1))),
}))
"""


def test_a_grouped_convolution_is_quantized_per_group_and_converts():
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # One fake-quantized kernel per group, then the dense layer.
    assert report["kernels"] == ["grouped_group0", "grouped_group1", "fc"], report["kernels"]
    # Integer-only between the input's QUANTIZE and the output's DEQUANTIZE: each group's
    # channels sliced, convolved, and the groups concatenated.
    assert report["ops"] == [
        "QUANTIZE",
        "STRIDED_SLICE",
        "CONV_2D",
        "STRIDED_SLICE",
        "CONV_2D",
        "CONCATENATION",
        "RESHAPE",
        "FULLY_CONNECTED",
        "DEQUANTIZE",
    ], report["ops"]
    # int8 rounding only: a few output steps of the 8-bit logits.
    assert report["max_abs_diff"] <= 0.05 * report["output_range"], report
    assert report["top1_agreement"] >= 0.9, report
