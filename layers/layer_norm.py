"""Layer normalization written out: per-example moments over the normalized axes."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from layers._norm_utils import (
    add_scale_and_offset,
    broadcast_shape,
    compute_float_dtype,
    normalize_axis,
    scale_and_offset_config,
    set_scale_and_offset_options,
)


@tf.keras.utils.register_keras_serializable(package="convzoo")
class LayerNorm(tf.keras.layers.Layer):
    """Layer normalization (Ba et al., 2016), computed from scratch.

    In the lecture's (N, C, H, W) cube, layer norm normalizes each example `n` on its own over
    the whole slab `x[n, :, :, :]`: channels and positions together, nothing shared across the
    batch, so it behaves the same in training and inference and for any batch size. Here that
    is `axis=(1, 2, 3)` (or `(-3, -2, -1)`) for channels-last images; the default `axis=-1`
    normalizes over the features of each position only (the Transformer usage, Keras's
    default).

        mu  = mean(x)               over `axis`, per example (and per other position)
        var = mean((x - mu)^2)      the biased variance
        y   = gamma * (x - mu) / sqrt(var + epsilon) + beta

    `gamma` and `beta` have the shape of the normalized axes. Computed as
    `inv = gamma * rsqrt(var + epsilon)`, `y = x * inv + (beta - mu * inv)`, as Keras does,
    so it matches `keras.layers.LayerNormalization` to the last bit in Keras 3.
    float16/bfloat16 inputs are normalized in float32 and cast back to the compute dtype.

    Args:
        axis: an int or a sequence of ints: the axes to normalize over. Default -1.
        epsilon: added to the variance before the square root, > 0. Default 1e-3 (Keras).
        center: add the learned offset `beta`.
        scale: multiply by the learned `gamma`.
        beta_initializer, gamma_initializer: initializers of `beta` and `gamma`.
        beta_regularizer, gamma_regularizer: optional regularizers.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape: any rank >= 2, known sizes on `axis`. Output shape: the input shape.

    Example:

    >>> LayerNorm(axis=(1, 2, 3))(tf.random.normal((2, 4, 4, 8))).shape
    TensorShape([2, 4, 4, 8])
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not axes or any(isinstance(a, bool) or not isinstance(a, int) for a in axes):
            raise ValueError(
                f"`axis` must be an integer or a non-empty list of integers, got {axis!r}."
            )
        if not float(epsilon) > 0.0:
            raise ValueError(f"`epsilon` must be a positive float, got {epsilon!r}.")
        self.axis = axis if isinstance(axis, int) else list(axis)
        self.epsilon = float(epsilon)
        set_scale_and_offset_options(
            self,
            center=center,
            scale=scale,
            beta_initializer=beta_initializer,
            gamma_initializer=gamma_initializer,
            beta_regularizer=beta_regularizer,
            gamma_regularizer=gamma_regularizer,
        )
        self.supports_masking = True

    def build(self, input_shape):
        input_shape = tuple(tf.TensorShape(input_shape).as_list())
        rank = len(input_shape)
        if rank < 2:
            raise ValueError(
                f"Layer '{self.name}' expects an input of rank >= 2 (batch, ..., features), "
                f"got shape {input_shape} ({rank}D)."
            )
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        self._axes = sorted({normalize_axis(a, rank, self.name) for a in axes})
        if len(self._axes) != len(axes):
            raise ValueError(f"`axis` must not repeat an axis, got {self.axis!r}.")
        if 0 in self._axes:
            raise ValueError(
                f"Layer '{self.name}' normalizes each example on its own: `axis` must not "
                f"include the batch axis 0, got {self.axis!r}."
            )
        shape = tuple(input_shape[a] for a in self._axes)
        if None in shape:
            raise ValueError(
                f"Layer '{self.name}' needs known sizes on axis {self.axis!r}, "
                f"got input shape {input_shape}."
            )
        self._reshape_params = self._axes != [rank - 1]
        self._param_shape = broadcast_shape(rank, self._axes, shape)
        add_scale_and_offset(self, shape)
        self.built = True

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        x = tf.cast(inputs, compute_float_dtype(inputs.dtype))
        mean = tf.reduce_mean(x, self._axes, keepdims=True)
        variance = tf.reduce_mean(
            tf.math.squared_difference(x, tf.stop_gradient(mean)), self._axes, keepdims=True
        )
        inv = tf.math.rsqrt(variance + self.epsilon)
        if self.scale:
            inv = inv * self._param(self.gamma, x.dtype)
        shift = -mean * inv
        if self.center:
            shift = shift + self._param(self.beta, x.dtype)
        return tf.cast(x * inv + shift, self.compute_dtype)

    def _param(self, weight: tf.Variable, dtype: tf.DType) -> tf.Tensor:
        value = tf.cast(weight, dtype)
        return tf.reshape(value, self._param_shape) if self._reshape_params else value

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(scale_and_offset_config(self))
        config.update(
            {
                "axis": self.axis,
                "epsilon": self.epsilon,
            }
        )
        return config
