"""Padding of the spatial dimensions: the amounts ("same", "valid", ints, per-side tuples) and
the modes that fill them (the lecture's zero, mirror, replica and periodic padding).

Amounts. `padding` is accepted as
- an int `p`: `p` on both sides of every spatial dimension,
- a tuple of one int per spatial dimension: `(p_h, p_w)` on both sides of each,
- a tuple of one `(before, after)` pair per spatial dimension: `((top, bottom), (left, right))`,
- `"valid"`: no padding,
- `"same"`: TensorFlow's rule, so that `out = ceil(in / stride)`: the total
  `max((out - 1) * stride + dilation * (kernel - 1) + 1 - in, 0)` is split with the smaller half
  before (top/left) and the larger after (bottom/right).

Modes, shown on the row `a b c d` padded by 2 on each side:
- `"zeros"`:     `0 0 | a b c d | 0 0`
- `"reflect"`:   `c b | a b c d | c b`   (mirror without repeating the edge; pad < size)
- `"replicate"`: `a a | a b c d | d d`   (the edge value repeated)
- `"circular"`:  `c d | a b c d | a b`   (periodic; pad <= size)
- `"constant"`:  `v v | a b c d | v v`   (any constant `v`, the `padding_value`)

`PADDING_MODES` are the lecture's four; `"constant"` (`PADDING_MODE_CONSTANT`) is the fifth,
for graphs ported from ONNX and PyTorch that pad with another value than zero.

| here | ONNX `Pad` | PyTorch |
| --- | --- | --- |
| `"zeros"` | `mode="constant"`, `constant_value=0` | `padding_mode="zeros"` |
| `"constant"`, `padding_value=v` | `mode="constant"`, `constant_value=v` | `F.pad(..., value=v)` |
| `"reflect"` | `mode="reflect"` | `padding_mode="reflect"` |
| `"replicate"` | `mode="edge"` | `padding_mode="replicate"` |
| `"circular"` | `mode="wrap"` (opset 19) | `padding_mode="circular"` |

All modes are built from TFLite built-in ops (PAD, PADV2 for a non-zero constant, MIRROR_PAD,
TILE, STRIDED_SLICE, CONCATENATION) and export to ONNX.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PADDING_MODE_CONSTANT = "constant"
PADDING_NAMES = ("same", "valid")

PaddingAmounts = tuple[tuple[int, int], ...]


def check_padding_mode(mode: str) -> str:
    """Returns `mode` lower-cased if it is `"constant"` or one of `PADDING_MODES`.

    Raises:
        ValueError: for any other value, naming the accepted ones.
    """
    if isinstance(mode, str) and mode.lower() in (*PADDING_MODES, PADDING_MODE_CONSTANT):
        return mode.lower()
    raise _mode_error(mode)


def _mode_error(mode: object) -> ValueError:
    return ValueError(
        f"`padding_mode` must be {PADDING_MODE_CONSTANT!r} (filled with `padding_value`) or one "
        f"of {', '.join(map(repr, PADDING_MODES))}, got {mode!r}."
    )


def check_padding_value(value: float, mode: str) -> float:
    """Returns `value` as a float; it must be a real number, and zero unless `mode` is
    `"constant"` (the other modes take their values from the input, as in PyTorch's `F.pad`).

    Raises:
        ValueError: for a value that is not a real number, or a non-zero value with a mode
            other than `"constant"`.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"`padding_value` must be a real number, got {value!r}.")
    if value != 0 and mode != PADDING_MODE_CONSTANT:
        raise ValueError(
            f"`padding_value`={value!r} is used only with padding_mode="
            f"{PADDING_MODE_CONSTANT!r}, got padding_mode={mode!r}; pass "
            f"padding_mode={PADDING_MODE_CONSTANT!r} or leave `padding_value` at 0."
        )
    return float(value)


def normalize_padding(padding: int | str | Sequence, rank: int) -> str | PaddingAmounts:
    """Returns `"same"`, `"valid"` or one `(before, after)` pair per spatial dimension.

    Args:
        padding: an int, a tuple of `rank` ints, a tuple of `rank` `(before, after)` pairs,
            `"same"` or `"valid"` (case-insensitive).
        rank: the number of spatial dimensions.

    Raises:
        ValueError: for any other value, or a negative amount.
    """
    accepted = (
        f"an int >= 0, a tuple of {rank} ints >= 0, a tuple of {rank} (before, after) pairs "
        "of ints >= 0, 'same' or 'valid'"
    )
    if isinstance(padding, str):
        if padding.lower() in PADDING_NAMES:
            return padding.lower()
        raise ValueError(f"`padding` must be {accepted}, got {padding!r}.")

    def is_int(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if is_int(padding):
        pairs = ((padding, padding),) * rank
    elif isinstance(padding, Sequence) and len(padding) == rank:
        pairs = []
        for entry in padding:
            if is_int(entry):
                pairs.append((entry, entry))
            elif (
                isinstance(entry, Sequence)
                and not isinstance(entry, str)
                and len(entry) == 2
                and all(is_int(v) for v in entry)
            ):
                pairs.append((entry[0], entry[1]))
            else:
                raise ValueError(f"`padding` must be {accepted}, got {padding!r}.")
        pairs = tuple(pairs)
    else:
        raise ValueError(f"`padding` must be {accepted}, got {padding!r}.")
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"`padding` must be {accepted}, got {padding!r}.")
    return pairs


def same_padding(size: int, kernel_size: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" padding of one dimension as a `(before, after)` pair.

    `out = ceil(size / stride)`, total `= max((out - 1) * stride + dilation * (kernel_size - 1)
    + 1 - size, 0)`, `before = total // 2`, `after = total - before`.

    Example:
        >>> same_padding(8, 3, 2)
        (0, 1)
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel_size - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    padding: str | PaddingAmounts,
    spatial_shape: Sequence[int | None],
    kernel_size: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
) -> PaddingAmounts:
    """Turns a normalized `padding` into explicit `(before, after)` pairs.

    Args:
        padding: the output of `normalize_padding`.
        spatial_shape: the input's spatial sizes; they must be known for `"same"`.
        kernel_size, strides, dilation: one int per spatial dimension.

    Raises:
        ValueError: for `"same"` when a spatial size is unknown.
    """
    if padding == "valid":
        return ((0, 0),) * len(spatial_shape)
    if padding == "same":
        if any(size is None for size in spatial_shape):
            raise ValueError(
                f"padding='same' needs known spatial sizes, got {tuple(spatial_shape)}: "
                "give the model a fixed input shape or pass explicit padding amounts."
            )
        return tuple(
            same_padding(size, k, s, d)
            for size, k, s, d in zip(spatial_shape, kernel_size, strides, dilation, strict=True)
        )
    return tuple(padding)


def _slice_along(x: tf.Tensor, axis: int, start: int | None, stop: int | None) -> tf.Tensor:
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _repeat_edge(edge: tf.Tensor, times: int, axis: int) -> tf.Tensor:
    """Tiles a size-1 slice `times` times along `axis` (TFLite TILE)."""
    if times == 1:
        return edge
    multiples = [1] * len(edge.shape)
    multiples[axis] = times
    return tf.tile(edge, multiples)


def pad_spatial(
    x: tf.Tensor, pads: PaddingAmounts, mode: str = "zeros", value: float = 0.0
) -> tf.Tensor:
    """Pads the spatial dimensions of a channels-last tensor `(batch, *spatial, channels)`.

    Args:
        x: the input tensor.
        pads: one `(before, after)` pair per spatial dimension.
        mode: one of `PADDING_MODES` or `"constant"`.
        value: the fill value of `"constant"` (ONNX Pad's `constant_value`); must be 0
            with the other modes.

    Returns:
        The padded tensor; spatial size `n` becomes `before + n + after`.

    Raises:
        ValueError: for an unknown mode, a non-zero `value` without `"constant"`, or a pad too
            large for `reflect` (must be < size) or `circular` (must be <= size).

    Example:
        >>> row = tf.constant([[[1.0], [2.0]]])
        >>> pad_spatial(row, ((1, 2),), "constant", -1.0)[0, :, 0].numpy().tolist()
        [-1.0, 1.0, 2.0, -1.0, -1.0]
    """
    if mode not in (*PADDING_MODES, PADDING_MODE_CONSTANT):
        raise _mode_error(mode)
    value = check_padding_value(value, mode)
    if all(before == 0 and after == 0 for before, after in pads):
        return x
    full = [[0, 0], *[[before, after] for before, after in pads], [0, 0]]
    if mode == "zeros":
        return tf.pad(x, full)
    if mode == PADDING_MODE_CONSTANT:
        return tf.pad(x, full, constant_values=value)
    spatial_shape = x.shape[1:-1]
    for axis0, ((before, after), size) in enumerate(zip(pads, spatial_shape, strict=True)):
        if size is None:
            continue
        limit, rule = (size - 1, "< input size") if mode == "reflect" else (size, "<= input size")
        if mode != "replicate" and max(before, after) > limit:
            raise ValueError(
                f"padding_mode={mode!r} needs padding {rule} in every spatial dimension, got "
                f"padding ({before}, {after}) for spatial dimension {axis0} of size {size}."
            )
    if mode == "reflect":
        return tf.pad(x, full, mode="REFLECT")
    for axis0, (before, after) in enumerate(pads):
        axis = axis0 + 1
        parts = []
        if mode == "replicate":
            if before:
                edge = _slice_along(x, axis, 0, 1)
                parts.append(_repeat_edge(edge, before, axis))
            parts.append(x)
            if after:
                edge = _slice_along(x, axis, -1, None)
                parts.append(_repeat_edge(edge, after, axis))
        else:  # circular
            if before:
                parts.append(_slice_along(x, axis, -before, None))
            parts.append(x)
            if after:
                parts.append(_slice_along(x, axis, 0, after))
        if len(parts) > 1:
            x = tf.concat(parts, axis=axis)
    return x
