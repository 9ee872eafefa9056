"""Every registered model survives `.keras` save/load exactly, converts to TFLite with
built-in ops only and to ONNX, and the edge runtimes agree with Keras."""

import numpy as np
import pytest
import tensorflow as tf
import testing_utils

import zoo

# Small inputs / widths keep CI fast; the layers (and so the conversions) are the same.
SMALL = {
    "lenet5": {},
    "lenet5_modern": {"dropout_rate": 0.3},
    "alexnet": {"input_shape": (64, 64, 3), "num_classes": 10, "fc_units": 64},
    "alexnet_single_tower": {"input_shape": (64, 64, 3), "num_classes": 10, "fc_units": 64},
    "alexnet_bn": {"input_shape": (64, 64, 3), "num_classes": 10, "fc_units": 64},
    "conv_autoencoder": {},
}


def test_every_registered_model_is_covered():
    assert sorted(SMALL) == zoo.list_models()


def _model_and_input(name):
    model = zoo.create_model(name, **SMALL[name])
    # Move BatchNorm's moving statistics away from 0/1 so inference mode is really tested.
    for layer in model.layers:
        if type(layer).__name__ == "BatchNorm":
            layer.set_weights(
                [
                    np.random.uniform(0.5, 1.5, w.shape).astype("float32")
                    for w in layer.get_weights()
                ]
            )
    x = np.random.uniform(0, 255, (2, *model.input_shape[1:])).astype(np.float32)
    return model, x


@pytest.mark.keras3_only
@pytest.mark.parametrize("name", sorted(SMALL))
def test_keras_file_round_trip_is_exact(name, tmp_path):
    model, x = _model_and_input(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False))
    )


@pytest.mark.keras3_only
@pytest.mark.parametrize("name", sorted(SMALL))
def test_tflite_and_onnx_match_keras(name):
    model, x = _model_and_input(name)
    # Pixel-range outputs (autoencoder) get a tolerance relative to their scale.
    scale = 255.0 if zoo.get_model_info(name).task == "reconstruction" else 1.0
    testing_utils.assert_edge_runtimes_match(model, x, atol=1e-4 * scale, rtol=1e-4)
