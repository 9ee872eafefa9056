"""Does a model fit a microcontroller, and how long would it take there?

The limits are those of the smallest board the TFLM bundle targets, the Arduino Nano 33 BLE
Sense (nRF52840: 1 MB flash, 256 KB RAM); ESP32-S3 and STM32 Cortex-M4/M7 parts have as much
or more. `footprint_lower_bound` gives, from the Keras model alone and before any conversion,
the least flash (one byte per parameter) and arena (the largest int8 input + output of one
layer) the model could need, so a model like AlexNet (61 M parameters) is refused at once.
`check_fits` is applied again to the measured sizes after conversion.

`cortex_m4_estimate` turns the model's multiply-accumulates into milliseconds on a Cortex-M4:
an estimate, not a measurement (see its docstring for the figures and where they come from).

Example:

>>> check_fits("alexnet", *footprint_lower_bound(create_model("alexnet")))
Traceback (most recent call last):
ValueError: tflm: alexnet does not fit a microcontroller: ...
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from export.tflm_runtime import TflmUnsupportedError

FLASH_LIMIT_BYTES = 1024 * 1024
ARENA_LIMIT_BYTES = 256 * 1024
BOARD = "Arduino Nano 33 BLE Sense, nRF52840: 1 MB flash, 256 KB RAM"

# Cortex-M4 estimate: nRF52840 clock, and effective int8 MACs per cycle with CMSIS-NN.
M4_CLOCK_HZ = 64_000_000
M4_PEAK_MACS_PER_CYCLE = 2.0
M4_EFFICIENCY = 0.5


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MB"


def _elements(shape) -> int:
    return int(np.prod([d for d in shape[1:] if d is not None]))


def _shapes(tensors) -> list:
    tensors = tensors if isinstance(tensors, list | tuple) else [tensors]
    return [tuple(t.shape) for t in tensors]


def footprint_lower_bound(model: tf.keras.Model) -> tuple[int, int]:
    """Least (flash, arena) bytes an int8 TFLM build of `model` can need.

    Returns:
        flash: one byte per parameter (int8 weights; biases take 4, metadata more);
        arena: the largest sum of a layer's int8 inputs and output (both must be live while
        the layer runs), ignoring TFLM's own bookkeeping.
    """
    flash = int(model.count_params())
    arena = 0
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        live = sum(_elements(s) for s in _shapes(layer.input))
        live += sum(_elements(s) for s in _shapes(layer.output))
        arena = max(arena, live)
    return flash, arena


def check_fits(name: str, flash_bytes: int, arena_bytes: int, *, measured: bool = False) -> None:
    """Raises if a model needing `flash_bytes` of flash and `arena_bytes` of arena would not
    fit `BOARD`.

    Raises:
        TflmUnsupportedError (a ValueError): one line naming both sizes and the limits.
    """
    if flash_bytes <= FLASH_LIMIT_BYTES and arena_bytes <= ARENA_LIMIT_BYTES:
        return
    at_least = "" if measured else "at least "
    raise TflmUnsupportedError(
        f"tflm: {name} does not fit a microcontroller: it needs {at_least}{_kb(flash_bytes)} "
        f"of flash for the model and {at_least}{_kb(arena_bytes)} of tensor arena; the limits "
        f"are {_kb(FLASH_LIMIT_BYTES)} and {_kb(ARENA_LIMIT_BYTES)} ({BOARD})"
    )


def cmsis_nn_scratch_bytes(content: bytes) -> int:
    """The largest scratch buffer CMSIS-NN's int8 kernels (Cortex-M with the DSP extension)
    would request for this `.tflite` file; TFLM's reference kernels request none.

    Per CMSIS-NN's `*_get_buffer_size` for the DSP path: convolution im2col, 2 x kernel_h x
    kernel_w x C_in int16 values (none for 1x1 kernels, which `arm_convolve_1x1_s8_fast`
    computes in place); depthwise convolution, kernel_h x kernel_w x C int16 values;
    average pooling, C int32 sums. Fully connected and max pooling need none.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    largest = 0
    for op in interpreter._get_ops_details():
        name, inputs = op["op_name"], [int(i) for i in op["inputs"]]
        if name == "CONV_2D":
            _, kh, kw, cin = shapes[inputs[1]]
            if (kh, kw) != (1, 1):
                largest = max(largest, 2 * kh * kw * cin * 2)
        elif name == "DEPTHWISE_CONV_2D":
            _, kh, kw, channels = shapes[inputs[1]]
            largest = max(largest, kh * kw * channels * 2)
        elif name == "AVERAGE_POOL_2D":
            largest = max(largest, shapes[inputs[0]][-1] * 4)
    return largest


@dataclasses.dataclass(frozen=True)
class McuEstimate:
    """Estimated inference time on a Cortex-M4 (see `cortex_m4_estimate`)."""

    macs: int
    clock_hz: int
    macs_per_cycle: float
    milliseconds: float

    def describe(self) -> str:
        return (
            f"~{self.milliseconds:.1f} ms on a Cortex-M4 at {self.clock_hz / 1e6:g} MHz "
            f"(nRF52840, Arduino Nano 33 BLE Sense): {self.macs:,} MACs / "
            f"({self.macs_per_cycle:g} MAC/cycle x {self.clock_hz / 1e6:g} MHz). Estimate, not "
            "a measurement: CMSIS-NN's int8 kernels use the DSP extension's SMLAD, 2 MACs per "
            f"cycle at peak (Arm Cortex-M4 TRM: SMLAD single-cycle); {M4_EFFICIENCY:.0%} of "
            "that is assumed for im2col, requantization and loop overhead; pooling, "
            "activations and normalization are not counted"
        )


def cortex_m4_estimate(model: tf.keras.Model) -> McuEstimate:
    """Inference time of `model` on a 64 MHz Cortex-M4 from its multiply-accumulates.

    MACs come from `zoo.model_summary.layer_stats` (convolutions, transposed convolutions, dense).
    Throughput: 2 MACs/cycle peak (SMLAD, dual 16-bit multiply-accumulate in one cycle on a
    Cortex-M4 with the DSP extension, which CMSIS-NN's int8 convolution and fully connected
    kernels use) x 0.5 assumed efficiency = 1 MAC/cycle.

    Returns:
        An `McuEstimate`.
    """
    from zoo.model_summary import layer_stats

    macs = sum(row.macs for row in layer_stats(model))
    per_cycle = M4_PEAK_MACS_PER_CYCLE * M4_EFFICIENCY
    return McuEstimate(macs, M4_CLOCK_HZ, per_cycle, macs / (per_cycle * M4_CLOCK_HZ) * 1e3)
