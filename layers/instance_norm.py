"""Instance normalization: group normalization with one group per channel."""

from __future__ import annotations

import tensorflow as tf

from layers.group_norm import GroupNorm


@tf.keras.utils.register_keras_serializable(package="convzoo")
class InstanceNorm(GroupNorm):
    """Instance normalization (Ulyanov et al., 2016), computed from scratch.

    In the lecture's (N, C, H, W) cube, instance norm normalizes each channel of each example
    on its own over its spatial positions: the statistics of `x[n, c, :, :]` (here
    channels-last `x[n, :, :, c]`). It is `GroupNorm(groups=channels)`, and matches
    `keras.layers.GroupNormalization(groups=channels)`:

        mu  = mean(x[n, ..., c])              over the spatial axes
        var = mean((x[n, ..., c] - mu)^2)     the biased variance
        y   = gamma_c * (x - mu) / sqrt(var + epsilon) + beta_c

    Args:
        epsilon: added to the variance before the square root, > 0. Default 1e-3 (Keras).
        center: add the learned per-channel offset `beta`.
        scale: multiply by the learned per-channel `gamma`.
        beta_initializer, gamma_initializer: initializers of `beta` and `gamma`.
        beta_regularizer, gamma_regularizer: optional regularizers.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape: `(batch, spatial..., channels)`, rank >= 3, e.g.
    `(batch, height, width, channels)`. Output shape: the input shape.

    Example:

    >>> InstanceNorm()(tf.random.normal((2, 5, 5, 3))).shape
    TensorShape([2, 5, 5, 3])
    """

    _min_rank = 3
    _layout = "(batch, spatial..., channels): instance norm needs spatial axes"

    def __init__(
        self,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        **kwargs,
    ):
        super().__init__(
            groups=1,
            axis=-1,
            epsilon=epsilon,
            center=center,
            scale=scale,
            beta_initializer=beta_initializer,
            gamma_initializer=gamma_initializer,
            beta_regularizer=beta_regularizer,
            gamma_regularizer=gamma_regularizer,
            **kwargs,
        )
        self.groups = None  # one group per channel, known at build time

    def _groups_for(self, channels: int) -> int:
        return channels

    def get_config(self) -> dict:
        config = super().get_config()
        del config["groups"], config["axis"]
        return config
