"""LocalResponseNorm against tf.nn.local_response_normalization (outputs and gradients), a
numpy reference of the AlexNet formula, serialization, errors and edge runtimes."""

import numpy as np
import pytest
import tensorflow as tf
import testing_utils
from hypothesis import given
from hypothesis import strategies as st

from layers.local_response_norm import LocalResponseNorm


def oracle(x, depth_radius, bias, alpha, beta):
    """tf.nn's LRN (4D only): lower-rank inputs get size-1 spatial axes added and removed."""
    x = tf.convert_to_tensor(x)
    shape = tf.shape(x)
    x4 = tf.reshape(x, tf.concat([[-1], [1] * (4 - len(x.shape)), shape[1:]], 0))
    y = tf.nn.local_response_normalization(x4, depth_radius, bias, alpha, beta)
    return tf.reshape(y, shape)


def outputs_and_input_gradient(function, x, upstream):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(function(x) * upstream)
    return function(x).numpy(), tape.gradient(loss, x).numpy()


@given(
    rank=st.sampled_from([2, 3, 4]),
    batch=st.integers(1, 3),
    channels=st.integers(1, 9),
    depth_radius=st.integers(0, 4),
    bias=st.sampled_from([1.0, 2.0]),
    alpha=st.sampled_from([1e-4, 0.1, 1.0]),
    beta=st.sampled_from([0.75, 0.5, 1.0]),
)
def test_matches_tf_nn(rank, batch, channels, depth_radius, bias, alpha, beta):
    rng = np.random.default_rng(rank * 100 + channels * 10 + depth_radius)
    shape = (batch, *([3] * (rank - 2)), channels)
    x = (rng.normal(size=shape) * 3).astype("float32")
    upstream = tf.constant(rng.normal(size=shape).astype("float32"))
    layer = LocalResponseNorm(depth_radius, bias, alpha, beta)
    y, grad = outputs_and_input_gradient(layer, x, upstream)
    y_ref, grad_ref = outputs_and_input_gradient(
        lambda t: oracle(t, depth_radius, bias, alpha, beta), x, upstream
    )
    np.testing.assert_allclose(y, y_ref, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(grad, grad_ref, atol=1e-5, rtol=1e-4)


def test_alexnet_defaults_follow_the_paper_formula():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 7)).astype("float32") * 20
    y = LocalResponseNorm()(x).numpy()
    n, k, alpha, beta = 5, 2.0, 1e-4, 0.75
    expected = np.empty_like(x)
    for c in range(7):
        window = x[..., max(0, c - n // 2) : min(7, c + n // 2 + 1)]
        expected[..., c] = x[..., c] / (k + alpha * (window**2).sum(-1)) ** beta
    np.testing.assert_allclose(y, expected, rtol=1e-5)


def test_mixed_bfloat16_output_dtype():
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        x = np.random.default_rng(1).normal(size=(2, 3, 3, 6)).astype("float32") * 10
        y = LocalResponseNorm(alpha=0.01)(x)
        assert y.dtype == tf.bfloat16
        np.testing.assert_allclose(
            tf.cast(y, tf.float32), oracle(x, 2, 2.0, 0.01, 0.75), atol=2e-2, rtol=1e-2
        )
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")


def test_get_config_round_trip():
    layer = LocalResponseNorm(depth_radius=3, bias=1.0, alpha=2e-4, beta=0.5, name="lrn")
    config = layer.get_config()
    assert LocalResponseNorm.from_config(config).get_config() == config
    assert (config["depth_radius"], config["bias"], config["alpha"], config["beta"]) == (
        3,
        1.0,
        2e-4,
        0.5,
    )


@pytest.mark.parametrize(
    ("kwargs", "shape", "message"),
    [
        ({"depth_radius": -1}, (1, 4), "depth_radius"),
        ({"depth_radius": 1.5}, (1, 4), "depth_radius"),
        ({}, (4,), r"rank >= 2"),
        ({}, (1, 3, None), "known number of channels"),
        ({"alpha_convention": "caffe"}, (1, 4), r"'tensorflow', 'pytorch', got 'caffe'"),
        ({"alpha_convention": None}, (1, 4), "alpha_convention"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, shape, message):
    with pytest.raises(ValueError, match=message):
        LocalResponseNorm(**kwargs).build(shape)


@pytest.mark.keras3_only
def test_tflite_and_onnx_match():
    model = testing_utils.model_of(LocalResponseNorm(alpha=0.01), (5, 5, 8))
    x = np.random.default_rng(2).normal(size=(2, 5, 5, 8)).astype("float32") * 5
    testing_utils.assert_edge_runtimes_match(model, x)


@pytest.mark.keras3_only
def test_keras_file_round_trip_is_exact(tmp_path):
    layer = LocalResponseNorm(depth_radius=1, alpha=0.05)
    model = testing_utils.model_of(layer, (3, 3, 4))
    path = str(tmp_path / "lrn.keras")
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert loaded.layers[-1].get_config() == layer.get_config()
    x = np.random.default_rng(3).normal(size=(2, 3, 3, 4)).astype("float32")
    np.testing.assert_array_equal(loaded(x), model(x))


# --- PyTorch's and ONNX's convention: alpha divided by the window size -------------------------


def onnx_lrn(x, size, alpha, beta, bias):
    """ONNX LRN on the channels-last `x` (transposed to N, C, ...), in onnx.reference. Its 1.23
    loop runs over the batch axis instead of the channels (onnx/onnx#7805, fixed upstream), so
    callers pass as many examples as channels."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    assert x.shape[0] == x.shape[-1]
    x_nc = np.moveaxis(x, -1, 1)
    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=alpha, beta=beta, bias=bias)
    graph = helper.make_graph(
        [node],
        "lrn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_nc.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return np.moveaxis(ReferenceEvaluator(model).run(None, {"x": x_nc})[0], 1, -1)


@given(
    channels=st.integers(1, 8),
    depth_radius=st.integers(0, 3),
    bias=st.sampled_from([1.0, 2.0]),
    alpha=st.sampled_from([1e-4, 0.1, 1.0]),
    beta=st.sampled_from([0.75, 0.5, 1.0]),
)
def test_pytorch_convention_matches_onnx_lrn(channels, depth_radius, bias, alpha, beta):
    """Outputs against ONNX LRN(size=2r+1); outputs and gradients against TensorFlow's LRN with
    alpha / size."""
    size = 2 * depth_radius + 1
    rng = np.random.default_rng(channels * 10 + depth_radius)
    x = (rng.normal(size=(channels, 2, 3, channels)) * 3).astype("float32")
    upstream = tf.constant(rng.normal(size=x.shape).astype("float32"))
    layer = LocalResponseNorm(depth_radius, bias, alpha, beta, alpha_convention="pytorch")
    y, grad = outputs_and_input_gradient(layer, x, upstream)
    np.testing.assert_allclose(y, onnx_lrn(x, size, alpha, beta, bias), atol=1e-5, rtol=1e-5)
    y_ref, grad_ref = outputs_and_input_gradient(
        lambda t: oracle(t, depth_radius, bias, alpha / size, beta), x, upstream
    )
    np.testing.assert_allclose(y, y_ref, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(grad, grad_ref, atol=1e-5, rtol=1e-4)


def test_alexnet_in_pytorch_terms():
    """PyTorch's LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2) is this layer's default."""
    x = np.random.default_rng(4).normal(size=(2, 3, 3, 9)).astype("float32") * 20
    ported = LocalResponseNorm(2, bias=2.0, alpha=5e-4, alpha_convention="PyTorch")
    assert ported.alpha_convention == "pytorch" and ported.window_size == 5
    np.testing.assert_allclose(ported(x).numpy(), LocalResponseNorm()(x).numpy(), rtol=1e-6)


def test_alpha_convention_config_round_trip():
    layer = LocalResponseNorm(depth_radius=1, alpha=0.3, alpha_convention="pytorch", name="lrn")
    config = layer.get_config()
    assert config["alpha_convention"] == "pytorch"
    clone = LocalResponseNorm.from_config(config)
    assert clone.get_config() == config
    x = np.random.default_rng(5).normal(size=(2, 4, 6)).astype("float32")
    np.testing.assert_array_equal(clone(x).numpy(), layer(x).numpy())
    older = {key: value for key, value in config.items() if key != "alpha_convention"}
    assert LocalResponseNorm.from_config(older).alpha_convention == "tensorflow"


@pytest.mark.keras3_only
def test_pytorch_convention_converts_to_edge_runtimes():
    layer = LocalResponseNorm(depth_radius=3, alpha=0.5, bias=1.0, alpha_convention="pytorch")
    model = testing_utils.model_of(layer, (4, 4, 10))
    x = np.random.default_rng(6).normal(size=(2, 4, 4, 10)).astype("float32") * 5
    testing_utils.assert_edge_runtimes_match(model, x)
