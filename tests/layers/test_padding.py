"""Padding amounts and modes against NumPy's np.pad (the oracle) and TensorFlow's "same" rule."""

import numpy as np
import pytest
import tensorflow as tf
import testing_utils
from hypothesis import given
from hypothesis import strategies as st

from layers._args import check_choice, check_input_rank, normalize_tuple
from layers.padding import (
    PADDING_MODE_CONSTANT,
    PADDING_MODES,
    check_padding_mode,
    check_padding_value,
    normalize_padding,
    pad_spatial,
    resolve_padding,
    same_padding,
)

NUMPY_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def test_lecture_rows():
    row = tf.constant(np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1))
    got = {
        mode: pad_spatial(row, ((2, 2),), mode).numpy().ravel().tolist() for mode in PADDING_MODES
    }
    assert got == {
        "zeros": [0, 0, 1, 2, 3, 4, 0, 0],
        "reflect": [3, 2, 1, 2, 3, 4, 3, 2],
        "replicate": [1, 1, 1, 2, 3, 4, 4, 4],
        "circular": [3, 4, 1, 2, 3, 4, 1, 2],
    }


@given(
    rank=st.integers(1, 3),
    size=st.integers(2, 6),
    pads=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=3, max_size=3),
    mode=st.sampled_from(PADDING_MODES),
)
def test_matches_numpy_pad(rank, size, pads, mode):
    pads = tuple(pads[:rank])
    limit = size - 1 if mode == "reflect" else size
    pads = tuple((min(b, limit), min(a, limit)) for b, a in pads)
    x = np.random.default_rng(0).normal(size=(2, *([size] * rank), 3)).astype(np.float32)
    expected = np.pad(x, [(0, 0), *pads, (0, 0)], mode=NUMPY_MODE[mode])
    np.testing.assert_array_equal(pad_spatial(tf.constant(x), pads, mode).numpy(), expected)


def test_gradient_of_replicate_counts_repeated_edges():
    x = tf.Variable(np.arange(4, dtype=np.float32).reshape(1, 4, 1))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(pad_spatial(x, ((2, 1),), "replicate"))
    np.testing.assert_array_equal(tape.gradient(y, x).numpy().ravel(), [3, 1, 1, 2])


@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
)
def test_same_padding_follows_tensorflow(size, kernel, stride, dilation):
    before, after = same_padding(size, kernel, stride, dilation)
    x = tf.ones((1, size, 1))
    k = tf.ones((kernel, 1, 1))
    if stride > 1 and dilation > 1:
        dilation = 1
        before, after = same_padding(size, kernel, stride, 1)
    same = tf.nn.convolution(x, k, strides=stride, dilations=dilation, padding="SAME")
    explicit = tf.nn.convolution(
        tf.pad(x, [[0, 0], [before, after], [0, 0]]), k, strides=stride, dilations=dilation
    )
    np.testing.assert_array_equal(same.numpy(), explicit.numpy())


def test_normalize_padding_forms():
    assert normalize_padding(1, 2) == ((1, 1), (1, 1))
    assert normalize_padding((1, 2), 2) == ((1, 1), (2, 2))
    assert normalize_padding(((0, 1), (2, 3)), 2) == ((0, 1), (2, 3))
    assert normalize_padding("SAME", 2) == "same"
    assert resolve_padding("valid", (5, 5), (3, 3), (1, 1), (1, 1)) == ((0, 0), (0, 0))
    assert resolve_padding("same", (8,), (3,), (2,), (1,)) == ((0, 1),)


@pytest.mark.parametrize("bad", [-1, "full", (1, 2, 3), ((1, 2, 3),), 1.5, ((1, -1),)])
def test_bad_padding_names_value(bad):
    with pytest.raises(ValueError, match="padding") as info:
        normalize_padding(bad, 1 if isinstance(bad, tuple) and len(bad) == 1 else 2)
    assert repr(bad) in str(info.value)


def test_bad_mode_and_oversized_pads():
    x = tf.zeros((1, 3, 1))
    with pytest.raises(ValueError, match=r"'zeros'.*got 'mirror'"):
        pad_spatial(x, ((1, 1),), "mirror")
    with pytest.raises(ValueError, match="< input size"):
        pad_spatial(x, ((3, 0),), "reflect")
    with pytest.raises(ValueError, match="<= input size"):
        pad_spatial(x, ((0, 4),), "circular")
    with pytest.raises(ValueError, match="fixed input shape"):
        resolve_padding("same", (None, 4), (3, 3), (1, 1), (1, 1))


def test_argument_checks():
    assert normalize_tuple(3, 2, "kernel_size") == (3, 3)
    assert normalize_tuple((0, 1), 2, "output_padding", minimum=0) == (0, 1)
    for bad in (0, -2, (1, 0), (1, 2, 3), "3", True, 2.0):
        with pytest.raises(ValueError, match="`kernel_size` must be a positive integer"):
            normalize_tuple(bad, 2, "kernel_size")
    assert check_choice("Bilinear", ("nearest", "bilinear"), "interpolation") == "bilinear"
    with pytest.raises(ValueError, match="'cubic'"):
        check_choice("cubic", ("nearest", "bilinear"), "interpolation")
    with pytest.raises(ValueError, match=r"expects a 4D input.*\(2, 3\)"):
        check_input_rank("conv", (2, 3), 4, "(batch, height, width, channels)")


@pytest.mark.keras3_only
@pytest.mark.parametrize("mode", PADDING_MODES)
def test_modes_convert_to_edge_runtimes(mode):
    layer = tf.keras.layers.Lambda(lambda x: pad_spatial(x, ((1, 2), (2, 0)), mode))
    model = testing_utils.model_of(layer, (5, 6, 2))
    x = np.random.default_rng(1).normal(size=(1, 5, 6, 2)).astype(np.float32)
    testing_utils.assert_edge_runtimes_match(model, x, atol=0, rtol=0)


# --- The constant mode, and every mode against ONNX's Pad ---------------------------------------

ONNX_PAD_MODE = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}


def onnx_pad(x: np.ndarray, pads, mode: str, value: float) -> np.ndarray:
    """ONNX Pad (opset 19) of the spatial axes of the channels-last `x`, in onnx.reference."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    amounts = [(0, 0), *pads, (0, 0)]
    inputs = [
        numpy_helper.from_array(np.array([b for b, _ in amounts] + [a for _, a in amounts]), "p"),
        numpy_helper.from_array(np.array(value, np.float32), "v"),
    ]
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "p", "v"], ["y"], mode=ONNX_PAD_MODE[mode])],
        "pad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=inputs,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


@given(
    rank=st.integers(1, 3),
    size=st.integers(2, 5),
    pads=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=3, max_size=3),
    mode=st.sampled_from((*PADDING_MODES, PADDING_MODE_CONSTANT)),
    value=st.sampled_from([-2.5, 0.0, 1.0, 1e3]),
)
def test_matches_onnx_pad(rank, size, pads, mode, value):
    """zeros/constant = Pad constant (`constant_value`), reflect = reflect, replicate = edge,
    circular = wrap."""
    pads = tuple(pads[:rank])
    limit = size - 1 if mode == "reflect" else size
    pads = tuple((min(b, limit), min(a, limit)) for b, a in pads)
    value = value if mode == PADDING_MODE_CONSTANT else 0.0
    x = np.random.default_rng(size).normal(size=(2, *([size] * rank), 3)).astype(np.float32)
    expected = onnx_pad(x, pads, mode, value)
    np.testing.assert_array_equal(pad_spatial(tf.constant(x), pads, mode, value).numpy(), expected)


def test_constant_mode_lecture_row_and_gradient():
    x = tf.Variable(np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1))
    with tf.GradientTape() as tape:
        y = pad_spatial(x, ((2, 1),), "constant", -7.0)
        loss = tf.reduce_sum(y * tf.range(1.0, 8.0)[None, :, None])
    assert y.numpy().ravel().tolist() == [-7, -7, 1, 2, 3, 4, -7]
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy().ravel(), [3, 4, 5, 6])
    assert check_padding_mode("Constant") == "constant"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pad_spatial(tf.zeros((1, 3, 1)), ((1, 1),), "reflect", 1.0), "padding_value"),
        (
            lambda: pad_spatial(tf.zeros((1, 3, 1)), ((1, 1),), "zeros", -1),
            "padding_mode='constant'",
        ),
        (lambda: check_padding_value("0", "constant"), "`padding_value` must be a real number"),
        (lambda: check_padding_value(True, "constant"), "real number, got True"),
        (lambda: check_padding_mode("const"), r"'constant'.*'zeros'.*got 'const'"),
        (lambda: check_padding_mode(None), "got None"),
    ],
)
def test_bad_padding_value_and_mode(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.keras3_only
def test_constant_mode_converts_to_edge_runtimes():
    layer = tf.keras.layers.Lambda(lambda x: pad_spatial(x, ((1, 2), (2, 0)), "constant", 0.75))
    model = testing_utils.model_of(layer, (5, 6, 2))
    x = np.random.default_rng(2).normal(size=(1, 5, 6, 2)).astype(np.float32)
    assert "PADV2" in testing_utils.tflite_op_names(testing_utils.to_tflite(model, x.shape))
    testing_utils.assert_edge_runtimes_match(model, x, atol=0, rtol=0)
