"""LeNet-5: the lecture's shapes after every stage and its parameter count."""

import numpy as np
import pytest
import tensorflow as tf

import zoo

LECTURE_SHAPES = {
    "conv1": (None, 28, 28, 6),
    "pool1": (None, 14, 14, 6),
    "conv2": (None, 10, 10, 16),
    "pool2": (None, 5, 5, 16),
    "flatten": (None, 400),
    "fc1": (None, 120),
    "fc2": (None, 84),
    "fc3": (None, 10),
}


def _shapes(model, names):
    return {name: tuple(model.get_layer(name).output.shape) for name in names}


@pytest.mark.parametrize("size", [28, 32])
def test_lenet5_matches_the_lecture_table(size):
    model = zoo.create_model("lenet5", input_shape=(size, size, 1))
    assert _shapes(model, LECTURE_SHAPES) == LECTURE_SHAPES
    # 6(25+1) + 16(150+1) + 400*120+120 + 120*84+84 + 84*10+10
    expected = 6 * 26 + 16 * 151 + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10
    assert expected == 61_706
    assert model.count_params() == 61_706
    out = model(np.random.uniform(0, 255, (2, size, size, 1)).astype(np.float32))
    assert out.shape == (2, 10)


def test_lenet5_uses_tanh_and_average_pooling():
    model = zoo.create_model("lenet5")
    assert type(model.get_layer("pool1")).__name__ == "AvgPool2D"
    assert model.get_layer("conv1").activation.__name__ == "tanh"
    assert model.get_layer("fc2").activation.__name__ == "tanh"
    assert model.get_layer("fc3").activation.__name__ == "linear"


def test_lenet5_modern_same_shapes_with_batch_norm_relu_max_pool():
    model = zoo.create_model("lenet5_modern", dropout_rate=0.5)
    assert _shapes(model, LECTURE_SHAPES) == LECTURE_SHAPES
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    assert kinds["pool1"] == "MaxPool2D" and kinds["bn1"] == "BatchNorm"
    assert kinds["drop1"] == kinds["drop2"] == "Dropout"
    assert not any(kind == "LocalResponseNorm" for kind in kinds.values())
    # Convs/dense before BN have no bias; BN has 4 weights per channel (2 non-trainable).
    channels = 6 + 16 + 120 + 84
    weights = 6 * 25 + 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10 + 10
    assert model.count_params() == weights + 4 * channels
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert non_trainable == 2 * channels
    assert "drop1" not in [layer.name for layer in zoo.create_model("lenet5_modern").layers]


def test_lenet5_modern_reparam_trains_branches_and_folds_into_the_plain_model():
    from layers.batch_norm import BatchNorm
    from layers.rep_conv import RepConv2D
    from zoo.reparam import fuse_into, has_reparam_layers

    trained = zoo.create_model("lenet5_modern", reparam=True)
    assert _shapes(trained, LECTURE_SHAPES) == LECTURE_SHAPES
    assert isinstance(trained.get_layer("conv1"), RepConv2D) and has_reparam_layers(trained)
    assert "bn1" not in [layer.name for layer in trained.layers]
    # Branches 5x5, 5x5, 3x3, 1x1 per conv, each with a BatchNorm (4 weights per channel),
    # in place of one 5x5 kernel and one BatchNorm.
    plain = zoo.create_model("lenet5_modern")
    extra = sum(filters * (cin * (25 + 9 + 1) + 4 * 3) for filters, cin in ((6, 1), (16, 6)))
    assert trained.count_params() == plain.count_params() + extra == 66_218
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (32, 28, 28, 1)).astype(np.float32)
    for _ in range(3):  # moves the branches' moving statistics away from their start
        trained(x, training=True)
    deployed = fuse_into(trained, plain)
    assert not has_reparam_layers(deployed) and isinstance(deployed.get_layer("bn1"), BatchNorm)
    np.testing.assert_allclose(
        deployed(x, training=False), trained(x, training=False), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_array_equal(
        deployed.get_layer("fc1").get_weights()[0], trained.get_layer("fc1").get_weights()[0]
    )
    # Another model cannot take the weights: a clear error, not Keras's set_weights one.
    with pytest.raises(ValueError, match=r"'fc1' .* not the same model"):
        fuse_into(trained, zoo.create_model("lenet5"))
    inputs = tf.keras.Input((4,))
    other = tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="head")(inputs))
    with pytest.raises(ValueError, match=r"'head' .* no counterpart"):
        fuse_into(trained, other)


def test_lenet_other_sizes_and_errors():
    model = zoo.create_model("lenet5", input_shape=(36, 36, 3), num_classes=4)
    assert model.get_layer("pool2").output.shape[1:] == (6, 6, 16)
    assert model.output_shape == (None, 4)
    # Small inputs are padded up to 32x32 by default; without that padding the minimum is 16.
    assert (
        zoo.create_model("lenet5", input_shape=(8, 8, 1)).get_layer("conv1").output.shape[1] == 28
    )
    with pytest.raises(
        ValueError, match=r"Input 15x15 is too small for 'lenet5'.*minimum is 16x16"
    ):
        zoo.create_model("lenet5", input_shape=(15, 15, 1), conv1_padding=0)
    with pytest.raises(ValueError, match="conv1_padding"):
        zoo.create_model("lenet5", conv1_padding=-1)
    with pytest.raises(ValueError, match="dropout_rate"):
        zoo.create_model("lenet5_modern", dropout_rate=1.0)
