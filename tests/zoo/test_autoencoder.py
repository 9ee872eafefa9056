"""The convolutional denoising autoencoder: shapes, parameters, output range, noise."""

import numpy as np
import pytest

import zoo

STAGES = {
    "enc1": (None, 28, 28, 32),
    "enc2": (None, 14, 14, 64),
    "enc3": (None, 7, 7, 128),
    "dec1": (None, 14, 14, 64),
    "dec2": (None, 28, 28, 32),
    "output": (None, 28, 28, 1),
    "to_pixels": (None, 28, 28, 1),
}


def test_shapes_parameters_and_transpose_convolutions():
    model = zoo.create_model("conv_autoencoder")
    assert {n: tuple(model.get_layer(n).output.shape) for n in STAGES} == STAGES
    assert type(model.get_layer("dec1")).__name__ == "ConvTranspose2D"
    assert not any("Dense" in type(layer).__name__ for layer in model.layers)
    expected = (9 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 128 + 128)
    expected += (16 * 128 * 64 + 64) + (16 * 64 * 32 + 32) + (9 * 32 + 1)
    assert model.count_params() == expected == 256_897


@pytest.mark.parametrize(("output_range", "high"), [("pixels", 255.0), ("unit", 1.0)])
def test_output_range(output_range, high):
    model = zoo.create_model("conv_autoencoder", output_range=output_range)
    x = np.random.uniform(0, 255, (2, 28, 28, 1)).astype(np.float32)
    y = np.asarray(model(x, training=False))
    assert y.shape == x.shape
    assert y.min() >= 0.0 and y.max() <= high and y.max() > 0.5 * high / 255 * 100


def test_noise_only_in_training_and_other_sizes():
    model = zoo.create_model("conv_autoencoder")
    x = np.random.uniform(0, 255, (2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))
    assert not np.allclose(np.asarray(model(x, training=True)), np.asarray(model(x)))
    plain = zoo.create_model("conv_autoencoder", noise_stddev=0.0)
    assert "noise" not in [layer.name for layer in plain.layers]
    rgb = zoo.create_model("conv_autoencoder", input_shape=(32, 48, 3))
    assert rgb.output_shape == (None, 32, 48, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"divisible by 4.*30x28"):
        zoo.create_model("conv_autoencoder", input_shape=(30, 28, 1))
    with pytest.raises(ValueError, match="output_range"):
        zoo.create_model("conv_autoencoder", output_range="logits")
