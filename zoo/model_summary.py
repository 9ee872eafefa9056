"""`summary(model)`: the lecture's per-layer table (shape, parameters, receptive field, FLOPs).

For every layer of a (chain-shaped) functional model: output shape, parameters, the
receptive field of one output unit in input pixels with its jump (the distance in input
pixels between neighbouring units), and the multiply-adds of one example. The receptive
field follows the recurrence (Dumoulin & Visin, 2016; Araujo et al., 2019)

    r_out = r_in + (d (k - 1)) j_in,        j_out = j_in s

for convolutions and pools; a transposed convolution reads ceil(k / s) input units per
output unit, so `r_out = r_in + (ceil(k / s) - 1) j_in` and `j_out = j_in / s`; a resize by
a factor f reads 2 neighbours (bilinear) and has `j_out = j_in / f`. After a `Flatten` every
unit sees the whole input ("all").

FLOPs are counted as the lecture does, multiply-adds (MACs) of convolutions, transposed
convolutions and dense layers, without biases: `H_out W_out C_out k_h k_w C_in / groups`
for a convolution (the kernel's size times the output positions), `H_in W_in` times the
kernel's size for a transposed convolution (every input pixel is scattered through the whole
kernel), `n_in n_out` for a dense layer. Normalizations, pooling and activations are
elementwise and left out (0 in the table).

Example:

>>> from zoo import create_model, summary
>>> text = summary(create_model("lenet5"), print_fn=None)
>>> text.splitlines()[-2]
'Total params: 61,706 (trainable: 61,706, non-trainable: 0)'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

__all__ = ["LayerStats", "layer_stats", "summary"]


@dataclass(frozen=True)
class LayerStats:
    """One row of the summary.

    Attributes:
        name: the layer name.
        kind: the layer class name.
        output_shape: the output shape, batch dimension None.
        params: number of weights (trainable and not).
        trainable_params: number of trainable weights.
        receptive_field: receptive field size in input pixels (height axis); None = all.
        jump: distance in input pixels between neighbouring output units (height axis).
        macs: multiply-adds for one example.
    """

    name: str
    kind: str
    output_shape: tuple
    params: int
    trainable_params: int
    receptive_field: float | None
    jump: float | None
    macs: int


def _first(value) -> int:
    return int(value[0]) if isinstance(value, list | tuple) else int(value)


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _is_transpose(layer: tf.keras.layers.Layer) -> bool:
    return "transpose" in type(layer).__name__.lower()


def _window(layer: tf.keras.layers.Layer) -> tuple[int, int, int] | None:
    """(kernel, stride, dilation) along the height axis of a sliding-window layer, or None."""
    kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    if kernel is None:
        return None
    strides = getattr(layer, "strides", None) or kernel
    return _first(kernel), _first(strides), _first(getattr(layer, "dilation", 1) or 1)


def _macs(layer: tf.keras.layers.Layer, input_shape: tuple, output_shape: tuple) -> int:
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return 0
    kernel_size = int(np.prod(kernel.shape))
    if isinstance(layer, tf.keras.layers.Dense):
        return kernel_size * int(np.prod(output_shape[1:-1] or (1,)))
    if _is_transpose(layer):
        return kernel_size * int(np.prod(input_shape[1:-1]))
    # A convolution: (*k, C_in / groups, C_out) taps for every output position.
    return kernel_size * int(np.prod(output_shape[1:-1]))


def layer_stats(model: tf.keras.Model) -> list[LayerStats]:
    """The summary's rows: one per layer of `model`, in order, input layer included."""
    rows = []
    size, jump = 1.0, 1.0
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            output_shape = _shape(layer.output)
            rows.append(LayerStats(layer.name, "InputLayer", output_shape, 0, 0, 1, 1, 0))
            continue
        input_shape, output_shape = _shape(layer.input), _shape(layer.output)
        window = _window(layer)
        if size is not None and isinstance(layer, tf.keras.layers.Flatten):
            size, jump = None, None
        elif size is not None and window is not None:
            kernel, stride, dilation = window
            if _is_transpose(layer):
                size += (math.ceil(kernel / stride) - 1) * jump
                jump /= stride
            else:
                size += dilation * (kernel - 1) * jump
                jump *= stride
        elif size is not None and len(input_shape) == 4 and input_shape[1] != output_shape[1]:
            # A resize: two neighbours per output unit, jump scaled by the size ratio.
            size += jump
            jump *= input_shape[1] / output_shape[1]
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        rows.append(
            LayerStats(
                name=layer.name,
                kind=type(layer).__name__,
                output_shape=output_shape,
                params=int(layer.count_params()),
                trainable_params=trainable,
                receptive_field=size,
                jump=jump,
                macs=_macs(layer, input_shape, output_shape),
            )
        )
    return rows


def _number(value: float | None) -> str:
    if value is None:
        return "all"
    return f"{value:g}" if value != int(value) else f"{int(value)}"


def summary(
    model: tf.keras.Model,
    print_fn: Callable[[str], None] | None = print,
    plot_to: str | None = None,
) -> str:
    """Formats (and prints) the per-layer table with totals at the bottom.

    Args:
        model: a functional model, e.g. from `create_model`.
        print_fn: called with the whole table; None to only return it.
        plot_to: if given, also write a PNG diagram there (see `plot_model`).

    Returns:
        The table as text.
    """
    rows = layer_stats(model)
    header = ("Layer (type)", "Output shape", "Params", "RF (jump)", "MACs")
    table = [
        (
            f"{r.name} ({r.kind})",
            str(r.output_shape),
            f"{r.params:,}",
            "all"
            if r.receptive_field is None
            else f"{_number(r.receptive_field)} ({_number(r.jump)})",
            f"{r.macs:,}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]

    def fmt(line):
        left = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        right = [cell.rjust(width) for cell, width in zip(line[2:], widths[2:], strict=True)]
        return "  ".join(left + right)

    rule = "-" * len(fmt(header))
    total = sum(r.params for r in rows)
    trainable = sum(r.trainable_params for r in rows)
    lines = [f'Model: "{model.name}"', rule, fmt(header), rule.replace("-", "=")]
    lines += [fmt(line) for line in table]
    lines += [
        rule,
        f"Total params: {total:,} (trainable: {trainable:,}, non-trainable: {total - trainable:,})",
        f"Total MACs per example: {sum(r.macs for r in rows):,}",
    ]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    if plot_to is not None:
        from zoo.model_plot import plot_model

        plot_model(model, plot_to)
    return text
