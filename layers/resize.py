"""Resizing (interpolation) of images, `(batch, height, width, channels)`: nearest, bilinear,
bicubic and area, matching TensorFlow, converting to TFLite built-ins and to ONNX.

Every mode is linear and separable: output row `o` is a weighted sum of a few input rows, and
the same holds for columns. With `A_h` (out_height x in_height) and `A_w` (out_width x in_width),
per image and channel,

    y = A_h @ x @ A_w^T

`interpolation_matrix` builds these matrices with numpy from the static sizes, replaying
TensorFlow's kernels in float32 (coordinates, clamping, the tabulated cubic coefficients):

- `align_corners=False` is `tf.image.resize` (half-pixel centers), `scale = in / out`:
  - `nearest`:  `src = floor((o + 0.5) * scale)`, clamped to the image;
  - `bilinear`: `src = (o + 0.5) * scale - 0.5`, the two neighbours weighted by distance,
    clamped at the borders;
  - `bicubic`:  the same coordinates, Keys's cubic kernel with `a = -0.5` over 4 neighbours,
    read from TensorFlow's table (the fractional offset rounded to 1/1024); taps outside the
    image get weight 0 and the others are renormalized;
  - `area`:     each output pixel is the mean of the input box `[o * scale, (o + 1) * scale)`
    it covers, partly covered pixels weighted by the covered fraction.
- `align_corners=True` is `tf.compat.v1.image.resize(..., align_corners=True)`: corner pixel
  centers coincide, `scale = (in - 1) / (out - 1)`, `src = o * scale`; `nearest` rounds half
  away from zero, `bilinear` as above, `bicubic` is TF1's kernel (`a = -0.75`, borders
  replicated), `area` as above with this scale.
- `antialias=True` (bilinear, bicubic; half-pixel centers) is
  `tf.image.resize(..., antialias=True)`, TensorFlow's `ScaleAndTranslate`: the triangle or
  Keys cubic kernel is stretched by `in / out` when downsampling, so it averages instead of
  skipping pixels; taps outside the image are dropped and the weights renormalized
  (`antialiased_matrix`).

The layer computes `bicubic`, `area` and the antialiased modes as the two matrix products:
exact up to float rounding, differentiable (TensorFlow's `ResizeArea` has no gradient), and
BATCH_MATMUL/RESHAPE in TFLite (which has no bicubic, area or antialiased built-in) and MatMul
in ONNX. For `nearest` and
`bilinear` it calls TensorFlow's resize ops, which convert to the TFLite built-ins
RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR and to ONNX Resize, both matching TensorFlow (max
abs difference 0 for nearest and <= 1.5e-6 for bilinear, measured on 7x9 -> 12x5 in LiteRT and
ONNX Runtime), and are faster than dense matrices: measured on CPU, forward + backward in TF
1.3-4.4x faster (32x32x16 <-> 64x64, 28x28x1 -> 56x56, batch 32-64), one image in LiteRT up to
15x faster for bilinear.

`coordinate_transformation_mode` (or `pytorch_compatible=True`) switches from TensorFlow's
kernels to ONNX Resize's definition, onto which PyTorch's `F.interpolate` maps
(`layers._resize_onnx`): source coordinates per ONNX's mode, from the given scale factor
rather than `in / out`, exact cubic weights with `cubic_coeff_a`, `nearest_mode`,
`exclude_outside` and ONNX's antialiasing. Nearest reads its pixels with one GATHER (exact,
also for inf/NaN), bilinear and bicubic are the two matrix products above.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from layers._args import check_choice, check_input_rank
from layers._resize_onnx import (
    COORDINATE_MODES,
    NEAREST_MODES,
    optional_bool,
    optional_number,
    resample_options,
)

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area")

_CUBIC_TABLE_SIZE = 1024

# Modes computed with TensorFlow's resize kernels rather than matrices (see the module docstring).
_BUILTIN_METHODS = {
    "nearest": tf.image.ResizeMethod.NEAREST_NEIGHBOR,
    "bilinear": tf.image.ResizeMethod.BILINEAR,
}


def _resize_scale(in_size: int, out_size: int, align_corners: bool) -> np.float32:
    """TensorFlow's `CalculateResizeScale`, in float32."""
    if align_corners and out_size > 1:
        return np.float32(in_size - 1) / np.float32(out_size - 1)
    return np.float32(in_size) / np.float32(out_size)


def _cubic_table(a: float) -> np.ndarray:
    """TensorFlow's tabulated cubic coefficients: row i holds the weights of the near and the
    far taps at distance `i / 1024` from the sample point."""
    x = (np.arange(_CUBIC_TABLE_SIZE + 1) / _CUBIC_TABLE_SIZE).astype(np.float32)
    x = x.astype(np.float64)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    x = x + 1.0
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.stack([near, far], axis=1).astype(np.float32)


def _nearest_matrix(in_size: int, out_size: int, align_corners: bool) -> np.ndarray:
    scale = _resize_scale(in_size, out_size, align_corners)
    matrix = np.zeros((out_size, in_size), np.float64)
    for o in range(out_size):
        if align_corners:
            # roundf: half away from zero.
            source = int(np.floor(np.float32(o) * scale + np.float32(0.5)))
        else:
            source = int(np.floor((np.float32(o) + np.float32(0.5)) * scale))
        matrix[o, min(max(source, 0), in_size - 1)] = 1.0
    return matrix


def _bilinear_matrix(in_size: int, out_size: int, align_corners: bool) -> np.ndarray:
    scale = _resize_scale(in_size, out_size, align_corners)
    matrix = np.zeros((out_size, in_size), np.float64)
    for o in range(out_size):
        if align_corners:
            source = np.float32(o) * scale
        else:
            source = (np.float32(o) + np.float32(0.5)) * scale - np.float32(0.5)
        floor = np.floor(source)
        lower = max(int(floor), 0)
        upper = min(int(np.ceil(source)), in_size - 1)
        lerp = np.float32(source - floor)
        matrix[o, lower] += 1.0 - lerp
        matrix[o, upper] += lerp
    return matrix


def _bicubic_matrix(in_size: int, out_size: int, align_corners: bool) -> np.ndarray:
    scale = _resize_scale(in_size, out_size, align_corners)
    keys = not align_corners  # half-pixel centers use Keys's a = -0.5, TF1 used a = -0.75
    table = _cubic_table(-0.5 if keys else -0.75)
    matrix = np.zeros((out_size, in_size), np.float64)
    for o in range(out_size):
        if keys:
            source = (np.float32(o) + np.float32(0.5)) * scale - np.float32(0.5)
        else:
            source = np.float32(o) * scale
        base = int(np.floor(source))
        offset = int(np.rint(np.float32(source - np.float32(base)) * _CUBIC_TABLE_SIZE))
        weights = np.array(
            [
                table[offset, 1],
                table[offset, 0],
                table[_CUBIC_TABLE_SIZE - offset, 0],
                table[_CUBIC_TABLE_SIZE - offset, 1],
            ],
            np.float32,
        )
        taps = np.arange(base - 1, base + 3)
        clamped = np.clip(taps, 0, in_size - 1)
        if keys:
            weights = np.where(clamped == taps, weights, np.float32(0))
            total = weights.sum(dtype=np.float32)
            if abs(total) >= 1000.0 * np.finfo(np.float32).tiny:
                weights = weights * (np.float32(1) / total)
        np.add.at(matrix[o], clamped, weights)
    return matrix


def _area_matrix(in_size: int, out_size: int, align_corners: bool) -> np.ndarray:
    scale = _resize_scale(in_size, out_size, align_corners)
    if scale == 0:  # one input pixel with aligned corners: TensorFlow copies it
        return np.ones((out_size, in_size), np.float64)
    matrix = np.zeros((out_size, in_size), np.float64)
    for o in range(out_size):
        start = np.float32(o) * scale
        end = np.float32(o + 1) * scale
        for i in range(int(np.floor(start)), int(np.ceil(end))):
            if i < start:
                covered = scale if i + 1 > end else np.float32(i + 1) - start
            else:
                covered = end - np.float32(i) if i + 1 > end else 1.0
            matrix[o, min(max(i, 0), in_size - 1)] += covered
    return matrix / scale


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.where(x < 1, np.float32(1) - x, np.float32(0)).astype(np.float32)


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    near = ((np.float32(1.5) * x - np.float32(2.5)) * x) * x + np.float32(1)
    far = ((np.float32(-0.5) * x + np.float32(2.5)) * x - np.float32(4)) * x + np.float32(2)
    return np.where(x < 1, near, np.where(x < 2, far, np.float32(0))).astype(np.float32)


_ANTIALIAS_KERNELS = {"bilinear": (_triangle, 1.0), "bicubic": (_keys_cubic, 2.0)}


def antialiased_matrix(in_size: int, out_size: int, interpolation: str) -> np.ndarray:
    """The `(out_size, in_size)` matrix of `tf.image.resize(..., antialias=True)` for
    `bilinear` (triangle kernel) and `bicubic` (Keys cubic): TensorFlow's `ScaleAndTranslate`
    with the kernel stretched by `in / out` when downsampling (a low-pass filter), taps
    outside the image dropped and the weights renormalized."""
    kernel, radius = _ANTIALIAS_KERNELS[interpolation]
    scale = np.float32(out_size) / np.float32(in_size)
    inv_scale = np.float32(1.0 / np.float64(scale))
    kernel_scale = max(inv_scale, np.float32(1))
    reach = np.float32(radius) * kernel_scale
    matrix = np.zeros((out_size, in_size), np.float64)
    for o in range(out_size):
        sample = (np.float32(o) + np.float32(0.5)) * inv_scale
        start = int(np.ceil(sample - reach - np.float32(0.5)))
        end = int(np.floor(sample + reach - np.float32(0.5)))
        start, end = min(max(start, 0), in_size - 1), min(max(end, 0), in_size - 1) + 1
        sources = np.arange(start, end)
        positions = sources.astype(np.float32) + np.float32(0.5) - sample
        weights = kernel(np.abs(positions * (np.float32(1) / kernel_scale)))
        total = np.float32(0)
        for w in weights:
            total = np.float32(total + w)
        if abs(total) >= 1000.0 * np.finfo(np.float32).tiny:
            matrix[o, start:end] = weights * (np.float32(1) / total)
    return matrix


_MATRICES = {
    "nearest": _nearest_matrix,
    "bilinear": _bilinear_matrix,
    "bicubic": _bicubic_matrix,
    "area": _area_matrix,
}


def interpolation_matrix(
    in_size: int, out_size: int, interpolation: str, align_corners: bool = False
) -> np.ndarray:
    """The `(out_size, in_size)` matrix that resizes one axis the way TensorFlow does.

    Example:
        >>> interpolation_matrix(2, 4, "bilinear")
        array([[1.  , 0.  ],
               [0.75, 0.25],
               [0.25, 0.75],
               [0.  , 1.  ]])
    """
    interpolation = check_choice(interpolation, INTERPOLATIONS, "interpolation")
    return _MATRICES[interpolation](in_size, out_size, align_corners)


def _positive_pair(value, name: str, kind: type | tuple[type, ...]) -> tuple:
    values = (value, value) if not isinstance(value, Sequence) else tuple(value)
    if len(values) != 2 or not all(
        isinstance(v, kind) and not isinstance(v, bool) and v > 0 for v in values
    ):
        what = "integer" if kind is int else "number"
        raise ValueError(
            f"`{name}` must be a positive {what} or a tuple of 2 such (height, width), "
            f"got {value!r}."
        )
    return values


@tf.keras.utils.register_keras_serializable(package="convzoo")
class Resize(tf.keras.layers.Layer):
    """Resizes images to a fixed size or by a scale factor (nearest, bilinear, bicubic, area) as
    TensorFlow, ONNX Resize or PyTorch's `F.interpolate` compute it.

    Every mode is linear and separable: per image and channel `y = A_h @ x @ A_w^T`, where row
    `o` of `A` weights the input pixels around the source coordinate `x_o` of output pixel `o`
    (see `layers.resize`).

    **TensorFlow** (the default, `coordinate_transformation_mode=None`): the result is
    `tf.image.resize(x, size, method)` (half-pixel centers,
    `x_o = (o + 0.5) * in / out - 0.5`), or with `align_corners=True`
    `tf.compat.v1.image.resize(x, size, method, align_corners=True)`. A scale factor only sets
    the output size; the coordinates use `in / out`. Bicubic reads TensorFlow's table of the
    cubic kernel (1,024 entries; a = -0.5, or TF1's a = -0.75 with aligned corners), which is
    off the exact cubic by up to ~1e-3 of the data range (measured: 7e-4 and 9e-4 on uniform
    random images, 1.2e-3 at worst). It stays the default so that the layer keeps equalling
    `tf.image.resize`, the oracle of TensorFlow-trained models (and today's results); the exact
    cubic is an ONNX mode (`"align_corners"` is TF1's aligned bicubic, `"half_pixel"` with
    `cubic_coeff_a=-0.5, exclude_outside=True` is `tf.image.resize`'s).

    **ONNX Resize** (`coordinate_transformation_mode` given), with `scale = scale_factor` when
    one is given (and `recompute_scale_factor` is not True), else `out / in`:

        half_pixel:           x_o = (o + 0.5) / scale - 0.5
        half_pixel_symmetric: x_o = in / 2 * (1 - out / (scale * in)) + (o + 0.5) / scale - 0.5
        pytorch_half_pixel:   x_o = (o + 0.5) / scale - 0.5 if out > 1 else 0
        align_corners:        x_o = o * (in - 1) / (out - 1) if out > 1 else 0
        asymmetric:           x_o = o / scale

    Nearest reads pixel `x_o` rounded per `nearest_mode`; bilinear weights the two neighbours
    by distance; bicubic four neighbours `d` away with Keys's kernel
    `(a + 2)|d|^3 - (a + 3)|d|^2 + 1` (`|d| <= 1`), `a|d|^3 - 5a|d|^2 + 8a|d| - 4a`
    (`1 < |d| < 2`). Taps outside the image read the border pixel, or with
    `exclude_outside=True` get weight 0 and the others are renormalized. `antialias=True`
    stretches the kernel by `1 / scale` when downsampling and normalizes the weights. Matches
    `onnx.reference`, except where the reference departs from the specification
    (`layers._resize_onnx`; ONNX Runtime follows the specification there).

    **PyTorch**: `F.interpolate`'s modes are ONNX's, and `pytorch_compatible=True` sets them:
        - `"nearest"` is `"asymmetric"` with `nearest_mode="floor"`; `"nearest-exact"` is
          `"half_pixel"` with `nearest_mode="round_prefer_ceil"`;
        - `"bilinear"`, `"bicubic"`: `align_corners=False` is `"half_pixel"` (not
          `"pytorch_half_pixel"`, which differs for an output of length 1), `align_corners=True`
          is `"align_corners"`; bicubic uses `cubic_coeff_a=-0.75`;
        - `antialias=True` is `antialias=True, exclude_outside=True`, and bicubic
          `cubic_coeff_a=-0.5` (PyTorch's antialiased cubic is PIL's);
        - `scale_factor` with `recompute_scale_factor=None/False` maps coordinates with the
          scale factor, `recompute_scale_factor=True` with `in / out`;
        - and `pytorch_compatible=True` replays two shortcuts of PyTorch's kernels: nearest and
          (plain) bilinear copy an axis whose output length equals its input's, and nearest
          reads pixel `o // 2` when the output is exactly twice the input, whatever the scale
          factor says.

    Args:
        size: the output `(height, width)`, or one int for both.
        scale_factor: a positive number or a `(height, width)` pair; the output size is
            `floor(in * scale_factor)`.
        interpolation: `"nearest"`, `"bilinear"`, `"bicubic"` or `"area"` (TensorFlow only).
        align_corners: align the centers of the corner pixels, TF1's convention (and PyTorch's
            with `pytorch_compatible=True`).
        antialias: for bilinear/bicubic, stretch the kernel when downsampling so that it low-pass
            filters: `tf.image.resize(..., antialias=True)` (half-pixel centers only; computed
            with matrices, also when upsampling, where it differs from the plain resize only at
            the borders), or ONNX's and PyTorch's antialias.
        coordinate_transformation_mode: None for TensorFlow's resize, or one of ONNX's
            `"half_pixel"`, `"half_pixel_symmetric"`, `"pytorch_half_pixel"`,
            `"align_corners"`, `"asymmetric"`.
        nearest_mode: nearest's rounding under an ONNX mode: `"round_prefer_floor"` (the
            default, ONNX's), `"round_prefer_ceil"`, `"floor"`, `"ceil"`.
        cubic_coeff_a: bicubic's `a` under an ONNX mode, -0.75 by default (ONNX's, PyTorch's);
            -0.5 is Keys's (TensorFlow's, PIL's).
        exclude_outside: under an ONNX mode, give taps outside the image weight 0 (default
            False: they read the border pixel; plain bilinear gives the same either way).
        recompute_scale_factor: with `scale_factor` under an ONNX mode, True computes the
            coordinates from `in / out` (ONNX `sizes`) instead of the scale factor (ONNX
            `scales`); default False. TensorFlow's resize always does (None or True).
        pytorch_compatible: resample as `torch.nn.functional.interpolate(x, size, scale_factor,
            mode=interpolation, align_corners, recompute_scale_factor, antialias)`; the four
            ONNX arguments above stay None.
        **kwargs: base `Layer` arguments (name, dtype, ...).

    Exactly one of `size` and `scale_factor` is given. The input's height and width must be
    known when the layer is built, except for `size` with TensorFlow's nearest/bilinear.
    Not supported: ONNX's `tf_crop_and_resize` (a crop, with `roi`), `keep_aspect_ratio_policy`
    (give the size), PyTorch's `"area"` (adaptive average pooling).

    Input shape: `(batch, height, width, channels)`.
    Output shape: `(batch, out_height, out_width, channels)`.

    Example:
        >>> Resize(scale_factor=2, interpolation="bilinear")(tf.zeros((1, 14, 14, 3))).shape
        TensorShape([1, 28, 28, 3])
        >>> x = tf.reshape(tf.range(4.0), (1, 1, 4, 1))
        >>> y = Resize(scale_factor=(1, 1.5), interpolation="nearest", pytorch_compatible=True)(x)
        >>> y[0, 0, :, 0].numpy()  # F.interpolate(x, scale_factor=1.5): floor(o / 1.5)
        array([0., 0., 1., 2., 2., 3.], dtype=float32)
    """

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        interpolation: str = "bilinear",
        align_corners: bool = False,
        antialias: bool = False,
        coordinate_transformation_mode: str | None = None,
        nearest_mode: str | None = None,
        cubic_coeff_a: float | None = None,
        exclude_outside: bool | None = None,
        recompute_scale_factor: bool | None = None,
        pytorch_compatible: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (size is None) == (scale_factor is None):
            raise ValueError(
                "Give exactly one of `size` and `scale_factor`, got "
                f"size={size!r} and scale_factor={scale_factor!r}."
            )
        self.size = None if size is None else _positive_pair(size, "size", int)
        self.scale_factor = (
            None
            if scale_factor is None
            else tuple(float(v) for v in _positive_pair(scale_factor, "scale_factor", (int, float)))
        )
        self.interpolation = check_choice(interpolation, INTERPOLATIONS, "interpolation")
        if not isinstance(align_corners, bool):
            raise ValueError(f"`align_corners` must be True or False, got {align_corners!r}.")
        self.align_corners = align_corners
        if not isinstance(antialias, bool):
            raise ValueError(f"`antialias` must be True or False, got {antialias!r}.")
        if antialias and (self.interpolation not in _ANTIALIAS_KERNELS or align_corners):
            raise ValueError(
                "`antialias=True` applies to interpolation 'bilinear' or 'bicubic' with "
                f"align_corners=False, got interpolation={self.interpolation!r} and "
                f"align_corners={align_corners!r}."
            )
        self.antialias = antialias
        self._set_onnx_arguments(
            coordinate_transformation_mode,
            nearest_mode,
            cubic_coeff_a,
            exclude_outside,
            recompute_scale_factor,
            pytorch_compatible,
        )
        self._out_size = None
        self._matrix_h = None
        self._matrix_w = None
        self._gather_indices = None

    def _set_onnx_arguments(
        self,
        mode: str | None,
        nearest_mode: str | None,
        cubic_coeff_a: float | None,
        exclude_outside: bool | None,
        recompute: bool | None,
        pytorch_compatible: bool,
    ) -> None:
        """Checks and stores the ONNX/PyTorch arguments and resolves how the layer resamples."""
        self.coordinate_transformation_mode = (
            None
            if mode is None
            else check_choice(mode, COORDINATE_MODES, "coordinate_transformation_mode")
        )
        self.nearest_mode = (
            None
            if nearest_mode is None
            else check_choice(nearest_mode, NEAREST_MODES, "nearest_mode")
        )
        self.cubic_coeff_a = optional_number(cubic_coeff_a, "cubic_coeff_a")
        self.exclude_outside = optional_bool(exclude_outside, "exclude_outside")
        self.recompute_scale_factor = optional_bool(recompute, "recompute_scale_factor")
        if not isinstance(pytorch_compatible, bool):
            raise ValueError(
                f"`pytorch_compatible` must be True or False, got {pytorch_compatible!r}."
            )
        self.pytorch_compatible = pytorch_compatible
        self._options = resample_options(self)

    def _output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.size is not None:
            return self.size
        out = (
            int(np.floor(height * self.scale_factor[0])),
            int(np.floor(width * self.scale_factor[1])),
        )
        if min(out) < 1:
            raise ValueError(
                f"Layer '{self.name}': scale_factor={self.scale_factor} turns the input size "
                f"({height}, {width}) into {out}; the output needs at least one pixel."
            )
        return out

    def _check_shape(self, input_shape) -> tuple[int | None, int | None]:
        input_shape = tuple(input_shape)
        check_input_rank(self.name, input_shape, 4, "(batch, height, width, channels)")
        height, width = input_shape[1:3]
        needs_static = self.scale_factor is not None or not self._uses_builtin()
        if needs_static and (height is None or width is None):
            raise ValueError(
                f"Layer '{self.name}' needs a known input height and width for "
                f"interpolation={self.interpolation!r} with size={self.size}, "
                f"scale_factor={self.scale_factor} and coordinate_transformation_mode="
                f"{self.coordinate_transformation_mode!r}, got input shape {input_shape}: give "
                "the model a fixed input shape (or use `size` with TensorFlow's "
                "nearest/bilinear)."
            )
        return height, width

    def build(self, input_shape):
        height, width = self._check_shape(input_shape)
        out_height, out_width = self._out_size = self._output_size(height, width)
        axes = ((height, out_height), (width, out_width))
        if self._options is not None:
            self._build_onnx(axes)
        elif self.antialias:
            matrices = [antialiased_matrix(n, out, self.interpolation) for n, out in axes]
            self._matrix_h, self._matrix_w = (m.astype(np.float32) for m in matrices)
        elif not self._uses_builtin():
            matrices = [
                interpolation_matrix(n, out, self.interpolation, self.align_corners)
                for n, out in axes
            ]
            self._matrix_h, self._matrix_w = (m.astype(np.float32) for m in matrices)
        super().build(input_shape)

    def _build_onnx(self, axes: tuple[tuple[int, int], tuple[int, int]]) -> None:
        """ONNX's resampling: gather indices for nearest, else the two matrices."""
        scales = self.scale_factor or (None, None)
        if self.interpolation == "nearest":
            rows, columns = (
                self._options.indices(n, out, scale)
                for (n, out), scale in zip(axes, scales, strict=True)
            )
            width = axes[1][0]
            self._gather_indices = (rows[:, None] * width + columns[None, :]).ravel()
            self._gather_indices = self._gather_indices.astype(np.int32)
            return
        matrices = [
            self._options.matrix(n, out, scale, self.interpolation)
            for (n, out), scale in zip(axes, scales, strict=True)
        ]
        self._matrix_h, self._matrix_w = (m.astype(np.float32) for m in matrices)

    def _uses_builtin(self) -> bool:
        return (
            self._options is None and self.interpolation in _BUILTIN_METHODS and not self.antialias
        )

    def call(self, inputs):
        if self._uses_builtin():
            return self._builtin_resize(inputs)
        if self._gather_indices is not None:
            return self._gather(inputs)
        (out_height, height), (out_width, width) = self._matrix_h.shape, self._matrix_w.shape
        matrix_h = tf.cast(self._matrix_h, inputs.dtype)
        matrix_w = tf.cast(self._matrix_w, inputs.dtype)
        channels = tf.shape(inputs)[3]
        # Rows: (out_h, h) @ (batch, h, w * c) -> (batch, out_h, w * c).
        y = tf.reshape(inputs, tf.stack([-1, height, width * channels]))
        y = tf.matmul(matrix_h, y)
        # Columns: (out_w, w) @ (batch * out_h, w, c) -> (batch * out_h, out_w, c).
        y = tf.reshape(y, tf.stack([-1, width, channels]))
        y = tf.matmul(matrix_w, y)
        return tf.reshape(y, tf.stack([-1, out_height, out_width, channels]))

    def _gather(self, inputs):
        """Nearest as one GATHER of the flattened pixels (GATHER in TFLite, Gather in ONNX)."""
        out_height, out_width = self._out_size
        channels = tf.shape(inputs)[3]
        pixels = tf.reshape(inputs, tf.stack([tf.shape(inputs)[0], -1, channels]))
        y = tf.gather(pixels, self._gather_indices, axis=1)
        return tf.reshape(y, tf.stack([-1, out_height, out_width, channels]))

    def _builtin_resize(self, inputs):
        """TensorFlow's own kernels: RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR in TFLite."""
        size = self._out_size
        method = _BUILTIN_METHODS[self.interpolation]
        if self.align_corners:
            y = tf.compat.v1.image.resize(inputs, size, method, align_corners=True)
        else:
            y = tf.image.resize(inputs, size, method)
        return tf.cast(y, inputs.dtype)

    def compute_output_shape(self, input_shape):
        height, width = self._check_shape(input_shape)
        return (input_shape[0], *self._output_size(height, width), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(
            size=self.size,
            scale_factor=self.scale_factor,
            interpolation=self.interpolation,
            align_corners=self.align_corners,
            antialias=self.antialias,
            coordinate_transformation_mode=self.coordinate_transformation_mode,
            nearest_mode=self.nearest_mode,
            cubic_coeff_a=self.cubic_coeff_a,
            exclude_outside=self.exclude_outside,
            recompute_scale_factor=self.recompute_scale_factor,
            pytorch_compatible=self.pytorch_compatible,
        )
        return config
