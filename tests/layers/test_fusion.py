"""layers.fusion: a layer with the folded BatchNorm (and fused ReLU) computes what the unfolded
graph computes in inference, in both Keras worlds; what must not fold stays apart."""

import numpy as np
import pytest
import tensorflow as tf
import testing_utils

from layers.batch_norm import BatchNorm
from layers.conv_transpose import ConvTranspose2D
from layers.convolution import Conv1D, Conv2D, Conv3D
from layers.fusion import (
    batch_norm_scale_shift,
    consumers,
    fold_following,
    is_plain_relu,
    producers,
    scale_shift,
    single_consumer,
)

ATOL = 1e-5


def _keras_batch_norm(name):
    kwargs = {"fused": False} if testing_utils.LEGACY_KERAS else {}
    return tf.keras.layers.BatchNormalization(epsilon=1e-3, name=name, **kwargs)


def _randomize_batch_norm(bn, rng):
    """Moving statistics and affine weights far from the identity."""
    values = []
    for weight in bn.weights:
        leaf = weight.name.split("/")[-1].split(":")[0]
        shape = tuple(weight.shape)
        if leaf == "moving_variance":
            values.append(rng.uniform(0.3, 3.0, shape))
        elif leaf == "gamma":
            values.append(rng.uniform(-2.0, 2.0, shape))
        else:  # beta, moving_mean
            values.append(rng.normal(0.0, 1.0, shape))
    bn.set_weights([v.astype(np.float32) for v in values])


CASES = {
    "conv2d+bn": ((9, 11, 3), lambda: Conv2D(5, 3, padding=1, use_bias=False, name="k"), BatchNorm),
    "conv2d(bias)+bn+relu": (
        (8, 8, 2),
        lambda: Conv2D(4, 5, padding="same", name="k"),
        BatchNorm,
    ),
    "conv1d+bn": ((12, 4), lambda: Conv1D(6, 3, name="k"), BatchNorm),
    "conv3d+bn": ((5, 6, 4, 2), lambda: Conv3D(3, 3, padding=1, name="k"), BatchNorm),
    "transpose2d+bn": (
        (5, 6, 3),
        lambda: ConvTranspose2D(4, 3, strides=2, name="k"),
        BatchNorm,
    ),
    "dense+bn+relu": ((7,), lambda: tf.keras.layers.Dense(5, name="k"), BatchNorm),
    "keras conv2d+keras bn": (
        (7, 7, 3),
        lambda: tf.keras.layers.Conv2D(4, 3, use_bias=False, name="k"),
        _keras_batch_norm,
    ),
}


def _build(case, relu):
    shape, make_layer, make_bn = CASES[case]
    inputs = tf.keras.Input(shape)
    layer = make_layer()
    x = make_bn(name="bn")(layer(inputs))
    if relu:
        x = tf.keras.layers.Activation("relu", name="relu")(x)
    return tf.keras.Model(inputs, x), layer


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_folded_layer_equals_the_unfolded_graph(case, relu):
    model, layer = _build(case, relu)
    rng = np.random.default_rng(len(case) + relu)
    _randomize_batch_norm(model.get_layer("bn"), rng)
    if layer.bias is not None:
        layer.bias.assign(rng.normal(0.0, 1.0, tuple(layer.bias.shape)).astype(np.float32))
    x = rng.normal(0.0, 1.0, (3, *model.input_shape[1:])).astype(np.float32)

    fused = fold_following(model, layer)
    assert fused.batch_norm is model.get_layer("bn")
    assert (fused.relu is not None) == relu
    assert [a.name for a in fused.absorbed] == ["bn", "relu"][: 1 + relu]
    assert fused.kernel.dtype == fused.bias.dtype == np.float32
    config = dict(layer.get_config(), use_bias=True, name="folded")
    if relu:
        config["activation"] = "relu"
    folded = type(layer).from_config(config)
    folded(x)
    folded.set_weights([fused.kernel, fused.bias])
    expected = model(x, training=False)
    np.testing.assert_allclose(folded(x), expected, rtol=ATOL, atol=ATOL)
    # The fold is not the identity: the unfolded layer alone computes something else.
    assert np.max(np.abs(np.asarray(layer(x)) - np.asarray(expected))) > 1e-2


def test_scale_shift_is_the_same_for_arrays_and_tensors():
    rng = np.random.default_rng(0)
    mean, gamma, beta = (rng.normal(size=6) for _ in range(3))
    variance = rng.uniform(0.1, 2.0, 6)
    scale, shift = scale_shift(mean, variance, 1e-3, gamma=gamma, beta=beta)
    np.testing.assert_allclose(scale, gamma / np.sqrt(variance + 1e-3), rtol=1e-12)
    np.testing.assert_allclose(shift, beta - mean * gamma / np.sqrt(variance + 1e-3), rtol=1e-12)
    tensors = scale_shift(
        *(tf.constant(v, tf.float32) for v in (mean, variance)),
        1e-3,
        gamma=tf.constant(gamma, tf.float32),
        beta=tf.constant(beta, tf.float32),
    )
    np.testing.assert_allclose(tensors[0], scale, rtol=1e-5)
    np.testing.assert_allclose(tensors[1], shift, rtol=1e-5, atol=1e-6)
    bare = scale_shift(mean, variance, 1e-3)  # no gamma, no beta
    np.testing.assert_allclose(bare[0], 1 / np.sqrt(variance + 1e-3), rtol=1e-12)
    np.testing.assert_allclose(bare[1], -mean / np.sqrt(variance + 1e-3), rtol=1e-12)


def test_nothing_folds_across_a_nonlinearity_a_branch_or_another_axis():
    inputs = tf.keras.Input((6, 6, 2))
    # conv a has its own ReLU: folding the BatchNorm after it would be wrong.
    a = Conv2D(3, 3, padding=1, activation="relu", name="a")(inputs)
    a = BatchNorm(name="bn_a")(a)
    # conv b feeds a BatchNorm and a second reader.
    b_layer = Conv2D(3, 3, padding=1, name="b")
    b = b_layer(inputs)
    b2 = BatchNorm(name="bn_b")(b)
    # conv c feeds a BatchNorm over the height axis, then ReLU6.
    c = Conv2D(3, 3, padding=1, name="c")(inputs)
    c = BatchNorm(axis=1, name="bn_c")(c)
    d = Conv2D(3, 3, padding=1, name="d")(inputs)
    d = tf.keras.layers.ReLU(max_value=6.0, name="relu6")(d)
    out = tf.keras.layers.Concatenate(name="cat")([a, b, b2, c, d])
    model = tf.keras.Model(inputs, out)
    for name in ("a", "b", "c"):
        fused = fold_following(model, model.get_layer(name))
        assert fused.absorbed == [], name
        np.testing.assert_array_equal(fused.kernel, model.get_layer(name).get_weights()[0])
    assert fold_following(model, model.get_layer("d")).relu is None
    assert batch_norm_scale_shift(model.get_layer("bn_c")) is None
    assert batch_norm_scale_shift(model.get_layer("bn_a")) is not None
    assert not is_plain_relu(model.get_layer("relu6"))
    assert is_plain_relu(tf.keras.layers.ReLU()) and is_plain_relu(
        tf.keras.layers.Activation("relu")
    )
    assert not is_plain_relu(tf.keras.layers.Activation("tanh"))
    assert {layer.name for layer in consumers(model, b_layer)} == {"bn_b", "cat"}
    assert single_consumer(model, b_layer) is None
    assert [layer.name for layer in producers(model, model.get_layer("cat"))] == [
        "bn_a",
        "b",
        "bn_b",
        "bn_c",
        "relu6",
    ]


def test_a_model_output_folds_nothing():
    inputs = tf.keras.Input((4,))
    hidden = tf.keras.layers.Dense(3, name="fc")(inputs)
    out = BatchNorm(name="bn")(hidden)
    model = tf.keras.Model(inputs, [hidden, out])
    assert fold_following(model, model.get_layer("fc")).absorbed == []
