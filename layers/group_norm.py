"""Group normalization written out: per-example moments over groups of channels."""

from __future__ import annotations

import tensorflow as tf

from layers._norm_utils import (
    add_scale_and_offset,
    compute_float_dtype,
    normalize_axis,
    scale_and_offset_config,
    set_scale_and_offset_options,
)


@tf.keras.utils.register_keras_serializable(package="convzoo")
class GroupNorm(tf.keras.layers.Layer):
    """Group normalization (Wu & He, 2018), computed from scratch.

    In the lecture's (N, C, H, W) cube, group norm cuts the channels of each example into
    `groups` groups of `C / groups` channels and normalizes each block
    `x[n, group g, :, :]` (its channels and every position) on its own. `groups=1` is layer
    norm over (C, H, W); `groups=C` is instance norm (each channel of each example over H, W).
    No statistic is shared across the batch: training and inference are the same.

        x viewed as (batch, ..., groups, C / groups)
        mu  = mean(x)             over every axis but batch and group
        var = mean((x - mu)^2)    the biased variance
        y   = gamma * (x - mu) / sqrt(var + epsilon) + beta        gamma, beta per channel

    Computed as `inv = gamma * rsqrt(var + epsilon)`, `y = x * inv + (beta - mu * inv)`, as
    Keras does, so it matches `keras.layers.GroupNormalization` to the last bit in Keras 3.
    float16/bfloat16 inputs are normalized in float32 and cast back to the compute dtype.

    Args:
        groups: number of channel groups, a positive divisor of the channels. Default 32.
        axis: the channel axis. Default -1 (channels-last).
        epsilon: added to the variance before the square root, > 0. Default 1e-3 (Keras).
        center: add the learned per-channel offset `beta`.
        scale: multiply by the learned per-channel `gamma`.
        beta_initializer, gamma_initializer: initializers of `beta` and `gamma`.
        beta_regularizer, gamma_regularizer: optional regularizers.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape: rank >= 2, e.g. `(batch, height, width, channels)`, channels divisible by
    `groups`. Output shape: the input shape.

    Example:

    >>> GroupNorm(groups=4)(tf.random.normal((2, 5, 5, 8))).shape
    TensorShape([2, 5, 5, 8])
    """

    _min_rank = 2
    _layout = "(batch, ..., channels)"

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
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
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(
                f"`groups` must be a positive integer dividing the channels, got {groups!r}."
            )
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"`axis` must be an integer (the channel axis), got {axis!r}.")
        if not float(epsilon) > 0.0:
            raise ValueError(f"`epsilon` must be a positive float, got {epsilon!r}.")
        self.groups = groups
        self.axis = axis
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

    def _groups_for(self, channels: int) -> int:
        return self.groups

    def build(self, input_shape):
        input_shape = tuple(tf.TensorShape(input_shape).as_list())
        rank = len(input_shape)
        if rank < self._min_rank:
            raise ValueError(
                f"Layer '{self.name}' expects an input of rank >= {self._min_rank} "
                f"{self._layout}, got shape {input_shape} ({rank}D)."
            )
        self._channel_axis = normalize_axis(self.axis, rank, self.name)
        if self._channel_axis == 0:
            raise ValueError(f"`axis` must be a channel axis, not the batch axis, got {self.axis}.")
        channels = input_shape[self._channel_axis]
        if channels is None:
            raise ValueError(
                f"Layer '{self.name}' needs a known size on axis {self.axis} (the channels), "
                f"got input shape {input_shape}."
            )
        groups = self._groups_for(channels)
        if channels % groups:
            raise ValueError(
                f"Layer '{self.name}': the {channels} channels cannot be split into "
                f"groups={groups} equal groups; `groups` must divide the number of channels."
            )
        self._num_groups = groups
        a = self._channel_axis
        # The grouped view inserts the group axis at `a`: (..., groups, channels // groups, ...).
        self._group_axes = [i for i in range(1, rank + 1) if i != a]
        self._param_shape = [1] * (rank + 1)
        self._param_shape[a : a + 2] = [groups, channels // groups]
        add_scale_and_offset(self, (channels,))
        self.input_spec = tf.keras.layers.InputSpec(ndim=rank, axes={a: channels})
        self.built = True

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        x = tf.cast(inputs, compute_float_dtype(inputs.dtype))
        shape = tf.shape(x)
        a = self._channel_axis
        grouped_shape = tf.concat([shape[:a], self._param_shape[a : a + 2], shape[a + 1 :]], axis=0)
        grouped = tf.reshape(x, grouped_shape)
        mean = tf.reduce_mean(grouped, self._group_axes, keepdims=True)
        variance = tf.reduce_mean(
            tf.math.squared_difference(grouped, tf.stop_gradient(mean)),
            self._group_axes,
            keepdims=True,
        )
        inv = tf.math.rsqrt(variance + self.epsilon)
        if self.scale:
            inv = inv * tf.reshape(tf.cast(self.gamma, x.dtype), self._param_shape)
        shift = -mean * inv
        if self.center:
            shift = shift + tf.reshape(tf.cast(self.beta, x.dtype), self._param_shape)
        outputs = tf.reshape(grouped * inv + shift, shape)
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(scale_and_offset_config(self))
        config.update(
            {
                "groups": self.groups,
                "axis": self.axis,
                "epsilon": self.epsilon,
            }
        )
        return config
