"""Tests of layers/resize.py: tf.image.resize (half-pixel centers) and
tf.compat.v1.image.resize(align_corners=True) are the oracle, for outputs and gradients.

The ONNX and PyTorch modes have ONNX's reference implementation (`onnx.reference`, NumPy) as
their oracle, running a one-node Resize graph; PyTorch's modes are ONNX's (the table in
`Resize`'s docstring). Where the reference departs from the ONNX specification (see
`reference_is_off` and `layers._resize_onnx`), ONNX Runtime's Resize kernel is the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import testing_utils
from hypothesis import assume, given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops.op_resize import _compute_x_ori

from layers._resize_onnx import COORDINATE_MODES, NEAREST_MODES
from layers.resize import INTERPOLATIONS, Resize, interpolation_matrix

V1_METHODS = {
    "nearest": tf.compat.v1.image.ResizeMethod.NEAREST_NEIGHBOR,
    "bilinear": tf.compat.v1.image.ResizeMethod.BILINEAR,
    "bicubic": tf.compat.v1.image.ResizeMethod.BICUBIC,
    "area": tf.compat.v1.image.ResizeMethod.AREA,
}


def oracle_resize(x, size, interpolation, align_corners, antialias=False):
    if align_corners:
        y = tf.compat.v1.image.resize(x, size, V1_METHODS[interpolation], align_corners=True)
    else:
        y = tf.image.resize(x, size, interpolation, antialias=antialias)
    return tf.cast(y, tf.float32)


def oracle_gradient(x, g, interpolation, align_corners, antialias=False):
    """d sum(resize(x) * g) / dx. TensorFlow's ResizeArea has no gradient, so for the
    linear resizes it is computed as J^T g, with the Jacobian J read off by resizing the
    one-hot basis images with the oracle itself."""
    size = g.shape[1:3]
    if interpolation != "area":
        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = oracle_resize(x, size, interpolation, align_corners, antialias)
            loss = tf.reduce_sum(y * g)
        return np.asarray(tape.gradient(loss, x))
    _, height, width, _ = x.shape
    basis = np.eye(height * width, dtype=np.float32).reshape(height * width, height, width, 1)
    jacobian = np.asarray(oracle_resize(basis, size, interpolation, align_corners))[..., 0]
    jacobian = jacobian.reshape(height, width, *size).astype(np.float64)
    return np.einsum("ijop,bopc->bijc", jacobian, g.astype(np.float64))


def layer_output_and_gradient(layer, x, g):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * g)
    return np.asarray(y), np.asarray(tape.gradient(loss, x))


sizes = st.integers(1, 12)


@given(
    in_size=st.tuples(sizes, sizes),
    out_size=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    align_corners=st.booleans(),
    antialias=st.booleans(),
    channels=st.integers(1, 3),
)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_matches_tensorflow(interpolation, in_size, out_size, align_corners, antialias, channels):
    antialias = antialias and interpolation in ("bilinear", "bicubic") and not align_corners
    x = np.random.randn(2, *in_size, channels).astype(np.float32)
    g = np.random.randn(2, *out_size, channels).astype(np.float32)
    layer = Resize(
        out_size, interpolation=interpolation, align_corners=align_corners, antialias=antialias
    )
    y, dx = layer_output_and_gradient(layer, x, g)
    expected = np.asarray(oracle_resize(x, out_size, interpolation, align_corners, antialias))
    assert y.shape == expected.shape == (2, *out_size, channels)
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(
        dx, oracle_gradient(x, g, interpolation, align_corners, antialias), atol=1e-5, rtol=1e-5
    )


@given(
    in_size=st.tuples(st.integers(2, 10), st.integers(2, 10)),
    scale=st.sampled_from([0.5, 0.75, 1.0, 1.5, 2.0, 3.0, (2.0, 0.5), (1.25, 3)]),
)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_scale_factor(interpolation, in_size, scale):
    scales = scale if isinstance(scale, tuple) else (scale, scale)
    out_size = tuple(int(np.floor(n * s)) for n, s in zip(in_size, scales, strict=True))
    x = np.random.randn(1, *in_size, 2).astype(np.float32)
    layer = Resize(scale_factor=scale, interpolation=interpolation)
    assert layer.compute_output_shape(x.shape) == (1, *out_size, 2)
    np.testing.assert_allclose(
        np.asarray(layer(x)), oracle_resize(x, out_size, interpolation, False), atol=1e-5
    )


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_interpolation_matrix_is_the_tensorflow_resize(interpolation, align_corners):
    # Resizing the identity (as a one-column image) gives the matrix itself.
    for in_size, out_size in [(5, 9), (9, 5), (4, 4), (1, 3), (6, 1)]:
        basis = np.eye(in_size, dtype=np.float32).reshape(in_size, in_size, 1, 1)
        columns = np.asarray(
            oracle_resize(basis, (out_size, 1), interpolation, align_corners)
        ).reshape(in_size, out_size)
        matrix = interpolation_matrix(in_size, out_size, interpolation, align_corners)
        np.testing.assert_allclose(matrix, columns.T, atol=1e-6)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)  # rows are averages


def test_antialias_averages_when_downsampling():
    # Bilinear at 1/4 scale samples 2 of every 4 rows; antialiased it averages a wider window.
    x = np.zeros((1, 16, 16, 1), np.float32)
    x[:, ::4] = 1.0  # thin stripes that plain bilinear downsampling misses entirely
    plain = np.asarray(Resize((4, 4))(x))
    smooth = np.asarray(Resize((4, 4), antialias=True)(x))
    np.testing.assert_allclose(plain, 0.0)
    assert smooth.min() > 0.1


def test_lecture_examples():
    x = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)
    # Nearest upsampling by 2 repeats every pixel in a 2x2 block.
    y = np.asarray(Resize(scale_factor=2, interpolation="nearest")(x))[0, :, :, 0]
    np.testing.assert_array_equal(y, [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    # Bilinear with aligned corners keeps the corners and interpolates linearly between them.
    y = np.asarray(Resize((3, 3), align_corners=True)(x))[0, :, :, 0]
    np.testing.assert_allclose(y, [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]])
    # Area downsampling by 2 is 2x2 average pooling.
    x = np.random.randn(2, 8, 6, 3).astype(np.float32)
    y = Resize((4, 3), interpolation="area")(x)
    np.testing.assert_allclose(y, tf.nn.avg_pool2d(x, 2, 2, "VALID"), atol=1e-6)


def test_public_attributes_and_config_round_trip():
    layer = Resize(scale_factor=(2, 1.5), interpolation="BICUBIC", align_corners=True, name="up")
    assert layer.size is None
    assert layer.scale_factor == (2.0, 1.5)
    assert layer.interpolation == "bicubic"
    assert layer.align_corners is True
    assert layer.antialias is False
    assert Resize(7).size == (7, 7)
    for original in (layer, Resize((5, 9), interpolation="area"), Resize(3, antialias=True)):
        config = original.get_config()
        clone = Resize.from_config(config)
        assert clone.get_config() == config
        x = np.random.randn(2, 6, 4, 3).astype(np.float32)
        np.testing.assert_array_equal(np.asarray(original(x)), np.asarray(clone(x)))


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_mixed_bfloat16(interpolation):
    assert_mixed_bfloat16_close({"size": (9, 4), "interpolation": interpolation})


def assert_mixed_bfloat16_close(arguments):
    """Under mixed_bfloat16 the layer computes in bfloat16, has a gradient, and stays within
    bfloat16's precision of the float32 layer."""
    x = np.random.rand(2, 6, 5, 3).astype(np.float32)
    reference = np.asarray(Resize(**arguments)(x))
    layer = Resize(**arguments, dtype="mixed_bfloat16")
    with tf.GradientTape() as tape:
        xb = tf.constant(x)
        tape.watch(xb)
        y = layer(xb)
        loss = tf.reduce_sum(tf.cast(y, tf.float32))
    assert y.dtype == tf.bfloat16
    assert tape.gradient(loss, xb) is not None
    np.testing.assert_allclose(np.asarray(tf.cast(y, tf.float32)), reference, atol=3e-2)


def test_unknown_spatial_size():
    inputs = tf.keras.Input(shape=(None, None, 3))
    model = tf.keras.Model(inputs, Resize((8, 6), interpolation="bilinear")(inputs))
    x = np.random.randn(1, 5, 7, 3).astype(np.float32)
    np.testing.assert_allclose(model(x), tf.image.resize(x, (8, 6)), atol=1e-6)
    for layer in (Resize((8, 6), interpolation="bicubic"), Resize(scale_factor=2)):
        with pytest.raises(ValueError, match="known input height and width"):
            layer(inputs)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Resize(), "exactly one"),
        (lambda: Resize(4, scale_factor=2), "exactly one"),
        (lambda: Resize(0), "size"),
        (lambda: Resize((4, -1)), "size"),
        (lambda: Resize((4.0, 4)), "size"),
        (lambda: Resize((4, 4, 4)), "size"),
        (lambda: Resize(scale_factor=0), "scale_factor"),
        (lambda: Resize(scale_factor=(2, -1.5)), "scale_factor"),
        (lambda: Resize(4, interpolation="lanczos3"), "'nearest', 'bilinear', 'bicubic', 'area'"),
        (lambda: Resize(4, align_corners="yes"), "align_corners"),
        (lambda: Resize(4, antialias=1), "antialias"),
        (lambda: Resize(4, interpolation="area", antialias=True), "antialias"),
        (lambda: Resize(4, align_corners=True, antialias=True), "antialias"),
        (lambda: Resize(4)(tf.zeros((1, 4, 4))), "expects a 4D input"),
        (lambda: Resize(scale_factor=0.1)(tf.zeros((1, 4, 4, 1))), "at least one pixel"),
        (lambda: interpolation_matrix(3, 4, "cubic"), "interpolation"),
        (
            lambda: Resize(4, coordinate_transformation_mode="tf_crop_and_resize"),
            "'half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', "
            "'asymmetric', got 'tf_crop_and_resize'",
        ),
        (
            lambda: Resize(
                4,
                interpolation="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode=1,
            ),
            "'round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil', got 1",
        ),
        (lambda: Resize(4, cubic_coeff_a="-0.75"), "`cubic_coeff_a` must be a finite number"),
        (lambda: Resize(4, cubic_coeff_a=float("nan")), "`cubic_coeff_a` must be a finite"),
        (lambda: Resize(4, exclude_outside=1), "`exclude_outside` must be True, False or None"),
        (lambda: Resize(4, recompute_scale_factor="no"), "`recompute_scale_factor` must be"),
        (lambda: Resize(4, pytorch_compatible=None), "`pytorch_compatible` must be True or"),
        (
            lambda: Resize(4, interpolation="nearest", nearest_mode="floor"),
            "TensorFlow's resize .* fixes",
        ),
        (
            lambda: Resize(4, interpolation="bicubic", cubic_coeff_a=-0.75),
            "give a coordinate_transformation",
        ),
        (lambda: Resize(4, exclude_outside=False), "'exclude_outside': False"),
        (
            lambda: Resize(scale_factor=2, recompute_scale_factor=False),
            "'recompute_scale_factor': False",
        ),
        (lambda: Resize(4, recompute_scale_factor=True), "applies with `scale_factor`"),
        (
            lambda: Resize(4, align_corners=True, coordinate_transformation_mode="half_pixel"),
            "coordinate_transformation_mode='align_corners'",
        ),
        (
            lambda: Resize(4, interpolation="area", coordinate_transformation_mode="half_pixel"),
            "'area' is TensorFlow's",
        ),
        (
            lambda: Resize(4, coordinate_transformation_mode="half_pixel", nearest_mode="floor"),
            "`nearest_mode` applies to interpolation 'nearest', got nearest_mode='floor' with "
            "interpolation='bilinear'",
        ),
        (
            lambda: Resize(4, coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.5),
            "`cubic_coeff_a` applies to interpolation 'bicubic'",
        ),
        (
            lambda: Resize(
                4,
                interpolation="nearest",
                coordinate_transformation_mode="half_pixel",
                exclude_outside=True,
            ),
            "`exclude_outside` applies to interpolation 'bilinear' or 'bicubic'",
        ),
        (
            lambda: Resize(
                4,
                interpolation="nearest",
                coordinate_transformation_mode="half_pixel",
                antialias=True,
            ),
            "antialias",
        ),
        (
            lambda: Resize(4, pytorch_compatible=True, coordinate_transformation_mode="half_pixel"),
            "sets .* itself .* got {'coordinate_transformation_mode': 'half_pixel'}",
        ),
        (
            lambda: Resize(4, interpolation="area", pytorch_compatible=True),
            "adaptive average pooling",
        ),
        (
            lambda: Resize(4, interpolation="nearest", align_corners=True, pytorch_compatible=True),
            "align_corners=True only with bilinear or bicubic",
        ),
        (
            lambda: Resize(4, interpolation="nearest", coordinate_transformation_mode="half_pixel")(
                tf.keras.Input((None, 5, 1))
            ),
            "known input height and width",
        ),
    ],
)
def test_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.keras3_only
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_edge_runtimes_match(interpolation, align_corners):
    layer = Resize((11, 5), interpolation=interpolation, align_corners=align_corners)
    model = testing_utils.model_of(layer, (7, 8, 3))
    x = np.random.randn(2, 7, 8, 3).astype(np.float32)
    testing_utils.assert_edge_runtimes_match(model, x)


@pytest.mark.keras3_only
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_edge_runtimes_match_antialias(interpolation):
    model = testing_utils.model_of(
        Resize((3, 5), interpolation=interpolation, antialias=True), (9, 8, 2)
    )
    x = np.random.randn(2, 9, 8, 2).astype(np.float32)
    testing_utils.assert_edge_runtimes_match(model, x)


@pytest.mark.keras3_only
def test_keras_file_round_trip(tmp_path):
    inputs = tf.keras.Input(shape=(6, 7, 3))
    y = Resize(scale_factor=2, interpolation="bicubic")(inputs)
    y = Resize((5, 4), interpolation="area", align_corners=True)(y)
    y = Resize((9, 9), interpolation="nearest")(y)
    model = tf.keras.Model(inputs, y)
    path = tmp_path / "resize.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    x = np.random.randn(2, 6, 7, 3).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert [layer.interpolation for layer in loaded.layers[1:]] == ["bicubic", "area", "nearest"]


# ONNX Resize and PyTorch: onnx.reference is the oracle.

ONNX_INTERPOLATIONS = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic"}


def onnx_resize_model(shape, interpolation, out_size=None, scales=None, **attributes):
    """A one-node ONNX Resize graph (opset 19) on an NCHW input of `shape`, resizing H and W to
    `out_size` (ONNX `sizes`) or by `scales`."""
    if scales is not None:
        inputs = ["x", "", "scales"]
        resize_to = numpy_helper.from_array(np.array([1, 1, *scales], np.float32), "scales")
    else:
        inputs = ["x", "", "", "sizes"]
        resize_to = numpy_helper.from_array(np.array([*shape[:2], *out_size], np.int64), "sizes")
    node = helper.make_node(
        "Resize", inputs, ["y"], mode=ONNX_INTERPOLATIONS[interpolation], **attributes
    )
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [resize_to],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def onnx_resize(x, interpolation, out_size=None, scales=None, runtime="reference", **attributes):
    """Resizes NHWC `x` with the one-node graph in onnx.reference or ONNX Runtime."""
    nchw = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
    model = onnx_resize_model(nchw.shape, interpolation, out_size, scales, **attributes)
    if runtime == "reference":
        y = ReferenceEvaluator(model).run(None, {"x": nchw})[0]
    else:
        y = testing_utils.run_onnx(model.SerializeToString(), nchw)
    return np.transpose(y, (0, 2, 3, 1))


def onnx_gradient(x, g, resize):
    """d sum(resize(x) * g) / dx for a linear `resize(x)`: J^T g, with the Jacobian J read off
    by resizing the one-hot basis images."""
    _, height, width, _ = x.shape
    basis = np.eye(height * width, dtype=np.float32).reshape(height * width, height, width, 1)
    jacobian = resize(basis)[..., 0].astype(np.float64)  # (pixel, out_h, out_w)
    gradient = np.einsum("kop,bopc->bkc", jacobian, g.astype(np.float64))
    return gradient.reshape(x.shape)


def onnx_attributes(
    interpolation,
    mode,
    nearest_mode=None,
    cubic_coeff_a=None,
    exclude_outside=None,
    antialias=False,
):
    """The Resize node's attributes for the layer's arguments (ONNX's defaults for None)."""
    attributes = {"coordinate_transformation_mode": mode}
    if interpolation == "nearest":
        attributes["nearest_mode"] = nearest_mode or "round_prefer_floor"
    else:
        attributes["antialias"] = int(antialias)
        attributes["exclude_outside"] = int(bool(exclude_outside))
    if interpolation == "bicubic":
        attributes["cubic_coeff_a"] = -0.75 if cubic_coeff_a is None else cubic_coeff_a
    return attributes


def reference_is_off(in_size, out_size, scales, mode):
    """True when onnx.reference (1.23) puts its interpolation window one pixel too far left: for
    a source coordinate just above an integer (10 -> 14 half_pixel: x_10 = 7 + 9e-16) it picks
    the taps from the coordinate plus the padding, which rounds to the integer, and the weights
    from the coordinate itself. ONNX Runtime and the layer read pixel 7 there, the reference 6."""
    for n, m, scale in zip(in_size, out_size, scales or (None, None), strict=True):
        scale = m / n if scale is None else float(np.float32(scale))
        x, _ = _compute_x_ori(mode, np.arange(m, dtype=np.float64), scale, n, scale * n, m, None)
        fraction = x - np.floor(x)
        if np.any((fraction > 0) & (fraction < 1e-9)):
            return True
    return False


in_sizes = st.tuples(st.integers(1, 12), st.integers(1, 12))
out_sizes = st.tuples(st.integers(1, 20), st.integers(1, 20))
# Scale factors: float32 values (ONNX's `scales` are float32), half of them ones that put source
# coordinates on integers and halves, where the nearest modes differ.
scale_values = st.one_of(
    st.sampled_from([0.5, 0.75, 1.5, 2.0, 2.5, 3.0]), st.floats(0.25, 3.5, width=32)
)
scale_factors = st.tuples(scale_values, scale_values)


def draw_scale(draw, in_size):
    """A scale factor, the output size it gives (at least 1), and `recompute_scale_factor`."""
    scale = draw(scale_factors)
    out_size = tuple(int(np.floor(n * s)) for n, s in zip(in_size, scale, strict=True))
    assume(min(out_size) >= 1)
    return scale, out_size, draw(st.booleans())


@st.composite
def onnx_resizes(draw, interpolation):
    """(input size, output size, the layer's arguments, the ONNX graph's arguments)."""
    in_size, mode = draw(in_sizes), draw(st.sampled_from(COORDINATE_MODES))
    smooth = interpolation != "nearest"
    arguments = {
        "interpolation": interpolation,
        "coordinate_transformation_mode": mode,
        "antialias": smooth and draw(st.booleans()),
    }
    if interpolation == "nearest":
        arguments["nearest_mode"] = draw(st.sampled_from(NEAREST_MODES))
    else:
        arguments["exclude_outside"] = draw(st.booleans())
    if interpolation == "bicubic":
        arguments["cubic_coeff_a"] = draw(st.sampled_from([-0.75, -0.5, -0.625, -1.0]))
    scales = None
    if draw(st.booleans()):
        scale, out_size, recompute = draw_scale(draw, in_size)
        arguments.update(scale_factor=scale, recompute_scale_factor=recompute)
        # align_corners does not use the scale (the reference would use in * scale as the
        # output length); with antialias it does, and ONNX Runtime is its oracle (below).
        assume(not (mode == "align_corners" and arguments["antialias"]))
        scales = None if recompute or mode == "align_corners" else scale
    else:
        out_size = draw(out_sizes)
        arguments["size"] = out_size
    # Length 1 with pytorch_half_pixel: the reference departs from the specification (below).
    assume(mode != "pytorch_half_pixel" or min(out_size) > 1)
    if mode == "half_pixel_symmetric" and scales is None:
        mode = "half_pixel"  # the specification's offset is 0 when the length is given
    attributes = onnx_attributes(
        interpolation,
        mode,
        arguments.get("nearest_mode"),
        arguments.get("cubic_coeff_a"),
        arguments.get("exclude_outside"),
        arguments["antialias"],
    )
    return in_size, out_size, arguments, {"out_size": out_size, "scales": scales, **attributes}


@given(data=st.data(), channels=st.integers(1, 3))
@pytest.mark.parametrize("interpolation", list(ONNX_INTERPOLATIONS))
def test_matches_onnx_reference(interpolation, data, channels):
    in_size, out_size, arguments, graph = data.draw(onnx_resizes(interpolation))
    mode = graph["coordinate_transformation_mode"]
    assume(not reference_is_off(in_size, out_size, graph["scales"], mode))
    x = np.random.randn(2, *in_size, channels).astype(np.float32)
    g = np.random.randn(2, *out_size, channels).astype(np.float32)
    y, dx = layer_output_and_gradient(Resize(**arguments), x, g)
    expected = onnx_resize(x, interpolation, **graph)
    assert y.shape == expected.shape == (2, *out_size, channels)
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    expected_dx = onnx_gradient(x, g, lambda basis: onnx_resize(basis, interpolation, **graph))
    # Each input's gradient sums up to 20 x 20 float32 products (float64 in the oracle).
    np.testing.assert_allclose(dx, expected_dx, atol=3e-5, rtol=1e-5)


@st.composite
def pytorch_resizes(draw, interpolation):
    """(input size, output size, the layer's arguments, the ONNX graph's arguments) for
    `pytorch_compatible=True`, the graph built from the table in `Resize`'s docstring."""
    in_size = draw(in_sizes)
    align_corners = interpolation != "nearest" and draw(st.booleans())
    antialias = interpolation != "nearest" and not align_corners and draw(st.booleans())
    arguments = {
        "interpolation": interpolation,
        "align_corners": align_corners,
        "antialias": antialias,
        "pytorch_compatible": True,
    }
    if interpolation == "nearest":
        mode = "asymmetric"
    else:
        mode = "align_corners" if align_corners else "half_pixel"
    attributes = onnx_attributes(
        interpolation, mode, "floor", -0.5 if antialias else -0.75, antialias, antialias
    )
    if draw(st.booleans()):
        scale, out_size, recompute = draw_scale(draw, in_size)
        arguments.update(scale_factor=scale, recompute_scale_factor=recompute)
        scales = tuple(
            pytorch_scale(n, m, s, interpolation, antialias)
            for n, m, s in zip(in_size, out_size, scale, strict=True)
        )
        scales = None if recompute or align_corners else scales
    else:
        out_size = draw(out_sizes)
        arguments["size"] = out_size
        scales = None
    return in_size, out_size, arguments, {"out_size": out_size, "scales": scales, **attributes}


def pytorch_scale(in_size, out_size, scale, interpolation, antialias):
    """The scale PyTorch's kernels use: out / in where they take their shortcuts (a copy when
    the length is kept, `o // 2` for nearest at twice the length), else the scale factor."""
    if out_size == in_size and interpolation != "bicubic" and not antialias:
        return 1.0
    if out_size == 2 * in_size and interpolation == "nearest":
        return 2.0
    return scale


@given(data=st.data())
@pytest.mark.parametrize("interpolation", list(ONNX_INTERPOLATIONS))
def test_pytorch_compatible_is_the_onnx_mapping(interpolation, data):
    in_size, out_size, arguments, graph = data.draw(pytorch_resizes(interpolation))
    assume(
        not reference_is_off(
            in_size, out_size, graph["scales"], graph["coordinate_transformation_mode"]
        )
    )
    x = np.random.randn(2, *in_size, 2).astype(np.float32)
    y = np.asarray(Resize(**arguments)(x))
    np.testing.assert_allclose(y, onnx_resize(x, interpolation, **graph), atol=1e-5, rtol=1e-5)


NEAREST_TIES = {  # (in, out, scale factor), mode, the source coordinates: halves and integers
    "half_pixel-4-to-2": ((4, 2, None), "half_pixel", [0.5, 2.5]),
    "asymmetric-3-by-2": ((3, 6, 2.0), "asymmetric", [0, 0.5, 1, 1.5, 2, 2.5]),
    "align_corners-3-to-5": ((3, 5, None), "align_corners", [0, 0.5, 1, 1.5, 2]),
}


ROUNDINGS = {
    "round_prefer_floor": lambda c: np.ceil(c - 0.5),
    "round_prefer_ceil": lambda c: np.floor(c + 0.5),
    "floor": np.floor,
    "ceil": np.ceil,
}


@pytest.mark.parametrize("case", list(NEAREST_TIES))
def test_nearest_modes_at_ties(case):
    (in_size, out_size, scale), mode, coordinates = NEAREST_TIES[case]
    x = np.arange(in_size, dtype=np.float32).reshape(1, 1, in_size, 1)
    arguments = {"size": (1, out_size)} if scale is None else {"scale_factor": (1, scale)}
    scales = None if scale is None else (1, scale)
    for nearest_mode, rounding in ROUNDINGS.items():
        layer = Resize(
            interpolation="nearest",
            coordinate_transformation_mode=mode,
            nearest_mode=nearest_mode,
            **arguments,
        )
        y = np.asarray(layer(x))
        expected = np.clip(rounding(np.array(coordinates)), 0, in_size - 1)
        np.testing.assert_array_equal(y.ravel(), expected, err_msg=nearest_mode)
        graph = onnx_attributes("nearest", mode, nearest_mode)
        expected = onnx_resize(x, "nearest", (1, out_size), scales, **graph)
        np.testing.assert_array_equal(y, expected, err_msg=nearest_mode)


def test_pytorch_shortcuts():
    # F.interpolate(x, scale_factor=2.2, mode="nearest") on 4 pixels: 8 = 2 * 4 outputs, so
    # PyTorch reads pixel o // 2; ONNX's scales (and the layer's plain mode) read floor(o / 2.2).
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 4, 1)
    pytorch = Resize(scale_factor=(1, 2.2), interpolation="nearest", pytorch_compatible=True)
    np.testing.assert_array_equal(np.asarray(pytorch(x)).ravel(), [0, 0, 1, 1, 2, 2, 3, 3])
    onnx_mode = Resize(
        scale_factor=(1, 2.2),
        interpolation="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    np.testing.assert_array_equal(np.asarray(onnx_mode(x)).ravel(), [0, 0, 0, 1, 1, 2, 2, 3])
    # Bilinear by 1.2 keeps 4 pixels: PyTorch copies them; half_pixel with scale 1.2 does not.
    pytorch = Resize(scale_factor=(1, 1.2), pytorch_compatible=True)
    np.testing.assert_array_equal(np.asarray(pytorch(x)).ravel(), [0, 1, 2, 3])
    onnx_mode = Resize(scale_factor=(1, 1.2), coordinate_transformation_mode="half_pixel")
    np.testing.assert_allclose(np.asarray(onnx_mode(x)).ravel(), [0, 0.75, 19 / 12, 29 / 12])
    # Bicubic takes no shortcut: the coordinates use 1 / 1.2 (-0.0833, 0.75, 1.5833, 2.4167).
    pytorch = Resize(scale_factor=(1, 1.2), interpolation="bicubic", pytorch_compatible=True)
    assert not np.allclose(np.asarray(pytorch(x)).ravel(), [0, 1, 2, 3])


def legacy_resize(method):
    """TensorFlow's resize without half-pixel centers and without aligned corners (TF1's
    default), which ONNX calls asymmetric."""
    op = tf.raw_ops.ResizeNearestNeighbor if method == "nearest" else tf.raw_ops.ResizeBilinear
    return lambda x, size: op(images=x, size=size, align_corners=False, half_pixel_centers=False)


TENSORFLOW_EQUIVALENTS = {
    "nearest-half_pixel": (
        {"interpolation": "nearest", "nearest_mode": "round_prefer_ceil"},
        "half_pixel",
        lambda x, size: tf.image.resize(x, size, "nearest"),
    ),
    "nearest-align_corners": (
        {"interpolation": "nearest", "nearest_mode": "round_prefer_ceil"},
        "align_corners",
        lambda x, size: oracle_resize(x, size, "nearest", True),
    ),
    "nearest-asymmetric": (
        {"interpolation": "nearest", "nearest_mode": "floor"},
        "asymmetric",
        legacy_resize("nearest"),
    ),
    "bilinear-half_pixel": ({}, "half_pixel", lambda x, size: tf.image.resize(x, size)),
    "bilinear-align_corners": (
        {},
        "align_corners",
        lambda x, size: oracle_resize(x, size, "bilinear", True),
    ),
    "bilinear-asymmetric": ({}, "asymmetric", legacy_resize("bilinear")),
    "bilinear-antialias": (
        {"antialias": True, "exclude_outside": True},
        "half_pixel",
        lambda x, size: tf.image.resize(x, size, antialias=True),
    ),
    "bicubic-antialias": (
        {"interpolation": "bicubic", "antialias": True, "exclude_outside": True},
        "half_pixel",
        lambda x, size: tf.image.resize(x, size, "bicubic", antialias=True),
    ),
}


@given(in_size=in_sizes, out_size=out_sizes)
@pytest.mark.parametrize("case", list(TENSORFLOW_EQUIVALENTS))
def test_onnx_modes_equal_tensorflow_ops(case, in_size, out_size):
    """ONNX modes that are a TensorFlow op (given sizes, no kernel table): outputs and
    gradients against the op. Antialiased, TensorFlow is ONNX with exclude_outside and
    Keys's a = -0.5, which is also PyTorch's antialias."""
    arguments, mode, tensorflow_resize = TENSORFLOW_EQUIVALENTS[case]
    if "bicubic" in case:
        arguments = {**arguments, "cubic_coeff_a": -0.5}
    layer = Resize(out_size, coordinate_transformation_mode=mode, **arguments)
    x = np.random.randn(2, *in_size, 2).astype(np.float32)
    g = np.random.randn(2, *out_size, 2).astype(np.float32)
    y, dx = layer_output_and_gradient(layer, x, g)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        expected = tf.cast(tensorflow_resize(x, out_size), tf.float32)
        loss = tf.reduce_sum(expected * g)
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(dx, tape.gradient(loss, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("align_corners", [False, True])
def test_exact_cubic_is_tensorflows_without_its_table(align_corners):
    # TensorFlow reads the cubic kernel from a table of 1,024 offsets: the exact cubic of the
    # ONNX modes differs from it by up to ~1e-3 of the data range, not more.
    mode, a = ("align_corners", -0.75) if align_corners else ("half_pixel", -0.5)
    x = np.random.rand(4, 28, 28, 3).astype(np.float32)
    tabulated = np.asarray(
        Resize((45, 17), interpolation="bicubic", align_corners=align_corners)(x)
    )
    exact = Resize(
        (45, 17),
        interpolation="bicubic",
        coordinate_transformation_mode=mode,
        cubic_coeff_a=a,
        exclude_outside=not align_corners,
    )(x)
    difference = np.abs(np.asarray(exact) - tabulated).max()
    assert 1e-5 < difference < 1.5e-3
    graph = onnx_attributes("bicubic", mode, cubic_coeff_a=a, exclude_outside=not align_corners)
    np.testing.assert_allclose(exact, onnx_resize(x, "bicubic", (45, 17), **graph), atol=1e-5)


REFERENCE_DEPARTURES = {
    # pytorch_half_pixel: length 1 reads coordinate 0 (the reference: -0.5, onnx/onnx#4275).
    "pytorch_half_pixel-length-1-bicubic": (
        (6, 4),
        {"size": (1, 5), "interpolation": "bicubic"},
        "pytorch_half_pixel",
    ),
    "pytorch_half_pixel-length-1-antialias": (
        (6, 4),
        {"scale_factor": (0.25, 1.5), "antialias": True},
        "pytorch_half_pixel",
    ),
    # align_corners divides by the output length minus 1 (the reference: in * scale - 1).
    "align_corners-scale": ((5, 6), {"scale_factor": 1.5}, "align_corners"),
    "align_corners-scale-antialias": (
        (9, 7),
        {"scale_factor": 0.6, "interpolation": "bicubic", "antialias": True},
        "align_corners",
    ),
    # The reference's window one pixel off (`reference_is_off`).
    "half_pixel-10-to-14": ((3, 10), {"size": (5, 14)}, "half_pixel"),
}


@pytest.mark.parametrize("case", list(REFERENCE_DEPARTURES))
def test_where_the_reference_departs_onnx_runtime_is_the_oracle(case):
    in_size, arguments, mode = REFERENCE_DEPARTURES[case]
    layer = Resize(coordinate_transformation_mode=mode, **arguments)
    x = np.random.randn(2, *in_size, 2).astype(np.float32)
    y = np.asarray(layer(x))
    interpolation = arguments.get("interpolation", "bilinear")
    scales = arguments.get("scale_factor")
    scales = scales if scales is None or isinstance(scales, tuple) else (scales, scales)
    graph = onnx_attributes(interpolation, mode, antialias=arguments.get("antialias", False))
    expected = onnx_resize(x, interpolation, y.shape[1:3], scales, runtime="onnxruntime", **graph)
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    if case == "half_pixel-10-to-14":  # a ramp resized linearly is its source coordinate
        ramp = np.broadcast_to(np.arange(10, dtype=np.float32), (1, 3, 10))[..., None]
        coordinates = np.clip((np.arange(14) + 0.5) * 10 / 14 - 0.5, 0, 9)
        np.testing.assert_allclose(np.asarray(layer(ramp))[0, 0, :, 0], coordinates, atol=1e-5)


def test_onnx_mode_config_round_trip():
    layers = [
        Resize(
            scale_factor=(1.5, 0.75),
            interpolation="bicubic",
            antialias=True,
            coordinate_transformation_mode="HALF_PIXEL_SYMMETRIC",
            cubic_coeff_a=-0.5,
            exclude_outside=True,
            recompute_scale_factor=False,
        ),
        Resize(
            (5, 3),
            interpolation="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="Ceil",
        ),
        Resize(scale_factor=2.2, interpolation="nearest", pytorch_compatible=True),
        Resize(
            scale_factor=0.5,
            align_corners=True,
            pytorch_compatible=True,
            recompute_scale_factor=True,
        ),
    ]
    first = layers[0]
    assert first.coordinate_transformation_mode == "half_pixel_symmetric"
    assert (first.cubic_coeff_a, first.exclude_outside) == (-0.5, True)
    assert first.recompute_scale_factor is False
    assert layers[1].nearest_mode == "ceil"
    assert layers[2].pytorch_compatible is True
    assert layers[2].coordinate_transformation_mode is None  # set by pytorch_compatible
    x = np.random.randn(2, 6, 4, 3).astype(np.float32)
    for original in layers:
        config = original.get_config()
        clone = Resize.from_config(config)
        assert clone.get_config() == config
        np.testing.assert_array_equal(np.asarray(original(x)), np.asarray(clone(x)))


@pytest.mark.parametrize("interpolation", list(ONNX_INTERPOLATIONS))
def test_onnx_modes_mixed_bfloat16(interpolation):
    arguments = {"scale_factor": 1.5, "interpolation": interpolation, "pytorch_compatible": True}
    assert_mixed_bfloat16_close(arguments)


EDGE_CASES = {
    "nearest-asymmetric-floor": {
        "scale_factor": 1.7,
        "interpolation": "nearest",
        "coordinate_transformation_mode": "asymmetric",
        "nearest_mode": "floor",
    },
    "nearest-pytorch-shortcut": {
        "scale_factor": (2.2, 0.6),
        "interpolation": "nearest",
        "pytorch_compatible": True,
    },
    "bilinear-half_pixel_symmetric-scale": {
        "scale_factor": 0.6,
        "coordinate_transformation_mode": "half_pixel_symmetric",
    },
    "bicubic-align_corners-exact": {
        "size": (11, 5),
        "interpolation": "bicubic",
        "coordinate_transformation_mode": "align_corners",
    },
    "bicubic-pytorch-antialias": {
        "scale_factor": 0.45,
        "interpolation": "bicubic",
        "antialias": True,
        "pytorch_compatible": True,
    },
}


@pytest.mark.keras3_only
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_edge_runtimes_match_onnx_modes(case):
    model = testing_utils.model_of(Resize(**EDGE_CASES[case]), (7, 8, 3))
    x = np.random.randn(2, 7, 8, 3).astype(np.float32)
    testing_utils.assert_edge_runtimes_match(model, x)
