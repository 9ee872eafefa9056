"""AlexNet: the paper's shapes (55, 27, 13, 6) and parameter counts, variants, small inputs."""

import numpy as np
import pytest

import zoo
from layers.arithmetic import conv_parameter_count

PAPER_SHAPES = {
    "conv1": (None, 55, 55, 96),
    "lrn1": (None, 55, 55, 96),
    "pool1": (None, 27, 27, 96),
    "conv2": (None, 27, 27, 256),
    "lrn2": (None, 27, 27, 256),
    "pool2": (None, 13, 13, 256),
    "conv3": (None, 13, 13, 384),
    "conv4": (None, 13, 13, 384),
    "conv5": (None, 13, 13, 256),
    "pool5": (None, 6, 6, 256),
    "flatten": (None, 9216),
    "fc6": (None, 4096),
    "drop6": (None, 4096),
    "fc7": (None, 4096),
    "drop7": (None, 4096),
    "fc8": (None, 1000),
}


def _shapes(model, names):
    return {name: tuple(model.get_layer(name).output.shape) for name in names}


def _conv_params(groups_on):
    g = 2 if groups_on else 1
    return sum(
        conv_parameter_count(c_in, c_out, k, groups=groups)
        for k, c_in, c_out, groups in [
            ((11, 11), 3, 96, 1),
            ((5, 5), 96, 256, g),
            ((3, 3), 256, 384, 1),
            ((3, 3), 384, 384, g),
            ((3, 3), 384, 256, g),
        ]
    )


def test_alexnet_full_size_shapes_and_parameter_count():
    model = zoo.create_model("alexnet")
    assert model.input_shape == (None, 227, 227, 3)
    assert _shapes(model, PAPER_SHAPES) == PAPER_SHAPES
    dense = 9216 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert _conv_params(True) + dense == 60_965_224
    assert model.count_params() == 60_965_224
    for name in ("conv2", "conv4", "conv5"):
        assert model.get_layer(name).groups == 2
    assert model.get_layer("conv3").groups == 1
    lrn = model.get_layer("lrn1")
    assert (lrn.depth_radius, lrn.bias, lrn.alpha, lrn.beta) == (2, 2.0, 1e-4, 0.75)
    assert model.get_layer("drop6").rate == 0.5


def test_alexnet_single_tower_and_batch_norm_variants():
    single = zoo.create_model("alexnet_single_tower")
    assert _shapes(single, PAPER_SHAPES) == PAPER_SHAPES
    assert single.count_params() == 62_378_344
    dense = 9216 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert _conv_params(False) + dense == 62_378_344

    bn = zoo.create_model("alexnet_bn")
    names = [layer.name for layer in bn.layers]
    assert not any(name.startswith("lrn") for name in names)
    assert all(f"bn{i}" in names for i in range(1, 6))
    assert _shapes(bn, {k: v for k, v in PAPER_SHAPES.items() if "lrn" not in k}) == {
        k: v for k, v in PAPER_SHAPES.items() if "lrn" not in k
    }
    channels = 96 + 256 + 384 + 384 + 256
    conv_weights_no_bias = _conv_params(True) - channels
    assert bn.count_params() == conv_weights_no_bias + 4 * channels + dense


@pytest.mark.parametrize(
    ("size", "pool5"),
    [(64, 1), (55, 1), (67, 1), (99, 2), (128, 3)],
)
def test_small_inputs_keep_the_architecture_and_the_classifier_follows(size, pool5):
    model = zoo.create_model("alexnet", num_classes=10, input_shape=(size, size, 3))
    assert model.get_layer("pool5").output.shape[1:] == (pool5, pool5, 256)
    assert model.get_layer("fc6").kernel.shape == (pool5 * pool5 * 256, 4096)
    assert model.output_shape == (None, 10)


def test_floor_rounding_option_raises_the_minimum():
    with pytest.raises(ValueError, match=r"Input 64x64 is too small.*minimum is 67x67"):
        zoo.create_model("alexnet", input_shape=(64, 64, 3), pool_ceil_mode=False)
    model = zoo.create_model("alexnet", input_shape=(67, 67, 3), pool_ceil_mode=False)
    assert model.get_layer("pool5").output.shape[1:] == (1, 1, 256)


@pytest.mark.parametrize("name", ["alexnet", "alexnet_single_tower", "alexnet_bn"])
def test_too_small_input_names_the_size_and_the_minimum(name):
    with pytest.raises(
        ValueError, match=rf"Input 54x70 is too small for '{name}'.*minimum is 55x55"
    ):
        zoo.create_model(name, input_shape=(54, 70, 3))
    with pytest.raises(
        ValueError, match=r"Input 28x28 is too small.*minimum is 55x55.*resize_to=64"
    ):
        zoo.create_model(name, input_shape=(28, 28, 1), num_classes=10)


def test_fashion_mnist_through_resize_and_grayscale():
    model = zoo.create_model("alexnet", input_shape=(28, 28, 1), num_classes=10, resize_to=64)
    assert model.get_layer("resize").output.shape[1:] == (64, 64, 1)
    assert model.get_layer("conv1").kernel.shape == (11, 11, 1, 96)
    out = model(np.random.uniform(0, 255, (2, 28, 28, 1)).astype(np.float32), training=False)
    assert out.shape == (2, 10) and np.isfinite(np.asarray(out)).all()


def test_paper_initialization_and_bad_arguments():
    model = zoo.create_model(
        "alexnet", input_shape=(64, 64, 3), num_classes=5, initialization="paper"
    )
    np.testing.assert_array_equal(np.asarray(model.get_layer("conv2").bias), 1.0)
    np.testing.assert_array_equal(np.asarray(model.get_layer("conv1").bias), 0.0)
    assert abs(float(np.std(np.asarray(model.get_layer("fc7").kernel))) - 0.01) < 1e-3
    for kwargs, match in [
        ({"initialization": "xavier"}, "initialization"),
        ({"dropout_rate": -0.1}, "dropout_rate"),
        ({"fc_units": 0}, "fc_units"),
        ({"resize_to": (64,)}, "resize_to"),
    ]:
        with pytest.raises(ValueError, match=match):
            zoo.create_model("alexnet", input_shape=(64, 64, 3), **kwargs)
