"""Layer-level latency profile of a TFLite conversion, by timing growing prefixes.

LiteRT's Python interpreter has no per-op profiler, so the cost of each layer is measured as
the difference between the median latency of the model cut after that layer and the model cut
before it (each prefix converted the same way: float32, or int8 calibrated on the same images).
It answers "where does the int8 time go" layer by layer, with XNNPACK and without.

Example:

>>> rows = profile_layers(model, (28, 28, 1), "int8", calibration=x[:100])
>>> [(r["layer"], round(r["delta_us"], 1)) for r in rows]
[('normalize', 9.8), ('conv1', 30.2), ...]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from export.tflite_export import convert_tflite
from export.verify import TFLiteRunner


def profile_layers(
    model: tf.keras.Model,
    input_shape: Sequence[int],
    quantization: str,
    *,
    calibration: np.ndarray | None = None,
    runs: int = 300,
    layer_names: Sequence[str] | None = None,
) -> list[dict]:
    """Median batch-1 latency of every prefix `input -> layer` and each layer's increment.

    Args:
        model: a functional Keras model.
        input_shape: `(H, W, C)`.
        quantization: `none` or `int8` (see `convert_tflite`).
        calibration: images for int8 calibration.
        runs: timed invocations per prefix.
        layer_names: the layers to cut after (default: every layer but the input).

    Returns:
        One dict per prefix: layer, ops, xnnpack_us, builtin_us, delta_us, delta_builtin_us.
    """
    names = list(layer_names or [layer.name for layer in model.layers[1:]])
    image = calibration[:1] if calibration is not None else np.zeros((1, *input_shape), np.float32)
    rows, previous = [], (0.0, 0.0)
    for name in names:
        prefix = tf.keras.Model(model.inputs, model.get_layer(name).output)
        content = convert_tflite(
            prefix, input_shape, quantization, calibration=calibration, progress=False
        )
        runner = TFLiteRunner(content)
        xnnpack = runner.latency_us(image[0], runs=runs)
        builtin = runner.latency_builtin_us(image[0], runs=runs)
        rows.append(
            {
                "layer": name,
                "ops": runner.op_names(),
                "xnnpack_us": xnnpack,
                "builtin_us": builtin,
                "delta_us": xnnpack - previous[0],
                "delta_builtin_us": builtin - previous[1],
            }
        )
        previous = (xnnpack, builtin)
    return rows
