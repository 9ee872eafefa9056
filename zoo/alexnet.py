"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012) and two variants.

The network of the paper, for a 227x227x3 input (the paper says 224, but 227 is what makes
the arithmetic of its first layer work: floor((227 - 11) / 4) + 1 = 55):

| layer  | operation                                      | output     | parameters |
|--------|------------------------------------------------|------------|------------|
| conv1  | 11x11 conv, stride 4, 96 maps, ReLU            | 55x55x96   | 34,944     |
| lrn1   | local response norm (k=2, n=5, a=1e-4, b=0.75) | 55x55x96   | 0          |
| pool1  | 3x3 max pool, stride 2 (overlapping)           | 27x27x96   | 0          |
| conv2  | 5x5 conv, padding 2, 256 maps, 2 groups, ReLU  | 27x27x256  | 307,456    |
| lrn2   | local response norm                            | 27x27x256  | 0          |
| pool2  | 3x3 max pool, stride 2                         | 13x13x256  | 0          |
| conv3  | 3x3 conv, padding 1, 384 maps, ReLU            | 13x13x384  | 885,120    |
| conv4  | 3x3 conv, padding 1, 384 maps, 2 groups, ReLU  | 13x13x384  | 663,936    |
| conv5  | 3x3 conv, padding 1, 256 maps, 2 groups, ReLU  | 13x13x256  | 442,624    |
| pool5  | 3x3 max pool, stride 2                         | 6x6x256    | 0          |
| fc6    | dense 9216 -> 4096, ReLU, dropout 0.5          | 4096       | 37,752,832 |
| fc7    | dense 4096 -> 4096, ReLU, dropout 0.5          | 4096       | 16,781,312 |
| fc8    | dense 4096 -> 1000 (logits)                    | 1000       | 4,097,000  |
|        |                                                |            | 60,965,224 |

The paper's two GPU towers are the `groups=2` of conv2, conv4 and conv5 (conv3 and the dense
layers see both towers). Variants:

- `alexnet_single_tower`: the same network without groups (62,378,344 parameters).
- `alexnet_bn`: BatchNorm after every convolution (which then has no bias) instead of LRN.

Small inputs (the timm approach: keep the architecture, let the classifier follow the
feature map). Nothing is changed in the convolutional part; `fc6` takes whatever
`pool5` produces (`H5 * W5 * 256` inputs). The max pools round up (`ceil_mode=True`, as in
the Caffe reference model whose counts everyone quotes); at 227x227 every pool input is odd
so this is exactly the paper's 55 -> 27 -> 13 -> 6, and it lets 64x64 through
(14 -> 7 -> 3 -> 1). The smallest accepted input is 55x55; smaller raises `ValueError`
(with floor rounding, `pool_ceil_mode=False`, it would be 67x67).
`resize_to=(h, w)` (or an int) adds our `Resize` layer (bilinear) after the normalization,
so e.g. 28x28 Fashion-MNIST can be fed as is to a network running at 64x64.
A 1-channel input averages the 3-channel ImageNet mean/std.

The paper's initialization (weights N(0, 0.01), biases 1 in conv2, conv4, conv5, fc6 and
fc7) is available as `initialization="paper"`; the default is He-normal, which trains
from scratch without the paper's hand-tuned learning rate.

Example:

>>> from zoo import create_model
>>> model = create_model("alexnet")
>>> model.count_params()
60965224
>>> create_model("alexnet", num_classes=10, input_shape=(64, 64, 3)).get_layer("pool5").output.shape
(None, 1, 1, 256)
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from layers.batch_norm import BatchNorm
from layers.convolution import Conv2D
from layers.local_response_norm import LocalResponseNorm
from layers.pooling import MaxPool2D
from layers.resize import Resize
from zoo._shapes import Stage, check_input_size
from zoo.registry import forwards_keywords_of, normalization_layer, register_model

__all__ = ["alexnet", "alexnet_bn", "alexnet_single_tower"]

ALEXNET_PAPER = (
    "A. Krizhevsky, I. Sutskever, G. E. Hinton. ImageNet classification with deep "
    "convolutional neural networks. NeurIPS 2012."
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INITIALIZATIONS = ("he", "paper")

# (name, filters, kernel, stride, padding, groups in the two-tower network, biases 1 in paper)
_CONVS = (
    ("conv1", 96, 11, 4, 0, 1, False),
    ("conv2", 256, 5, 1, 2, 2, True),
    ("conv3", 384, 3, 1, 1, 1, False),
    ("conv4", 384, 3, 1, 1, 2, True),
    ("conv5", 256, 3, 1, 1, 2, True),
)
_POOL_AFTER = {"conv1": "pool1", "conv2": "pool2", "conv5": "pool5"}


def alexnet_stages(pool_ceil_mode: bool = True) -> list[Stage]:
    """AlexNet's downsampling path, for size checks."""
    stages = []
    for name, _, kernel, stride, padding, _, _ in _CONVS:
        stages.append(Stage(name, kernel=kernel, stride=stride, padding=padding))
        if name in _POOL_AFTER:
            stages.append(Stage(_POOL_AFTER[name], kernel=3, stride=2, ceil_mode=pool_ceil_mode))
    return stages


def _initializers(initialization: str, bias_one: bool) -> dict:
    if initialization == "paper":
        return {
            "kernel_initializer": tf.keras.initializers.RandomNormal(stddev=0.01),
            "bias_initializer": "ones" if bias_one else "zeros",
        }
    return {"kernel_initializer": "he_normal", "bias_initializer": "zeros"}


def _resize_size(resize_to: int | Sequence[int] | None) -> tuple[int, int] | None:
    if resize_to is None:
        return None
    size = (resize_to, resize_to) if isinstance(resize_to, int) else tuple(resize_to)
    if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
        raise ValueError(
            f"`resize_to` must be None, a positive integer or (height, width), got {resize_to!r}."
        )
    return size


def build_alexnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    towers: int = 2,
    normalization: str = "lrn",
    dropout_rate: float = 0.5,
    fc_units: int = 4096,
    pool_ceil_mode: bool = True,
    resize_to: int | Sequence[int] | None = None,
    initialization: str = "he",
    synchronized: bool = False,
    name: str = "alexnet",
) -> tf.keras.Model:
    """Builds AlexNet; the registered names fix `towers` and `normalization`.

    Args:
        input_shape: per-example `(H, W, C)` of raw pixels in [0, 255].
        num_classes: outputs of `fc8` (logits).
        mean: per-channel mean on [0, 1] pixels for the normalization layer.
        std: per-channel standard deviation on [0, 1] pixels.
        towers: 2 for the paper's grouped conv2/conv4/conv5, 1 for a single tower.
        normalization: "lrn" (the paper) or "batch_norm" (BatchNorm after each conv, no LRN).
        dropout_rate: dropout after fc6 and fc7 (0.5 in the paper); 0 disables it.
        fc_units: width of fc6 and fc7 (4096 in the paper).
        pool_ceil_mode: round pool output sizes up (Caffe); same sizes as floor at 227x227.
        resize_to: if given, resize the (normalized) input to this size first.
        initialization: "he" (default) or "paper" (N(0, 0.01), some biases 1).
        synchronized: with "batch_norm", every BatchNorm computes its batch moments over all
            replicas of a `tf.distribute` strategy (`python -m training --sync-bn`).
        name: the model name.

    Returns:
        A functional `tf.keras.Model`, `(B, H, W, C) -> (B, num_classes)` logits.

    Raises:
        ValueError: bad arguments, or an input smaller than the network's minimum.
    """
    if towers not in (1, 2):
        raise ValueError(f"`towers` must be 1 or 2, got {towers!r}.")
    if normalization not in ("lrn", "batch_norm"):
        raise ValueError(f"`normalization` must be 'lrn' or 'batch_norm', got {normalization!r}.")
    if initialization not in INITIALIZATIONS:
        raise ValueError(
            f"`initialization` must be one of {INITIALIZATIONS}, got {initialization!r}."
        )
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"`dropout_rate` must be in [0, 1), got {dropout_rate!r}.")
    if synchronized and normalization != "batch_norm":
        raise ValueError(
            f"`synchronized=True` needs BatchNorm layers; normalization={normalization!r} has "
            f"none (use alexnet_bn)."
        )
    if isinstance(fc_units, bool) or not isinstance(fc_units, int) or fc_units < 1:
        raise ValueError(f"`fc_units` must be a positive integer, got {fc_units!r}.")
    size = _resize_size(resize_to)
    network_input = input_shape if size is None else (*size, input_shape[-1])
    check_input_size(
        name,
        network_input,
        alexnet_stages(pool_ceil_mode),
        hint=" Resize the images, or pass resize_to=64 to resize inside the model.",
    )

    inputs = tf.keras.Input(shape=input_shape, name="image")
    x = normalization_layer(mean, std, input_shape[-1])(inputs)
    if size is not None:
        x = Resize(size=size, interpolation="bilinear", name="resize")(x)
    batch_norm = normalization == "batch_norm"
    for index, (conv, filters, kernel, stride, padding, groups, bias_one) in enumerate(
        _CONVS, start=1
    ):
        x = Conv2D(
            filters,
            kernel,
            strides=stride,
            padding=padding,
            groups=groups if towers == 2 else 1,
            use_bias=not batch_norm,
            activation=None if batch_norm else "relu",
            name=conv,
            **_initializers(initialization, bias_one),
        )(x)
        if batch_norm:
            x = BatchNorm(synchronized=synchronized, name=f"bn{index}")(x)
            x = tf.keras.layers.Activation("relu", name=f"relu{index}")(x)
        elif index <= 2:
            x = LocalResponseNorm(
                depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, name=f"lrn{index}"
            )(x)
        if conv in _POOL_AFTER:
            x = MaxPool2D(3, strides=2, ceil_mode=pool_ceil_mode, name=_POOL_AFTER[conv])(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    for fc in ("fc6", "fc7"):
        x = tf.keras.layers.Dense(
            fc_units, activation="relu", name=fc, **_initializers(initialization, True)
        )(x)
        if dropout_rate > 0:
            x = tf.keras.layers.Dropout(dropout_rate, name=f"drop{fc[2:]}")(x)
    kernel_init = (
        tf.keras.initializers.RandomNormal(stddev=0.01)
        if initialization == "paper"
        else "glorot_uniform"
    )
    # float32 logits under mixed precision (Keras's advice for a numerically stable loss).
    outputs = tf.keras.layers.Dense(
        num_classes, kernel_initializer=kernel_init, dtype="float32", name="fc8"
    )(x)
    return tf.keras.Model(inputs, outputs, name=name)


@register_model(
    input_shape=(227, 227, 3),
    num_classes=1000,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    paper=ALEXNET_PAPER,
)
@forwards_keywords_of(build_alexnet, fixed=("towers", "normalization", "synchronized"))
def alexnet(input_shape: tuple[int, int, int], num_classes: int, **overrides) -> tf.keras.Model:
    """AlexNet as in the paper: two towers (grouped conv2/4/5), LRN, 60,965,224 parameters.

    Args: see `build_alexnet` (every keyword but `towers` and `normalization` applies).
    """
    return build_alexnet(input_shape, num_classes, towers=2, normalization="lrn", **overrides)


@register_model(
    input_shape=(227, 227, 3),
    num_classes=1000,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    paper=ALEXNET_PAPER + " Single tower (no grouped convolutions).",
)
@forwards_keywords_of(build_alexnet, fixed=("towers", "normalization", "synchronized"))
def alexnet_single_tower(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    name: str = "alexnet_single_tower",
    **overrides,
) -> tf.keras.Model:
    """AlexNet without the groups of conv2/4/5 (one GPU): 62,378,344 parameters.

    Args: see `build_alexnet`.
    """
    return build_alexnet(
        input_shape, num_classes, towers=1, normalization="lrn", name=name, **overrides
    )


@register_model(
    input_shape=(227, 227, 3),
    num_classes=1000,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    paper=ALEXNET_PAPER + " LRN replaced by batch normalization (Ioffe & Szegedy, 2015).",
)
@forwards_keywords_of(build_alexnet, fixed=("towers", "normalization"))
def alexnet_bn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    synchronized: bool = False,
    name: str = "alexnet_bn",
    **overrides,
) -> tf.keras.Model:
    """AlexNet (two towers) with BatchNorm + ReLU after every convolution and no LRN.

    Args:
        synchronized: every BatchNorm computes its batch moments over all replicas of a
            `tf.distribute` strategy (`python -m training --sync-bn`).
        others: see `build_alexnet`.
    """
    return build_alexnet(
        input_shape,
        num_classes,
        towers=2,
        normalization="batch_norm",
        synchronized=synchronized,
        name=name,
        **overrides,
    )
