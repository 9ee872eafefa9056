"""Batch normalization written out: batch moments, normalization, scale/shift, moving averages."""

from __future__ import annotations

import tensorflow as tf

from layers._norm_utils import (
    add_scale_and_offset,
    broadcast_shape,
    compute_float_dtype,
    float32_weight_kwargs,
    mean_aggregation_kwargs,
    normalize_axis,
    scale_and_offset_config,
    set_scale_and_offset_options,
)


@tf.keras.utils.register_keras_serializable(package="convzoo")
class BatchNorm(tf.keras.layers.Layer):
    """Batch normalization (Ioffe & Szegedy, 2015), computed from scratch.

    In the lecture's (N, C, H, W) cube, batch norm normalizes each channel `c` over the batch and
    every spatial position: the statistics of channel `c` are taken over the slab
    `x[:, c, :, :]` (here channels-last, `x[..., c]`, reduced over every axis but `axis`).

    In training (`training=True` and the layer trainable) with a batch `x`:

        mu    = mean(x)                 over all axes but `axis`
        var   = mean((x - mu)^2)        the biased variance, as Keras and the paper
        y     = gamma * (x - mu) / sqrt(var + epsilon) + beta
        moving_mean     = (1 - a) * moving_mean     + a * mu
        moving_variance = (1 - a) * moving_variance + a * var        with a = `momentum`

    At inference (`training=False` or `None`, or `trainable=False`) the moving statistics take
    the place of `mu` and `var` and nothing is updated, as in Keras 3: a frozen batch norm
    (`layer.trainable = False`, as for fine-tuning) runs in inference mode even in `fit`.

    The moving variance tracks the biased batch variance, as Keras 3 does. (PyTorch, and
    tf_keras's fused 4D/5D kernel, track the unbiased one, `var * m / (m - 1)` for `m` values
    per channel; the difference matters only for tiny batches.)

    `momentum` is the weight of the *new* batch (the lecture's and PyTorch's form, `a = 0.1`).
    Keras's `momentum` is the weight of the *old* average: `BatchNorm(momentum=a)` equals
    `keras.layers.BatchNormalization(momentum=1 - a)`, so `momentum=0.1` here is Keras's `0.9`,
    and Keras's default `0.99` is `momentum=0.01` here.

    The normalization is applied as one scale and one shift per channel,
    `inv = gamma * rsqrt(var + epsilon)`, `y = x * inv + (beta - mu * inv)`, so the graph is a
    multiply-add that TensorFlow's optimizers fuse and that TFLite and ONNX carry as MUL/ADD
    (inference folds into the preceding convolution in both converters).

    Mixed precision: float16/bfloat16 inputs are normalized in float32 (half precision
    statistics overflow) and the output is cast back to the layer's compute dtype; `gamma`,
    `beta` and the moving statistics are float32 variables that are not auto-cast.

    Synchronized: with `synchronized=True`, under a `tf.distribute` strategy with more than one
    replica the batch moments are those of the *global* batch: every replica all-reduces
    (sums) its per-channel sum and element count, then its sum of squared deviations from the
    global mean (two numerically stable passes rather than `E[x^2] - E[x]^2`). Without a
    strategy, or with one replica, it is the ordinary layer.

    Args:
        axis: the channel axis (kept; every other axis is normalized over). Default -1.
        momentum: weight `a` of the new batch in the moving averages, in [0, 1]. Default 0.1.
        epsilon: added to the variance before the square root, > 0. Default 1e-5 (PyTorch).
        center: add the learned offset `beta`.
        scale: multiply by the learned `gamma`.
        synchronized: compute the moments over all replicas of a distribution strategy.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer: initializers of the four per-channel weights.
        beta_regularizer, gamma_regularizer: optional regularizers of `beta` and `gamma`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Weights, in this order and with these names (as Keras, so `get_weights`/`set_weights`
    transfer both ways): `gamma` (if `scale`), `beta` (if `center`), `moving_mean`,
    `moving_variance`, each of shape `(channels,)`.

    Input shape: any rank >= 2 with a known channel dimension, e.g. `(batch, features)`,
    `(batch, length, channels)`, `(batch, height, width, channels)`,
    `(batch, depth, height, width, channels)`.
    Output shape: the input shape.

    Example:

    >>> layer = BatchNorm()
    >>> y = layer(tf.random.normal((8, 4, 4, 3)), training=True)
    >>> y.shape
    TensorShape([8, 4, 4, 3])
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.1,
        epsilon: float = 1e-5,
        center: bool = True,
        scale: bool = True,
        synchronized: bool = False,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"`axis` must be an integer (the channel axis), got {axis!r}.")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(
                f"`momentum` must be in [0, 1] (the weight of the new batch in the moving "
                f"averages, 0.1 by default; Keras's momentum m is 1 - m here), got {momentum!r}."
            )
        if not float(epsilon) > 0.0:
            raise ValueError(f"`epsilon` must be a positive float, got {epsilon!r}.")
        self.axis = axis
        self.momentum = float(momentum)
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
        self.synchronized = bool(synchronized)
        self.moving_mean_initializer = tf.keras.initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = tf.keras.initializers.get(moving_variance_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        input_shape = tuple(tf.TensorShape(input_shape).as_list())
        rank = len(input_shape)
        if rank < 2:
            raise ValueError(
                f"Layer '{self.name}' expects an input of rank >= 2 (batch, ..., channels), "
                f"got shape {input_shape} ({rank}D)."
            )
        self._channel_axis = normalize_axis(self.axis, rank, self.name)
        channels = input_shape[self._channel_axis]
        if channels is None:
            raise ValueError(
                f"Layer '{self.name}' needs a known size on axis {self.axis} (the channels), "
                f"got input shape {input_shape}."
            )
        self._reduction_axes = [i for i in range(rank) if i != self._channel_axis]
        self._param_shape = broadcast_shape(rank, [self._channel_axis], [channels])
        self._channels_last = self._channel_axis == rank - 1
        shape = (channels,)
        fp32 = float32_weight_kwargs()
        add_scale_and_offset(self, shape)
        self.moving_mean = self.add_weight(
            name="moving_mean",
            shape=shape,
            initializer=self.moving_mean_initializer,
            trainable=False,
            **fp32,
            **mean_aggregation_kwargs(),
        )
        self.moving_variance = self.add_weight(
            name="moving_variance",
            shape=shape,
            initializer=self.moving_variance_initializer,
            trainable=False,
            **fp32,
            **mean_aggregation_kwargs(),
        )
        self.input_spec = tf.keras.layers.InputSpec(ndim=rank, axes={self._channel_axis: channels})
        self.built = True

    def call(self, inputs, training=None):
        inputs = tf.convert_to_tensor(inputs)
        x = tf.cast(inputs, compute_float_dtype(inputs.dtype))
        use_batch_stats = training if tf.is_tensor(training) else bool(training)
        if not self.trainable:
            use_batch_stats = False
        if tf.is_tensor(use_batch_stats):
            mean, variance = tf.cond(
                tf.cast(use_batch_stats, tf.bool),
                lambda: self._training_moments(x),
                lambda: self._moving_moments(x.dtype),
            )
        elif use_batch_stats:
            mean, variance = self._training_moments(x)
        else:
            mean, variance = self._moving_moments(x.dtype)
        outputs = self._normalize(x, mean, variance)
        return tf.cast(outputs, self.compute_dtype)

    def _training_moments(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Batch moments, broadcastable against `x`; updates the moving statistics."""
        mean, variance = self._batch_moments(x)
        a = self.momentum
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            batch = tf.cast(tf.reshape(batch, [-1]), moving.dtype)
            moving.assign(moving * (1.0 - a) + batch * a)
        return mean, variance

    def _moving_moments(self, dtype: tf.DType) -> tuple[tf.Tensor, tf.Tensor]:
        mean = tf.cast(self.moving_mean, dtype)
        variance = tf.cast(self.moving_variance, dtype)
        if not self._channels_last:
            mean = tf.reshape(mean, self._param_shape)
            variance = tf.reshape(variance, self._param_shape)
        return mean, variance

    def _batch_moments(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Mean and biased variance over the reduction axes (kept as size-1 dimensions)."""
        axes = self._reduction_axes
        replica = tf.distribute.get_replica_context() if self.synchronized else None
        if replica is not None and replica.num_replicas_in_sync > 1:
            shape = tf.shape(x)
            count = tf.cast(tf.reduce_prod(tf.gather(shape, axes)), x.dtype)
            local_sum = tf.reduce_sum(x, axes, keepdims=True)
            total, count = replica.all_reduce(tf.distribute.ReduceOp.SUM, [local_sum, count])
            mean = total / count
            local_squares = tf.reduce_sum(
                tf.math.squared_difference(x, tf.stop_gradient(mean)), axes, keepdims=True
            )
            variance = replica.all_reduce(tf.distribute.ReduceOp.SUM, local_squares) / count
            return mean, variance
        self._check_batch_size(x)
        mean = tf.reduce_mean(x, axes, keepdims=True)
        # d var / d mean = -2 mean(x - mean) = 0, so the gradient needs no path through `mean`
        # here (as in tf.nn.moments); the path through `mean` in the normalization remains.
        variance = tf.reduce_mean(
            tf.math.squared_difference(x, tf.stop_gradient(mean)), axes, keepdims=True
        )
        return mean, variance

    def _check_batch_size(self, x: tf.Tensor) -> None:
        sizes = [x.shape[i] for i in self._reduction_axes]
        if all(size is not None for size in sizes) and all(size == 1 for size in sizes):
            raise ValueError(
                "BatchNorm needs more than 1 value per channel in training, got input shape "
                f"{tuple(x.shape)}: use a batch of 2 or more, or call it with training=False."
            )

    def _normalize(self, x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor) -> tf.Tensor:
        """`x * inv + (beta - mean * inv)` with `inv = gamma * rsqrt(variance + epsilon)`."""
        inv = tf.math.rsqrt(variance + self.epsilon)
        if self.scale:
            inv = inv * self._param(self.gamma, x.dtype)
        shift = -mean * inv
        if self.center:
            shift = self._param(self.beta, x.dtype) - mean * inv
        return x * inv + shift

    def _param(self, weight: tf.Variable, dtype: tf.DType) -> tf.Tensor:
        value = tf.cast(weight, dtype)
        return value if self._channels_last else tf.reshape(value, self._param_shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(scale_and_offset_config(self))
        config.update(
            {
                "axis": self.axis,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "synchronized": self.synchronized,
                "moving_mean_initializer": tf.keras.initializers.serialize(
                    self.moving_mean_initializer
                ),
                "moving_variance_initializer": tf.keras.initializers.serialize(
                    self.moving_variance_initializer
                ),
            }
        )
        return config
