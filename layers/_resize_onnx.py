"""ONNX Resize's resampling along one axis (which PyTorch's `F.interpolate` maps onto), as
interpolation matrices and gather indices for `layers.Resize`, and the rules of `Resize`'s
ONNX/PyTorch arguments (`resample_options`).

Everything is computed in float64 with the operations, in the order, of ONNX's reference
implementation (`onnx.reference.ops.op_resize`), so that the source coordinates, and with them
the pixel nearest interpolation picks at a tie, are the reference's. (ONNX Runtime divides in
float32, TensorFlow and PyTorch multiply by a float32 `in / out`: where `x_o` is exactly an
integer or a half, rounding can move nearest's pick to the neighbouring pixel. Measured for
given sizes in <= 12, out <= 20: TensorFlow's three nearest kernels pick the same pixels as
their ONNX modes here; ONNX Runtime, over half_pixel, asymmetric and align_corners with every
nearest_mode, picks 13 others.)

Three places follow the ONNX specification where the reference departs from it (ONNX Runtime
and PyTorch follow the specification too):

- `align_corners` divides by the integer output length minus one; the reference uses the
  fractional `scale * in_size` when a scale is given;
- `pytorch_half_pixel` maps every output of an axis of length 1 to source coordinate 0; the
  reference uses -0.5, and the half-pixel formula when `scale * in_size` is not exactly 1;
- `half_pixel_symmetric` with a given output length has offset 0 (it is `half_pixel`); the
  reference computes it from `out / in * in`, which float64 may round away from `out`.

And the taps are always the ones around `x_o`: onnx 1.23's reference picks them one pixel too
far left when `x_o` lies within rounding above an integer (10 -> 14 pixels, half_pixel:
`x_10 = 7 + 9e-16` reads pixel 6), where ONNX Runtime and this module read pixel 7.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from layers.resize import Resize

COORDINATE_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def source_coordinates(in_size: int, out_size: int, scale: float | None, mode: str) -> np.ndarray:
    """`x_original` of every output index along one axis (ONNX's coordinate_transformation_mode).

    Args:
        in_size: the input length.
        out_size: the output length (an integer).
        scale: the scale factor the output length came from (ONNX's `scales`), or None when
            the output length was given (ONNX's `sizes`: the scale is `out_size / in_size`).
        mode: one of `COORDINATE_MODES`.

    Returns:
        A float64 array of `out_size` source coordinates (not clamped to the input).
    """
    o = np.arange(out_size, dtype=np.float64)
    if mode == "align_corners":
        if out_size == 1:
            return np.zeros(1)
        return o * (in_size - 1) / (out_size - 1)
    if mode == "pytorch_half_pixel" and out_size == 1:
        return np.zeros(1)
    if scale is None:
        scale = out_size / in_size
    elif mode == "half_pixel_symmetric":  # with a given length the offset is 0 (half_pixel)
        adjustment = out_size / (scale * in_size)
        offset = in_size / 2 * (1 - adjustment)
        return offset + (o + 0.5) / scale - 0.5
    if mode == "asymmetric":
        return o / scale
    return (o + 0.5) / scale - 0.5


def nearest_indices(coordinates: np.ndarray, in_size: int, nearest_mode: str) -> np.ndarray:
    """The input index nearest interpolation reads for each source coordinate, clamped to the
    input (ONNX's nearest_mode; an integer coordinate is its own index)."""
    floor = np.floor(coordinates)
    fraction = coordinates - floor
    if nearest_mode == "floor":
        index = floor
    elif nearest_mode == "ceil":
        index = np.ceil(coordinates)
    elif nearest_mode == "round_prefer_floor":
        index = np.where(fraction <= 0.5, floor, floor + 1)
    else:  # round_prefer_ceil
        index = np.where(fraction < 0.5, floor, floor + 1)
    return np.clip(index, 0, in_size - 1).astype(np.int64)


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    """Keys's cubic convolution kernel at `|x|` (the reference's antialias form)."""
    x = np.abs(x)
    x2 = x * x
    x3 = x * x2
    near = (a + 2) * x3 - (a + 3) * x2 + 1
    far = a * x3 - 5 * a * x2 + 8 * a * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _tap_weights(
    ratio: np.ndarray, interpolation: str, scale: float, cubic_coeff_a: float, antialias: bool
) -> tuple[int, np.ndarray]:
    """The first tap's offset from the base index and the `(out, taps)` weights.

    `ratio` in (0, 1] is the source coordinate minus the base index, so tap `k` sits at
    `base + first + k` and lies `first + k - ratio` from the sample point.
    """
    r = ratio[:, None]
    a = cubic_coeff_a
    if antialias:
        stretch = min(scale, 1.0)  # the kernel is widened by 1 / scale when downsampling
        radius = 1 if interpolation == "bilinear" else 2
        first = int(np.floor(-radius / stretch) + 1)
        offsets = (np.arange(first, 2 - first) - r) * stretch
        if interpolation == "bilinear":
            weights = np.clip(1 - np.abs(offsets), 0, 1)
        else:
            weights = _cubic(offsets, a)
        return first, weights / weights.sum(axis=1, keepdims=True)
    if interpolation == "bilinear":
        return 0, np.concatenate([1 - r, r], axis=1)
    near = 1 - r
    far = near + 1
    weights = [
        ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
        ((a + 2) * r - (a + 3)) * r * r + 1,
        ((a + 2) * near - (a + 3)) * near * near + 1,
        ((a * far - 5 * a) * far + 8 * a) * far - 4 * a,
    ]
    return -1, np.concatenate(weights, axis=1)


def onnx_matrix(
    in_size: int,
    out_size: int,
    scale: float | None,
    interpolation: str,
    coordinate_mode: str,
    cubic_coeff_a: float = -0.75,
    exclude_outside: bool = False,
    antialias: bool = False,
) -> np.ndarray:
    """The `(out_size, in_size)` float64 matrix of ONNX Resize along one axis, for `bilinear`
    (ONNX's `linear`) and `bicubic` (`cubic`); `scale` as in `source_coordinates`.

    Taps outside the input read the border pixel (edge padding), or with `exclude_outside`
    get weight 0 and the others are renormalized. With `antialias` the kernel (triangle or
    cubic) is stretched by `1 / scale` when downsampling.

    Example:
        >>> onnx_matrix(2, 4, 2.0, "bilinear", "asymmetric")
        array([[1. , 0. ],
               [0.5, 0.5],
               [0. , 1. ],
               [0. , 1. ]])
    """
    coordinates = source_coordinates(in_size, out_size, scale, coordinate_mode)
    base = np.floor(coordinates)
    whole = coordinates == base
    base = np.where(whole, base - 1, base).astype(np.int64)  # the tap left of the point
    ratio = np.where(whole, 1.0, coordinates - base)
    if scale is None:
        scale = out_size / in_size
    first, weights = _tap_weights(ratio, interpolation, scale, cubic_coeff_a, antialias)
    taps = base[:, None] + first + np.arange(weights.shape[1])
    if exclude_outside:
        weights = np.where((taps < 0) | (taps >= in_size), 0.0, weights)
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    matrix = np.zeros((out_size, in_size), np.float64)
    rows = np.broadcast_to(np.arange(out_size)[:, None], taps.shape)
    np.add.at(matrix, (rows, np.clip(taps, 0, in_size - 1)), weights)
    return matrix


def onnx_nearest_indices(
    in_size: int, out_size: int, scale: float | None, coordinate_mode: str, nearest_mode: str
) -> np.ndarray:
    """The input index each output reads along one axis with ONNX Resize's `nearest`;
    `scale` as in `source_coordinates`.

    Example:
        >>> onnx_nearest_indices(4, 6, 1.5, "asymmetric", "floor")
        array([0, 0, 1, 2, 2, 3])
    """
    coordinates = source_coordinates(in_size, out_size, scale, coordinate_mode)
    return nearest_indices(coordinates, in_size, nearest_mode)


@dataclasses.dataclass(frozen=True)
class OnnxOptions:
    """How `layers.Resize` resamples under an ONNX coordinate mode (or `pytorch_compatible`).

    Attributes:
        coordinate_mode: one of `COORDINATE_MODES`.
        nearest_mode: one of `NEAREST_MODES` (nearest only).
        cubic_coeff_a: the cubic kernel's `a` (bicubic only).
        exclude_outside: drop taps outside the input and renormalize (bilinear, bicubic).
        antialias: stretch the kernel by `1 / scale` when downsampling (bilinear, bicubic).
        use_scale_factor: coordinates use a given scale factor (ONNX `scales`, PyTorch's
            `recompute_scale_factor=False`) instead of `out / in`.
        pytorch_shortcuts: replay PyTorch's shortcuts: nearest and (not antialiased) bilinear
            copy an axis whose output length equals its input length, and nearest reads pixel
            `o // 2` when the output is exactly twice the input, whatever the scale factor.
    """

    coordinate_mode: str
    nearest_mode: str = "round_prefer_floor"
    cubic_coeff_a: float = -0.75
    exclude_outside: bool = False
    antialias: bool = False
    use_scale_factor: bool = True
    pytorch_shortcuts: bool = False

    def axis_scale(
        self, in_size: int, out_size: int, scale_factor: float | None, interpolation: str
    ) -> float | None:
        """The scale the coordinates of one axis use, or None for `out / in`."""
        if scale_factor is None or not self.use_scale_factor:
            return None
        copies = out_size == in_size and interpolation != "bicubic" and not self.antialias
        doubles = out_size == 2 * in_size and interpolation == "nearest"
        if self.pytorch_shortcuts and (copies or doubles):
            return None  # out / in is 1 or 1/2: the copy and the `o // 2` PyTorch takes
        return scale_factor

    def matrix(
        self, in_size: int, out_size: int, scale_factor: float | None, interpolation: str
    ) -> np.ndarray:
        """The `(out_size, in_size)` matrix of one axis (bilinear, bicubic)."""
        scale = self.axis_scale(in_size, out_size, scale_factor, interpolation)
        return onnx_matrix(
            in_size,
            out_size,
            scale,
            interpolation,
            self.coordinate_mode,
            self.cubic_coeff_a,
            self.exclude_outside,
            self.antialias,
        )

    def indices(self, in_size: int, out_size: int, scale_factor: float | None) -> np.ndarray:
        """The input index each output reads along one axis (nearest)."""
        scale = self.axis_scale(in_size, out_size, scale_factor, "nearest")
        return onnx_nearest_indices(
            in_size, out_size, scale, self.coordinate_mode, self.nearest_mode
        )


def pytorch_options(
    interpolation: str, align_corners: bool, antialias: bool, recompute_scale_factor: bool
) -> OnnxOptions:
    """`torch.nn.functional.interpolate`'s resampling in ONNX's terms (see `layers.Resize`)."""
    if interpolation == "nearest":
        return OnnxOptions(
            "asymmetric",
            "floor",
            use_scale_factor=not recompute_scale_factor,
            pytorch_shortcuts=True,
        )
    return OnnxOptions(
        "align_corners" if align_corners else "half_pixel",
        cubic_coeff_a=-0.5 if antialias else -0.75,  # PyTorch's antialiased cubic is PIL's
        exclude_outside=antialias,
        antialias=antialias,
        use_scale_factor=not recompute_scale_factor,
        pytorch_shortcuts=True,
    )


def optional_bool(value: object, name: str) -> bool | None:
    """`value` if it is True, False or None, else `ValueError` naming `name`."""
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True, False or None, got {value!r}.")
    return value


def optional_number(value: object, name: str) -> float | None:
    """`value` as a float if it is a finite number, None if None, else `ValueError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number or None, got {value!r}.")
    return float(value)


# The ONNX arguments and the interpolations they apply to.
_ONNX_ARGUMENTS = {
    "nearest_mode": ("nearest",),
    "cubic_coeff_a": ("bicubic",),
    "exclude_outside": ("bilinear", "bicubic"),
}


def _pytorch_convention(
    interpolation: str, align_corners: bool, antialias: bool, given: dict
) -> None:
    """Checks the arguments of `pytorch_compatible=True` (see `Resize`)."""
    if given:
        raise ValueError(
            "`pytorch_compatible=True` sets coordinate_transformation_mode, nearest_mode, "
            "cubic_coeff_a and exclude_outside itself (from interpolation, align_corners and "
            f"antialias, as torch.nn.functional.interpolate does); leave them None, got {given}."
        )
    if interpolation == "area":
        raise ValueError(
            "`pytorch_compatible=True` takes interpolation 'nearest', 'bilinear' or 'bicubic'; "
            "PyTorch's 'area' is adaptive average pooling, not a resize, got 'area'."
        )
    if align_corners and (interpolation == "nearest" or antialias):
        raise ValueError(
            "`pytorch_compatible=True` takes align_corners=True only with bilinear or bicubic "
            "without antialias (PyTorch refuses it for nearest, and its antialiased form has "
            f"no ONNX equivalent), got interpolation={interpolation!r}, antialias={antialias!r}."
        )


def _onnx_convention(interpolation: str, align_corners: bool, mode: str, given: dict) -> None:
    """Checks the arguments of an ONNX `coordinate_transformation_mode` (see `Resize`)."""
    if align_corners:
        raise ValueError(
            "`align_corners=True` selects TensorFlow's TF1 resize; with "
            f"coordinate_transformation_mode={mode!r} leave it False (ONNX's aligned corners "
            "are coordinate_transformation_mode='align_corners')."
        )
    if interpolation == "area":
        raise ValueError(
            "interpolation='area' is TensorFlow's and has no ONNX Resize mode: it takes "
            f"coordinate_transformation_mode=None, got {mode!r}."
        )
    for name, value in given.items():
        if interpolation not in _ONNX_ARGUMENTS[name]:
            raise ValueError(
                f"`{name}` applies to interpolation {' or '.join(map(repr, _ONNX_ARGUMENTS[name]))}"
                f", got {name}={value!r} with interpolation={interpolation!r}."
            )


def resample_options(layer: Resize) -> OnnxOptions | None:
    """How a `layers.Resize` resamples, from its (checked) arguments: None for TensorFlow's
    resize, else ONNX's. Raises `ValueError` for arguments that do not go together."""
    given = {
        name: getattr(layer, name) for name in _ONNX_ARGUMENTS if getattr(layer, name) is not None
    }
    mode, recompute = layer.coordinate_transformation_mode, layer.recompute_scale_factor
    if recompute is not None and layer.size is not None:
        raise ValueError(
            "`recompute_scale_factor` applies with `scale_factor`, got "
            f"recompute_scale_factor={recompute!r} with size={layer.size}."
        )
    if layer.pytorch_compatible:
        if mode is not None:
            given = {"coordinate_transformation_mode": mode, **given}
        _pytorch_convention(layer.interpolation, layer.align_corners, layer.antialias, given)
        return pytorch_options(
            layer.interpolation, layer.align_corners, layer.antialias, bool(recompute)
        )
    if mode is None:
        if given or recompute is False:
            given = given if recompute is not False else {**given, "recompute_scale_factor": False}
            raise ValueError(
                "TensorFlow's resize (coordinate_transformation_mode=None, the default) fixes "
                "nearest_mode, cubic_coeff_a, exclude_outside and computes coordinates from "
                "in / out; give a coordinate_transformation_mode (or pytorch_compatible=True) "
                f"to set them, got {given}."
            )
        return None
    _onnx_convention(layer.interpolation, layer.align_corners, mode, given)
    return OnnxOptions(
        mode,
        nearest_mode=layer.nearest_mode or "round_prefer_floor",
        cubic_coeff_a=-0.75 if layer.cubic_coeff_a is None else layer.cubic_coeff_a,
        exclude_outside=bool(layer.exclude_outside),
        antialias=layer.antialias,
        use_scale_factor=not recompute,
    )
