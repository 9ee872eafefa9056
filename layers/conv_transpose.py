"""Transpose convolution (a.k.a. fractionally strided convolution), computed from scratch by
the sub-pixel (phase) decomposition: stride-1 convolutions whose outputs interleave into space.

What it computes. In one spatial dimension, with input `x` of length `n`, kernel `w` of size
`k`, stride `s` and dilation `d`, every input position scatters a scaled copy of the kernel:

    full[i * s + j * d] += x[i] * w[j]        (length (n - 1) * s + d * (k - 1) + 1)

and the output is the window `out[o] = full[o + p_before]` of length

    out = (n - 1) * s - (p_before + p_after) + d * (k - 1) + output_padding + 1

(positions past the end of `full` are zero). It is the gradient of a convolution with the same
kernel, stride, dilation and padding with respect to its input, hence the name; a convolution
with stride `s` maps the output size back to `n`. `padding="valid"` and `"same"` follow
`tf.keras.layers.Conv2DTranspose` exactly, with `K = d * (k - 1) + 1`:

- `"valid"`: `p_before = 0`; `out = n * s + max(K - s, 0)` without `output_padding`, else
  `(n - 1) * s + K + output_padding`.
- `"same"`: `out = n * s` without `output_padding`, else `(n - 1) * s + K % 2 + output_padding`;
  `p_before` is TensorFlow's "same" rule for a convolution of the output, `total // 2` with
  `total = max((ceil(out / s) - 1) * s + K - out, 0)`.

How it is computed (sub-pixel decomposition). The textbook form inserts `s - 1` zeros between
input pixels, pads and convolves with the flipped kernel; three quarters of its multiplications
(at `s = 2`, in 2D) are with inserted zeros. Instead, write each output position as
`o = q * s + r` with phase `r` in `[0, s)`. Substituting `i = q - v` above gives

    out[q * s + r] = sum_v x[q - v] * w_eff[v * s + r + p_before]

where `w_eff` is the kernel dilated with `d - 1` zeros between taps (and zero outside
`[0, K)`). For every phase this is an ordinary stride-1 convolution of `x` with its own small
"phase kernel": every `s`-th tap of the flipped kernel, `ceil(K / s)` taps or one fewer. The
phase kernels are gathered from `kernel` inside `call` (`tf.gather` with constant indices), so
gradients flow to `kernel` and a converter folds them into constants.

- 1D and 2D (1D runs as 2D with a height of 1): one convolution per phase `(r_h, r_w)` with
  exactly its own taps and explicit padding, and the phases interleaved by stacking each next
  to its axis (a reshape then merges the pair of axes). No multiplication by a zero tap and no
  cropping: `k=3, s=2` costs 9 multiply-adds per input pixel and channel pair, as the direct
  method. (Stacking the phase kernels into ONE convolution with `s * s * filters` channels and
  `tf.nn.depth_to_space` needs a common tap window, 16 instead of 9 taps for `k=3, s=2`, and a
  crop whenever `p_before` is not a multiple of `s`: measured 1.3-2x slower on CPU.)
- 3D: the stacked form. The phase kernels are zero-padded to a common window and stacked along
  the output channels (`s_d * s_h * s_w * filters`), one stride-1 `conv3d` runs on the padded
  input, and a reshape/transpose per axis interleaves the phases. When `p_before` is not a
  multiple of `s`, starting the phase grid up to `s - 1` rows early saves a tap per phase; those
  rows are cropped.
- Stride 1 in a dimension: a plain convolution with the flipped kernel, dilated by `d`.

The gradient uses the adjoint identity instead of differentiating the decomposition: with
respect to the input it is the strided convolution of the output gradient with `kernel` (whose
layout `(*kernel_size, filters, in_channels)` is a convolution kernel's), with respect to the
kernel that convolution's kernel gradient against the input. (TensorFlow's CPU kernel gradient
has no dilation, so with dilation > 1 the decomposition is differentiated.) Every op of the
forward pass (PAD, CONV_2D / CONV_3D, GATHER, TRANSPOSE, PACK, RESHAPE, STRIDED_SLICE) is a
TFLite built-in and exports to ONNX.

Groups (`groups=g`, PyTorch's and ONNX's `groups`/`group`): the input channels and the filters
are split into `g` groups, and group `i`'s filters are the transpose convolution of group `i`'s
input channels alone. Each group is computed as above and the outputs concatenated (SPLIT and
CONCATENATION in TFLite), as `Conv*` does for its groups; TensorFlow and Keras have no grouped
transpose convolution.

Dilation follows the framework convention: `dilation=1` is a plain kernel, `dilation=2` leaves
one pixel between taps (the lecture's "dilation rate 1").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from layers._args import check_input_rank, normalize_tuple
from layers._conv_utils import (
    add_bias_and_activate,
    add_kernel_and_bias,
    kernel_and_bias_config,
    set_kernel_and_bias_options,
)
from layers.padding import normalize_padding

_LAYOUTS = {
    1: "(batch, steps, channels)",
    2: "(batch, height, width, channels)",
    3: "(batch, depth, height, width, channels)",
}


class _Phase(NamedTuple):
    """One output phase of one dimension, computed by its own convolution (2D path)."""

    taps: np.ndarray  # (T,) source tap of `kernel` per conv tap; `k` means zero.
    pad_before: int  # padding of the input before the convolution (negative: crop)
    pad_after: int


class _AxisPlan(NamedTuple):
    """How one spatial dimension is computed (all sizes are independent of the input size).

    The stacked path (3D) uses `taps` (all phases in one kernel) with `pad_*`/`crop_*`; the
    split path (1D/2D) uses `phases` (one exact kernel per phase) and `split_crop_after`.
    """

    taps: np.ndarray  # (T, s) source tap of `kernel` per (conv tap, phase); `k` means zero.
    conv_dilation: int  # dilation of the stride-1 convolution (only when s == 1)
    pad_before: int  # padding of the input before the convolution (negative: crop)
    pad_after: int
    crop_before: int  # rows of the shuffled output to drop at the start
    crop_after: int  # and at the end
    extent: int  # out = (n - 1) * s + extent
    adjoint_pads: tuple[int, int]  # padding of the output gradient for the strided convolution
    adjoint_same: bool  # whether `adjoint_pads` is TensorFlow's "SAME" padding
    phases: tuple[_Phase, ...]  # per output phase r in [0, s)
    split_crop_after: int  # rows past the output that the split path computes


def _output_extent(k: int, s: int, d: int, padding, output_padding: int | None) -> tuple[int, int]:
    """Returns `(extent, p_before)` for one dimension: `out = (n - 1) * s + extent`."""
    span = d * (k - 1) + 1
    if padding == "valid":
        extra = max(span, s) - span if output_padding is None else output_padding
        return span + extra, 0
    if padding == "same":
        extent = s if output_padding is None else span % 2 + output_padding
        # TensorFlow's "same" rule for a convolution of the output (size (n - 1) * s + extent).
        total = max((-(-extent // s) - 1) * s + span - extent, 0)
        return extent, total // 2
    before, after = padding
    return span - before - after + (output_padding or 0), before


def _plan_axis(k: int, s: int, d: int, padding, output_padding: int | None) -> _AxisPlan:
    span = d * (k - 1) + 1
    extent, p_before = _output_extent(k, s, d, padding, output_padding)
    # The strided convolution of the output (size (n - 1) * s + extent) back to n pads
    # (p_before, span - extent - p_before); TF's "SAME" does that when it gives n outputs.
    adjoint = (p_before, span - extent - p_before)
    adjoint_same = 1 <= extent <= s and span >= extent and p_before == (span - extent) // 2
    if s == 1:
        # A plain convolution with the flipped (and dilated) kernel.
        taps = np.arange(k - 1, -1, -1).reshape(k, 1)
        before = span - 1 - p_before
        after = extent - 1 + p_before
        phase = _Phase(taps[:, 0], before, after)
        return _AxisPlan(taps, d, before, after, 0, 0, extent, adjoint, adjoint_same, (phase,), 0)

    def tap_range(start: int) -> tuple[int, int]:
        # v with 0 <= v * s + r + start < span for some phase r in [0, s).
        return -((start + s - 1) // s), (span - 1 - start) // s

    # Start the phase grid `crop` rows before the requested window when that saves a tap.
    v_min, v_max = tap_range(p_before)
    crop = 0
    shifted = p_before % s
    if shifted:
        lo, hi = tap_range(p_before - shifted)
        if hi - lo < v_max - v_min:
            v_min, v_max, crop = lo, hi, shifted
    start = p_before - crop
    count = v_max - v_min + 1
    taps = np.full((count, s), k, dtype=np.int64)
    for j in range(count):
        for r in range(s):
            t = (v_max - j) * s + r + start
            if 0 <= t < span and t % d == 0:
                taps[j, r] = t // d
    # Phase rows q in [0, Q) with Q = n - 1 + q_extra cover the output plus `crop` rows.
    q_extra = -(-(extent + crop) // s)
    # Split path: output phase r is out[q * s + r] = sum_v x[q - v] * w_eff[v * s + r + p_before]
    # over the v where that tap exists; every phase computes Q = n - 1 + ceil(extent / s) rows.
    split_extra = -(-extent // s)
    phases = []
    for r in range(s):
        valid = [
            v
            for v in range(-((p_before + r) // s) - 1, (span - 1 - p_before - r) // s + 2)
            if 0 <= v * s + r + p_before < span and (v * s + r + p_before) % d == 0
        ]
        if not valid:  # no kernel tap lands on this phase: one zero tap
            phases.append(_Phase(np.array([k]), 0, split_extra - 1))
            continue
        lo, hi = min(valid), max(valid)
        phase_taps = np.full((hi - lo + 1,), k, dtype=np.int64)
        for j in range(hi - lo + 1):
            t = (hi - j) * s + r + p_before
            if 0 <= t < span and t % d == 0:
                phase_taps[j] = t // d
        phases.append(_Phase(phase_taps, hi, split_extra - 1 - lo))
    return _AxisPlan(
        taps=taps,
        conv_dilation=1,
        pad_before=v_max,
        pad_after=q_extra - 1 - v_min,
        crop_before=crop,
        crop_after=q_extra * s - extent - crop,
        extent=extent,
        adjoint_pads=adjoint,
        adjoint_same=adjoint_same,
        phases=tuple(phases),
        split_crop_after=split_extra * s - extent,
    )


def _pad_or_crop(x: tf.Tensor, pairs: Sequence[tuple[int, int]]) -> tf.Tensor:
    """Pads the spatial dims of `x` by `pairs`; negative amounts crop instead."""
    if any(b < 0 or a < 0 for b, a in pairs):
        index = [slice(None)]
        for b, a in pairs:
            index.append(slice(max(-b, 0), a if a < 0 else None))
        x = x[tuple(index)]
    if any(b > 0 or a > 0 for b, a in pairs):
        x = tf.pad(x, [[0, 0], *[[max(b, 0), max(a, 0)] for b, a in pairs], [0, 0]])
    return x


def _dims(x: tf.Tensor) -> list:
    """Static sizes where known, scalar tensors elsewhere."""
    dynamic = tf.shape(x)
    return [dynamic[i] if size is None else size for i, size in enumerate(x.shape)]


def _phases_to_space(y: tf.Tensor, strides: Sequence[int], filters: int) -> tf.Tensor:
    """Interleaves phases: `(B, *Q, prod(s) * F)` -> `(B, *(Q * s), F)`.

    Channel `(r_1, ..., r_D, f)` (row-major) of phase row `q_a` goes to position
    `q_a * s_a + r_a`; for 2D with equal strides this is `depth_to_space`.
    """
    rank = len(strides)
    for axis in range(rank):
        s = strides[axis]
        if s == 1:
            continue
        dims = _dims(y)
        batch_and_done, q, later = dims[: axis + 1], dims[axis + 1], dims[axis + 2 : -1]
        rest = math.prod(strides[axis + 1 :]) * filters
        if later:
            # (P, Q_a, R, s_a, rest) -> (P, Q_a, s_a, R, rest)
            later_size = (
                math.prod(later)
                if all(isinstance(v, int) for v in later)
                else tf.reduce_prod(tf.stack(later))
            )
            y = tf.reshape(y, [-1, q, later_size, s, rest])
            y = tf.transpose(y, [0, 1, 3, 2, 4])
        y = tf.reshape(y, [*batch_and_done, q * s, *later, rest])
    return y


def _split_pads(
    pads: Sequence[tuple[int, int]],
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Splits padding amounts into the crops (the negative parts) and the pads (the rest)."""
    crops = [(min(b, 0), min(a, 0)) for b, a in pads]
    return crops, [(max(b, 0), max(a, 0)) for b, a in pads]


def _convolution(
    x: tf.Tensor,
    kernel: tf.Tensor,
    strides: Sequence[int],
    dilation: Sequence[int],
    pads: Sequence[tuple[int, int]] | str,
) -> tf.Tensor:
    """Convolution of `x` zero-padded by `pads` (`(before, after)` >= 0 per spatial dim, or
    `"SAME"` for TensorFlow's rule).

    1D runs as 2D; undilated 2D pads inside `conv2d` (explicit padding: no padded copy of `x`);
    3D calls `conv3d` with an explicit layout, since the one reached through
    `tf.nn.convolution` records no `data_format` and cannot be differentiated eagerly.
    """
    rank = len(strides)
    if rank == 1:
        y = _convolution(
            tf.expand_dims(x, 1),
            tf.expand_dims(kernel, 0),
            (1, *strides),
            (1, *dilation),
            pads if pads == "SAME" else [(0, 0), *pads],
        )
        return tf.squeeze(y, 1)
    if pads == "SAME" and all(d == 1 for d in dilation):
        conv = tf.nn.conv2d if rank == 2 else tf.nn.conv3d
        return conv(x, kernel, strides=[1, *strides, 1], padding="SAME")
    if rank == 2 and all(d == 1 for d in dilation):
        explicit = [[0, 0], *[[b, a] for b, a in pads], [0, 0]]
        padding = explicit if any(map(any, explicit)) else "VALID"
        return tf.nn.conv2d(x, kernel, strides=[1, *strides, 1], padding=padding)
    x = _pad_or_crop(x, pads)
    if rank == 3:
        return tf.nn.conv3d(
            x,
            kernel,
            strides=[1, *strides, 1],
            padding="VALID",
            data_format="NDHWC",
            dilations=[1, *dilation, 1],
        )
    # tf.nn.convolution differentiates dilated convolutions on CPU (space-to-batch).
    return tf.nn.convolution(x, kernel, strides=strides, padding="VALID", dilations=dilation)


def _conv_kernel_gradient(
    inputs: tf.Tensor,
    kernel_shape: tf.Tensor,
    out_grad: tf.Tensor,
    strides: Sequence[int],
    pads: Sequence[tuple[int, int]] | str,
) -> tf.Tensor:
    """Gradient of `_convolution(inputs, kernel, strides, 1, pads)` with respect to the kernel,
    given the gradient `out_grad` of its output. (Explicit amounts pad a copy of `inputs`:
    TensorFlow's CPU kernel gradient with `EXPLICIT` padding is about twice as slow.)"""
    rank = len(strides)
    if rank == 1:
        kernel = _conv_kernel_gradient(
            tf.expand_dims(inputs, 1),
            tf.concat([[1], kernel_shape], axis=0),
            tf.expand_dims(out_grad, 1),
            (1, *strides),
            pads if pads == "SAME" else [(0, 0), *pads],
        )
        return tf.squeeze(kernel, 0)
    if pads != "SAME":
        inputs, pads = _pad_or_crop(inputs, pads), "VALID"
    backprop = tf.raw_ops.Conv2DBackpropFilter if rank == 2 else tf.raw_ops.Conv3DBackpropFilterV2
    return backprop(
        input=inputs,
        filter_sizes=kernel_shape,
        out_backprop=out_grad,
        strides=[1, *strides, 1],
        padding=pads,
    )


def _transpose_split_2d(x: tf.Tensor, kernel: tf.Tensor, plans: Sequence[_AxisPlan]) -> tf.Tensor:
    """2D transpose convolution, one exact convolution per output phase, interleaved.

    Each phase `(r_h, r_w)` is a stride-1 convolution with only the kernel taps that land on it
    (no zero taps, so the multiply count equals the direct method's), with explicit padding.
    Phases are interleaved by stacking next to their axis, which a reshape then merges into it.
    """
    plan_h, plan_w = plans
    padded = tf.pad(kernel, [[0, 1], [0, 1], [0, 0], [0, 0]])  # index k: a zero tap
    dilation = (plan_h.conv_dilation, plan_w.conv_dilation)
    rows = []
    for phase_h in plan_h.phases:
        by_rows = tf.gather(padded, phase_h.taps, axis=0)
        cols = []
        for phase_w in plan_w.phases:
            phase_kernel = tf.transpose(tf.gather(by_rows, phase_w.taps, axis=1), [0, 1, 3, 2])
            pads = [
                (phase_h.pad_before, phase_h.pad_after),
                (phase_w.pad_before, phase_w.pad_after),
            ]
            crops, positive = _split_pads(pads)
            y = _convolution(_pad_or_crop(x, crops), phase_kernel, (1, 1), dilation, positive)
            cols.append(y)
        rows.append(_interleave(cols, axis=2))
    y = _interleave(rows, axis=1)
    crops = [(0, -plan_h.split_crop_after), (0, -plan_w.split_crop_after)]
    return _pad_or_crop(y, crops)


def _interleave(parts: Sequence[tf.Tensor], axis: int) -> tf.Tensor:
    """`parts[r][..., q, ...]` -> `y[..., q * len(parts) + r, ...]` along `axis`."""
    if len(parts) == 1:
        return parts[0]
    y = tf.stack(parts, axis=axis + 1)
    dims = _dims(y)
    return tf.reshape(y, [*dims[:axis], dims[axis] * len(parts), *dims[axis + 2 :]])


class _ConvTranspose(tf.keras.layers.Layer):
    """The rank-generic core of `ConvTranspose1D`, `ConvTranspose2D` and `ConvTranspose3D`."""

    rank: int = 2

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: int | str | Sequence = 0,
        output_padding: int | Sequence[int] | None = None,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        use_bias: bool = True,
        activation=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        rank = self.rank
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"`filters` must be a positive integer, got {filters!r}.")
        self.filters = filters
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"`groups` must be a positive integer, got {groups!r}.")
        if filters % groups:
            raise ValueError(
                f"`filters`={filters} must be divisible by `groups`={groups} (each group has "
                "filters // groups output channels)."
            )
        self.groups = groups
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.dilation = normalize_tuple(dilation, rank, "dilation")
        self.padding = normalize_padding(padding, rank)
        if output_padding is None:
            self.output_padding = None
        else:
            self.output_padding = normalize_tuple(output_padding, rank, "output_padding", minimum=0)
            for op, s, d in zip(self.output_padding, self.strides, self.dilation, strict=True):
                limit, what = (d, "dilation (stride is 1)") if s == 1 else (s, "stride")
                if op >= limit:
                    raise ValueError(
                        f"`output_padding` must be smaller than the {what} in every dimension, "
                        f"got output_padding={self.output_padding}, strides={self.strides}, "
                        f"dilation={self.dilation}."
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
        self._plans = [
            _plan_axis(k, s, d, pad, None if self.output_padding is None else op)
            for k, s, d, pad, op in zip(
                self.kernel_size,
                self.strides,
                self.dilation,
                (self.padding,) * rank if isinstance(self.padding, str) else self.padding,
                self.output_padding or (0,) * rank,
                strict=True,
            )
        ]
        self._tap_index = self._flat_tap_index()

    def _flat_tap_index(self) -> np.ndarray:
        """Index into the zero-padded, flattened kernel for every (taps..., phases...) entry."""
        rank = self.rank
        index = np.zeros([1] * (2 * rank), dtype=np.int64)
        for axis, plan in enumerate(self._plans):
            shape = [1] * (2 * rank)
            shape[axis], shape[rank + axis] = plan.taps.shape
            stride = math.prod(k + 1 for k in self.kernel_size[axis + 1 :])
            index = index + plan.taps.reshape(shape) * stride
        return index.astype(np.int32)

    def _output_size(self, size: int | None, axis: int) -> int | None:
        if size is None:
            return None
        return (size - 1) * self.strides[axis] + self._plans[axis].extent

    def _check_shape(self, input_shape) -> None:
        check_input_rank(self.name, input_shape, self.rank + 2, _LAYOUTS[self.rank])
        if input_shape[-1] is None:
            raise ValueError(
                f"Layer '{self.name}' needs a known number of input channels, "
                f"got shape {tuple(input_shape)}."
            )
        if input_shape[-1] % self.groups:
            raise ValueError(
                f"Layer '{self.name}': input channels {input_shape[-1]} must be divisible by "
                f"`groups`={self.groups}."
            )
        for axis, size in enumerate(input_shape[1:-1]):
            out = self._output_size(size, axis)
            if out is not None and out < 1:
                raise ValueError(
                    f"Layer '{self.name}': input size {size} in spatial dimension {axis} gives "
                    f"output size {out} < 1 with kernel_size={self.kernel_size}, "
                    f"strides={self.strides}, padding={self.padding}, dilation={self.dilation}, "
                    f"output_padding={self.output_padding}; use less padding or a larger input."
                )

    def build(self, input_shape):
        input_shape = tuple(tf.TensorShape(input_shape).as_list())
        self._check_shape(input_shape)
        kernel_shape = (*self.kernel_size, self.filters, input_shape[-1] // self.groups)
        add_kernel_and_bias(self, kernel_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(tf.TensorShape(input_shape).as_list())
        self._check_shape(input_shape)
        spatial = [self._output_size(n, a) for a, n in enumerate(input_shape[1:-1])]
        return (input_shape[0], *spatial, self.filters)

    def _stacked_phase_kernel(self, kernel: tf.Tensor) -> tf.Tensor:
        """The phase kernels of `kernel` on a common window, stacked along the output channels:
        shape `(*taps, in_channels, prod(strides) * filters)`."""
        rank = self.rank
        filters, in_channels = kernel.shape[-2], kernel.shape[-1]
        padded = tf.pad(kernel, [[0, 1]] * rank + [[0, 0], [0, 0]])
        flat = tf.reshape(padded, [-1, filters, in_channels])
        taps = tf.gather(flat, self._tap_index)  # (*T, *s, F, C)
        order = [*range(rank), 2 * rank + 1, *range(rank, 2 * rank), 2 * rank]
        stacked = tf.transpose(taps, order)  # (*T, C, *s, F)
        return tf.reshape(stacked, [*self._tap_index.shape[:rank], in_channels, -1])

    def _transpose(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        """The transpose convolution without bias."""
        if self.rank == 3:
            return self._transpose_stacked(inputs, kernel)
        if self.rank == 2:
            return _transpose_split_2d(inputs, kernel, self._plans)
        dummy = _plan_axis(1, 1, 1, (0, 0), None)
        y = _transpose_split_2d(
            tf.expand_dims(inputs, 1), tf.expand_dims(kernel, 0), [dummy, *self._plans]
        )
        return tf.squeeze(y, 1)

    def _transpose_stacked(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        """All phase kernels stacked in one stride-1 convolution, then a pixel shuffle."""
        crops, pads = _split_pads([(p.pad_before, p.pad_after) for p in self._plans])
        y = _convolution(
            _pad_or_crop(inputs, crops),
            self._stacked_phase_kernel(kernel),
            strides=(1,) * self.rank,
            dilation=[p.conv_dilation for p in self._plans],
            pads=pads,
        )
        y = _phases_to_space(y, self.strides, kernel.shape[-2])
        if any(p.crop_before or p.crop_after for p in self._plans):
            y = _pad_or_crop(y, [(-p.crop_before, -p.crop_after) for p in self._plans])
        return y

    def _transpose_with_adjoint_gradient(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        """`_transpose` whose gradient is computed by the adjoint identity.

        A transpose convolution is the adjoint of a strided convolution, so its gradient with
        respect to the input is the strided convolution of the output gradient with the same
        kernel (in Keras's layout `(*kernel_size, filters, in_channels)` it is already a
        convolution kernel), and its gradient with respect to the kernel is that convolution's
        kernel gradient against the input. This is cheaper than differentiating the phase
        decomposition (pixel shuffle, crops and phase-kernel gather).
        """
        strides, dilation = self.strides, self.dilation
        adjoint_pads = [p.adjoint_pads for p in self._plans]
        same = all(p.adjoint_same for p in self._plans)

        @tf.custom_gradient
        def transpose(x, w):
            def gradient(upstream):
                if same:
                    pads = "SAME"
                else:
                    crops, pads = _split_pads(adjoint_pads)
                    upstream = _pad_or_crop(upstream, crops)
                grad_x = _convolution(upstream, w, strides, dilation, pads)
                grad_w = _conv_kernel_gradient(upstream, tf.shape(w), x, strides, pads)
                return grad_x, grad_w

            return self._transpose(x, w), gradient

        return transpose(inputs, kernel)

    def _transpose_group(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        """The transpose convolution of one group (or of all channels when `groups=1`)."""
        # TensorFlow's CPU kernel gradients have no dilation: differentiate the phases then.
        if all(d == 1 for d in self.dilation):
            return self._transpose_with_adjoint_gradient(inputs, kernel)
        return self._transpose(inputs, kernel)

    def call(self, inputs):
        kernel = tf.cast(tf.convert_to_tensor(self.kernel), inputs.dtype)
        if self.groups == 1:
            y = self._transpose_group(inputs, kernel)
        else:
            # Group i: input channels [i * C/g, (i + 1) * C/g) -> filters [i * F/g, (i + 1) * F/g).
            y = tf.concat(
                [
                    self._transpose_group(x, w)
                    for x, w in zip(
                        tf.split(inputs, self.groups, axis=-1),
                        tf.split(kernel, self.groups, axis=-2),
                        strict=True,
                    )
                ],
                axis=-1,
            )
        return add_bias_and_activate(self, y)

    def get_config(self):
        config = super().get_config()
        config.update(kernel_and_bias_config(self))
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "output_padding": self.output_padding,
                "dilation": self.dilation,
                "groups": self.groups,
            }
        )
        return config


_ARGS_DOC = """
    Args:
        filters: number of output channels.
        kernel_size: an int or a tuple of {rank} ints.
        strides: an int or a tuple of {rank} ints (the upsampling factor).
        padding: an int, a tuple of {rank} ints, a tuple of {rank} `(before, after)` pairs
            (cropped from the full output), `"valid"` or `"same"` (as Keras's transpose
            convolutions).
        output_padding: `None`, an int or a tuple of {rank} ints added to the end of each output
            dimension; each must be smaller than the stride (than the dilation where the stride
            is 1).
        dilation: an int or a tuple of {rank} ints (`1`: no gaps between kernel taps).
        groups: input channels and filters are split into this many groups, each transposed
            with its own kernel slice (PyTorch's `groups`, ONNX's `group`); both must be
            divisible by it.
        use_bias: whether to add a bias per filter.
        activation: activation applied to the output (name or callable), `None` for none.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer: as Keras.

    Weights: `kernel` of shape `(*kernel_size, filters, in_channels // groups)` (the layout of
    Keras's transpose convolutions, so weights transfer either way; as `Conv*`, the input-channel
    axis holds one group's channels and the filter axis all filters), then `bias` of shape
    `(filters,)`. Filters `[i * F/g, (i + 1) * F/g)` belong to group `i`. PyTorch's and ONNX's
    weight `w` of shape `(in_channels, filters // groups, *kernel_size)` maps to it as
    `w.reshape(g, C // g, F // g, *k)`, axes moved to `(*k, g, F // g, C // g)`, reshaped to
    `(*k, F, C // g)`; in 2D: `w.reshape(g, C//g, F//g, kh, kw).transpose(3, 4, 0, 2, 1)
    .reshape(kh, kw, F, C//g)` (with `groups=1`, `w.transpose(2, 3, 1, 0)`).

    Output size per dimension:
    `(n - 1) * s - (p_before + p_after) + d * (k - 1) + output_padding + 1`.
"""


@tf.keras.utils.register_keras_serializable(package="convzoo")
class ConvTranspose1D(_ConvTranspose):
    rank = 1


@tf.keras.utils.register_keras_serializable(package="convzoo")
class ConvTranspose2D(_ConvTranspose):
    rank = 2


@tf.keras.utils.register_keras_serializable(package="convzoo")
class ConvTranspose3D(_ConvTranspose):
    rank = 3


ConvTranspose1D.__doc__ = (
    """1D transpose convolution, from scratch (see the module docstring for the method).

    Input `(batch, steps, channels)`, output `(batch, new_steps, filters)`.
"""
    + _ARGS_DOC.format(rank=1)
    + """
    Example:
        >>> layer = ConvTranspose1D(8, 4, strides=2, padding=1)
        >>> layer(tf.zeros((2, 10, 3))).shape
        TensorShape([2, 20, 8])
"""
)
ConvTranspose2D.__doc__ = (
    """2D transpose convolution, from scratch (see the module docstring for the method).

    Input `(batch, height, width, channels)`, output `(batch, new_height, new_width, filters)`.
"""
    + _ARGS_DOC.format(rank=2)
    + """
    Example:
        >>> layer = ConvTranspose2D(32, 4, strides=2, padding="same")
        >>> layer(tf.zeros((1, 16, 16, 64))).shape
        TensorShape([1, 32, 32, 32])
        >>> grouped = ConvTranspose2D(8, 4, strides=2, padding=1, groups=4)  # PyTorch's groups
        >>> grouped(tf.zeros((1, 8, 8, 16))).shape, grouped.kernel.shape
        (TensorShape([1, 16, 16, 8]), TensorShape([4, 4, 8, 4]))
"""
)
ConvTranspose3D.__doc__ = (
    """3D transpose convolution, from scratch (see the module docstring for the method).

    Input `(batch, depth, height, width, channels)`, output
    `(batch, new_depth, new_height, new_width, filters)`.
"""
    + _ARGS_DOC.format(rank=3)
    + """
    Example:
        >>> layer = ConvTranspose3D(4, 3, strides=2, padding="same")
        >>> layer(tf.zeros((1, 4, 4, 4, 2))).shape
        TensorShape([1, 8, 8, 8, 4])
"""
)
