"""The space-to-depth deployment rewrite: same outputs as the original graph (float32 up to
summation order, int8 TFLite file equal to the plain int8 file's), BatchNorm/ReLU folded."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

from export.rewrite import SpaceToDepthConv2D, phase_kernel, rewrite_for_deployment
from layers.batch_norm import BatchNorm
from layers.convolution import Conv2D


def _reference_conv(x, kernel, bias, pads, relu):
    (top, bottom), (left, right) = pads
    x = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    y = tf.nn.conv2d(x, kernel, 1, "VALID") + bias
    return tf.nn.relu(y) if relu else y


@given(
    k=st.integers(1, 6),
    cin=st.integers(1, 3),
    cout=st.integers(1, 4),
    size=st.integers(5, 13),
    pad=st.integers(0, 3),
    block=st.integers(2, 4),
    relu=st.booleans(),
)
def test_space_to_depth_conv_equals_the_convolution(k, cin, cout, size, pad, block, relu):
    rng = np.random.default_rng(k * 1000 + size * 10 + block)
    kernel = rng.normal(size=(k, k, cin, cout)).astype(np.float32)
    bias = rng.normal(size=cout).astype(np.float32)
    x = rng.normal(size=(2, size, size + 1, cin)).astype(np.float32)
    pads = ((pad, max(pad - 1, 0)), (max(pad - 1, 0), pad))
    layer = SpaceToDepthConv2D(kernel, bias, pads, block=block, relu=relu)
    got = layer(x).numpy()
    expected = _reference_conv(x, kernel, bias, pads, relu).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_phase_kernel_holds_every_tap_once_per_output_phase():
    kernel = np.arange(1, 26, dtype=np.float32).reshape(5, 5, 1, 1)
    for block in (2, 3, 4):
        phases = phase_kernel(kernel, block)
        assert phases.shape[:2] == ((5 + block - 2) // block + 1,) * 2
        for phase in range(block * block):
            taps = phases[..., phase]
            # Same weights (so the same per-channel int8 scale), padded with zeros.
            assert sorted(taps[taps != 0].tolist()) == list(range(1, 26))


def _small_net(cin: int = 1) -> tf.keras.Model:
    inputs = tf.keras.Input((12, 12, cin))
    x = Conv2D(4, 5, padding="same", use_bias=False, name="c1")(inputs)
    x = BatchNorm(name="b1")(x)
    x = tf.keras.layers.Activation("relu", name="r1")(x)
    x = tf.keras.layers.MaxPooling2D(2)(x)
    x = Conv2D(6, 3, name="c2")(x)
    x = tf.keras.layers.Conv2D(3, 3, strides=2, name="c3")(x)
    x = tf.keras.layers.Flatten()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(3)(x))
    rng = np.random.default_rng(0)
    bn = model.get_layer("b1")
    for variable, value in (
        (bn.moving_mean, rng.normal(size=4)),
        (bn.moving_variance, rng.uniform(0.5, 2.0, size=4)),
        (bn.gamma, rng.uniform(0.5, 1.5, size=4)),
        (bn.beta, rng.normal(size=4)),
    ):
        variable.assign(value.astype(np.float32))
    return model


def test_rewrite_folds_batchnorm_and_relu_and_keeps_outputs():
    model = _small_net()
    fast = rewrite_for_deployment(model)
    names = [layer.name for layer in fast.layers]
    assert "c1_s2d" in names and "c2_s2d" in names and "c3" in names  # c3 has stride 2
    assert "b1_folded" in names and "r1_folded" in names
    assert fast.get_layer("c1_s2d").block == 4 and fast.get_layer("c2_s2d").block == 2
    assert fast.get_layer("c1_s2d").relu and not fast.get_layer("c2_s2d").relu
    x = np.random.default_rng(1).uniform(0, 1, (3, 12, 12, 1)).astype(np.float32)
    np.testing.assert_allclose(fast(x).numpy(), model(x, training=False).numpy(), atol=1e-4)


def test_rewrite_leaves_models_without_a_match_alone():
    model = _small_net(cin=16)
    assert rewrite_for_deployment(model, max_in_channels=1) is model
    with pytest.raises(ValueError, match="block"):
        rewrite_for_deployment(model, block=1)


@pytest.mark.keras3_only
def test_int8_file_of_the_rewrite_matches_the_plain_int8_file():
    from export.tflite_export import convert_tflite
    from export.verify import TFLiteRunner

    model = _small_net()
    rng = np.random.default_rng(2)
    calibration = rng.uniform(0, 1, (32, 12, 12, 1)).astype(np.float32)
    plain = convert_tflite(model, (12, 12, 1), "int8", calibration=calibration, progress=False)
    fast = convert_tflite(
        rewrite_for_deployment(model), (12, 12, 1), "int8", calibration=calibration, progress=False
    )
    fast_ops = TFLiteRunner(fast).op_names()
    assert "SPACE_TO_DEPTH" in fast_ops and "DEPTH_TO_SPACE" in fast_ops
    assert TFLiteRunner(fast).float_ops() == []
    x = rng.uniform(0, 1, (16, 12, 12, 1)).astype(np.float32)
    y_plain, y_fast = TFLiteRunner(plain).predict(x), TFLiteRunner(fast).predict(x)
    # Same integer arithmetic; calibration ranges may differ by a rounding of the
    # rearranged tensors, so allow one output quantization step.
    step = max(np.abs(y_plain).max(), 1e-6) / 64
    assert np.max(np.abs(y_fast - y_plain)) <= step


def test_rewritten_model_is_independent_and_cuttable_after_any_layer():
    model = _small_net()
    fast = rewrite_for_deployment(model)
    assert not any(layer is other for layer in fast.layers for other in model.layers)
    x = np.random.default_rng(3).uniform(0, 1, (2, 12, 12, 1)).astype(np.float32)
    for name in ("c1_s2d", "c2_s2d", "c3"):
        prefix = tf.keras.Model(fast.inputs, fast.get_layer(name).output)
        assert prefix(x).shape[0] == 2
    np.testing.assert_allclose(fast(x).numpy(), model(x, training=False).numpy(), atol=1e-4)
