"""Tests of layers/resize.py: tf.image.resize (half-pixel centers) and
tf.compat.v1.image.resize(align_corners=True) are the oracle, for outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import testing_utils
from hypothesis import given
from hypothesis import strategies as st

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
    x = np.random.rand(2, 6, 5, 3).astype(np.float32)
    reference = np.asarray(Resize((9, 4), interpolation=interpolation)(x))
    layer = Resize((9, 4), interpolation=interpolation, dtype="mixed_bfloat16")
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
