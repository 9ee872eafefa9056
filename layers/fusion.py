"""Folding an inference-mode BatchNorm and a ReLU into the convolution or dense layer before them.

In inference a BatchNorm is an affine map per channel,

    scale = gamma / sqrt(moving_variance + epsilon)
    shift = beta - moving_mean * scale
    BN(y) = y * scale + shift

so after a layer `y = x (*) w + b` with a linear activation it folds into that layer:

    w' = w * scale   (along the kernel's output-channel axis)
    b' = b * scale + shift

and a plain ReLU after the pair becomes the layer's activation. One module for every place
that does this: the deployment rewrite (`export.rewrite`), the QAT graph
(`export._tfmot_worker`, which runs under tf_keras), `RepConv2D.fused_kernel_and_bias` and
`zoo.reparam`. It uses only what Keras 3 and tf_keras share (public layer attributes,
`layer.input`/`layer.output` of a functional model) and never imports tfmot.

Example:

>>> fused = fold_following(model, model.get_layer("conv1"))
>>> fused.batch_norm.name, fused.relu.name, fused.kernel.shape
('bn1', 'relu1', (5, 5, 1, 6))
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from layers.batch_norm import BatchNorm

__all__ = [
    "Fused",
    "batch_norm_scale_shift",
    "consumers",
    "fold_following",
    "fold_scale_shift",
    "is_linear",
    "is_plain_relu",
    "kernel_and_bias",
    "producers",
    "scale_shift",
    "single_consumer",
]


def scale_shift(mean, variance, epsilon: float, gamma=None, beta=None):
    """The per-channel `(scale, shift)` of a BatchNorm in inference: `y * scale + shift`.

    Args:
        mean, variance: the moving statistics, NumPy arrays or tensors (the result has their
            type; tensors keep working inside a `tf.function`).
        epsilon: the BatchNorm's epsilon.
        gamma, beta: the scale and offset, or None for a BatchNorm without them.
    """
    scale = (variance + epsilon) ** -0.5
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    return scale, shift


def _normalizes_last_axis(layer: tf.keras.layers.Layer) -> bool:
    axis = layer.axis
    axes = tuple(axis) if isinstance(axis, list | tuple) else (axis,)
    if axes == (-1,):
        return True
    try:
        rank = len(layer.input.shape)
    except (AttributeError, ValueError):  # not called in a functional model
        return False
    return axes == (rank - 1,)


def batch_norm_scale_shift(layer: tf.keras.layers.Layer) -> tuple[np.ndarray, np.ndarray] | None:
    """`scale_shift` (float64 NumPy) of `layer` if it is a BatchNorm over the last axis: ours
    (`layers.BatchNorm`) or exactly Keras's `BatchNormalization`; else None."""
    if not (
        isinstance(layer, BatchNorm) or type(layer) is tf.keras.layers.BatchNormalization
    ) or not _normalizes_last_axis(layer):
        return None

    def array(value):
        return None if value is None else np.asarray(value, np.float64)

    return scale_shift(
        array(layer.moving_mean),
        array(layer.moving_variance),
        float(layer.epsilon),
        gamma=array(layer.gamma),
        beta=array(layer.beta),
    )


def fold_scale_shift(
    kernel: np.ndarray, bias: np.ndarray, scale: np.ndarray, shift: np.ndarray, out_axis: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """`(kernel * scale, bias * scale + shift)`, `scale` along the kernel's `out_axis`."""
    shape = [1] * kernel.ndim
    shape[out_axis] = -1
    return kernel * np.reshape(scale, shape), bias * scale + shift


def kernel_and_bias(layer: tf.keras.layers.Layer) -> tuple[np.ndarray, np.ndarray, int]:
    """`(kernel, bias, out_axis)` of a convolution or dense layer as float64 NumPy: the bias is
    zeros when the layer has none; `out_axis` is the kernel's output-channel axis (-2 for
    transposed convolutions, whose kernels end with the input channels, else -1)."""
    kernel = np.asarray(layer.kernel, np.float64)
    out_axis = -2 if "Transpose" in type(layer).__name__ else -1
    bias = getattr(layer, "bias", None)
    if bias is None:
        bias = np.zeros(kernel.shape[out_axis], np.float64)
    return kernel, np.asarray(bias, np.float64), out_axis


def is_linear(layer: tf.keras.layers.Layer) -> bool:
    """Whether `layer`'s own activation is the identity (None or "linear")."""
    return getattr(getattr(layer, "activation", None), "__name__", "linear") == "linear"


def is_plain_relu(layer: tf.keras.layers.Layer) -> bool:
    """An `Activation("relu")` or a `ReLU()` without max value, slope or threshold (exactly
    those classes, not subclasses)."""
    if type(layer) is tf.keras.layers.ReLU:
        config = layer.get_config()
        return (
            config.get("max_value") is None
            and not float(config.get("negative_slope") or 0.0)
            and not float(config.get("threshold") or 0.0)
        )
    return (
        type(layer) is tf.keras.layers.Activation
        and getattr(layer.activation, "__name__", "") == "relu"
    )


def consumers(model: tf.keras.Model, layer: tf.keras.layers.Layer) -> list:
    """The layers of functional `model` that read `layer`'s output."""
    return [
        other
        for other in model.layers
        if other is not layer
        and any(tensor is layer.output for tensor in tf.nest.flatten(other.input))
    ]


def producers(model: tf.keras.Model, layer: tf.keras.layers.Layer) -> list:
    """The layers of functional `model` whose outputs `layer` reads, in its input order."""
    found = []
    for tensor in tf.nest.flatten(layer.input):
        found += [other for other in model.layers if other is not layer and other.output is tensor]
    return found


def single_consumer(model: tf.keras.Model, layer: tf.keras.layers.Layer):
    """The only layer reading `layer`'s output inside `model`, or None (several readers, none,
    or the output is also a model output)."""
    readers = consumers(model, layer)
    if len(readers) != 1 or any(out is layer.output for out in tf.nest.flatten(model.outputs)):
        return None
    return readers[0]


@dataclasses.dataclass
class Fused:
    """What `fold_following` folded: float32 `kernel` and `bias`, `out_axis` of the kernel,
    the folded BatchNorm layer (or None) and the ReLU layer to fuse as the activation (or
    None)."""

    kernel: np.ndarray
    bias: np.ndarray
    out_axis: int
    batch_norm: tf.keras.layers.Layer | None = None
    relu: tf.keras.layers.Layer | None = None

    @property
    def absorbed(self) -> list:
        """The folded layers, in graph order (the BatchNorm, then the ReLU)."""
        return [layer for layer in (self.batch_norm, self.relu) if layer is not None]


def fold_following(model: tf.keras.Model, layer: tf.keras.layers.Layer) -> Fused:
    """Folds into convolution or dense `layer` of functional `model` what directly follows it.

    If `layer`'s activation is linear and its only reader is a BatchNorm over the last axis
    (`batch_norm_scale_shift`), that BatchNorm is folded into the kernel and bias; if then the
    only reader (of the BatchNorm, or of `layer` when there is none) is a plain ReLU
    (`is_plain_relu`), it is returned to become the activation. A layer whose output is also
    a model output, or read by several layers, folds nothing.

    Args:
        model: the functional model holding `layer`.
        layer: a layer with `kernel` (and `bias` or none), as `kernel_and_bias` reads them.

    Returns:
        A `Fused`: the folded float32 kernel and bias, and the absorbed layers.
    """
    kernel, bias, out_axis = kernel_and_bias(layer)
    batch_norm = relu = None
    if is_linear(layer):
        follower = single_consumer(model, layer)
        folded = batch_norm_scale_shift(follower) if follower is not None else None
        if folded is not None:
            kernel, bias = fold_scale_shift(kernel, bias, *folded, out_axis=out_axis)
            batch_norm, follower = follower, single_consumer(model, follower)
        if follower is not None and is_plain_relu(follower):
            relu = follower
    return Fused(kernel.astype(np.float32), bias.astype(np.float32), out_axis, batch_norm, relu)
