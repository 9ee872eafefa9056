"""Pieces shared by the normalization layers: weights kept in float32 under mixed precision,
the reduction axes, and the broadcast of per-channel parameters.

The two Keras worlds spell "do not auto-cast this variable to the compute dtype" differently
(Keras 3: `add_weight(autocast=False)`, tf_keras: `add_weight(experimental_autocast=False)`);
both Keras batch/layer/group normalizations keep their parameters and statistics in float32
that way, and so do ours, so a mixed_bfloat16 model matches the Keras layers exactly.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import tensorflow as tf

_KERAS3 = "autocast" in inspect.signature(tf.keras.layers.Layer.add_weight).parameters


def float32_weight_kwargs() -> dict:
    """Keyword arguments for `add_weight` that keep the variable out of auto-casting."""
    return {"autocast": False} if _KERAS3 else {"experimental_autocast": False}


def mean_aggregation_kwargs() -> dict:
    """Keyword arguments for `add_weight` making a distributed variable average replica updates."""
    return {"aggregation": "mean" if _KERAS3 else tf.VariableAggregation.MEAN}


def normalize_axis(axis: int, rank: int, layer_name: str) -> int:
    """Returns `axis` as a non-negative index into a `rank`-D shape, or raises `ValueError`."""
    if isinstance(axis, bool) or not isinstance(axis, int) or not -rank <= axis < rank:
        raise ValueError(
            f"Layer '{layer_name}' got axis={axis!r}, which is not a valid axis for a "
            f"{rank}D input: accepted are the integers in [{-rank}, {rank - 1}]."
        )
    return axis % rank


def compute_float_dtype(dtype: tf.DType) -> tf.DType:
    """float16/bfloat16 are computed in float32 (statistics overflow or lose precision in half
    precision); float32 and float64 stay as they are."""
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype


def broadcast_shape(rank: int, axes: Sequence[int], sizes: Sequence[int]) -> list[int]:
    """The shape that broadcasts parameters of `sizes` along `axes` against a `rank`-D tensor."""
    shape = [1] * rank
    for axis, size in zip(axes, sizes, strict=True):
        shape[axis] = size
    return shape


def set_scale_and_offset_options(
    layer: tf.keras.layers.Layer,
    *,
    center: bool,
    scale: bool,
    beta_initializer,
    gamma_initializer,
    beta_regularizer,
    gamma_regularizer,
) -> None:
    """Stores the constructor options of `gamma` and `beta` on `layer`, resolved to objects."""
    layer.center = bool(center)
    layer.scale = bool(scale)
    layer.beta_initializer = tf.keras.initializers.get(beta_initializer)
    layer.gamma_initializer = tf.keras.initializers.get(gamma_initializer)
    layer.beta_regularizer = tf.keras.regularizers.get(beta_regularizer)
    layer.gamma_regularizer = tf.keras.regularizers.get(gamma_regularizer)


def scale_and_offset_config(layer: tf.keras.layers.Layer) -> dict:
    """The `get_config` entries of the options `set_scale_and_offset_options` stored."""
    return {
        "center": layer.center,
        "scale": layer.scale,
        "beta_initializer": tf.keras.initializers.serialize(layer.beta_initializer),
        "gamma_initializer": tf.keras.initializers.serialize(layer.gamma_initializer),
        "beta_regularizer": tf.keras.regularizers.serialize(layer.beta_regularizer),
        "gamma_regularizer": tf.keras.regularizers.serialize(layer.gamma_regularizer),
    }


def add_scale_and_offset(layer: tf.keras.layers.Layer, shape: Sequence[int]) -> None:
    """Creates `layer.gamma` (when `layer.scale`) and `layer.beta` (when `layer.center`).

    The two weights of every normalization layer, in Keras's order and with Keras's names (so
    `get_weights`/`set_weights` transfer to and from the Keras layers), float32 and never
    auto-cast; the one absent is None.
    """
    layer.gamma = layer.beta = None
    if layer.scale:
        layer.gamma = layer.add_weight(
            name="gamma",
            shape=tuple(shape),
            initializer=layer.gamma_initializer,
            regularizer=layer.gamma_regularizer,
            trainable=True,
            **float32_weight_kwargs(),
        )
    if layer.center:
        layer.beta = layer.add_weight(
            name="beta",
            shape=tuple(shape),
            initializer=layer.beta_initializer,
            regularizer=layer.beta_regularizer,
            trainable=True,
            **float32_weight_kwargs(),
        )
