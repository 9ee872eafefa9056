"""Conv1D/2D/3D against tf.keras's own convolutions (the oracle), fed np.pad-ed inputs.

The oracle pads with NumPy (`constant`/`reflect`/`edge`/`wrap`), runs
`tf.keras.layers.ConvND(padding="valid")` with the same weights (per-group layers for
`groups > 1`, concatenated), and takes its input gradient back through the padding by
scatter-adding over the source index of each padded position.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
import testing_utils
from hypothesis import assume, given
from hypothesis import strategies as st

from layers.convolution import Conv1D, Conv2D, Conv3D

CONVS = {1: Conv1D, 2: Conv2D, 3: Conv3D}
KERAS_CONVS = {1: tf.keras.layers.Conv1D, 2: tf.keras.layers.Conv2D, 3: tf.keras.layers.Conv3D}
MODES = ("zeros", "reflect", "replicate", "circular")
NUMPY_MODE = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "constant": "constant",  # with the layer's padding_value
}


def tf_same_pads(size, kernel, stride, dilation):
    """TensorFlow's SAME amounts, written out here independently of layers.padding."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def oracle(layer, x, pads, mode, cotangent):
    """Output and gradients (input, kernel, bias) of tf.keras ConvND on np.pad(x).

    `pads` are explicit `(before, after)` pairs; the loss is `sum(y * cotangent)`.
    """
    rank = x.ndim - 2
    np_pads = [(0, 0), *pads, (0, 0)]
    constant = {"constant_values": layer.padding_value} if mode == "constant" else {}
    padded = np.pad(x, np_pads, mode=NUMPY_MODE[mode], **constant).astype(np.float32)
    # Source flat index of every padded position (-1 for constant padding).
    index = np.arange(x.size).reshape(x.shape)
    if mode in ("zeros", "constant"):
        source = np.pad(index, np_pads, mode="constant", constant_values=-1)
    else:
        source = np.pad(index, np_pads, mode=NUMPY_MODE[mode])
    weights = layer.get_weights()
    kernel = weights[0]
    bias = weights[1] if layer.use_bias else np.zeros(layer.filters, np.float32)
    groups = layer.groups
    in_group = x.shape[-1] // groups
    out_group = layer.filters // groups
    keras_layers = []
    for g in range(groups):
        conv = KERAS_CONVS[rank](
            out_group, layer.kernel_size, strides=layer.strides, padding="valid",
            dilation_rate=layer.dilation,
        )  # fmt: skip
        conv.build((None, *padded.shape[1:-1], in_group))
        conv.set_weights(
            [
                kernel[..., g * out_group : (g + 1) * out_group],
                bias[g * out_group : (g + 1) * out_group],
            ]
        )
        keras_layers.append(conv)
    padded_t = tf.constant(padded)
    with tf.GradientTape() as tape:
        tape.watch(padded_t)
        parts = [
            conv(padded_t[..., g * in_group : (g + 1) * in_group])
            for g, conv in enumerate(keras_layers)
        ]
        y = tf.concat(parts, axis=-1)
        loss = tf.reduce_sum(y * cotangent)
    variables = [v for conv in keras_layers for v in conv.trainable_weights]
    grads = tape.gradient(loss, [padded_t, *variables])
    grad_padded = grads[0].numpy().ravel()
    keep = source.ravel() >= 0
    grad_x = np.bincount(source.ravel()[keep], grad_padded[keep], minlength=x.size)
    grad_kernel = np.concatenate([g.numpy() for g in grads[1::2]], axis=-1)
    grad_bias = np.concatenate([g.numpy() for g in grads[2::2]], axis=-1)
    return y.numpy(), grad_x.reshape(x.shape).astype(np.float32), grad_kernel, grad_bias


def ours(layer, x, cotangent):
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y = layer(x_t)
        loss = tf.reduce_sum(y * cotangent)
    grads = tape.gradient(loss, [x_t, *layer.trainable_weights])
    return y.numpy(), [g.numpy() for g in grads]


def check_against_oracle(layer, x, pads, mode, atol=1e-5):
    rng = np.random.default_rng(1)
    y = layer(tf.constant(x))  # builds
    # Non-zero bias so that the bias path is compared too.
    weights = layer.get_weights()
    layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in weights])
    cotangent = rng.normal(size=y.shape).astype(np.float32)
    y, (gx, gk, *gb) = ours(layer, x, cotangent)
    ey, egx, egk, egb = oracle(layer, x, pads, mode, cotangent)
    assert y.shape == ey.shape
    np.testing.assert_allclose(y, ey, atol=atol, rtol=1e-5)
    np.testing.assert_allclose(gx, egx, atol=atol, rtol=1e-5)
    np.testing.assert_allclose(gk, egk, atol=atol, rtol=1e-5)
    if layer.use_bias:
        np.testing.assert_allclose(gb[0], egb, atol=atol, rtol=1e-5)


@st.composite
def conv_configs(draw, rank):
    max_size = {1: 9, 2: 7, 3: 5}[rank]
    spatial = tuple(draw(st.integers(2, max_size)) for _ in range(rank))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    channels = groups * draw(st.integers(1, 2))
    filters = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    if draw(st.booleans()):
        strides = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        dilation = (1,) * rank
    else:
        strides = (1,) * rank
        dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    mode = draw(st.sampled_from(MODES))
    if draw(st.integers(0, 4)) == 0:
        padding = draw(st.sampled_from(["same", "valid"]))
    else:
        limit = {"reflect": min(spatial) - 1, "circular": min(spatial)}.get(mode, 3)
        padding = tuple(
            (draw(st.integers(0, min(limit, 2))), draw(st.integers(0, min(limit, 2))))
            for _ in range(rank)
        )
    use_bias = draw(st.booleans())
    return (
        rank,
        spatial,
        channels,
        filters,
        kernel,
        strides,
        dilation,
        groups,
        mode,
        padding,
        (use_bias),
    )


@pytest.mark.parametrize("rank", [1, 2, 3])
@given(data=st.data())
def test_matches_keras_oracle_outputs_and_gradients(rank, data):
    config = data.draw(conv_configs(rank))
    rank, spatial, channels, filters, kernel, strides, dilation, groups, mode, padding, bias = (
        config
    )
    if padding == "same":
        pads = tuple(map(tf_same_pads, spatial, kernel, strides, dilation))
    elif padding == "valid":
        pads = ((0, 0),) * rank
    else:
        pads = padding
    if mode == "reflect":
        assume(all(max(p) < n for p, n in zip(pads, spatial, strict=True)))
    if mode == "circular":
        assume(all(max(p) <= n for p, n in zip(pads, spatial, strict=True)))
    assume(
        all(
            n + sum(p) >= d * (k - 1) + 1
            for n, p, k, d in zip(spatial, pads, kernel, dilation, strict=True)
        )
    )
    layer = CONVS[rank](
        filters, kernel, strides=strides, padding=padding, padding_mode=mode,
        dilation=dilation, groups=groups, use_bias=bias,
    )  # fmt: skip
    x = np.random.default_rng(0).normal(size=(2, *spatial, channels)).astype(np.float32)
    check_against_oracle(layer, x, pads, mode)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_each_padding_mode(rank, mode):
    """Every mode in every rank with uneven per-side padding, strides and groups."""
    pads = ((1, 2), (2, 0), (0, 1))[:rank]
    layer = CONVS[rank](4, 3, strides=(2, 1, 2)[:rank], padding=pads, padding_mode=mode, groups=2)
    x = np.random.default_rng(0).normal(size=(2, *((5, 4, 3)[:rank]), 4)).astype(np.float32)
    check_against_oracle(layer, x, pads, mode)


@pytest.mark.parametrize(
    ("rank", "spatial", "kernel", "dilation", "padding", "mode", "groups"),
    [
        (3, (5, 6, 7), (2, 3, 3), (2, 1, 2), ((1, 0), (0, 2), (2, 2)), "circular", 2),
        (3, (4, 4, 5), 2, 3, "valid", "zeros", 1),
        (3, (5, 5, 5), 3, 2, "same", "reflect", 1),
        (2, (6, 7), (3, 2), (2, 3), 1, "replicate", 2),
        (1, (9,), 3, 4, "same", "zeros", 1),
    ],
)
def test_dilated_convolutions(rank, spatial, kernel, dilation, padding, mode, groups):
    layer = CONVS[rank](
        2 * groups, kernel, padding=padding, padding_mode=mode, dilation=dilation, groups=groups
    )
    kernel, dilation = layer.kernel_size, layer.dilation
    if padding == "same":
        pads = tuple(map(tf_same_pads, spatial, kernel, (1,) * rank, dilation))
    elif padding == "valid":
        pads = ((0, 0),) * rank
    else:
        pads = layer.padding
    x = np.random.default_rng(0).normal(size=(2, *spatial, 2 * groups)).astype(np.float32)
    check_against_oracle(layer, x, pads, mode)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize(
    ("size", "kernel", "strides", "dilation"),
    [(7, 3, 1, 1), (8, 3, 2, 1), (7, 4, 3, 1), (6, 2, 1, 2), (5, 3, 1, 3)],
)
def test_same_equals_keras_same(rank, size, kernel, strides, dilation):
    x = np.random.default_rng(0).normal(size=(2, *([size] * rank), 3)).astype(np.float32)
    ours_layer = CONVS[rank](4, kernel, strides=strides, padding="same", dilation=dilation)
    keras_layer = KERAS_CONVS[rank](
        4, kernel, strides=strides, padding="same", dilation_rate=dilation
    )
    ours_layer.build(x.shape)
    keras_layer.build(x.shape)
    keras_layer.set_weights(ours_layer.get_weights())
    x_t = tf.constant(x)
    results = []
    for layer in (ours_layer, keras_layer):
        with tf.GradientTape() as tape:
            tape.watch(x_t)
            y = layer(x_t)
            loss = tf.reduce_sum(tf.sin(y))
        results.append([y, *tape.gradient(loss, [x_t, *layer.trainable_weights])])
    for got, expected in zip(*results, strict=True):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5, rtol=1e-5)


def test_groups_match_keras_native_grouped_conv():
    """Our per-group split equals Keras's own grouped Conv2D (AlexNet's groups=2)."""
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 9, 9, 6)).astype(np.float32))
    ours_layer = Conv2D(4, 3, padding=1, groups=2)
    keras_layer = tf.keras.layers.Conv2D(4, 3, groups=2)
    ours_layer.build(x.shape)
    keras_layer.build((None, 11, 11, 6))
    keras_layer.set_weights(ours_layer.get_weights())
    expected = keras_layer(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]))
    np.testing.assert_allclose(ours_layer(x).numpy(), expected.numpy(), atol=1e-5)


def test_lecture_shapes_and_weight_layout():
    # LeNet conv1 (28, k5, p2 -> 28) and AlexNet conv1 (227, k11, s4 -> 55).
    lenet = Conv2D(6, 5, padding=2)
    assert lenet(tf.zeros((1, 28, 28, 1))).shape == (1, 28, 28, 6)
    alexnet = Conv2D(96, 11, strides=4)
    assert alexnet(tf.zeros((1, 227, 227, 3))).shape == (1, 55, 55, 96)
    assert [tuple(w.shape) for w in alexnet.weights] == [(11, 11, 3, 96), (96,)]
    assert [w.name.split("/")[-1].split(":")[0] for w in alexnet.weights] == ["kernel", "bias"]
    grouped = Conv2D(256, 5, padding=2, groups=2)
    assert grouped(tf.zeros((1, 27, 27, 96))).shape == (1, 27, 27, 256)
    assert tuple(grouped.kernel.shape) == (5, 5, 48, 256)
    # 640x480, k7, p3, s2 -> 320x240
    assert Conv2D(1, 7, strides=2, padding=3)(tf.zeros((1, 480, 640, 1))).shape[1:3] == (240, 320)


def test_public_attributes_are_normalized():
    layer = Conv3D(6, (1, 3, 3), strides=(1, 2, 2), padding=(0, 1, (1, 2)), groups=3)
    assert layer.kernel_size == (1, 3, 3)
    assert layer.strides == (1, 2, 2)
    assert layer.dilation == (1, 1, 1)
    assert layer.padding == ((0, 0), (1, 1), (1, 2))
    assert layer.padding_mode == "zeros"
    assert (layer.groups, layer.filters) == (3, 6)
    assert Conv1D(2, 3, padding="SAME", padding_mode="Reflect").padding == "same"


def test_compute_output_shape_matches_call():
    layer = Conv2D(5, (3, 2), strides=(2, 1), padding=((1, 0), (2, 2)), dilation=1)
    y = layer(tf.zeros((2, 9, 7, 3)))
    assert tuple(layer.compute_output_shape((2, 9, 7, 3))) == tuple(y.shape)
    assert tuple(layer.compute_output_shape((None, None, 7, 3))) == (None, None, 10, 5)


def test_unknown_spatial_size_with_explicit_padding():
    layer = Conv2D(2, 3, padding=1, padding_mode="replicate")
    function = tf.function(layer).get_concrete_function(tf.TensorSpec((1, None, None, 2)))
    assert function(tf.ones((1, 6, 5, 2))).shape == (1, 6, 5, 2)


def test_mixed_bfloat16_policy():
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = Conv2D(4, 3, padding=1, padding_mode="reflect", groups=2, activation="relu")
        x = np.random.default_rng(0).normal(size=(1, 6, 6, 2)).astype(np.float32)
        y = layer(tf.constant(x))
        assert y.dtype == tf.bfloat16
        assert layer.kernel.dtype == tf.float32
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    reference = Conv2D(4, 3, padding=1, padding_mode="reflect", groups=2, activation="relu")
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        tf.cast(y, tf.float32).numpy(), reference(tf.constant(x)).numpy(), atol=0.1, rtol=0.05
    )


def test_config_round_trip():
    layer = Conv2D(
        4, (3, 2), strides=(1, 2), padding=((1, 0), (0, 1)), padding_mode="circular",
        dilation=1, groups=2, use_bias=False, activation="relu",
        kernel_initializer="he_normal", bias_initializer="ones",
        kernel_regularizer=tf.keras.regularizers.L2(1e-4), name="c",
    )  # fmt: skip
    config = layer.get_config()
    for key in (
        "filters", "kernel_size", "strides", "padding", "padding_mode", "dilation", "groups",
        "use_bias", "activation", "kernel_initializer", "bias_initializer",
        "kernel_regularizer", "bias_regularizer",
    ):  # fmt: skip
        assert key in config
    clone = Conv2D.from_config(config)
    assert clone.get_config() == config
    x = tf.constant(np.random.default_rng(0).normal(size=(1, 5, 6, 4)).astype(np.float32))
    layer(x)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).numpy(), layer(x).numpy())
    assert len(clone.losses) == 1  # the kernel regularizer survived


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": 0}, "filters"),
        ({"filters": -2}, "filters"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": (3,)}, "kernel_size"),
        ({"strides": 0}, "strides"),
        ({"dilation": -1}, "dilation"),
        ({"padding": "full"}, "padding"),
        ({"padding": -1}, "padding"),
        ({"padding_mode": "mirror"}, "padding_mode"),
        ({"filters": 3, "groups": 2}, "divisible"),
        ({"groups": 0}, "groups"),
        ({"strides": 2, "dilation": 2}, "dilation"),
        ({"padding_value": 1.0}, r"`padding_value`=1.0 is used only with padding_mode='constant'"),
        ({"padding_mode": "reflect", "padding_value": -1}, "padding_value"),
        ({"padding_mode": "constant", "padding_value": "1"}, "must be a real number, got '1'"),
        ({"padding_mode": "constant", "padding_value": None}, "padding_value"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"filters": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        Conv2D(**arguments)


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (lambda: Conv2D(4, 3), (1, 8, 3), "4D"),
        (lambda: Conv1D(4, 3), (1, 8, 8, 3), "3D"),
        (lambda: Conv3D(4, 3), (1, 8, 8, 3), "5D"),
        (lambda: Conv2D(4, 3, groups=2), (1, 8, 8, 3), "channels 3"),
        (lambda: Conv2D(4, 5), (1, 4, 8, 3), "larger than padded input"),
        (lambda: Conv2D(4, 3, dilation=3, padding=1), (1, 4, 4, 3), "larger than padded"),
        (lambda: Conv1D(4, 3, padding=3, padding_mode="reflect"), (1, 3, 2), "reflect"),
    ],
)
def test_bad_inputs(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer()(tf.zeros(shape))


def _edge_model(rank):
    size = {1: 12, 2: 8, 3: 6}[rank]
    conv = CONVS[rank]
    inputs = tf.keras.Input(shape=(*([size] * rank), 4))
    x = conv(4, 3, padding=1, padding_mode="zeros")(inputs)
    x = conv(4, 3, padding=1, padding_mode="reflect", groups=2)(x)
    x = conv(6, 2, padding=((1, 0),) * rank, padding_mode="replicate")(x)
    x = conv(6, 3, padding="same", padding_mode="circular", dilation=2, groups=3)(x)
    x = conv(4, 3, strides=2, padding="same", activation="relu")(x)
    return tf.keras.Model(inputs, x), (2, *([size] * rank), 4)


@pytest.mark.keras3_only
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_edge_runtimes_match(rank):
    model, shape = _edge_model(rank)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    testing_utils.assert_edge_runtimes_match(model, x, atol=1e-4)


@pytest.mark.keras3_only
def test_zero_padding_equal_to_same_is_one_tflite_conv():
    model = testing_utils.model_of(Conv2D(6, 5, padding=2), (28, 28, 1))
    ops = testing_utils.tflite_op_names(testing_utils.to_tflite(model, (1, 28, 28, 1)))
    assert ops == {"CONV_2D"}


@pytest.mark.keras3_only
def test_keras_file_round_trip_is_exact(tmp_path):
    model, shape = _edge_model(2)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    path = tmp_path / "conv.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    for original, restored in zip(model.layers[1:], loaded.layers[1:], strict=True):
        assert restored.get_config() == original.get_config()
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


# --- padding_mode="constant" with a padding_value (ONNX Pad's constant_value) --------------------


@pytest.mark.parametrize(
    ("rank", "padding", "value", "groups"),
    [
        (1, ((2, 1),), -1.5, 1),
        (2, ((1, 2), (0, 1)), 3.0, 2),
        (2, "same", 0.5, 1),  # never folded into TensorFlow's SAME: that pads zeros
        (3, 1, -0.25, 2),
    ],
)
def test_constant_padding_matches_oracle(rank, padding, value, groups):
    layer = CONVS[rank](
        2 * groups, 3, padding=padding, padding_mode="constant", padding_value=value,
        groups=groups, strides=(2, 1, 1)[:rank],
    )  # fmt: skip
    spatial = (6, 5, 4)[:rank]
    if padding == "same":
        pads = tuple(map(tf_same_pads, spatial, (3,) * rank, layer.strides, (1,) * rank))
    else:
        pads = layer.padding
    x = np.random.default_rng(3).normal(size=(2, *spatial, 2 * groups)).astype(np.float32)
    check_against_oracle(layer, x, pads, "constant")


def test_constant_zero_padding_is_zero_padding():
    x = tf.constant(np.random.default_rng(4).normal(size=(1, 7, 7, 2)).astype(np.float32))
    zeros = Conv2D(3, 3, padding=1)
    constant = Conv2D(3, 3, padding=1, padding_mode="constant", padding_value=0)
    zeros.build(x.shape)
    constant.build(x.shape)
    constant.set_weights(zeros.get_weights())
    np.testing.assert_array_equal(constant(x).numpy(), zeros(x).numpy())
    assert constant._explicit_pads(x.shape[1:-1]) == "SAME" == zeros._explicit_pads(x.shape[1:-1])


def test_constant_padding_config_round_trip():
    layer = Conv1D(4, 3, padding=((2, 0),), padding_mode="Constant", padding_value=-3)
    config = layer.get_config()
    assert (config["padding_mode"], config["padding_value"]) == ("constant", -3.0)
    clone = Conv1D.from_config(config)
    assert clone.get_config() == config
    x = tf.constant(np.random.default_rng(5).normal(size=(2, 6, 3)).astype(np.float32))
    layer.build(x.shape)
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).numpy(), layer(x).numpy())
    older = Conv1D(4, 3).get_config()
    del older["padding_value"]  # configs saved before padding_value
    assert Conv1D.from_config(older).padding_value == 0.0


@pytest.mark.keras3_only
@pytest.mark.parametrize("rank", [2, 3])
def test_constant_padding_edge_runtimes_match(rank):
    size = {2: 8, 3: 5}[rank]
    conv = CONVS[rank](4, 3, padding=1, padding_mode="constant", padding_value=-0.5, groups=2)
    model = testing_utils.model_of(conv, (*([size] * rank), 4))
    x = np.random.default_rng(6).normal(size=(1, *([size] * rank), 4)).astype(np.float32)
    testing_utils.assert_edge_runtimes_match(model, x, atol=1e-4)
