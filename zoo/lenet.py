"""LeNet-5 (LeCun et al., 1998): the faithful lecture version and a modern variant.

The lecture's table, for a 28x28x1 input (batch B):

| layer  | operation                      | output       | parameters          |
|--------|--------------------------------|--------------|---------------------|
| conv1  | 5x5 conv, padding 2, 6 maps    | B x 28x28x6  | 6 (25 + 1) = 156    |
| pool1  | 2x2 average pool, stride 2     | B x 14x14x6  | 0                   |
| conv2  | 5x5 conv, padding 0, 16 maps   | B x 10x10x16 | 16 (150 + 1) = 2416 |
| pool2  | 2x2 average pool, stride 2     | B x 5x5x16   | 0                   |
| fc1    | dense 400 -> 120               | B x 120      | 48,120              |
| fc2    | dense 120 -> 84                | B x 84       | 10,164              |
| fc3    | dense 84 -> 10 (logits)        | B x 10       | 850                 |
|        |                                |              | total 61,706        |

The 1998 paper feeds 32x32 images (the 28x28 digits padded by 2 outside the network) to an
unpadded C1. Both are accepted: `conv1_padding=None` pads C1 so that the input it sees is at
least 32x32 (2 for 28x28, 0 for 32x32), giving the same 28x28x6 maps and the same 61,706
parameters either way. Other sizes work too; the classifier's input follows the feature map.

Under a mixed-precision policy the logits layer stays float32 (Keras's advice for a stable
loss); every other layer follows the policy.

Deliberate simplifications of the paper, as in the lecture: plain `tanh` (the paper scales it,
1.7159 tanh(2x/3)), average pooling without the paper's trainable coefficient and bias, C3
connected to all 6 maps (the paper's sparse connection table has 60 of the 96 kernels), and a
dense output layer returning logits instead of the RBF units.

Example:

>>> from zoo import create_model
>>> model = create_model("lenet5")
>>> model.count_params()
61706
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from layers.batch_norm import BatchNorm
from layers.convolution import Conv2D
from layers.pooling import AvgPool2D, MaxPool2D
from layers.rep_conv import RepConv2D
from zoo._shapes import Stage, check_input_size
from zoo.registry import normalization_layer, register_model

__all__ = ["lenet5", "lenet5_modern"]

LENET_PAPER = (
    "Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to document "
    "recognition. Proceedings of the IEEE 86(11), 1998."
)
# Fashion-MNIST training set statistics on [0, 1] pixels (the project's default data set).
FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)


def _conv1_padding(input_shape: Sequence[int], conv1_padding: int | None) -> int:
    """C1's padding: as given, or enough to make the input C1 sees at least 32x32."""
    if conv1_padding is None:
        return max(0, (32 - min(input_shape[0], input_shape[1]) + 1) // 2)
    if isinstance(conv1_padding, bool) or not isinstance(conv1_padding, int) or conv1_padding < 0:
        raise ValueError(
            f"`conv1_padding` must be None or a non-negative integer, got {conv1_padding!r}."
        )
    return conv1_padding


def _lenet_stages(padding: int) -> list[Stage]:
    return [
        Stage("conv1", kernel=5, padding=padding),
        Stage("pool1", kernel=2, stride=2),
        Stage("conv2", kernel=5),
        Stage("pool2", kernel=2, stride=2),
    ]


@register_model(
    input_shape=(28, 28, 1),
    num_classes=10,
    mean=FASHION_MNIST_MEAN,
    std=FASHION_MNIST_STD,
    paper=LENET_PAPER,
)
def lenet5(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    mean: Sequence[float] = FASHION_MNIST_MEAN,
    std: Sequence[float] = FASHION_MNIST_STD,
    conv1_padding: int | None = None,
    activation: str = "tanh",
    name: str = "lenet5",
) -> tf.keras.Model:
    """LeNet-5 exactly as the lecture's table: tanh, average pooling, 61,706 parameters.

    Args:
        input_shape: per-example `(H, W, C)` of raw pixels in [0, 255].
        num_classes: outputs of `fc3` (logits).
        mean: per-channel mean on [0, 1] pixels for the normalization layer.
        std: per-channel standard deviation on [0, 1] pixels.
        conv1_padding: C1's zero padding; None pads a 28x28 input by 2 and a 32x32 input by 0.
        activation: the nonlinearity after every layer but the last.
        name: the model name.

    Returns:
        A functional `tf.keras.Model`, `(B, H, W, C) -> (B, num_classes)` logits.
    """
    padding = _conv1_padding(input_shape, conv1_padding)
    check_input_size(name, input_shape, _lenet_stages(padding))
    inputs = tf.keras.Input(shape=input_shape, name="image")
    x = normalization_layer(mean, std, input_shape[-1])(inputs)
    x = Conv2D(6, 5, padding=padding, activation=activation, name="conv1")(x)
    x = AvgPool2D(2, name="pool1")(x)
    x = Conv2D(16, 5, activation=activation, name="conv2")(x)
    x = AvgPool2D(2, name="pool2")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = tf.keras.layers.Dense(120, activation=activation, name="fc1")(x)
    x = tf.keras.layers.Dense(84, activation=activation, name="fc2")(x)
    outputs = tf.keras.layers.Dense(num_classes, dtype="float32", name="fc3")(x)
    return tf.keras.Model(inputs, outputs, name=name)


@register_model(
    input_shape=(28, 28, 1),
    num_classes=10,
    mean=FASHION_MNIST_MEAN,
    std=FASHION_MNIST_STD,
    paper=LENET_PAPER + " Modernized: ReLU, max pooling, batch normalization (Ioffe & Szegedy, "
    "2015), dropout (Srivastava et al., 2014); an optional re-parameterized training form "
    "(Ding et al., 2021, RepVGG; Vasu et al., 2023, MobileOne).",
)
def lenet5_modern(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    mean: Sequence[float] = FASHION_MNIST_MEAN,
    std: Sequence[float] = FASHION_MNIST_STD,
    conv1_padding: int | None = None,
    dropout_rate: float = 0.0,
    synchronized: bool = False,
    reparam: bool = False,
    name: str = "lenet5_modern",
) -> tf.keras.Model:
    """LeNet-5 with today's defaults, same shapes as `lenet5`.

    Each convolution and hidden dense layer is followed by our `BatchNorm` and a ReLU (the
    convolutions and dense layers before a BatchNorm have no bias: its shift replaces it);
    pooling is 2x2 max pooling; `dropout_rate > 0` adds dropout after `fc1` and `fc2`.

    `reparam=True` builds the training form of the same model: each `conv{i}` + `bn{i}` pair
    is one `RepConv2D` named `conv{i}` (branches 5x5, 5x5, 3x3 and 1x1, each batch-normalized,
    summed), which `zoo.reparam.fuse_into` folds into this model's `conv{i}` and `bn{i}`
    after training: the deployed model is the plain one (`python -m training --reparam`;
    the folded kernels quantize worse, see the README's design notes).

    Layers: normalize, conv1, bn1, relu1, pool1, conv2, bn2, relu2, pool2, flatten, fc1, bn3,
    relu3, [drop1], fc2, bn4, relu4, [drop2], fc3. Parameters for 10 classes: 62,384 of
    which 452 are BatchNorm moving statistics (non-trainable).

    Args:
        input_shape: per-example `(H, W, C)` of raw pixels in [0, 255].
        num_classes: outputs of `fc3` (logits).
        mean: per-channel mean on [0, 1] pixels for the normalization layer.
        std: per-channel standard deviation on [0, 1] pixels.
        conv1_padding: C1's zero padding; None pads a 28x28 input by 2 and a 32x32 input by 0.
        dropout_rate: dropout after the hidden dense layers; 0 disables it.
        synchronized: every BatchNorm computes its batch moments over all replicas of a
            `tf.distribute` strategy (`python -m training --sync-bn`).
        name: the model name.

    Returns:
        A functional `tf.keras.Model`, `(B, H, W, C) -> (B, num_classes)` logits.
    """
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"`dropout_rate` must be in [0, 1), got {dropout_rate!r}.")
    padding = _conv1_padding(input_shape, conv1_padding)
    check_input_size(name, input_shape, _lenet_stages(padding))
    inputs = tf.keras.Input(shape=input_shape, name="image")
    x = normalization_layer(mean, std, input_shape[-1])(inputs)
    for index, (filters, pad) in enumerate(((6, padding), (16, 0)), start=1):
        if reparam:
            x = RepConv2D(filters, 5, padding=pad, synchronized=synchronized, name=f"conv{index}")(
                x
            )
        else:
            x = Conv2D(filters, 5, padding=pad, use_bias=False, name=f"conv{index}")(x)
            x = BatchNorm(synchronized=synchronized, name=f"bn{index}")(x)
        x = tf.keras.layers.Activation("relu", name=f"relu{index}")(x)
        x = MaxPool2D(2, name=f"pool{index}")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate((120, 84), start=1):
        x = tf.keras.layers.Dense(units, use_bias=False, name=f"fc{index}")(x)
        x = BatchNorm(synchronized=synchronized, name=f"bn{index + 2}")(x)
        x = tf.keras.layers.Activation("relu", name=f"relu{index + 2}")(x)
        if dropout_rate > 0:
            x = tf.keras.layers.Dropout(dropout_rate, name=f"drop{index}")(x)
    outputs = tf.keras.layers.Dense(num_classes, dtype="float32", name="fc3")(x)
    return tf.keras.Model(inputs, outputs, name=name)
