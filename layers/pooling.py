"""Max and average pooling over 1, 2 or 3 spatial dimensions, with PyTorch's padding,
`ceil_mode` and `count_include_pad` semantics, built from TFLite built-in ops.

One output element summarizes one window of `pool_size` input elements; windows start every
`strides` elements of the (padded) input. Per spatial dimension, with `before`/`after` padding:

    out = floor((n + before + after - k) / s) + 1            (ceil_mode=False)
    out = ceil((n + before + after - k) / s) + 1             (ceil_mode=True)

and, in ceil mode, one fewer when the last window would start past the input and the left
padding (`(out - 1) * s >= n + before`), so every window sees at least one real element. The
windows of ceil mode that run past the padded input are simply cut there.

- Max pooling pads by repeating the edge element (`replicate`). Every window that reaches into
  the padding also contains that edge element (windows are contiguous, padding is at most half
  a window, and every window holds a real element), so this equals padding with `-inf`: padding
  is never a new maximum. Unlike `-inf` (or a huge negative constant), it leaves the value range
  of the tensor unchanged, which int8 calibration of a converted model depends on.
- Average pooling sums the window and divides by
  - `count_include_pad=True`: the window's size, padding counted as zeros (cut at the end of
    the padded input in ceil mode, as PyTorch does);
  - `count_include_pad=False`: the number of real input elements in the window (what Keras's
    `AveragePooling2D(padding="same")` computes).

The layer pads explicitly and runs `tf.nn.max_pool` / `tf.nn.avg_pool` with VALID padding; the
divisors that differ from the window size come from a constant map computed with numpy when the
layer is built. 3D pooling is computed as a 2D pooling over (height, width) followed by a 2D
pooling over depth (exact for max, the same average up to float rounding), because TFLite has no
3D pooling built-in. So every configuration converts to TFLite built-ins (PAD, TILE, CONCATENATION,
MAX_POOL_2D, AVERAGE_POOL_2D, MUL, RESHAPE) and to ONNX.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from layers._args import check_input_rank, normalize_tuple
from layers.padding import normalize_padding, pad_spatial, resolve_padding

_LAYOUTS = {
    1: "(batch, length, channels)",
    2: "(batch, height, width, channels)",
    3: "(batch, depth, height, width, channels)",
}


def pooled_size(
    size: int, pool_size: int, stride: int, before: int, after: int, ceil_mode: bool
) -> int:
    """The output size of one spatial dimension (PyTorch's rule, see the module docstring).

    Example:
        >>> pooled_size(5, 2, 2, 0, 0, ceil_mode=False), pooled_size(5, 2, 2, 0, 0, True)
        (2, 3)
    """
    span = size + before + after - pool_size
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + before:
            out -= 1
    else:
        out = span // stride + 1
    return out


class _Pool(tf.keras.layers.Layer):
    """Shared machinery of the pooling layers; subclasses set `_rank` and `_kind`."""

    _rank: int
    _kind: str  # "max" or "avg"

    def __init__(
        self,
        pool_size: int | Sequence[int] = 2,
        strides: int | Sequence[int] | None = None,
        padding: int | str | Sequence = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        rank = self._rank
        self.pool_size = normalize_tuple(pool_size, rank, "pool_size")
        self.strides = (
            self.pool_size if strides is None else normalize_tuple(strides, rank, "strides")
        )
        self.padding = normalize_padding(padding, rank)
        if not isinstance(ceil_mode, bool):
            raise ValueError(f"`ceil_mode` must be True or False, got {ceil_mode!r}.")
        if not isinstance(count_include_pad, bool):
            raise ValueError(
                f"`count_include_pad` must be True or False, got {count_include_pad!r}."
            )
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        if not isinstance(self.padding, str):
            for axis, ((before, after), k) in enumerate(
                zip(self.padding, self.pool_size, strict=True)
            ):
                if 2 * max(before, after) > k:
                    raise ValueError(
                        f"`padding` must be at most half the pool size on each side, got "
                        f"padding ({before}, {after}) with pool_size {k} in spatial dimension "
                        f"{axis} (padding={padding!r}, pool_size={pool_size!r})."
                    )
        # Receptive-field code treats pools like convolutions.
        self.kernel_size = self.pool_size
        self.dilation = (1,) * rank
        self._pads = None  # explicit (before, after) pairs, ceil-mode extension included
        self._scale = None  # numpy divisor correction for average pooling, or None

    def _geometry(self, spatial_shape: Sequence[int | None]):
        """Explicit pads and output sizes for the given spatial sizes (None where unknown)."""
        pads = resolve_padding(
            self.padding, spatial_shape, self.pool_size, self.strides, self.dilation
        )
        outputs = []
        for axis, (n, k, s, (before, after)) in enumerate(
            zip(spatial_shape, self.pool_size, self.strides, pads, strict=True)
        ):
            if n is None:
                outputs.append(None)
                continue
            if n + before + after < k:
                raise ValueError(
                    f"Layer '{self.name}': pool_size {k} is larger than the padded input "
                    f"({n} + {before} + {after} = {n + before + after}) in spatial dimension "
                    f"{axis}; use a smaller pool_size or more padding."
                )
            outputs.append(pooled_size(n, k, s, before, after, self.ceil_mode))
        return pads, outputs

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        check_input_rank(self.name, input_shape, self._rank + 2, _LAYOUTS[self._rank])
        spatial_shape = input_shape[1:-1]
        pads, outputs = self._geometry(spatial_shape)
        needs_static = self.ceil_mode or (
            self._kind == "avg" and not self.count_include_pad and any(sum(p) for p in pads)
        )
        if needs_static and any(n is None for n in spatial_shape):
            raise ValueError(
                f"Layer '{self.name}' needs known spatial sizes for ceil_mode=True or "
                f"count_include_pad=False with padding, got input shape {input_shape}: give "
                "the model a fixed input shape."
            )
        extended = []
        counts = []
        for n, k, s, (before, after), out in zip(
            spatial_shape, self.pool_size, self.strides, pads, outputs, strict=True
        ):
            if n is None:
                extended.append((before, after))
                counts.append(None)
                continue
            extra = max((out - 1) * s + k - (n + before + after), 0)
            extended.append((before, after + extra))
            starts = np.arange(out) * s - before
            ends = starts + k
            if self.count_include_pad:
                count = np.minimum(ends, n + after) - starts
            else:
                count = np.minimum(ends, n) - np.maximum(starts, 0)
            counts.append(k / count)
        self._pads = tuple(extended)
        self._scale = None
        if self._kind == "avg" and all(c is not None for c in counts):
            scale = counts[0]
            for c in counts[1:]:
                scale = np.multiply.outer(scale, c)
            if not np.all(scale == 1.0):
                self._scale = scale.reshape((1, *scale.shape, 1)).astype(np.float32)
        super().build(input_shape)

    def _pool(self, x: tf.Tensor, pool_size, strides) -> tf.Tensor:
        if self._kind == "max":
            return tf.nn.max_pool(x, pool_size, strides, "VALID")
        return tf.nn.avg_pool(x, pool_size, strides, "VALID")

    def call(self, inputs):
        x = inputs
        if any(before or after for before, after in self._pads):
            x = pad_spatial(x, self._pads, "replicate" if self._kind == "max" else "zeros")
        y = self._pool(x, self.pool_size, self.strides) if self._rank < 3 else self._pool3d(x)
        if self._scale is not None:
            y = y * tf.cast(self._scale, y.dtype)
        return y

    def _pool3d(self, x: tf.Tensor) -> tf.Tensor:
        """A 2D pooling over (height, width) per depth slice, then a 2D pooling over depth."""
        (kd, kh, kw), (sd, sh, sw) = self.pool_size, self.strides
        shape = tf.shape(x)
        batch, depth, channels = shape[0], shape[1], shape[4]
        y = tf.reshape(x, tf.stack([batch * depth, shape[2], shape[3], channels]))
        y = self._pool(y, (kh, kw), (sh, sw))
        inner = tf.shape(y)
        y = tf.reshape(y, tf.stack([batch, depth, inner[1] * inner[2], channels]))
        y = self._pool(y, (kd, 1), (sd, 1))
        return tf.reshape(y, tf.stack([batch, tf.shape(y)[1], inner[1], inner[2], channels]))

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        check_input_rank(self.name, input_shape, self._rank + 2, _LAYOUTS[self._rank])
        _, outputs = self._geometry(input_shape[1:-1])
        return (input_shape[0], *outputs, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            pool_size=self.pool_size,
            strides=self.strides,
            padding=self.padding,
            ceil_mode=self.ceil_mode,
        )
        return config


class _MaxPool(_Pool):
    _kind = "max"

    def __init__(
        self,
        pool_size: int | Sequence[int] = 2,
        strides: int | Sequence[int] | None = None,
        padding: int | str | Sequence = 0,
        ceil_mode: bool = False,
        **kwargs,
    ):
        super().__init__(pool_size, strides, padding, ceil_mode, **kwargs)


class _AvgPool(_Pool):
    _kind = "avg"

    def get_config(self):
        config = super().get_config()
        config["count_include_pad"] = self.count_include_pad
        return config


_MAX_DOC = """Max pooling over {n} spatial dimension{s}: the largest element of each window.

    `out = floor((n + 2p - k) / s) + 1` per spatial dimension (`ceil` with `ceil_mode=True`,
    PyTorch's rule); padding repeats the edge element, which equals padding with `-inf` (it is
    never a new maximum) without putting extreme values in the graph. See `layers.pooling`.

    Args:
        pool_size: the window size, an int or a tuple of {n} ints.
        strides: the step between windows, an int or a tuple of {n} ints; default `pool_size`.
        padding: an int, a tuple of {n} ints, a tuple of {n} `(before, after)` pairs, `"same"` or
            `"valid"`; each explicit side at most `pool_size / 2` (as PyTorch requires).
        ceil_mode: round the output size up instead of down.
        **kwargs: base `Layer` arguments (name, dtype, ...).

    Input shape: `{layout}`. Output shape: the same with the pooled spatial sizes.

    Example:
        >>> y = {name}(pool_size=3, strides=2, padding=1)(tf.zeros({example}))
        >>> y.shape
        TensorShape({result})
    """

_AVG_DOC = """Average pooling over {n} spatial dimension{s}: the mean of each window.

    `out = floor((n + 2p - k) / s) + 1` per spatial dimension (`ceil` with `ceil_mode=True`,
    PyTorch's rule). See `layers.pooling`.

    Args:
        pool_size: the window size, an int or a tuple of {n} ints.
        strides: the step between windows, an int or a tuple of {n} ints; default `pool_size`.
        padding: an int, a tuple of {n} ints, a tuple of {n} `(before, after)` pairs, `"same"` or
            `"valid"`; each explicit side at most `pool_size / 2` (as PyTorch requires).
        ceil_mode: round the output size up instead of down.
        count_include_pad: divide by the window size, padding counted as zeros (True), or by
            the number of real input elements in the window (False; what Keras's
            `padding="same"` pooling does).
        **kwargs: base `Layer` arguments (name, dtype, ...).

    Input shape: `{layout}`. Output shape: the same with the pooled spatial sizes.

    Example:
        >>> y = {name}(pool_size=3, strides=2, padding=1)(tf.zeros({example}))
        >>> y.shape
        TensorShape({result})
    """

_EXAMPLES = {
    1: ("(1, 8, 4)", "[1, 4, 4]"),
    2: ("(1, 8, 8, 4)", "[1, 4, 4, 4]"),
    3: ("(1, 8, 8, 8, 4)", "[1, 4, 4, 4, 4]"),
}


def _doc(template: str, name: str, rank: int) -> str:
    example, result = _EXAMPLES[rank]
    return template.format(
        n=rank,
        s="" if rank == 1 else "s",
        layout=_LAYOUTS[rank],
        name=name,
        example=example,
        result=result,
    )


@tf.keras.utils.register_keras_serializable(package="convzoo")
class MaxPool1D(_MaxPool):
    __doc__ = _doc(_MAX_DOC, "MaxPool1D", 1)
    _rank = 1


@tf.keras.utils.register_keras_serializable(package="convzoo")
class MaxPool2D(_MaxPool):
    __doc__ = _doc(_MAX_DOC, "MaxPool2D", 2)
    _rank = 2


@tf.keras.utils.register_keras_serializable(package="convzoo")
class MaxPool3D(_MaxPool):
    __doc__ = _doc(_MAX_DOC, "MaxPool3D", 3)
    _rank = 3


@tf.keras.utils.register_keras_serializable(package="convzoo")
class AvgPool1D(_AvgPool):
    __doc__ = _doc(_AVG_DOC, "AvgPool1D", 1)
    _rank = 1


@tf.keras.utils.register_keras_serializable(package="convzoo")
class AvgPool2D(_AvgPool):
    __doc__ = _doc(_AVG_DOC, "AvgPool2D", 2)
    _rank = 2


@tf.keras.utils.register_keras_serializable(package="convzoo")
class AvgPool3D(_AvgPool):
    __doc__ = _doc(_AVG_DOC, "AvgPool3D", 3)
    _rank = 3
