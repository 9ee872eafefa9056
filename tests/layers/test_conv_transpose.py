"""ConvTranspose1D/2D/3D against Keras's transpose convolutions (the oracle) and against the
textbook construction (zero insertion + padding + flipped-kernel convolution), outputs and
gradients; configuration, errors, mixed precision and the edge runtimes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import testing_utils
from hypothesis import given
from hypothesis import strategies as st

from layers.conv_transpose import ConvTranspose1D, ConvTranspose2D, ConvTranspose3D

LAYERS = {1: ConvTranspose1D, 2: ConvTranspose2D, 3: ConvTranspose3D}
ORACLES = {
    1: tf.keras.layers.Conv1DTranspose,
    2: tf.keras.layers.Conv2DTranspose,
    3: tf.keras.layers.Conv3DTranspose,
}
ATOL = 1e-5


# --- The textbook reference -------------------------------------------------------------------


def insert_zeros(x: tf.Tensor, axis: int, stride: int) -> tf.Tensor:
    """Puts `stride - 1` zeros between neighbours along `axis`: `a b c` -> `a 0 b 0 c`."""
    if stride == 1:
        return x
    shape = list(x.shape)
    expanded = tf.expand_dims(x, axis + 1)
    zeros = tf.zeros_like(tf.repeat(expanded, stride - 1, axis=axis + 1))
    interleaved = tf.concat([expanded, zeros], axis=axis + 1)
    shape[axis] *= stride
    up = tf.reshape(interleaved, shape)
    index = [slice(None)] * len(shape)
    index[axis] = slice(0, shape[axis] - stride + 1)
    return up[tuple(index)]


def textbook_conv_transpose(x, kernel, strides, dilation, pads_before, out_sizes):
    """Transpose convolution as taught: zero insertion, padding, flipped-kernel convolution.

    `kernel` has Keras's layout `(*k, filters, in_channels)`. The output of spatial dimension
    `a` is `full[p_before : p_before + out]` of the full transpose convolution
    (`full[i * s + j * d] += x[i] * w[j]`, zero past its end).
    """
    rank = len(strides)
    for axis, s in enumerate(strides):
        x = insert_zeros(x, axis + 1, s)
    pads = [[0, 0]]
    for axis, (k, d, p_before, out) in enumerate(
        zip(kernel.shape[:rank], dilation, pads_before, out_sizes, strict=True)
    ):
        span = d * (k - 1) + 1
        before = span - 1 - p_before
        after = out + span - 1 - before - x.shape[axis + 1]
        pads.append([before, after])
    pads.append([0, 0])
    crop = (
        [slice(None)]
        + [
            slice(max(-b, 0), x.shape[i + 1] + min(a, 0) or None)
            for i, (b, a) in enumerate(pads[1:-1])
        ]
        + [slice(None)]
    )
    x = tf.pad(x[tuple(crop)], [[max(b, 0), max(a, 0)] for b, a in pads])
    flipped = tf.reverse(kernel, axis=list(range(rank)))
    flipped = tf.transpose(flipped, [*range(rank), rank + 1, rank])  # (*k, in, out)
    return tf.nn.convolution(x, flipped, padding="VALID", dilations=list(dilation))


def keras_placement(n, k, s, d, padding, output_padding):
    """`(p_before, out)` of one dimension as Keras's transpose convolutions place the output."""
    span = d * (k - 1) + 1
    if padding == "valid":
        extra = max(span, s) - span if output_padding is None else output_padding
        return 0, (n - 1) * s + span + extra
    if padding == "same":
        out = n * s if output_padding is None else (n - 1) * s + span % 2 + output_padding
        total = max((-(-out // s) - 1) * s + span - out, 0)  # TF's SAME rule on the output
        return total // 2, out
    before, after = padding
    return before, (n - 1) * s + span - before - after + (output_padding or 0)


def outputs_and_grads(layer, x, upstream):
    """`(y, dL/dx, dL/dkernel)` with `L = sum(y * upstream)`."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * upstream)
    grad_x, grad_kernel = tape.gradient(loss, [x, layer.kernel])
    return y.numpy(), grad_x.numpy(), np.asarray(grad_kernel)


def reference_and_grads(fn, x, kernel, upstream):
    """`(y, dL/dx, dL/dkernel)` of `y = fn(x, kernel)`, `L = sum(y * upstream)`, in a graph
    (TF cannot differentiate the 3D convolution reached by `tf.nn.convolution` eagerly)."""

    @tf.function
    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x, kernel)
            loss = tf.reduce_sum(y * upstream)
        return [y, *tape.gradient(loss, [x, kernel])]

    return [t.numpy() for t in run()]


def random_input(rng, rank, n, channels, batch=2):
    return tf.constant(rng.normal(size=(batch, *([n] * rank), channels)), tf.float32)


# --- The oracle: Keras's transpose convolutions -----------------------------------------------


@st.composite
def oracle_configs(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    k = draw(st.integers(1, 5 if rank < 3 else 3))
    s = draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same"]))
    # TF supports dilation only with stride 1; tf_keras's Conv3DTranspose ignores it (the
    # textbook test covers dilated 3D).
    d = draw(st.integers(1, 2)) if s == 1 and rank < 3 else 1
    # Keras needs output_padding < stride even where the dilation would allow more.
    op = draw(st.one_of(st.none(), st.integers(0, s - 1)))
    span = d * (k - 1) + 1
    if padding == "same" and op is not None and span % 2 + op == 0:
        op = None  # TF rejects this output size (the output would not map back to the input)
    n = draw(st.integers(1, 6 if rank < 3 else 3))
    return rank, k, s, padding, op, d, n


@given(config=oracle_configs(), use_bias=st.booleans())
def test_matches_keras_outputs_and_gradients(config, use_bias):
    rank, k, s, padding, op, d, n = config
    rng = np.random.default_rng(sum(map(hash, map(str, config))) % 2**32)
    x = random_input(rng, rank, n, 3)
    oracle = ORACLES[rank](
        4,
        k,
        strides=s,
        padding=padding,
        output_padding=op,
        dilation_rate=d,
        use_bias=use_bias,
        bias_initializer="random_normal",
    )
    ours = LAYERS[rank](
        4, k, strides=s, padding=padding, output_padding=op, dilation=d, use_bias=use_bias
    )
    oracle.build(x.shape)
    ours.build(x.shape)
    ours.set_weights(oracle.get_weights())
    upstream = tf.constant(rng.normal(size=oracle.compute_output_shape(x.shape)), tf.float32)
    expected = outputs_and_grads(oracle, x, upstream)
    actual = outputs_and_grads(ours, x, upstream)
    assert ours.compute_output_shape(x.shape) == tuple(expected[0].shape)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, atol=ATOL, rtol=1e-5)


def assert_matches_keras(rank, n, **kwargs):
    rng = np.random.default_rng(n)
    x = random_input(rng, rank, n, 3)
    oracle = ORACLES[rank](2, bias_initializer="random_normal", **kwargs)
    kwargs["dilation"] = kwargs.pop("dilation_rate", 1)
    ours = LAYERS[rank](2, **kwargs)
    oracle.build(x.shape)
    ours.build(x.shape)
    ours.set_weights(oracle.get_weights())
    upstream = tf.constant(rng.normal(size=oracle.compute_output_shape(x.shape)), tf.float32)
    expected = outputs_and_grads(oracle, x, upstream)
    for a, e in zip(outputs_and_grads(ours, x, upstream), expected, strict=True):
        np.testing.assert_allclose(a, e, atol=ATOL, rtol=1e-5)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2, 3])
@pytest.mark.parametrize("kernel_size", [1, 2, 3, 4, 5])
def test_2d_grid_matches_keras(kernel_size, strides, padding):
    """Every kernel/stride/padding combination of the lecture's range, kernels smaller than,
    equal to and not divisible by the stride included."""
    assert_matches_keras(2, 4, kernel_size=kernel_size, strides=strides, padding=padding)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 4, "strides": 2, "padding": "same"},  # phase grid shifted and cropped
        {"kernel_size": (2, 3, 4), "strides": (3, 1, 2), "output_padding": (2, 0, 1)},
        {"kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1},
    ],
)
def test_3d_stacked_path_matches_keras(kwargs):
    assert_matches_keras(3, 3, **kwargs)


@pytest.mark.parametrize("kernel_size", [3, 4])
def test_benchmark_shape_matches_tf_nn(kernel_size):
    """The benchmark's configuration (stride 2, 'same'), against tf.nn.conv2d_transpose."""
    rng = np.random.default_rng(kernel_size)
    x = random_input(rng, 2, 8, 16)
    layer = ConvTranspose2D(8, kernel_size, strides=2, padding="same", use_bias=False)
    layer.build(x.shape)
    kernel = tf.Variable(layer.kernel.numpy())
    upstream = tf.constant(rng.normal(size=(2, 16, 16, 8)), tf.float32)
    expected = reference_and_grads(
        lambda x, w: tf.nn.conv2d_transpose(x, w, (2, 16, 16, 8), 2, padding="SAME"),
        x,
        kernel,
        upstream,
    )
    for a, e in zip(outputs_and_grads(layer, x, upstream), expected, strict=True):
        np.testing.assert_allclose(a, e, atol=ATOL, rtol=1e-5)


# --- The textbook reference: every configuration, explicit per-side padding included -----------


@st.composite
def textbook_configs(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    k = draw(st.integers(1, 5 if rank < 3 else 3))
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 3))
    op_limit = d if s == 1 else s
    op = draw(st.one_of(st.none(), st.integers(0, op_limit - 1)))
    n = draw(st.integers(1, 5 if rank < 3 else 3))
    kind = draw(st.sampled_from(["valid", "same", "int", "pairs"]))
    span = d * (k - 1) + 1
    if kind in ("valid", "same"):
        padding = kind
    elif kind == "int":
        padding = draw(st.integers(0, span - 1))
    else:
        padding = tuple(
            (draw(st.integers(0, span + 1)), draw(st.integers(0, span + 1))) for _ in range(rank)
        )
    placements = [
        keras_placement(
            n,
            k,
            s,
            d,
            padding
            if isinstance(padding, str)
            else (padding, padding)
            if isinstance(padding, int)
            else padding[a],
            op,
        )
        for a in range(rank)
    ]
    if any(out < 1 for _, out in placements):
        padding = "valid"
        placements = [keras_placement(n, k, s, d, "valid", op)] * rank
    return rank, k, s, d, op, n, padding, placements


@given(config=textbook_configs())
def test_matches_textbook_outputs_and_gradients(config):
    rank, k, s, d, op, n, padding, placements = config
    rng = np.random.default_rng(0)
    x = random_input(rng, rank, n, 2)
    layer = LAYERS[rank](
        3, k, strides=s, padding=padding, output_padding=op, dilation=d, use_bias=False
    )
    layer.build(x.shape)
    kernel = tf.Variable(layer.kernel.numpy())
    pads_before = [p for p, _ in placements]
    out_sizes = [out for _, out in placements]
    upstream = tf.constant(rng.normal(size=(2, *out_sizes, 3)), tf.float32)
    expected = reference_and_grads(
        lambda x, w: textbook_conv_transpose(
            x, w, (s,) * rank, (d,) * rank, pads_before, out_sizes
        ),
        x,
        kernel,
        upstream,
    )
    for a, e in zip(outputs_and_grads(layer, x, upstream), expected, strict=True):
        np.testing.assert_allclose(a, e, atol=ATOL, rtol=1e-5)


def test_mixed_per_dimension_arguments():
    """Different stride, dilation and per-side padding in each dimension."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 5, 4, 3)), tf.float32)
    layer = ConvTranspose2D(
        2,
        (3, 2),
        strides=(3, 1),
        padding=((2, 0), (0, 1)),
        output_padding=(1, 1),
        dilation=(1, 2),
        use_bias=False,
    )
    layer.build(x.shape)
    kernel = tf.Variable(layer.kernel.numpy())
    placements = [
        keras_placement(5, 3, 3, 1, (2, 0), 1),
        keras_placement(4, 2, 1, 2, (0, 1), 1),
    ]
    out_sizes = [out for _, out in placements]
    upstream = tf.constant(rng.normal(size=(2, *out_sizes, 2)), tf.float32)
    expected = reference_and_grads(
        lambda x, w: textbook_conv_transpose(
            x, w, (3, 1), (1, 2), [p for p, _ in placements], out_sizes
        ),
        x,
        kernel,
        upstream,
    )
    assert layer.compute_output_shape(x.shape) == (2, *out_sizes, 2)
    for a, e in zip(outputs_and_grads(layer, x, upstream), expected, strict=True):
        np.testing.assert_allclose(a, e, atol=ATOL, rtol=1e-5)


def test_textbook_reference_matches_keras():
    """The reference itself is right where Keras can check it."""
    rng = np.random.default_rng(2)
    x = random_input(rng, 2, 5, 3)
    oracle = tf.keras.layers.Conv2DTranspose(
        4, 4, strides=3, padding="same", output_padding=1, use_bias=False
    )
    oracle.build(x.shape)
    p_before, out = keras_placement(5, 4, 3, 1, "same", 1)
    expected = oracle(x).numpy()
    reference = textbook_conv_transpose(x, oracle.kernel, (3, 3), (1, 1), [p_before] * 2, [out] * 2)
    np.testing.assert_allclose(reference.numpy(), expected, atol=ATOL)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_unknown_spatial_size_and_activation(rank):
    kwargs = {"strides": 3, "padding": 1, "output_padding": 2, "activation": "relu"}
    layer = LAYERS[rank](4, 4, **kwargs)
    inputs = tf.keras.Input(shape=(*([None] * rank), 3))
    model = tf.keras.Model(inputs, layer(inputs))
    assert tuple(model.output_shape) == (None, *([None] * rank), 4)
    x = np.random.default_rng(3).normal(size=(1, *([4] * rank), 3)).astype("float32")
    static = LAYERS[rank](4, 4, **kwargs)
    static.build(x.shape)
    static.set_weights(layer.get_weights())
    y = model(x)
    out = (4 - 1) * 3 - (1 + 1) + 1 * (4 - 1) + 2 + 1  # the formula: 13
    assert y.shape == (1, *([out] * rank), 4)
    np.testing.assert_array_equal(y.numpy(), static(x).numpy())
    assert float(tf.reduce_min(y)) >= 0.0


# --- Mixed precision, configuration, errors ---------------------------------------------------


def test_mixed_bfloat16():
    rng = np.random.default_rng(4)
    x = random_input(rng, 2, 6, 3)
    mixed = ConvTranspose2D(4, 3, strides=2, padding="same", dtype="mixed_bfloat16")
    full = ConvTranspose2D(4, 3, strides=2, padding="same")
    mixed.build(x.shape)
    full.build(x.shape)
    full.set_weights(mixed.get_weights())
    assert mixed.kernel.dtype == tf.float32
    with tf.GradientTape() as tape:
        y = mixed(x)
        loss = tf.reduce_sum(tf.cast(y, tf.float32))
    assert y.dtype == tf.bfloat16
    grad = tape.gradient(loss, mixed.kernel)
    assert grad is not None
    np.testing.assert_allclose(tf.cast(y, tf.float32).numpy(), full(x).numpy(), atol=0.1, rtol=0.05)


def test_get_config_round_trip():
    layer = ConvTranspose3D(
        5,
        (2, 3, 1),
        strides=(2, 1, 3),
        padding=((1, 0), (0, 2), 1),
        output_padding=(1, 0, 2),
        dilation=(1, 2, 1),
        use_bias=False,
        activation="relu",
        kernel_regularizer=tf.keras.regularizers.L2(0.01),
        name="up",
    )
    config = layer.get_config()
    clone = ConvTranspose3D.from_config(config)
    assert clone.get_config() == config
    for key in ("kernel_size", "strides", "dilation", "padding", "output_padding"):
        assert getattr(clone, key) == getattr(layer, key)
        assert isinstance(getattr(clone, key), tuple)
    assert clone.filters == 5
    x = random_input(np.random.default_rng(5), 3, 3, 2)
    layer.build(x.shape)
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).numpy(), layer(x).numpy())


def test_weights_order_and_shapes():
    layer = ConvTranspose2D(6, (3, 2))
    layer.build((None, 4, 4, 5))
    assert [tuple(w.shape) for w in layer.get_weights()] == [(3, 2, 6, 5), (6,)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": 0}, "filters"),
        ({"filters": 2.5}, "filters"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": (3, -1)}, "kernel_size"),
        ({"strides": 0}, "strides"),
        ({"dilation": -2}, "dilation"),
        ({"padding": "full"}, "padding"),
        ({"padding": -1}, "padding"),
        ({"padding": ((1, 2, 3), (0, 0))}, "padding"),
        ({"strides": 2, "output_padding": 2}, "output_padding"),
        ({"strides": 1, "output_padding": 1}, "output_padding"),
        ({"strides": 1, "dilation": 2, "output_padding": 2}, "output_padding"),
        ({"output_padding": -1}, "output_padding"),
        ({"groups": 0}, r"`groups` must be a positive integer, got 0"),
        ({"groups": 2.0}, r"`groups` must be a positive integer, got 2.0"),
        ({"groups": True}, "groups"),
        ({"filters": 3, "groups": 2}, r"`filters`=3 must be divisible by `groups`=2"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"filters": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        ConvTranspose2D(**arguments)


def test_output_padding_below_dilation_is_accepted_with_stride_one():
    layer = ConvTranspose1D(2, 3, dilation=3, output_padding=2)
    assert layer(tf.zeros((1, 4, 1))).shape == (1, 4 + 6 + 2, 2)


def test_bad_input_rank_and_negative_output_size():
    with pytest.raises(ValueError, match="expects a 4D input"):
        ConvTranspose2D(2, 3)(tf.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="output size"):
        ConvTranspose1D(2, 3, padding=3)(tf.zeros((1, 1, 2)))


# --- Edge runtimes and serialization (Keras 3) ------------------------------------------------


def assert_edge_runtimes_match(model: tf.keras.Model, x: np.ndarray) -> None:
    """The shared edge-runtime check, plus: no TFLite TRANSPOSE_CONV (computed from scratch)."""
    ops = testing_utils.tflite_op_names(testing_utils.to_tflite(model, x.shape))
    assert "TRANSPOSE_CONV" not in ops, ops
    testing_utils.assert_edge_runtimes_match(model, x, atol=ATOL)


@pytest.mark.keras3_only
@pytest.mark.parametrize(
    ("rank", "kwargs"),
    [
        (1, {"kernel_size": 4, "strides": 2, "padding": "same"}),
        (2, {"kernel_size": 3, "strides": 2, "padding": 1, "output_padding": 1}),
        (2, {"kernel_size": (4, 3), "strides": (2, 3), "padding": "valid"}),
        (3, {"kernel_size": 3, "strides": 2, "padding": "same"}),
    ],
)
def test_edge_runtimes_match(rank, kwargs):
    _assert_runtimes_match(rank, kwargs, filters=3, channels=2, seed=6)


def _assert_runtimes_match(rank, kwargs, filters, channels, seed):
    layer = LAYERS[rank](filters, bias_initializer="random_normal", **kwargs)
    input_shape = (*([5] * rank), channels) if rank < 3 else (3, 3, 3, channels)
    model = testing_utils.model_of(layer, input_shape)
    x = np.random.default_rng(seed).normal(size=(1, *input_shape)).astype(np.float32)
    assert_edge_runtimes_match(model, x)


@pytest.mark.keras3_only
def test_keras_file_round_trip(tmp_path):
    model = testing_utils.model_of(
        ConvTranspose2D(4, 3, strides=2, padding=((0, 1), (1, 0)), bias_initializer="ones"),
        (5, 5, 3),
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    x = np.random.default_rng(7).normal(size=(2, 5, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert isinstance(loaded.layers[-1], ConvTranspose2D)


# --- Groups (PyTorch's `groups`, ONNX's `group`) ------------------------------------------------


def split_groups(layer, x, groups):
    """Per-group input slices and kernel/bias slices of a grouped layer: group `i` maps input
    channels `[i * C/g, (i + 1) * C/g)` to filters `[i * F/g, (i + 1) * F/g)`."""
    kernel, *bias = layer.get_weights()
    f = layer.filters // groups
    c = x.shape[-1] // groups
    for i in range(groups):
        weights = [kernel[..., i * f : (i + 1) * f, :], *(b[i * f : (i + 1) * f] for b in bias)]
        yield x[..., i * c : (i + 1) * c], weights


def grouped_oracle_outputs_and_grads(layer, x, upstream, **kwargs):
    """`(y, dL/dx, dL/dkernel)` of per-group Keras transpose convolutions, concatenated."""
    groups, rank = layer.groups, layer.rank
    oracles = []
    for x_group, weights in split_groups(layer, x, groups):
        oracle = ORACLES[rank](layer.filters // groups, use_bias=layer.use_bias, **kwargs)
        oracle.build(x_group.shape)
        oracle.set_weights(weights)
        oracles.append(oracle)
    with tf.GradientTape() as tape:
        tape.watch(x)
        parts = [
            o(x_g) for o, (x_g, _) in zip(oracles, split_groups(layer, x, groups), strict=True)
        ]
        y = tf.concat(parts, axis=-1)
        loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x, *(o.kernel for o in oracles)])
    grad_kernel = np.concatenate([np.asarray(g) for g in grads[1:]], axis=-2)
    return y.numpy(), grads[0].numpy(), grad_kernel


@st.composite
def grouped_configs(draw):
    rank, k, s, padding, op, d, n = draw(oracle_configs())
    groups = draw(st.sampled_from([2, 3]))
    channels = groups * draw(st.integers(1, 2))
    filters = groups * draw(st.integers(1, 2))
    return rank, k, s, padding, op, d, n, groups, channels, filters


@given(config=grouped_configs(), use_bias=st.booleans())
def test_groups_match_per_group_keras_outputs_and_gradients(config, use_bias):
    """The oracle: one Keras transpose convolution (tf.nn.conv_transpose) per group."""
    rank, k, s, padding, op, d, n, groups, channels, filters = config
    rng = np.random.default_rng(sum(map(hash, map(str, config))) % 2**32)
    x = random_input(rng, rank, n, channels)
    kwargs = {"strides": s, "padding": padding, "output_padding": op}
    layer = LAYERS[rank](
        filters, k, dilation=d, groups=groups, use_bias=use_bias, **kwargs
    )  # fmt: skip
    layer.build(x.shape)
    layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()])
    upstream = tf.constant(rng.normal(size=layer.compute_output_shape(x.shape)), tf.float32)
    expected = grouped_oracle_outputs_and_grads(
        layer, x, upstream, kernel_size=k, dilation_rate=d, **kwargs
    )
    for a, e in zip(outputs_and_grads(layer, x, upstream), expected, strict=True):
        np.testing.assert_allclose(a, e, atol=ATOL, rtol=1e-5)


def test_groups_match_tf_nn_conv_transpose_per_group():
    """AlexNet-style groups=2 upsampling against tf.nn.conv2d_transpose per group."""
    rng = np.random.default_rng(8)
    x = random_input(rng, 2, 6, 8)
    layer = ConvTranspose2D(6, 4, strides=2, padding="same", groups=2, use_bias=False)
    layer.build(x.shape)
    kernel = tf.Variable(layer.kernel.numpy())
    upstream = tf.constant(rng.normal(size=(2, 12, 12, 6)), tf.float32)

    def per_group(x, w):
        parts = [
            tf.nn.conv2d_transpose(x[..., 4 * i : 4 * i + 4], w[..., 3 * i : 3 * i + 3, :],
                                   (2, 12, 12, 3), 2, padding="SAME")
            for i in range(2)
        ]  # fmt: skip
        return tf.concat(parts, axis=-1)

    expected = reference_and_grads(per_group, x, kernel, upstream)
    for a, e in zip(outputs_and_grads(layer, x, upstream), expected, strict=True):
        np.testing.assert_allclose(a, e, atol=ATOL, rtol=1e-5)


def torch_weight_to_ours(weight: np.ndarray, groups: int) -> np.ndarray:
    """PyTorch's/ONNX's `(C, F // g, *k)` weight in this layer's `(*k, F, C // g)` layout, by
    the recipe of the layer's docstring."""
    channels, group_filters, *k = weight.shape
    rank = len(k)
    grouped = weight.reshape(groups, channels // groups, group_filters, *k)
    moved = grouped.transpose(*range(3, 3 + rank), 0, 2, 1)
    return moved.reshape(*k, groups * group_filters, channels // groups)


def one_node_onnx_model(op_type, x_shape, initializers, **attributes):
    """A model of one ONNX node `op_type(x, *initializers)` (a list of `(name, array)`)."""
    from onnx import TensorProto, helper, numpy_helper

    names = ["x", *(name for name, _ in initializers)]
    graph = helper.make_graph(
        [helper.make_node(op_type, names, ["y"], **attributes)],
        op_type,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(array, name) for name, array in initializers],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def onnx_conv_transpose(x, weight, bias, groups, strides, dilations, pads, output_padding):
    """ONNX ConvTranspose on the channels-last `x` (transposed to N, C, ...), in ONNX Runtime
    and, where it is right, in onnx.reference: onnx 1.23's reference handles `group > 1` only
    when every group has one input and one output channel, and then adds filter 0's bias to
    every filter (onnx/onnx#8446, fixed upstream), so it runs there without the bias."""
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    x_nc = np.moveaxis(x, -1, 1)
    attributes = {
        "group": groups,
        "strides": list(strides),
        "dilations": list(dilations),
        "pads": [b for b, _ in pads] + [a for _, a in pads],
        "output_padding": list(output_padding),
    }
    inputs = [("w", weight), ("b", bias)]
    model = one_node_onnx_model("ConvTranspose", x_nc.shape, inputs, **attributes)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    results = [session.run(None, {"x": x_nc})[0]]
    if groups == 1:
        results.append(ReferenceEvaluator(model).run(None, {"x": x_nc})[0])
    elif weight.shape[:2] == (groups, 1):
        unbiased = one_node_onnx_model("ConvTranspose", x_nc.shape, inputs[:1], **attributes)
        y = ReferenceEvaluator(unbiased).run(None, {"x": x_nc})[0]
        results.append(y + bias.reshape(-1, *[1] * (x.ndim - 2)))
    return [np.moveaxis(y, 1, -1) for y in results]


@st.composite
def onnx_configs(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    groups = draw(st.sampled_from([1, 2, 3]))
    depthwise = groups > 1 and draw(st.booleans())
    channels = groups * (1 if depthwise else draw(st.integers(1, 2)))
    filters = groups * (1 if depthwise else draw(st.integers(1, 2)))
    k = tuple(draw(st.integers(1, 4 if rank < 3 else 3)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    # Strided and dilated at once, which TensorFlow's oracles forbid.
    d = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    # PyTorch (and this layer) allow output_padding < max(stride, dilation); ONNX Runtime only
    # < stride (the textbook test covers the rest).
    op = tuple(draw(st.integers(0, si - 1)) for si in s)
    n = draw(st.integers(1, 4 if rank < 3 else 3))
    pads = []
    for ki, si, di, opi in zip(k, s, d, op, strict=True):
        span = di * (ki - 1) + 1
        full = (n - 1) * si + span + opi
        before = draw(st.integers(0, min(span, full - 1)))
        pads.append((before, draw(st.integers(0, min(span, full - 1 - before)))))
    return rank, groups, channels, filters, k, s, d, op, n, tuple(pads)


@given(config=onnx_configs())
def test_matches_onnx_conv_transpose(config):
    """PyTorch's/ONNX's weights through the documented recipe; pads, output_padding, strides,
    dilations and group against ONNX ConvTranspose (onnx.reference and ONNX Runtime)."""
    rank, groups, channels, filters, k, s, d, op, n, pads = config
    rng = np.random.default_rng(sum(map(hash, map(str, config))) % 2**32)
    x = rng.normal(size=(2, *([n] * rank), channels)).astype(np.float32)
    weight = rng.normal(size=(channels, filters // groups, *k)).astype(np.float32)
    bias = rng.normal(size=(filters,)).astype(np.float32)
    layer = LAYERS[rank](
        filters, k, strides=s, padding=pads, output_padding=op, dilation=d, groups=groups
    )
    layer.build(x.shape)
    layer.set_weights([torch_weight_to_ours(weight, groups), bias])
    y = layer(x).numpy()
    expected = onnx_conv_transpose(x, weight, bias, groups, s, d, pads, op)
    for e in expected:
        np.testing.assert_allclose(y, e, atol=ATOL, rtol=1e-5)


def test_grouped_kernel_layout_and_errors():
    layer = ConvTranspose2D(6, (3, 2), groups=3)
    layer.build((None, 4, 4, 9))
    assert [tuple(w.shape) for w in layer.get_weights()] == [(3, 2, 6, 3), (6,)]
    with pytest.raises(ValueError, match=r"input channels 4 must be divisible by `groups`=3"):
        ConvTranspose2D(6, 3, groups=3)(tf.zeros((1, 4, 4, 4)))


def test_grouped_kernel_folds_a_following_batch_norm():
    """The filter axis holds all filters, so BatchNorm folding (layers.fusion) works as is."""
    from layers.batch_norm import BatchNorm
    from layers.fusion import fold_following

    inputs = tf.keras.Input(shape=(4, 4, 4))
    up = ConvTranspose2D(6, 3, strides=2, padding=1, groups=2, name="up")
    norm = BatchNorm(name="bn")
    model = tf.keras.Model(inputs, norm(up(inputs)))
    rng = np.random.default_rng(9)
    norm.set_weights([rng.uniform(0.5, 2, size=6).astype(np.float32) for _ in range(4)])
    fused = fold_following(model, up)
    assert fused.batch_norm is norm
    plain = ConvTranspose2D(6, 3, strides=2, padding=1, groups=2)
    plain.build((None, 4, 4, 4))
    plain.set_weights([fused.kernel, fused.bias])
    x = rng.normal(size=(2, 4, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(plain(x).numpy(), model(x, training=False).numpy(), atol=1e-5)


def test_grouped_get_config_round_trip():
    layer = ConvTranspose1D(6, 3, strides=2, padding=(1,), output_padding=1, groups=3)
    config = layer.get_config()
    assert config["groups"] == 3
    clone = ConvTranspose1D.from_config(config)
    assert clone.get_config() == config and clone.groups == 3
    x = random_input(np.random.default_rng(10), 1, 5, 3)
    layer.build(x.shape)
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).numpy(), layer(x).numpy())
    older = {key: value for key, value in config.items() if key != "groups"}
    assert ConvTranspose1D.from_config(older).groups == 1  # configs saved before `groups`


@pytest.mark.keras3_only
@pytest.mark.parametrize(
    ("rank", "kwargs"),
    [
        (1, {"kernel_size": 4, "strides": 2, "padding": "same", "groups": 2}),
        (2, {"kernel_size": 3, "strides": 2, "padding": 1, "output_padding": 1, "groups": 2}),
        (3, {"kernel_size": 2, "strides": 2, "dilation": (1, 2, 1), "groups": 2}),
    ],
)
def test_grouped_edge_runtimes_match(rank, kwargs):
    _assert_runtimes_match(rank, kwargs, filters=4, channels=4, seed=11)
