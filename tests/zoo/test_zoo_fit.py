"""A few steps of training on real Fashion-MNIST batches lower every model's loss."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import zoo
from training.data import read_idx

FASHION = Path("/usr/share/datasets/fashion-mnist")

# Fashion-MNIST is 28x28x1: AlexNet resizes it to 64x64 inside the model (narrow classifier
# to stay fast); the autoencoder's target is its input.
CONFIGS = {
    "lenet5": ({}, 3e-3),
    "lenet5_modern": ({"dropout_rate": 0.1}, 3e-3),
    "alexnet": ({"resize_to": 64, "fc_units": 128}, 3e-4),
    "alexnet_single_tower": ({"resize_to": 64, "fc_units": 128}, 3e-4),
    "alexnet_bn": ({"resize_to": 64, "fc_units": 128}, 1e-3),
    "conv_autoencoder": ({}, 3e-3),
}


@pytest.fixture(scope="module")
def batches():
    images = read_idx(FASHION / "t10k-images-idx3-ubyte.gz")[:256, :, :, None]
    labels = read_idx(FASHION / "t10k-labels-idx1-ubyte.gz")[:256]
    assert images.dtype == np.uint8 and len(np.unique(labels)) == 10
    return images.astype(np.float32), labels.astype(np.int64)


def test_every_registered_model_is_covered():
    assert sorted(CONFIGS) == zoo.list_models()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_short_fit_lowers_the_loss(name, batches):
    tf.keras.utils.set_random_seed(0)
    overrides, learning_rate = CONFIGS[name]
    x, y = batches
    info = zoo.get_model_info(name)
    model = zoo.create_model(name, num_classes=10, input_shape=(28, 28, 1), **overrides)
    if info.task == "reconstruction":
        loss, target = tf.keras.losses.MeanSquaredError(), x
    else:
        loss, target = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), y
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss=loss)
    before = model.evaluate(x, target, batch_size=64, verbose=0)
    model.fit(x, target, batch_size=32, epochs=3, shuffle=True, verbose=0)
    after = model.evaluate(x, target, batch_size=64, verbose=0)
    assert np.isfinite(after) and after < 0.8 * before, (name, before, after)
