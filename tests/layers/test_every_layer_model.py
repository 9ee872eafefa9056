"""One model holding every layer of `layers/`: `.keras` round trip, config round trip in both
Keras worlds, and the edge runtimes on the whole graph (trained BatchNorm statistics included)."""

import numpy as np
import pytest
import tensorflow as tf
import testing_utils

import layers


def every_layer_model() -> tf.keras.Model:
    """A small image model that passes through each layer class once, 2D and 1D/3D branches."""
    inputs = tf.keras.Input(shape=(12, 12, 4))
    x = layers.Conv2D(8, 3, padding=1, padding_mode="reflect", name="conv")(inputs)
    x = layers.BatchNorm(name="bn")(x)
    x = layers.LocalResponseNorm(depth_radius=2, name="lrn")(x)
    x = layers.Conv2D(8, 3, padding="same", groups=2, dilation=2, name="grouped")(x)
    x = layers.GroupNorm(groups=4, name="gn")(x)
    x = layers.RepConv2D(8, 3, padding=1, activation="relu", name="rep")(x)
    x = layers.MaxPool2D(3, strides=2, padding=1, ceil_mode=True, name="maxpool")(x)
    x = layers.InstanceNorm(name="in")(x)
    x = layers.AvgPool2D(2, padding=1, count_include_pad=False, name="avgpool")(x)
    x = layers.ConvTranspose2D(6, 4, strides=2, padding=1, name="up")(x)
    x = layers.LayerNorm(name="ln")(x)
    x = layers.Resize(size=(9, 9), interpolation="bicubic", name="resize")(x)
    line = tf.keras.layers.Reshape((81, 6))(x)
    line = layers.Conv1D(4, 3, strides=2, padding="same", padding_mode="circular", name="c1")(line)
    line = layers.MaxPool1D(2, name="mp1")(line)
    line = layers.ConvTranspose1D(4, 3, strides=2, name="ct1")(line)
    line = layers.AvgPool1D(3, name="ap1")(line)
    volume = tf.keras.layers.Reshape((3, 3, 9, 6))(x)
    volume = layers.Conv3D(4, 2, padding=((1, 0), (0, 1), (1, 1)), padding_mode="replicate")(volume)
    volume = layers.MaxPool3D(2, name="mp3")(volume)
    volume = layers.ConvTranspose3D(3, 2, strides=2, name="ct3")(volume)
    volume = layers.AvgPool3D(2, name="ap3")(volume)
    outputs = tf.keras.layers.Concatenate()(
        [tf.keras.layers.Flatten()(line), tf.keras.layers.Flatten()(volume)]
    )
    return tf.keras.Model(inputs, tf.keras.layers.Dense(5, name="head")(outputs))


def trained_model_and_input():
    model = every_layer_model()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 12, 12, 4)).astype(np.float32)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, rng.normal(size=(4, 5)).astype(np.float32), epochs=2, verbose=0)
    return model, x


def test_every_layer_is_exported_by_the_package():
    used = {type(layer).__name__ for layer in every_layer_model().layers}
    public = {name for name in layers.__all__ if name[0].isupper() and name != "PADDING_MODES"}
    assert public <= used, f"layers missing from the every-layer model: {public - used}"


def test_config_round_trip_rebuilds_the_same_model():
    model, x = trained_model_and_input()
    clone = tf.keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone(x, training=False), model(x, training=False))


@pytest.mark.keras3_only
def test_keras_file_round_trip_is_exact(tmp_path):
    model, x = trained_model_and_input()
    path = tmp_path / "every_layer.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]
    for before, after in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(loaded(x, training=False), model(x, training=False))


@pytest.mark.keras3_only
def test_whole_graph_runs_in_litert_and_onnx_runtime():
    model, x = trained_model_and_input()
    testing_utils.assert_edge_runtimes_match(model, x[:1], atol=1e-4, rtol=1e-4)
