"""Conv arithmetic: the lecture's worked examples, TF's own layers' output shapes, window
enumeration for ceil mode, and gradients of real convolution stacks for receptive fields."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import assume, given
from hypothesis import strategies as st

from layers.arithmetic import (
    ReceptiveField,
    conv_output_size,
    conv_parameter_count,
    conv_transpose_output_size,
    pool_output_size,
    receptive_field,
)
from layers.convolution import Conv2D

# -- the lecture's worked examples ------------------------------------------------------------


def test_lecture_examples():
    assert conv_output_size(8, 3, stride=2) == 3
    assert (conv_output_size(640, 7, 2, 3), conv_output_size(480, 7, 2, 3)) == (320, 240)


def test_lenet_chain():
    sizes = [28]
    sizes.append(conv_output_size(sizes[-1], 5, padding=2))
    sizes.append(pool_output_size(sizes[-1], 2))
    sizes.append(conv_output_size(sizes[-1], 5))
    sizes.append(pool_output_size(sizes[-1], 2))
    assert sizes == [28, 28, 14, 10, 5]


def test_alexnet_chain():
    sizes = [227]
    sizes.append(conv_output_size(sizes[-1], 11, stride=4))
    sizes.append(pool_output_size(sizes[-1], 3, stride=2))
    sizes.append(conv_output_size(sizes[-1], 5, padding=2))
    sizes.append(pool_output_size(sizes[-1], 3, stride=2))
    for _ in range(3):
        sizes.append(conv_output_size(sizes[-1], 3, padding=1))
    sizes.append(pool_output_size(sizes[-1], 3, stride=2))
    assert sizes == [227, 55, 27, 27, 13, 13, 13, 13, 6]


def test_padding_forms_and_unknown_size():
    assert conv_output_size(10, 3, padding=(0, 2)) == conv_output_size(10, 3, padding=1) == 10
    assert conv_output_size(10, 3, stride=3, padding="same") == 4
    assert conv_output_size(10, 3, padding="VALID") == 8
    assert conv_output_size(None, 3) is None
    assert conv_transpose_output_size(None, 3, 2) is None


# -- against TensorFlow's layers ----------------------------------------------------------------


@given(
    size=st.integers(1, 30),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
    pads=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    named=st.sampled_from([None, "same", "valid"]),
)
def test_conv_output_size_matches_keras(size, kernel, stride, dilation, pads, named):
    if stride > 1:
        dilation = 1  # TensorFlow forbids both
    padding = named or pads
    explicit = (0, 0) if named else pads
    extent = dilation * (kernel - 1) + 1
    if named != "same" and size + sum(explicit) < extent:
        with pytest.raises(ValueError, match="larger than padded input"):
            conv_output_size(size, kernel, stride, padding, dilation)
        return
    layer = tf.keras.layers.Conv1D(
        1, kernel, strides=stride, padding=named or "valid", dilation_rate=dilation
    )
    y = layer(tf.zeros((1, size + sum(explicit), 1)))
    assert conv_output_size(size, kernel, stride, padding, dilation) == y.shape[1]


@given(
    size=st.integers(1, 30),
    pool=st.integers(1, 5),
    stride=st.one_of(st.none(), st.integers(1, 4)),
    padding=st.sampled_from(["same", "valid"]),
)
def test_pool_output_size_matches_keras(size, pool, stride, padding):
    assume(padding == "same" or size >= pool)
    layer = tf.keras.layers.MaxPooling1D(pool, strides=stride, padding=padding)
    expected = layer(tf.zeros((1, size, 1))).shape[1]
    assert pool_output_size(size, pool, stride, padding) == expected


@given(
    size=st.integers(1, 12),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
    padding=st.sampled_from(["same", "valid"]),
    output_padding=st.one_of(st.none(), st.integers(0, 3)),
)
def test_conv_transpose_output_size_matches_keras(
    size, kernel, stride, dilation, padding, output_padding
):
    if stride > 1:
        dilation = 1
    if output_padding is not None:
        assume(output_padding < stride)
    layer = tf.keras.layers.Conv1DTranspose(
        1, kernel, strides=stride, padding=padding, output_padding=output_padding,
        dilation_rate=dilation,
    )  # fmt: skip
    expected = layer(tf.zeros((1, size, 1))).shape[1]
    got = conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation)
    if output_padding == 0 and padding == "same":
        # output_padding=0 with "same" is size*stride, as Keras's default output_padding=None.
        assert got == size * stride
    else:
        assert got == expected


@given(
    size=st.integers(1, 20),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    pads=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    output_padding=st.integers(0, 3),
)
def test_conv_transpose_inverts_conv(size, kernel, stride, pads, output_padding):
    """For every output_padding < stride, the convolution maps the transpose's output size back
    to the input size: the sizes are exactly the preimages of the floor."""
    assume(output_padding < stride)
    assume((size - 1) * stride - sum(pads) + kernel + output_padding >= 1)
    out = conv_transpose_output_size(size, kernel, stride, pads, output_padding)
    assert conv_output_size(out, kernel, stride, pads) == size


# -- ceil mode: PyTorch's rule against window enumeration ---------------------------------------


@given(
    size=st.integers(1, 30),
    pool=st.integers(1, 5),
    stride=st.integers(1, 4),
    pads=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.integers(1, 2),
)
def test_ceil_mode_counts_windows_starting_inside(size, pool, stride, pads, dilation):
    extent = dilation * (pool - 1) + 1
    padded = size + sum(pads)
    assume(padded >= extent)
    # floor: windows entirely inside the padded input.
    floor_count = sum(1 for start in range(0, padded, stride) if start + extent <= padded)
    # ceil: a partial window at the end counts, if it starts inside the input or left padding.
    ceil_count = sum(
        1
        for start in range(0, padded, stride)
        if start + extent <= padded + stride - 1 and start < size + pads[0]
    )
    assert pool_output_size(size, pool, stride, pads, False, dilation) == floor_count
    assert pool_output_size(size, pool, stride, pads, True, dilation) == ceil_count


def test_ceil_mode_known_cases():
    # PyTorch: MaxPool1d(2, ceil_mode=True) on 5 -> 3; with padding=1 on 3 -> 2 (the window
    # that would start in the right padding is dropped).
    assert pool_output_size(5, 2, ceil_mode=True) == 3
    assert pool_output_size(3, 2, padding=1, ceil_mode=True) == 2
    assert pool_output_size(6, 3, 2, ceil_mode=True) == 3
    assert pool_output_size(6, 3, 2) == 2


# -- parameter counts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_channels", "filters", "kernel", "groups", "use_bias"),
    [(3, 96, (11, 11), 1, True), (96, 256, (5, 5), 2, True), (4, 6, (3, 1, 2), 2, False)],
)
def test_parameter_count_matches_layers(in_channels, filters, kernel, groups, use_bias):
    shape = (None, *([16] * len(kernel)), in_channels)
    conv = {2: tf.keras.layers.Conv2D, 3: tf.keras.layers.Conv3D}[len(kernel)]
    keras_layer = conv(filters, kernel, groups=groups, use_bias=use_bias)
    keras_layer.build(shape)
    expected = keras_layer.count_params()
    assert conv_parameter_count(in_channels, filters, kernel, groups, use_bias) == expected
    if len(kernel) == 2:
        ours = Conv2D(filters, kernel, groups=groups, use_bias=use_bias)
        ours.build(shape)
        assert ours.count_params() == expected


def test_parameter_count_lecture_numbers():
    assert conv_parameter_count(3, 96, (11, 11)) == 34_944
    assert conv_parameter_count(1, 6, (5, 5)) == 156  # LeNet C1
    assert conv_parameter_count(4, 8, 3, use_bias=False) == 96  # int kernel = 1D


# -- receptive field -------------------------------------------------------------------------------


def _gradient_support(specs, index, length=256):
    """Input positions that output `index` of a real stack of 1D convolutions depends on:
    the non-zero entries of its input gradient, with all-ones kernels so that every tap
    counts. A spec's optional 4th entry zero-pads before the layer; positions are input
    indices."""
    x = tf.ones((1, length, 1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x
        for kernel, stride, dilation, *pad in specs:
            if pad:
                y = tf.pad(y, [[0, 0], [pad[0], 0], [0, 0]])
            y = tf.nn.convolution(
                y, tf.ones((kernel, 1, 1)), strides=stride, dilations=dilation, padding="VALID"
            )
        unit = y[0, index, 0]
    return np.flatnonzero(tape.gradient(unit, x).numpy().ravel())


def assert_support_matches(specs, index):
    field = receptive_field(specs)[-1]
    support = _gradient_support(specs, index)
    centre = field.start + index * field.jump
    assert support[0] == centre - (field.size - 1) / 2
    # The extent: dilation leaves holes inside, which the receptive field spans.
    assert support[-1] == centre + (field.size - 1) / 2


@st.composite
def stacks(draw):
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kernel = draw(st.integers(1, 4))
        if draw(st.booleans()):
            layers.append((kernel, draw(st.integers(1, 3)), 1))
        else:
            layers.append((kernel, 1, draw(st.integers(1, 3))))
    return layers


@given(specs=stacks())
def test_receptive_field_matches_gradient_support(specs):
    assert len(receptive_field(specs)) == len(specs)
    for index in (0, 1, 3):
        assert_support_matches(specs, index)


def test_receptive_field_start_moves_with_padding():
    # Padding 1, 1 and 2 before layers whose input jumps are 1, 1 and 2 moves the first unit's
    # window 6 positions left (into the padding); unit 5 lies inside the input.
    specs = [(3, 1, 1, 1), (3, 2, 1, 1), (5, 1, 1, 2)]
    unpadded = receptive_field([spec[:3] for spec in specs])[-1]
    field = receptive_field(specs)[-1]
    assert (field.size, field.jump) == (unpadded.size, unpadded.jump) == (13, 2)
    assert field.start == unpadded.start - 6 == 0.0
    assert_support_matches(specs, 5)


def test_receptive_field_lecture_stacks():
    assert [f.size for f in receptive_field([(3, 1, 1)] * 3)] == [3, 5, 7]  # VGG's claim
    lenet = receptive_field([(5, 1, 1), (2, 2, 1), (5, 1, 1), (2, 2, 1)])
    assert [(f.size, f.jump) for f in lenet] == [(5, 1), (6, 2), (14, 2), (16, 4)]
    alexnet = receptive_field(
        [(11, 4, 1), (3, 2, 1), (5, 1, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 2, 1)]
    )
    assert (alexnet[-1].size, alexnet[-1].jump) == (195, 32)
    # The lecture's "dilation rate 1" (one skipped pixel) is dilation=2: k3 covers 5.
    assert receptive_field([(3, 1, 2)])[0] == ReceptiveField(size=5, jump=1, start=2.0)
    assert receptive_field([(1, 1, 1)])[0] == ReceptiveField(size=1, jump=1, start=0.0)


def test_receptive_field_of_layer_objects():
    layers = [
        Conv2D(8, 5, padding=2),
        tf.keras.layers.MaxPooling2D(2),
        Conv2D(8, 3, dilation=2),
        tf.keras.layers.Conv2D(8, 3, strides=2, padding="same"),
        tf.keras.layers.AveragePooling2D(3, strides=1, padding="same"),
    ]
    triples = [(5, 1, 1, 2), (2, 2, 1), (3, 1, 2), (3, 2, 1, 0), (3, 1, 1, 1)]
    assert receptive_field(layers) == receptive_field(triples)
    with pytest.raises(ValueError, match="\\(1, 1, 1\\)"):
        receptive_field([tf.keras.layers.Dense(3)])


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: conv_output_size(4, 5), "larger than padded input"),
        (lambda: conv_output_size(4, 3, dilation=3, padding=1), "larger than padded input"),
        (lambda: pool_output_size(2, 3), "larger than padded input"),
        (lambda: conv_output_size(0, 3), "size"),
        (lambda: conv_output_size(8, 0), "kernel_size"),
        (lambda: conv_output_size(8, 3, stride=0), "stride"),
        (lambda: conv_output_size(8, 3, dilation=0), "dilation"),
        (lambda: conv_output_size(8, 3, padding=-1), "padding"),
        (lambda: conv_output_size(8, 3, padding="full"), "padding"),
        (lambda: conv_output_size(8, 3, padding=(1, 2, 3)), "padding"),
        (lambda: conv_output_size(8.0, 3), "size"),
        (lambda: conv_transpose_output_size(4, 3, 2, output_padding=2), "output_padding"),
        (lambda: conv_transpose_output_size(1, 1, 1, padding=1), "removes the whole"),
        (lambda: conv_parameter_count(3, 4, 3, groups=2), "groups"),
        (lambda: conv_parameter_count(4, 4, (3, 0)), "kernel_size"),
        (lambda: receptive_field([(3, 0, 1)]), "stride"),
        (lambda: receptive_field([(3, 1)]), "kernel_size, stride, dilation"),
        (lambda: receptive_field([(3, 1, 1, -1)]), "pad_before"),
        (lambda: receptive_field("abc"), "specs"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
