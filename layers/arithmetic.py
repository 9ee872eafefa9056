"""Convolution arithmetic: output sizes, parameter counts and receptive fields.

These are the lecture's formulas, made exact, for one spatial dimension at a time:

- convolution: `out = floor((n + p_before + p_after - d*(k-1) - 1) / s) + 1`
  (the lecture writes `2p` for symmetric padding; its slide shows a ceiling, but its own worked
  examples, 8x8 k3 s2 -> 3x3 and 640x480 k7 p3 s2 -> 320x240, need the floor),
- transpose convolution: `out = (n-1)*s - (p_before + p_after) + d*(k-1) + output_padding + 1`,
- pooling: the convolution formula with `stride = pool_size` by default and an optional
  `ceil_mode` (PyTorch's rounding: the last window must start inside the input or the left
  padding),
- receptive field of a stack: `r_l = r_{l-1} + (k_eff - 1) * j_{l-1}`, `j_l = j_{l-1} * s`,
  with `k_eff = d*(k-1) + 1` the dilated kernel extent.

Dilation follows the framework convention: `dilation=1` is a plain convolution. The lecture's
"dilation rate 1" (one skipped pixel between taps) is `dilation=2` here.

Example:
    >>> conv_output_size(8, 3, stride=2)
    3
    >>> conv_output_size(227, 11, stride=4)
    55
    >>> [rf.size for rf in receptive_field([(3, 1, 1), (3, 1, 1), (2, 2, 1)])]
    [3, 5, 6]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "ReceptiveField",
    "conv_output_size",
    "conv_parameter_count",
    "conv_transpose_output_size",
    "pool_output_size",
    "receptive_field",
]

Padding1D = int | str | Sequence[int]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive(value: object, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return value


def _check_size(size: object, name: str = "size") -> int | None:
    if size is None:
        return None
    return _check_positive(size, name)


def _dilated_extent(kernel_size: int, dilation: int) -> int:
    """`d*(k-1) + 1`: how many input positions one (dilated) kernel window spans."""
    return dilation * (kernel_size - 1) + 1


def _padding_pair(padding: Padding1D) -> tuple[int, int] | str:
    """An int or a `(before, after)` pair as a pair; `"same"`/`"valid"` lower-cased."""
    accepted = "an int >= 0, a (before, after) pair of ints >= 0, 'same' or 'valid'"
    if isinstance(padding, str):
        if padding.lower() in ("same", "valid"):
            return padding.lower()
        raise ValueError(f"`padding` must be {accepted}, got {padding!r}.")
    if _is_int(padding):
        pair = (padding, padding)
    elif isinstance(padding, Sequence) and len(padding) == 2 and all(_is_int(v) for v in padding):
        pair = (padding[0], padding[1])
    else:
        raise ValueError(f"`padding` must be {accepted}, got {padding!r}.")
    if min(pair) < 0:
        raise ValueError(f"`padding` must be {accepted}, got {padding!r}.")
    return pair


def _sliding_output_size(
    size: int | None,
    extent: int,
    stride: int,
    padding: tuple[int, int] | str,
    ceil_mode: bool,
    what: str,
) -> int | None:
    """Shared by convolution and pooling: `extent` is the dilated window size."""
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    before, after = (0, 0) if padding == "valid" else padding
    padded = size + before + after
    if extent > padded:
        raise ValueError(
            f"{what} larger than padded input: the window spans {extent} positions "
            f"(dilation*(kernel_size-1)+1) but the input has {size} + {before} + {after} = "
            f"{padded} positions; use a smaller kernel or dilation, or more padding."
        )
    span = padded - extent
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    # PyTorch's rule: the last window must start inside the input or the left padding.
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def conv_output_size(
    size: int | None,
    kernel_size: int,
    stride: int = 1,
    padding: Padding1D = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int | None:
    """Output length of a convolution along one spatial dimension.

    `out = floor((size + p_before + p_after - dilation*(kernel_size-1) - 1) / stride) + 1`,
    or with `ceil_mode` the ceiling (dropping a last window that would start in the right
    padding). `"same"` is TensorFlow's rule, `ceil(size / stride)`; `"valid"` is no padding.

    Args:
        size: input length, or `None` for unknown (then `None` is returned).
        kernel_size: kernel length `k`.
        stride: step `s` between windows.
        padding: an int `p` (both sides), a `(before, after)` pair, `"same"` or `"valid"`.
        dilation: spacing `d` between kernel taps (1 = plain convolution).
        ceil_mode: round up instead of down.

    Returns:
        The output length.

    Raises:
        ValueError: for non-positive sizes, kernels, strides or dilations, negative padding, or
            a dilated kernel larger than the padded input.

    Example:
        >>> conv_output_size(640, 7, stride=2, padding=3), conv_output_size(480, 7, 2, 3)
        (320, 240)
    """
    size = _check_size(size)
    kernel_size = _check_positive(kernel_size, "kernel_size")
    stride = _check_positive(stride, "stride")
    dilation = _check_positive(dilation, "dilation")
    return _sliding_output_size(
        size,
        _dilated_extent(kernel_size, dilation),
        stride,
        _padding_pair(padding),
        bool(ceil_mode),
        "kernel",
    )


def pool_output_size(
    size: int | None,
    pool_size: int,
    stride: int | None = None,
    padding: Padding1D = 0,
    ceil_mode: bool = False,
    dilation: int = 1,
) -> int | None:
    """Output length of a pooling window along one spatial dimension.

    Same formula as `conv_output_size` with `stride` defaulting to `pool_size`. With
    `ceil_mode=True` the division rounds up, but as in PyTorch a last window that would start
    in the right padding (at or beyond `size + p_before`) is dropped.

    Args:
        size: input length, or `None` for unknown.
        pool_size: window length.
        stride: step between windows; `None` means `pool_size`.
        padding: an int, a `(before, after)` pair, `"same"` or `"valid"`.
        ceil_mode: round up instead of down.
        dilation: spacing between window taps.

    Example:
        >>> pool_output_size(55, 3, 2), pool_output_size(6, 2, ceil_mode=True)
        (27, 3)
        >>> pool_output_size(5, 2, ceil_mode=True), pool_output_size(5, 2)
        (3, 2)
    """
    size = _check_size(size)
    pool_size = _check_positive(pool_size, "pool_size")
    stride = pool_size if stride is None else _check_positive(stride, "stride")
    dilation = _check_positive(dilation, "dilation")
    return _sliding_output_size(
        size,
        _dilated_extent(pool_size, dilation),
        stride,
        _padding_pair(padding),
        bool(ceil_mode),
        "pool window",
    )


def conv_transpose_output_size(
    size: int | None,
    kernel_size: int,
    stride: int = 1,
    padding: Padding1D = 0,
    output_padding: int | None = 0,
    dilation: int = 1,
) -> int | None:
    """Output length of a transpose convolution along one spatial dimension.

    `out = (size-1)*stride - (p_before + p_after) + dilation*(kernel_size-1)
    + output_padding + 1`, the inverse of `conv_output_size` (whose floor makes several input
    sizes map to one output size; `output_padding` in `[0, stride)` picks among them).

    Named paddings follow Keras's `Conv*DTranspose`:
    - `"valid"`: no padding, `(size-1)*stride + dilation*(kernel_size-1) + 1 + output_padding`.
    - `"same"`: `size*stride` when `output_padding` is 0; with `output_padding > 0`, Keras's
      explicit rule, padding `k_eff // 2` on both sides:
      `(size-1)*stride + k_eff - 2*(k_eff//2) + output_padding`.
    - `output_padding=None` reproduces Keras's default (inferred) shape exactly: `size*stride`
      for `"same"`, `size*stride + max(k_eff - stride, 0)` for `"valid"` (these differ from
      the formula above only when `k_eff < stride`); with explicit paddings `None` means 0.

    Args:
        size: input length, or `None` for unknown.
        kernel_size: kernel length `k`.
        stride: upsampling factor `s`.
        padding: an int, a `(before, after)` pair, `"same"` or `"valid"`; the padding of the
            convolution this one transposes (it is removed from the output).
        output_padding: extra rows added at the end, `0 <= output_padding < max(stride,
            dilation)`, or `None` (see above).
        dilation: spacing between kernel taps.

    Raises:
        ValueError: for bad arguments, or padding that leaves no output.

    Example:
        >>> conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1)
        6
        >>> conv_transpose_output_size(5, 4, stride=2, padding="same")
        10
    """
    size = _check_size(size)
    kernel_size = _check_positive(kernel_size, "kernel_size")
    stride = _check_positive(stride, "stride")
    dilation = _check_positive(dilation, "dilation")
    pad = _padding_pair(padding)
    if output_padding is not None and (
        not _is_int(output_padding) or not 0 <= output_padding < max(stride, dilation)
    ):
        raise ValueError(
            f"`output_padding` must be None or an integer in [0, max(stride, dilation)) = "
            f"[0, {max(stride, dilation)}), got {output_padding!r}."
        )
    if size is None:
        return None
    extent = _dilated_extent(kernel_size, dilation)
    if output_padding is None:
        if pad == "same":
            return size * stride
        if pad == "valid":
            return size * stride + max(extent - stride, 0)
        output_padding = 0
    if pad == "same":
        if output_padding == 0:
            return size * stride
        pad = (extent // 2, extent // 2)
    elif pad == "valid":
        pad = (0, 0)
    out = (size - 1) * stride - pad[0] - pad[1] + extent + output_padding
    if out < 1:
        raise ValueError(
            f"padding {padding!r} removes the whole transpose-convolution output: "
            f"(size-1)*stride + dilation*(kernel_size-1) + 1 + output_padding = "
            f"{out + pad[0] + pad[1]} positions before cropping {pad[0] + pad[1]}."
        )
    return out


def conv_parameter_count(
    in_channels: int,
    filters: int,
    kernel_size: int | Sequence[int],
    groups: int = 1,
    use_bias: bool = True,
) -> int:
    """Number of trainable parameters of a (grouped) convolution.

    `prod(kernel_size) * (in_channels / groups) * filters + (filters if use_bias else 0)`.

    Args:
        in_channels: input channels `C`.
        filters: output channels `F`.
        kernel_size: an int (1D) or one int per spatial dimension.
        groups: `C` and `F` are split into this many independent groups.
        use_bias: whether one bias per filter is counted.

    Raises:
        ValueError: for non-positive values or channels not divisible by `groups`.

    Example:
        >>> conv_parameter_count(3, 96, (11, 11))  # AlexNet conv1
        34944
        >>> conv_parameter_count(96, 256, (5, 5), groups=2)  # AlexNet conv2, two GPUs
        307456
    """
    in_channels = _check_positive(in_channels, "in_channels")
    filters = _check_positive(filters, "filters")
    groups = _check_positive(groups, "groups")
    kernel = (kernel_size,) if _is_int(kernel_size) else tuple(kernel_size)
    for k in kernel:
        _check_positive(k, "kernel_size")
    if in_channels % groups or filters % groups:
        raise ValueError(
            f"`groups`={groups} must divide both in_channels={in_channels} and filters={filters}."
        )
    return math.prod(kernel) * (in_channels // groups) * filters + (filters if use_bias else 0)


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of one unit after a layer, along one spatial dimension.

    Attributes:
        size: how many input positions one output unit sees (`r`).
        jump: distance in input positions between neighbouring output units (`j`, the
            product of the strides so far).
        start: input coordinate of the centre of the first output unit's receptive field
            (input pixel `i` has centre `i`; negative when it lies in the padding, and a
            half-integer for even kernels).
    """

    size: int
    jump: int
    start: float


def _spec_geometry(spec: Any, index: int) -> tuple[int, int, int, int]:
    """`(kernel_size, stride, dilation, pad_before)` of one `receptive_field` spec."""
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(spec) not in (3, 4):
            raise ValueError(
                f"receptive_field spec {index} must be a (kernel_size, stride, dilation) or "
                f"(kernel_size, stride, dilation, pad_before) tuple of ints or a layer, "
                f"got {spec!r}."
            )
        names = ("kernel_size", "stride", "dilation")
        kernel, stride, dilation = (
            _check_positive(v, f"{n} of spec {index}") for v, n in zip(spec[:3], names, strict=True)
        )
        pad_before = spec[3] if len(spec) == 4 else 0
        if not _is_int(pad_before) or pad_before < 0:
            raise ValueError(
                f"pad_before of spec {index} must be an integer >= 0, got {pad_before!r}."
            )
        return kernel, stride, dilation, pad_before

    def first(value: Any) -> Any:
        if isinstance(value, Sequence) and not isinstance(value, str):
            return value[0] if len(value) else None
        return value

    kernel = getattr(spec, "kernel_size", None)
    if kernel is None:
        kernel = getattr(spec, "pool_size", None)
    if kernel is None:
        raise ValueError(
            f"receptive_field spec {index} ({type(spec).__name__}) has no `kernel_size` or "
            "`pool_size`; pass layers without spatial extent (Dense, activations, "
            "normalization) as (1, 1, 1)."
        )
    kernel = first(kernel)
    stride = first(getattr(spec, "strides", None))
    stride = kernel if stride is None else stride
    dilation = getattr(spec, "dilation", None)
    if dilation is None:
        dilation = getattr(spec, "dilation_rate", 1)
    dilation = first(dilation)
    kernel, stride, dilation = (
        _check_positive(v, f"{n} of spec {index}")
        for v, n in zip(
            (kernel, stride, dilation), ("kernel_size", "strides", "dilation"), strict=True
        )
    )
    padding = getattr(spec, "padding", "valid")
    if isinstance(padding, str):
        if padding.lower() == "same":
            # TensorFlow's rule when the input size is a multiple of the stride.
            pad_before = max(_dilated_extent(kernel, dilation) - stride, 0) // 2
        else:
            pad_before = 0
    else:
        pair = first(padding)
        pad_before = first(pair)
    if not _is_int(pad_before) or pad_before < 0:
        raise ValueError(f"padding of spec {index} is not understood: {padding!r}.")
    return kernel, stride, dilation, pad_before


def receptive_field(specs: Sequence[Any]) -> list[ReceptiveField]:
    """Receptive field size, jump and start after each layer of a stack (one spatial dim).

    `r_l = r_{l-1} + (k_eff - 1) * j_{l-1}`, `j_l = j_{l-1} * s_l`,
    `start_l = start_{l-1} + ((k_eff - 1) / 2 - p_before) * j_{l-1}`, from `r_0 = j_0 = 1`,
    `start_0 = 0`, with `k_eff = d*(k-1) + 1`.

    Args:
        specs: one entry per layer, either a `(kernel_size, stride, dilation)` triple of ints
            (optionally a 4th int, the padding before, which only moves `start`) or a layer
            object with `kernel_size` or `pool_size`, `strides` and `dilation` (or Keras's
            `dilation_rate`) attributes, ints or tuples whose first entry is used, and
            optionally `padding` (`"same"` assumes the input size is a multiple of the
            stride). Layers without spatial extent (Dense, activations, normalization) are
            `(1, 1, 1)`.

    Returns:
        One `ReceptiveField` per spec, in order.

    Raises:
        ValueError: for a spec that is neither form or has non-positive values.

    Example:
        >>> lenet = [(5, 1, 1), (2, 2, 1), (5, 1, 1), (2, 2, 1)]
        >>> [(rf.size, rf.jump) for rf in receptive_field(lenet)]
        [(5, 1), (6, 2), (14, 2), (16, 4)]
    """
    if isinstance(specs, str | bytes) or not isinstance(specs, Sequence):
        raise ValueError(f"`specs` must be a list of layer specs, got {specs!r}.")
    size, jump, start = 1, 1, 0.0
    fields = []
    for index, spec in enumerate(specs):
        kernel, stride, dilation, pad_before = _spec_geometry(spec, index)
        extent = _dilated_extent(kernel, dilation)
        start = start + ((extent - 1) / 2 - pad_before) * jump
        size = size + (extent - 1) * jump
        jump = jump * stride
        fields.append(ReceptiveField(size=size, jump=jump, start=start))
    return fields
