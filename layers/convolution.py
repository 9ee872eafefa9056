"""Convolution layers `Conv1D`, `Conv2D`, `Conv3D` with explicit padding modes and groups.

For a channels-last input `x` of shape `(batch, *spatial, C)` and a kernel `w` of shape
`(*kernel_size, C // groups, filters)`, output channel `f` (in group `g = f // (filters //
groups)`) at position `o` is

    y[o, f] = b[f] + sum_{t, c} w[t, c, f] * pad(x)[o * s + t * d, g * C // groups + c]

(a cross-correlation, as in every framework), with `t` running over the kernel taps, `s` the
stride and `d` the dilation. Along each spatial dimension of length `H`, padded by
`p_before + p_after` (`2p` when symmetric), the output length is

    floor((H + 2p - d*(k-1) - 1) / s) + 1

(see `layers.arithmetic.conv_output_size`). `dilation=1` is a plain convolution; the
lecture's "dilation rate 1" (one skipped pixel between taps) is `dilation=2` here.

Computation: the input is padded with `layers.padding.pad_spatial` (zeros, reflect,
replicate, circular, or a constant `padding_value` as ONNX's Pad), then convolved with
`tf.nn.convolution(..., padding="VALID")`. Zero padding (`"zeros"`, or `"constant"` with the
value 0) that equals TensorFlow's "same" padding is folded into the convolution (one TFLite
CONV_2D with SAME padding, no PAD op). `groups > 1` runs one convolution per group and
concatenates them: TensorFlow's native grouped convolution has no CPU gradient without
oneDNN and no CPU Conv3D at all, while the split form runs everywhere, converts to TFLite
built-ins (SPLIT, CONV_2D, CONCATENATION) and ONNX, at the native form's speed on CPU
(docs/MEASUREMENTS.md, "Grouped convolution: split per group").
Dilation goes through `tf.nn.convolution` (space-to-batch, which the TFLite converter folds
back into a dilated CONV_2D), except in 3D, where TFLite has no 5D SpaceToBatchND and TF's CPU
Conv3D kernel no dilation: there the kernel is zero-inserted to its dilated extent first.

Few input channels (LeNet-5's C1: 1 channel, 5x5, 6 filters) take the direct path too: a
space-to-depth form, a filter gradient computed as a convolution, and im2col all trained slower
(docs/MEASUREMENTS.md, "Few-input-channel convolutions in training"). The input gradient of a
model's first convolution is not computed at all: Keras differentiates with respect to the
weights only, and the unused `Conv2DBackpropInput` is pruned from the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from layers._args import check_input_rank, normalize_tuple
from layers._conv_utils import (
    add_bias_and_activate,
    add_kernel_and_bias,
    kernel_and_bias_config,
    set_kernel_and_bias_options,
)
from layers.arithmetic import conv_output_size
from layers.padding import (
    PADDING_MODE_CONSTANT,
    check_padding_mode,
    check_padding_value,
    normalize_padding,
    pad_spatial,
    same_padding,
)

_DATA_FORMATS = {1: "NWC", 2: "NHWC", 3: "NDHWC"}
_LAYOUTS = {
    1: "(batch, steps, channels)",
    2: "(batch, height, width, channels)",
    3: "(batch, depth, height, width, channels)",
}


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return value


def _dilate_kernel(kernel: tf.Tensor, dilation: Sequence[int]) -> tf.Tensor:
    """Inserts `d - 1` zeros between the taps of each spatial kernel axis.

    A kernel of length `k` becomes one of length `d*(k-1) + 1` whose plain convolution equals
    the dilated convolution with the original kernel.
    """
    for axis, d in enumerate(dilation):
        if d == 1:
            continue
        shape = kernel.shape.as_list()
        k = shape[axis]
        taps = tf.stack([kernel] + [tf.zeros_like(kernel)] * (d - 1), axis=axis + 1)
        kernel = tf.reshape(taps, [*shape[:axis], k * d, *shape[axis + 1 :]])
        index = [slice(None)] * len(shape)
        index[axis] = slice(0, d * (k - 1) + 1)
        kernel = kernel[tuple(index)]
    return kernel


class _Conv(tf.keras.layers.Layer):
    """Shared implementation of `Conv1D`/`Conv2D`/`Conv3D`; `rank` is the spatial rank."""

    def __init__(
        self,
        rank: int,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: int | str | Sequence = 0,
        padding_mode: str = "zeros",
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        use_bias: bool = True,
        activation=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        *,
        padding_value: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rank = rank
        self.filters = _positive_int(filters, "filters")
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.dilation = normalize_tuple(dilation, rank, "dilation")
        self.padding = normalize_padding(padding, rank)
        self.padding_mode = check_padding_mode(padding_mode)
        self.padding_value = check_padding_value(padding_value, self.padding_mode)
        self.groups = _positive_int(groups, "groups")
        if self.filters % self.groups:
            raise ValueError(
                f"`filters`={self.filters} must be divisible by `groups`={self.groups}."
            )
        if max(self.strides) > 1 and max(self.dilation) > 1:
            # tf.nn.convolution (and Keras) forbid it; TensorFlow's CPU kernels have no
            # gradient (and no Conv3D) for strided dilated convolutions.
            raise ValueError(
                f"`strides` > 1 together with `dilation` > 1 is not supported by TensorFlow, "
                f"got strides={self.strides} and dilation={self.dilation}; use strides=1 with "
                "dilation, or dilation=1 with strides."
            )
        set_kernel_and_bias_options(
            self,
            use_bias=use_bias,
            activation=activation,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
        )

    # -- geometry ---------------------------------------------------------------------------

    @property
    def _pads_with_zeros(self) -> bool:
        """Whether the padding is zeros (`"zeros"`, or `"constant"` with the value 0)."""
        return self.padding_mode == "zeros" or (
            self.padding_mode == PADDING_MODE_CONSTANT and self.padding_value == 0.0
        )

    def _explicit_pads(self, spatial_shape: Sequence[int | None]):
        """`"SAME"` when TF's own same padding does the job, else `(before, after)` pairs."""
        if self.padding == "valid":
            return ((0, 0),) * self.rank
        if self.padding == "same":
            if self._pads_with_zeros:
                return "SAME"
            if any(size is None for size in spatial_shape):
                raise ValueError(
                    f"Layer '{self.name}': padding='same' with padding_mode="
                    f"{self.padding_mode!r} needs known spatial sizes, got "
                    f"{tuple(spatial_shape)}; give the model a fixed input shape or pass "
                    "explicit padding amounts."
                )
            return tuple(
                same_padding(n, k, s, d)
                for n, k, s, d in zip(
                    spatial_shape, self.kernel_size, self.strides, self.dilation, strict=True
                )
            )
        pads = self.padding
        if self._pads_with_zeros and all(n is not None for n in spatial_shape):
            same = tuple(
                same_padding(n, k, s, d)
                for n, k, s, d in zip(
                    spatial_shape, self.kernel_size, self.strides, self.dilation, strict=True
                )
            )
            if same == tuple(pads):
                return "SAME"
        return pads

    def _check_channels(self, channels: int | None) -> int:
        if channels is None:
            raise ValueError(
                f"Layer '{self.name}' needs a known channel count (last input dimension), got None."
            )
        if channels % self.groups:
            raise ValueError(
                f"Layer '{self.name}': input channels {channels} must be divisible by "
                f"`groups`={self.groups}."
            )
        return channels

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        check_input_rank(self.name, input_shape, self.rank + 2, _LAYOUTS[self.rank])
        channels = self._check_channels(input_shape[-1])
        # Validates the kernel against the padded input where spatial sizes are known.
        self._output_spatial_shape(input_shape[1:-1])
        self._add_weights(input_shape, channels)
        self.input_spec = tf.keras.layers.InputSpec(ndim=self.rank + 2, axes={-1: channels})
        super().build(input_shape)

    def _add_weights(self, input_shape: tuple, channels: int) -> None:
        """Creates the layer's weights once the input is validated (a subclass may replace
        the single kernel)."""
        add_kernel_and_bias(self, (*self.kernel_size, channels // self.groups, self.filters))

    def _output_spatial_shape(self, spatial_shape: Sequence[int | None]) -> tuple:
        if self.padding == "same":
            return tuple(
                None if n is None else -(-n // s)
                for n, s in zip(spatial_shape, self.strides, strict=True)
            )
        pads = ((0, 0),) * self.rank if self.padding == "valid" else self.padding
        out = []
        for axis, (n, k, s, d, pair) in enumerate(
            zip(spatial_shape, self.kernel_size, self.strides, self.dilation, pads, strict=True)
        ):
            try:
                out.append(conv_output_size(n, k, s, pair, d))
            except ValueError as error:
                raise ValueError(
                    f"Layer '{self.name}', spatial dimension {axis}: {error} "
                    f"(kernel_size={self.kernel_size}, dilation={self.dilation}, "
                    f"padding={self.padding}, input spatial shape {tuple(spatial_shape)})."
                ) from None
        return tuple(out)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        check_input_rank(self.name, input_shape, self.rank + 2, _LAYOUTS[self.rank])
        return (input_shape[0], *self._output_spatial_shape(input_shape[1:-1]), self.filters)

    # -- computation ------------------------------------------------------------------------

    def call(self, inputs):
        outputs = self._convolve_padded(inputs, tf.cast(self.kernel, inputs.dtype))
        return add_bias_and_activate(self, outputs)

    def _convolve_padded(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        """Pads `inputs` per the layer's padding and mode and convolves them with `kernel`
        (per group), without bias or activation."""
        pads = self._explicit_pads(inputs.shape[1:-1])
        if pads == "SAME":
            tf_padding = "SAME"
        else:
            tf_padding = "VALID"
            inputs = pad_spatial(inputs, pads, self.padding_mode, self.padding_value)
        if self.groups == 1:
            outputs = self._convolve(inputs, kernel, tf_padding)
        else:
            outputs = tf.concat(
                [
                    self._convolve(x, w, tf_padding)
                    for x, w in zip(
                        tf.split(inputs, self.groups, axis=-1),
                        tf.split(kernel, self.groups, axis=-1),
                        strict=True,
                    )
                ],
                axis=-1,
            )
        return outputs

    def _convolve(self, x: tf.Tensor, kernel: tf.Tensor, padding: str) -> tf.Tensor:
        dilation = self.dilation
        if self.rank == 3 and max(dilation) > 1:
            # tf.nn.convolution dilates through SpaceToBatchND, which TFLite has no 5D
            # built-in for, and TF's CPU Conv3D kernel has no dilation: convolve with the
            # zero-inserted kernel instead (exact, k_eff^3 / k^3 times the work).
            kernel = _dilate_kernel(kernel, dilation)
            dilation = (1,) * self.rank
        # An explicit data_format: with None, eager Conv3D records no format and its gradient
        # fails (TF 2.21).
        return tf.nn.convolution(
            x,
            kernel,
            strides=self.strides,
            padding=padding,
            dilations=dilation,
            data_format=_DATA_FORMATS[self.rank],
        )

    def get_config(self):
        config = super().get_config()
        config.update(kernel_and_bias_config(self))
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "padding_mode": self.padding_mode,
                "padding_value": self.padding_value,
                "dilation": self.dilation,
                "groups": self.groups,
            }
        )
        return config


_DOC = """{rank}D convolution (`{name}`), channels-last, with padding modes and groups.

    {extra}

    `y = b + sum over kernel taps of w * pad(x)[o*s + t*d]` per output position `o`, a
    cross-correlation over `{window}` windows. Along each spatial dimension of length `H`
    with padding `p` on both sides, the output length is
    `floor((H + 2p - d*(k-1) - 1) / s) + 1` (`layers.arithmetic.conv_output_size`).
    `dilation=1` is a plain convolution: the lecture's "dilation rate 1" (one skipped pixel
    between taps) is `dilation=2` here.

    Args:
        filters: number of output channels, divisible by `groups`.
        kernel_size: an int or a tuple of {rank} ints.
        strides: an int or a tuple of {rank} ints. Strides > 1 cannot be combined with
            dilation > 1 (TensorFlow does not support it).
        padding: an int `p` (both sides of every spatial dimension), a tuple of {rank} ints,
            a tuple of {rank} `(before, after)` pairs, `"valid"` (none) or `"same"`
            (TensorFlow's rule: output length `ceil(H / s)`, the extra row at the end).
        padding_mode: how the padding is filled: `"zeros"`, `"reflect"` (mirror without the
            edge; pad < size), `"replicate"` (edge repeated), `"circular"` (periodic;
            pad <= size) or `"constant"` (`padding_value`; ONNX's Pad `mode="constant"`).
        dilation: an int or a tuple of {rank} ints, the spacing between kernel taps.
        groups: input channels and filters are split into this many groups, each convolved
            with its own kernel slice (AlexNet's two-GPU convolutions are `groups=2`).
        use_bias: whether to add a learned bias per filter.
        activation: activation applied to the output (name or callable), or None.
        kernel_initializer, bias_initializer: initializers (names or objects).
        kernel_regularizer, bias_regularizer: regularizers, or None.
        padding_value: keyword only, the fill value of `padding_mode="constant"` (ONNX Pad's
            `constant_value`, PyTorch `F.pad(..., mode="constant", value=...)` before the
            convolution); must stay 0 with the other modes.
        **kwargs: base `Layer` arguments (`name`, `dtype`, `trainable`).

    Weights:
        `kernel` of shape `(*kernel_size, in_channels // groups, filters)` then `bias` of
        shape `(filters,)`: the layout of `tf.keras.layers.{name}`, so weights transfer.

    Input shape:
        `{input_shape}`
    Output shape:
        `{output_shape}`, spatial sizes per the formula above.

    Raises:
        ValueError: for non-positive filters, kernel sizes, strides or dilations, an unknown
            padding or padding mode, a non-zero `padding_value` without `"constant"`,
            strides > 1 with dilation > 1, filters or input channels not divisible by
            `groups`, an input of the wrong rank, or a dilated kernel larger than the padded
            input.

    Example:
        >>> layer = {name}(8, {example_kernel}, strides=2, padding=1, padding_mode="reflect")
        >>> layer(tf.zeros({example_input})).shape
        TensorShape({example_output})
    """


@tf.keras.utils.register_keras_serializable(package="convzoo")
class Conv1D(_Conv):
    __doc__ = _DOC.format(
        rank=1,
        name="Conv1D",
        extra="For sequences and signals: the kernel slides along the time axis only.",
        window="(k,)",
        input_shape="(batch, steps, channels)",
        output_shape="(batch, new_steps, filters)",
        example_kernel=3,
        example_input="(1, 16, 4)",
        example_output="[1, 8, 8]",
    )

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: int | str | Sequence = 0,
        padding_mode: str = "zeros",
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        use_bias: bool = True,
        activation=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        *,
        padding_value: float = 0.0,
        **kwargs,
    ):
        super().__init__(
            1,
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            padding_mode=padding_mode,
            dilation=dilation,
            groups=groups,
            use_bias=use_bias,
            activation=activation,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            padding_value=padding_value,
            **kwargs,
        )


@tf.keras.utils.register_keras_serializable(package="convzoo")
class Conv2D(_Conv):
    __doc__ = _DOC.format(
        rank=2,
        name="Conv2D",
        extra="For images: the kernel slides over height and width.",
        window="(k_h, k_w)",
        input_shape="(batch, height, width, channels)",
        output_shape="(batch, new_height, new_width, filters)",
        example_kernel=3,
        example_input="(1, 28, 28, 1)",
        example_output="[1, 14, 14, 8]",
    )

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: int | str | Sequence = 0,
        padding_mode: str = "zeros",
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        use_bias: bool = True,
        activation=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        *,
        padding_value: float = 0.0,
        **kwargs,
    ):
        super().__init__(
            2,
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            padding_mode=padding_mode,
            dilation=dilation,
            groups=groups,
            use_bias=use_bias,
            activation=activation,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            padding_value=padding_value,
            **kwargs,
        )


@tf.keras.utils.register_keras_serializable(package="convzoo")
class Conv3D(_Conv):
    __doc__ = _DOC.format(
        rank=3,
        name="Conv3D",
        extra="For volumes and video: the kernel slides over depth (or time), height, width.",
        window="(k_d, k_h, k_w)",
        input_shape="(batch, depth, height, width, channels)",
        output_shape="(batch, new_depth, new_height, new_width, filters)",
        example_kernel=3,
        example_input="(1, 8, 8, 8, 2)",
        example_output="[1, 4, 4, 4, 8]",
    )

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: int | str | Sequence = 0,
        padding_mode: str = "zeros",
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        use_bias: bool = True,
        activation=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        *,
        padding_value: float = 0.0,
        **kwargs,
    ):
        super().__init__(
            3,
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            padding_mode=padding_mode,
            dilation=dilation,
            groups=groups,
            use_bias=use_bias,
            activation=activation,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            padding_value=padding_value,
            **kwargs,
        )
