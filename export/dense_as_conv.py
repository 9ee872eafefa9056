"""Deployment rewrite: every Dense layer as a 1x1 convolution, for microcontroller files.

TFLite Micro's int8 FULLY_CONNECTED requantizes its accumulators with two roundings
(`SaturatingRoundingDoublingHighMul`, then `RoundingDivideByPOT`), LiteRT's with one, so the same
file gives int8 outputs one step apart in the two runtimes. Their CONV_2D kernels agree to the
bit. The same product computed as a convolution over a 1x1 map,

    y = act(reshape(conv2d(reshape(x, (1, 1, C)), K[None, None]) + b, (F,)))

with `K` the Dense kernel `(C, F)`, makes the file run identically in both. Float32 outputs are
the Dense layer's up to summation order. The TFLM bundle (`export.tflm_export`) uses it.

Example:

>>> deployed = dense_as_conv(model)
>>> np.allclose(deployed(x), model(x), atol=1e-5)
True
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="convzoo")
class DenseAsConv2D(tf.keras.layers.Layer):
    """`Dense(units, activation)` computed as a 1x1 convolution over a 1x1 map.

    Args:
        kernel: the Dense kernel `(C, F)`.
        bias: `(F,)`.
        activation: the Dense layer's activation (a name or a callable Keras knows).

    Input shape: `(B, C)`. Output shape: `(B, F)`.
    """

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.dense_kernel = np.asarray(kernel, np.float32)
        self.dense_bias = np.asarray(bias, np.float32)
        self.activation = tf.keras.activations.get(activation)

    def build(self, input_shape):
        channels, units = self.dense_kernel.shape
        self.kernel = self.add_weight(
            name="kernel",
            shape=(1, 1, channels, units),
            initializer=tf.keras.initializers.Constant(self.dense_kernel[None, None]),
            trainable=False,
        )
        self.bias = self.add_weight(
            name="bias",
            shape=(units,),
            initializer=tf.keras.initializers.Constant(self.dense_bias),
            trainable=False,
        )
        super().build(input_shape)

    def call(self, inputs):
        channels, units = self.dense_kernel.shape
        x = tf.reshape(inputs, [-1, 1, 1, channels])
        y = tf.nn.conv2d(x, self.kernel, strides=1, padding="VALID") + self.bias
        return self.activation(tf.reshape(y, [-1, units]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dense_kernel.shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel=self.dense_kernel.tolist(),
            bias=self.dense_bias.tolist(),
            activation=tf.keras.activations.serialize(self.activation),
        )
        return config


def dense_as_conv(model: tf.keras.Model) -> tf.keras.Model:
    """A copy of functional `model` whose 2D-input Dense layers are `DenseAsConv2D` layers.

    Returns:
        The rewritten model (other layers copied with their weights), or `model` itself when
        it has no Dense layer on a flat input.

    Raises:
        ValueError: `model` is not a functional Keras model.
    """
    if not isinstance(model, tf.keras.Model) or not hasattr(model, "inputs"):
        raise ValueError("dense_as_conv needs a functional Keras model")
    dense = {
        layer.name
        for layer in model.layers
        if isinstance(layer, tf.keras.layers.Dense) and len(layer.input.shape) == 2
    }
    if not dense:
        return model

    def clone(layer):
        if layer.name in dense:
            kernel, bias = _kernel_and_bias(layer)
            return DenseAsConv2D(kernel, bias, layer.activation, name=f"{layer.name}_conv")
        return layer.__class__.from_config(layer.get_config())

    rewritten = tf.keras.models.clone_model(model, clone_function=clone)
    for layer in rewritten.layers:
        if layer.name in {f"{name}_conv" for name in dense}:
            continue
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return rewritten


def _kernel_and_bias(layer: tf.keras.layers.Dense) -> tuple[np.ndarray, np.ndarray]:
    kernel = np.asarray(layer.kernel)
    bias = np.asarray(layer.bias) if layer.use_bias else np.zeros(kernel.shape[1], np.float32)
    return kernel, bias
