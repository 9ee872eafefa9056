"""Max and average pooling over 1, 2 or 3 spatial dimensions, with PyTorch's padding,
`ceil_mode`, `count_include_pad` and `dilation` semantics (ONNX's MaxPool and AveragePool
with `pads`, `ceil_mode`, `count_include_pad` and `dilations` compute the same), built from
TFLite built-in ops.

One output element summarizes one window of `pool_size` input elements, `dilation` apart
(`dilation=1`: adjacent), so a window spans `K = dilation * (pool_size - 1) + 1` positions;
windows start every `strides` elements of the (padded) input. Per spatial dimension, with
`before`/`after` padding:

    out = floor((n + before + after - K) / s) + 1            (ceil_mode=False)
    out = ceil((n + before + after - K) / s) + 1             (ceil_mode=True)

and, in ceil mode, one fewer when the last window would start past the input and the left
padding (`(out - 1) * s >= n + before`), so every window sees at least one real element. The
windows of ceil mode that run past the padded input are simply cut there.

- Max pooling pads by repeating the edge element (`replicate`). Every window that reaches into
  the padding also contains that edge element (windows are contiguous, padding is at most half
  a window, and every window holds a real element), so this equals padding with `-inf`: padding
  is never a new maximum. Unlike `-inf` (or a huge negative constant), it leaves the value range
  of the tensor unchanged, which int8 calibration of a converted model depends on. With
  dilation a window skips elements, so each padding position repeats instead the nearest input
  element `dilation` apart from it (position `p < 0` takes `x[p mod d]`, `p >= n` takes
  `x[n - 1 - ((n - 1 - p) mod d)]`): the nearest tap of every window that contains it, so
  again never a new maximum.
- Average pooling sums the window and divides by
  - `count_include_pad=True`: the number of taps inside the padded input, padding counted as
    zeros (cut at the end of the padded input in ceil mode, as PyTorch and ONNX do);
  - `count_include_pad=False`: the number of real input elements in the window (what Keras's
    `AveragePooling2D(padding="same")` computes).
- A dilated window can jump over a short input and see padding only (`n=2, pool_size=2,
  dilation=3, padding=1`): PyTorch returns `-inf` there, ONNX Runtime the lowest float,
  ONNX's reference 0 (and its average a division by zero), so the layer refuses such a
  configuration with a `ValueError` instead of picking one.

Without dilation the layer pads explicitly and runs `tf.nn.max_pool` / `tf.nn.avg_pool` with
VALID padding; 3D pooling is computed as a 2D pooling over (height, width) followed by a 2D
pooling over depth (exact for max, the same average up to float rounding), because TFLite has
no 3D pooling built-in. TensorFlow's pooling has no dilation, so a dilated pooling is computed
one dimension at a time (both reductions are separable) as the maximum or mean of its
`pool_size` strided slices, the `j`-th starting at `j * dilation`. The divisors that differ
from the window size come from a constant map computed with numpy when the layer is built. So
every configuration converts to TFLite built-ins (PAD, TILE, GATHER, CONCATENATION,
STRIDED_SLICE, MAXIMUM, ADD_N, MAX_POOL_2D, AVERAGE_POOL_2D, MUL, RESHAPE) and to ONNX.
"""

from __future__ import annotations

import functools
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
    size: int,
    pool_size: int,
    stride: int,
    before: int,
    after: int,
    ceil_mode: bool,
    dilation: int = 1,
) -> int:
    """The output size of one spatial dimension (PyTorch's rule, see the module docstring).

    Example:
        >>> pooled_size(5, 2, 2, 0, 0, ceil_mode=False), pooled_size(5, 2, 2, 0, 0, True)
        (2, 3)
        >>> pooled_size(7, 3, 1, 0, 0, False, dilation=2)
        3
    """
    span = size + before + after - (dilation * (pool_size - 1) + 1)
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + before:
            out -= 1
    else:
        out = span // stride + 1
    return out


def _window_taps(pool_size: int, stride: int, dilation: int, before: int, out: int) -> np.ndarray:
    """Input position of every tap of every window, shape `(out, pool_size)`; positions below
    0 or from the input size on are padding."""
    return (np.arange(out) * stride - before)[:, None] + np.arange(pool_size) * dilation


def _edge_source(size: int, dilation: int, before: int, total: int) -> np.ndarray:
    """Source index of every position of a padded axis of length `total` for max pooling: the
    input itself, and at each padding position the nearest input element `dilation` apart
    (the edge element when `dilation=1`). Clipped into the input where no input element is in
    that residue class (no window that sees input reaches such a position)."""
    positions = np.arange(total) - before
    left = np.minimum(np.mod(positions, dilation), size - 1)
    right = np.maximum(size - 1 - np.mod(size - 1 - positions, dilation), 0)
    source = np.where(positions < 0, left, np.where(positions >= size, right, positions))
    return source.astype(np.int32)


def _pool_taps(x: tf.Tensor, axis: int, pool_size: int, stride: int, dilation: int, kind: str):
    """Pools `x` along `axis` (VALID) as the maximum or mean of `pool_size` strided slices."""
    if pool_size == 1 and stride == 1:
        return x
    extent = dilation * (pool_size - 1) + 1
    parts = []
    for j in range(pool_size):
        stop = j * dilation - extent + 1  # <= 0: counted from the end, so any size works
        index = [slice(None)] * len(x.shape)
        index[axis] = slice(j * dilation, stop if stop else None, stride)
        parts.append(x[tuple(index)])
    if kind == "max":
        return functools.reduce(tf.maximum, parts)
    if pool_size == 1:
        return parts[0]
    return tf.add_n(parts) * (1.0 / pool_size)


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
        *,
        dilation: int | Sequence[int] = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        rank = self._rank
        self.pool_size = normalize_tuple(pool_size, rank, "pool_size")
        self.strides = (
            self.pool_size if strides is None else normalize_tuple(strides, rank, "strides")
        )
        self.dilation = normalize_tuple(dilation, rank, "dilation")
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
            self._check_padding_amounts(padding, pool_size)
        # Receptive-field code treats pools like convolutions.
        self.kernel_size = self.pool_size
        self._dilated = any(d > 1 for d in self.dilation)
        self._pads = None  # explicit (before, after) pairs, ceil-mode extension included
        self._scale = None  # numpy divisor correction for average pooling, or None
        self._sources = None  # per axis: gather index of the dilated max pooling's padding

    def _check_padding_amounts(self, padding, pool_size) -> None:
        """PyTorch's rule: each side at most half the window's span `d * (k - 1) + 1`."""
        for axis, ((before, after), k, d) in enumerate(
            zip(self.padding, self.pool_size, self.dilation, strict=True)
        ):
            extent = d * (k - 1) + 1
            if 2 * max(before, after) > extent:
                spans = "" if d == 1 else f" (dilation {d}: the window spans {extent})"
                raise ValueError(
                    f"`padding` must be at most half the pool size on each side, got "
                    f"padding ({before}, {after}) with pool_size {k}{spans} in spatial "
                    f"dimension {axis} (padding={padding!r}, pool_size={pool_size!r})."
                )

    def _geometry(self, spatial_shape: Sequence[int | None]):
        """Explicit pads and output sizes for the given spatial sizes (None where unknown)."""
        pads = resolve_padding(
            self.padding, spatial_shape, self.pool_size, self.strides, self.dilation
        )
        outputs = []
        for axis, (n, k, s, d, (before, after)) in enumerate(
            zip(spatial_shape, self.pool_size, self.strides, self.dilation, pads, strict=True)
        ):
            if n is None:
                outputs.append(None)
                continue
            extent = d * (k - 1) + 1
            if n + before + after < extent:
                window = f"pool_size {k}" if d == 1 else f"pool_size {k} with dilation {d}"
                spans = "" if d == 1 else f" (spanning {extent} positions)"
                raise ValueError(
                    f"Layer '{self.name}': {window}{spans} is larger than the padded input "
                    f"({n} + {before} + {after} = {n + before + after}) in spatial dimension "
                    f"{axis}; use a smaller pool_size or more padding."
                )
            outputs.append(pooled_size(n, k, s, before, after, self.ceil_mode, d))
        return pads, outputs

    def _check_static(self, input_shape: tuple, pads) -> None:
        padded = any(sum(p) for p in pads)
        needs_static = (
            self.ceil_mode
            or (self._kind == "avg" and not self.count_include_pad and padded)
            or (self._dilated and padded)
        )
        if needs_static and any(n is None for n in input_shape[1:-1]):
            raise ValueError(
                f"Layer '{self.name}' needs known spatial sizes for ceil_mode=True, "
                "count_include_pad=False with padding, or dilation > 1 with padding, got input "
                f"shape {input_shape}: give the model a fixed input shape."
            )

    def _axis_plan(self, axis: int, n: int | None, pair: tuple[int, int], out: int | None):
        """`(extended pads, divisor correction, padding source)` of one spatial dimension."""
        k, s, d = self.pool_size[axis], self.strides[axis], self.dilation[axis]
        before, after = pair
        if n is None:
            return (before, after), None, None
        extra = max((out - 1) * s + d * (k - 1) + 1 - (n + before + after), 0)
        taps = _window_taps(k, s, d, before, out)
        real = ((taps >= 0) & (taps < n)).sum(axis=1)
        if not real.all():
            raise ValueError(
                f"Layer '{self.name}': with dilation {d}, pool_size {k}, strides {s} and "
                f"padding ({before}, {after}), window {int(np.argmin(real))} of spatial "
                f"dimension {axis} (input size {n}) sees only padding, which PyTorch and ONNX "
                "runtimes fill differently (-inf, the lowest float, 0); use less padding or "
                "dilation, or a larger input."
            )
        count = (taps < n + after).sum(axis=1) if self.count_include_pad else real
        source = None
        if self._dilated and self._kind == "max" and (before or after or extra):
            source = _edge_source(n, d, before, before + n + after + extra)
        return (before, after + extra), k / count, source

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        check_input_rank(self.name, input_shape, self._rank + 2, _LAYOUTS[self._rank])
        pads, outputs = self._geometry(input_shape[1:-1])
        self._check_static(input_shape, pads)
        plans = [
            self._axis_plan(axis, n, pair, out)
            for axis, (n, pair, out) in enumerate(
                zip(input_shape[1:-1], pads, outputs, strict=True)
            )
        ]
        self._pads = tuple(plan[0] for plan in plans)
        self._sources = tuple(plan[2] for plan in plans)
        counts = [plan[1] for plan in plans]
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
        if self._dilated:
            y = self._pool_dilated(x)
        else:
            if any(before or after for before, after in self._pads):
                x = pad_spatial(x, self._pads, "replicate" if self._kind == "max" else "zeros")
            y = self._pool(x, self.pool_size, self.strides) if self._rank < 3 else self._pool3d(x)
        if self._scale is not None:
            y = y * tf.cast(self._scale, y.dtype)
        return y

    def _pool_dilated(self, x: tf.Tensor) -> tf.Tensor:
        """Pads (max: each padding position repeats the nearest input element of its window,
        see the module docstring; avg: zeros), then pools each dimension from strided slices."""
        if self._kind == "max":
            for axis, source in enumerate(self._sources):
                if source is not None:
                    x = tf.gather(x, source, axis=axis + 1)
        elif any(before or after for before, after in self._pads):
            x = pad_spatial(x, self._pads, "zeros")
        for axis, (k, s, d) in enumerate(
            zip(self.pool_size, self.strides, self.dilation, strict=True)
        ):
            x = _pool_taps(x, axis + 1, k, s, d, self._kind)
        return x

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
            dilation=self.dilation,
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
        *,
        dilation: int | Sequence[int] = 1,
        **kwargs,
    ):
        super().__init__(pool_size, strides, padding, ceil_mode, dilation=dilation, **kwargs)


class _AvgPool(_Pool):
    _kind = "avg"

    def get_config(self):
        config = super().get_config()
        config["count_include_pad"] = self.count_include_pad
        return config


_MAX_DOC = """Max pooling over {n} spatial dimension{s}: the largest element of each window.

    `out = floor((n + 2p - d * (k - 1) - 1) / s) + 1` per spatial dimension (`ceil` with
    `ceil_mode=True`, PyTorch's rule); padding repeats the edge element (with dilation, the
    nearest element `d` apart), which equals padding with `-inf` (it is never a new maximum)
    without putting extreme values in the graph. PyTorch's `MaxPool{n}d(kernel_size, stride,
    padding, dilation, ceil_mode=...)` and ONNX's `MaxPool` (`pads`, `dilations`,
    `ceil_mode`) compute the same. See `layers.pooling`.

    Args:
        pool_size: the window size, an int or a tuple of {n} ints.
        strides: the step between windows, an int or a tuple of {n} ints; default `pool_size`.
        padding: an int, a tuple of {n} ints, a tuple of {n} `(before, after)` pairs, `"same"` or
            `"valid"`; each explicit side at most half the window's span
            `dilation * (pool_size - 1) + 1` (as PyTorch requires).
        ceil_mode: round the output size up instead of down.
        dilation: keyword only, an int or a tuple of {n} ints, the spacing of the window's
            taps (1: adjacent). A window that would see padding only is refused.
        **kwargs: base `Layer` arguments (name, dtype, ...).

    Input shape: `{layout}`. Output shape: the same with the pooled spatial sizes.

    Example:
        >>> y = {name}(pool_size=3, strides=2, padding=1)(tf.zeros({example}))
        >>> y.shape
        TensorShape({result})
    """

_AVG_DOC = """Average pooling over {n} spatial dimension{s}: the mean of each window.

    `out = floor((n + 2p - d * (k - 1) - 1) / s) + 1` per spatial dimension (`ceil` with
    `ceil_mode=True`, PyTorch's rule). PyTorch's `AvgPool{n}d` (which has no dilation) and
    ONNX's `AveragePool` (`pads`, `ceil_mode`, `count_include_pad`, and `dilations` from
    opset 19) compute the same. See `layers.pooling`.

    Args:
        pool_size: the window size, an int or a tuple of {n} ints.
        strides: the step between windows, an int or a tuple of {n} ints; default `pool_size`.
        padding: an int, a tuple of {n} ints, a tuple of {n} `(before, after)` pairs, `"same"` or
            `"valid"`; each explicit side at most half the window's span
            `dilation * (pool_size - 1) + 1` (as PyTorch requires).
        ceil_mode: round the output size up instead of down.
        count_include_pad: divide by the window size, padding counted as zeros (True), or by
            the number of real input elements in the window (False; what Keras's
            `padding="same"` pooling does).
        dilation: keyword only, an int or a tuple of {n} ints, the spacing of the window's
            taps (1: adjacent; ONNX's `dilations`). A window that would see padding only is
            refused.
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
