"""The registry contract: names, defaults, errors, and the in-model normalization."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.registry import ModelInfo, normalization_layer, register_model

EXPECTED_MODELS = [
    "alexnet",
    "alexnet_bn",
    "alexnet_single_tower",
    "conv_autoencoder",
    "lenet5",
    "lenet5_modern",
]


def test_every_model_is_registered_with_complete_info():
    assert zoo.list_models() == EXPECTED_MODELS
    assert zoo.list_models("alexnet*") == ["alexnet", "alexnet_bn", "alexnet_single_tower"]
    for name in EXPECTED_MODELS:
        info = zoo.get_model_info(name)
        assert isinstance(info, ModelInfo) and info.name == name
        assert len(info.mean) == len(info.std) == info.input_shape[-1]
        assert info.paper and info.task in ("classification", "reconstruction")
    assert zoo.get_model_info("conv_autoencoder").task == "reconstruction"
    assert zoo.get_model_info("alexnet").input_shape == (227, 227, 3)
    assert zoo.get_model_info("lenet5").input_shape == (28, 28, 1)


def test_unknown_name_lists_known_names_and_close_matches():
    with pytest.raises(ValueError, match=r"'lenet'.*Did you mean.*'lenet5'.*Known models: alexnet"):
        zoo.create_model("lenet")
    with pytest.raises(ValueError, match="Known models"):
        zoo.get_model_info("resnet50")


@pytest.mark.parametrize("num_classes", [0, -3, 2.5, True])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        zoo.create_model("lenet5", num_classes=num_classes)


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 0), "28x28x1", (28.0, 28, 1)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape"):
        zoo.create_model("lenet5", input_shape=shape)


def test_defaults_and_overrides():
    model = zoo.create_model("lenet5")
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    assert zoo.create_model("lenet5", num_classes=3).output_shape == (None, 3)
    assert zoo.create_model("lenet5_modern", dropout_rate=0.3).get_layer("drop1").rate == 0.3


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):

        @register_model(input_shape=(8, 8, 1), num_classes=2, mean=(0.5,), std=(0.5,), paper="x")
        def lenet5(input_shape, num_classes, **kwargs):
            raise AssertionError


@pytest.mark.parametrize(
    ("mean", "std", "channels"),
    [
        ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 3),
        ((0.286,), (0.353,), 1),
        ((0.5,), (0.25,), 3),
    ],
)
def test_normalization_layer_is_per_channel_standardization(mean, std, channels):
    x = np.random.uniform(0, 255, (2, 5, 4, channels)).astype(np.float32)
    layer = normalization_layer(mean, std, channels)
    expected = (x / 255.0 - np.broadcast_to(mean, (channels,))) / np.broadcast_to(std, (channels,))
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-5)
    assert not layer.weights


def test_normalization_of_three_channel_stats_on_grayscale_averages_them():
    layer = normalization_layer((0.2, 0.4, 0.6), (0.1, 0.2, 0.3), 1)
    x = np.full((1, 2, 2, 1), 102.0, np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), (0.4 - 0.4) / 0.2, atol=1e-6)
    with pytest.raises(ValueError, match="3 values but the input has 2 channels"):
        normalization_layer((0.2, 0.4, 0.6), (0.1, 0.2, 0.3), 2)


def test_models_take_raw_pixels_and_return_logits():
    model = zoo.create_model("lenet5")
    assert isinstance(model.layers[1], tf.keras.layers.Rescaling)
    logits = np.asarray(model(np.random.uniform(0, 255, (3, 28, 28, 1)).astype(np.float32)))
    assert logits.shape == (3, 10)
    # Logits, not probabilities: rows do not sum to one and can be negative.
    assert not np.allclose(logits.sum(axis=1), 1.0) and (logits < 0).any()


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("lenet5_modern", {}),
        ("conv_autoencoder", {}),
        ("alexnet_bn", {"input_shape": (64, 64, 3), "num_classes": 10, "fc_units": 32}),
    ],
)
def test_mixed_precision_keeps_float32_outputs(name, kwargs):
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = zoo.create_model(name, **kwargs)
        x = np.random.uniform(0, 255, (2, *model.input_shape[1:])).astype(np.float32)
        y = model(x, training=True)
        assert y.dtype == tf.float32
        assert np.isfinite(np.asarray(y)).all()
        hidden = model.get_layer("enc2" if name == "conv_autoencoder" else "conv2")
        assert hidden.compute_dtype == "float16"
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
