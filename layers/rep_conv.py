"""A 2D convolution trained as parallel batch-normalized branches, run as one convolution."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from layers._conv_utils import add_bias_and_activate
from layers.batch_norm import BatchNorm
from layers.convolution import Conv2D
from layers.fusion import scale_shift


@tf.keras.utils.register_keras_serializable(package="convzoo")
class RepConv2D(Conv2D):
    """A 2D convolution that trains as a sum of batch-normalized branches (RepVGG, MobileOne).

    Structural re-parameterization (Ding et al., 2021, "RepVGG"; Vasu et al., 2023,
    "MobileOne"): while training, the layer is `B` parallel convolutions over the same
    window, each with its own batch normalization, summed:

        y = sum_b BN_b(conv(x, K_b))         K_b: (k_b, k_b, C, F), centered in k x k

    Every branch is linear in `x` once its BatchNorm uses fixed statistics, so at inference
    the branches collapse into a single k x k convolution with a bias:

        s_b = gamma_b / sqrt(var_b + epsilon)
        K   = sum_b pad(K_b) * s_b          (each k_b x k_b kernel zero-padded to k x k)
        c   = sum_b (beta_b - mean_b * s_b)
        y   = conv(x, K) + c

    The extra branches add parameters and a better-conditioned optimization to training and
    cost nothing after `fused_kernel_and_bias()`: a model built with this layer trains
    like a wider one and deploys as the plain convolution (+ bias, or a BatchNorm holding it,
    see `zoo.reparam.fuse_into`). The fused kernels can quantize worse than directly trained
    ones (Chu et al., 2022, "QARepVGG"; on LeNet-5: docs/MEASUREMENTS.md, "Re-parameterized
    training (`--reparam`)"), so check an int8 export before adopting it.

    Training (`training=True` with the layer trainable) computes the branches as one
    convolution with the padded kernels stacked along the filters (`B * F` outputs), one
    BatchNorm over those `B * F` channels (the same statistics as `B` separate ones) and a
    sum over the branches. Inference computes the fused convolution directly.

    Args:
        filters: output channels `F`.
        kernel_size: the window `k` (an int: square kernels only).
        branch_kernel_sizes: one kernel size per branch, each <= `kernel_size` and of the
            same parity (so that it centers in the window); repeating a size adds another
            branch of it. Default `(k, k, 3, 1)` (sizes of the wrong parity or above `k`
            are left out), the branches MobileOne found useful.
        strides, padding, padding_mode, dilation: as `Conv2D`; every branch shares them.
        activation: applied to the sum, or None.
        momentum, epsilon: the branches' BatchNorm options (see `BatchNorm`).
        synchronized: the branches' BatchNorm computes its batch moments over all replicas.
        kernel_initializer, kernel_regularizer: for every branch kernel.
        **kwargs: base `Layer` arguments (`name`, `dtype`, `trainable`).

    Weights:
        `kernel_0 ... kernel_{B-1}` of shapes `(k_b, k_b, C, F)`, then the BatchNorm's
        `gamma`, `beta`, `moving_mean`, `moving_variance`, each of shape `(B * F,)`.

    Input shape:
        `(batch, height, width, channels)`.
    Output shape:
        `(batch, new_height, new_width, filters)`, as `Conv2D` with the same arguments.

    Example:
        >>> layer = RepConv2D(6, 5, padding=2)
        >>> layer(tf.zeros((1, 28, 28, 1)), training=True).shape
        TensorShape([1, 28, 28, 6])
        >>> kernel, bias = layer.fused_kernel_and_bias()
        >>> kernel.shape, bias.shape
        (TensorShape([5, 5, 1, 6]), TensorShape([6]))
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        branch_kernel_sizes: Sequence[int] | None = None,
        strides: int | Sequence[int] = 1,
        padding: int | str | Sequence = 0,
        padding_mode: str = "zeros",
        dilation: int | Sequence[int] = 1,
        activation=None,
        momentum: float = 0.1,
        epsilon: float = 1e-5,
        synchronized: bool = False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            padding_mode=padding_mode,
            dilation=dilation,
            use_bias=False,
            activation=activation,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            **kwargs,
        )
        size = self.kernel_size[0]
        if self.kernel_size[1] != size:
            raise ValueError(
                f"RepConv2D takes a square kernel (an int), got kernel_size={self.kernel_size}."
            )
        if branch_kernel_sizes is None:
            branch_kernel_sizes = [k for k in (size, size, 3, 1) if k <= size and k % 2 == size % 2]
        branches = tuple(branch_kernel_sizes)
        bad = [
            k for k in branches if not (isinstance(k, int) and 1 <= k <= size) or k % 2 != size % 2
        ]
        if not branches or bad:
            raise ValueError(
                f"`branch_kernel_sizes` must be a non-empty list of ints in [1, {size}] with the "
                f"parity of kernel_size={size} (so each kernel centers in the window), got "
                f"{branch_kernel_sizes!r}."
            )
        self.branch_kernel_sizes = branches
        self.batch_norm = BatchNorm(
            momentum=momentum,
            epsilon=epsilon,
            synchronized=synchronized,
            dtype=self.dtype_policy,
            name="batch_norm",
        )

    def _add_weights(self, input_shape: tuple, channels: int) -> None:
        self.kernel = self.bias = None  # the branch kernels take the k x k kernel's place
        self.branch_kernels = [
            self.add_weight(
                name=f"kernel_{index}",
                shape=(k, k, channels, self.filters),
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
            )
            for index, k in enumerate(self.branch_kernel_sizes)
        ]
        self.batch_norm.build((*input_shape[:-1], len(self.branch_kernel_sizes) * self.filters))

    def _padded_branch_kernels(self) -> list[tf.Tensor]:
        size = self.kernel_size[0]
        return [
            tf.pad(kernel, [[(size - k) // 2] * 2, [(size - k) // 2] * 2, [0, 0], [0, 0]])
            for k, kernel in zip(self.branch_kernel_sizes, self.branch_kernels, strict=True)
        ]

    def fused_kernel_and_bias(self) -> tuple[tf.Tensor, tf.Tensor]:
        """The single `(k, k, C, F)` kernel and `(F,)` bias the branches collapse into at
        inference (float32; the BatchNorm's moving statistics)."""
        branches, filters = len(self.branch_kernel_sizes), self.filters
        bn = self.batch_norm

        def per_branch(value):
            return tf.reshape(tf.cast(value, tf.float32), (branches, filters))

        scale, shift = scale_shift(
            per_branch(bn.moving_mean),
            per_branch(bn.moving_variance),
            bn.epsilon,
            gamma=per_branch(bn.gamma) if bn.gamma is not None else None,
            beta=per_branch(bn.beta) if bn.beta is not None else None,
        )
        kernels = self._padded_branch_kernels()
        kernel = tf.add_n(
            [tf.cast(kernel, tf.float32) * scale[b] for b, kernel in enumerate(kernels)]
        )
        return kernel, tf.reduce_sum(shift, axis=0)

    def call(self, inputs, training=None):
        if training and self.batch_norm.trainable:
            stacked = tf.concat(self._padded_branch_kernels(), axis=-1)
            outputs = self._convolve_padded(inputs, tf.cast(stacked, inputs.dtype))
            outputs = self.batch_norm(outputs, training=True)
            branches = tf.reshape(
                outputs,
                tf.concat(
                    [tf.shape(outputs)[:-1], [len(self.branch_kernel_sizes), self.filters]], 0
                ),
            )
            outputs = tf.reduce_sum(branches, axis=-2)
        else:
            kernel, bias = self.fused_kernel_and_bias()
            outputs = self._convolve_padded(inputs, tf.cast(kernel, inputs.dtype))
            outputs = outputs + tf.cast(bias, outputs.dtype)
        return add_bias_and_activate(self, outputs)  # use_bias is False: the activation

    def get_config(self):
        config = super().get_config()
        for key in ("groups", "use_bias", "bias_initializer", "bias_regularizer"):
            config.pop(key, None)
        bn = self.batch_norm
        config.update(
            {
                "branch_kernel_sizes": list(self.branch_kernel_sizes),
                "momentum": bn.momentum,
                "epsilon": bn.epsilon,
                "synchronized": bn.synchronized,
            }
        )
        return config
