"""Pieces shared by the convolution layers (`Conv*` and `ConvTranspose*`): the kernel/bias
options, their weights, the bias + activation epilogue and their `get_config` entries."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def set_kernel_and_bias_options(
    layer: tf.keras.layers.Layer,
    *,
    use_bias: bool,
    activation,
    kernel_initializer,
    bias_initializer,
    kernel_regularizer,
    bias_regularizer,
) -> None:
    """Stores the constructor options of the kernel, bias and activation on `layer`."""
    layer.use_bias = bool(use_bias)
    layer.activation = tf.keras.activations.get(activation)
    layer.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
    layer.bias_initializer = tf.keras.initializers.get(bias_initializer)
    layer.kernel_regularizer = tf.keras.regularizers.get(kernel_regularizer)
    layer.bias_regularizer = tf.keras.regularizers.get(bias_regularizer)


def add_kernel_and_bias(layer: tf.keras.layers.Layer, kernel_shape: Sequence[int]) -> None:
    """Creates `layer.kernel` of `kernel_shape` and `layer.bias` of `(layer.filters,)` (None
    without `use_bias`), in Keras's order and with Keras's names."""
    layer.kernel = layer.add_weight(
        name="kernel",
        shape=tuple(kernel_shape),
        initializer=layer.kernel_initializer,
        regularizer=layer.kernel_regularizer,
        trainable=True,
    )
    layer.bias = None
    if layer.use_bias:
        layer.bias = layer.add_weight(
            name="bias",
            shape=(layer.filters,),
            initializer=layer.bias_initializer,
            regularizer=layer.bias_regularizer,
            trainable=True,
        )


def add_bias_and_activate(layer: tf.keras.layers.Layer, outputs: tf.Tensor) -> tf.Tensor:
    """`activation(outputs + bias)`, each step only when the layer has it."""
    if layer.use_bias:
        outputs = tf.nn.bias_add(outputs, tf.cast(layer.bias, outputs.dtype))
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs


def kernel_and_bias_config(layer: tf.keras.layers.Layer) -> dict:
    """The `get_config` entries of the options `set_kernel_and_bias_options` stored."""
    return {
        "use_bias": layer.use_bias,
        "activation": tf.keras.activations.serialize(layer.activation),
        "kernel_initializer": tf.keras.initializers.serialize(layer.kernel_initializer),
        "bias_initializer": tf.keras.initializers.serialize(layer.bias_initializer),
        "kernel_regularizer": tf.keras.regularizers.serialize(layer.kernel_regularizer),
        "bias_regularizer": tf.keras.regularizers.serialize(layer.bias_regularizer),
    }
