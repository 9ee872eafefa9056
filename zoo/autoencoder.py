"""A fully convolutional denoising autoencoder that upsamples with our `ConvTranspose2D`.

For a 28x28x1 input (any H, W divisible by 4 works: there are no dense layers):

| layer   | operation                                          | output   | parameters |
|---------|----------------------------------------------------|----------|------------|
| noise   | Gaussian noise on the normalized image (training)  | 28x28x1  | 0          |
| enc1    | 3x3 conv, padding 1, 32 maps, ReLU                 | 28x28x32 | 320        |
| enc2    | 3x3 conv, stride 2, padding 1, 64 maps, ReLU       | 14x14x64 | 18,496     |
| enc3    | 3x3 conv, stride 2, padding 1, 128 maps, ReLU      | 7x7x128  | 73,856     |
| dec1    | 4x4 transpose conv, stride 2, padding 1, 64, ReLU  | 14x14x64 | 131,136    |
| dec2    | 4x4 transpose conv, stride 2, padding 1, 32, ReLU  | 28x28x32 | 32,800     |
| output  | 3x3 conv, padding 1, 1 map, sigmoid                | 28x28x1  | 289        |
| to_pixels | x 255 (`output_range="pixels"`, the default)     | 28x28x1  | 0          |
|         |                                                    |          | 256,897    |

Transpose-convolution size: `(n - 1) s - 2p + d (k - 1) + output_padding + 1`, so 4x4 kernels
with stride 2 and padding 1 double the size exactly (7 -> 14 -> 28), and since 4 is a
multiple of 2 every output pixel gets the same number of kernel taps (no checkerboard).

Output range: by default the output is in the input's pixel range, [0, 255] (a sigmoid
times 255), so the reconstruction target is literally the input (`task="reconstruction"`)
and the quantized model's input and output share a scale. `output_range="unit"` returns
the sigmoid's [0, 1] instead (the target is then `input / 255`).

Denoising: the `noise` layer (Keras `GaussianNoise`, active only in training) corrupts the
normalized input with `noise_stddev`; the loss compares the output with the clean input.
At inference it is the identity, so the exported model is a plain autoencoder.

Example:

>>> from zoo import create_model
>>> model = create_model("conv_autoencoder")
>>> model.output_shape
(None, 28, 28, 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from layers.conv_transpose import ConvTranspose2D
from layers.convolution import Conv2D
from zoo.lenet import FASHION_MNIST_MEAN, FASHION_MNIST_STD
from zoo.registry import normalization_layer, register_model

__all__ = ["conv_autoencoder", "training_noise_pixels"]

OUTPUT_RANGES = ("pixels", "unit")


@register_model(
    input_shape=(28, 28, 1),
    num_classes=1,
    mean=FASHION_MNIST_MEAN,
    std=FASHION_MNIST_STD,
    paper=(
        "P. Vincent, H. Larochelle, Y. Bengio, P.-A. Manzagol. Extracting and composing robust "
        "features with denoising autoencoders. ICML 2008; transposed-convolution decoder as in "
        "V. Dumoulin, F. Visin. A guide to convolution arithmetic for deep learning. 2016."
    ),
    task="reconstruction",
)
def conv_autoencoder(
    input_shape: tuple[int, int, int],
    num_classes: int = 1,
    *,
    mean: Sequence[float] = FASHION_MNIST_MEAN,
    std: Sequence[float] = FASHION_MNIST_STD,
    filters: Sequence[int] = (32, 64, 128),
    noise_stddev: float = 0.3,
    output_range: str = "pixels",
    name: str = "conv_autoencoder",
) -> tf.keras.Model:
    """Builds the denoising autoencoder.

    Args:
        input_shape: per-example `(H, W, C)` of raw pixels in [0, 255]; H and W must be
            divisible by 4. The output has the same shape.
        num_classes: unused (a reconstruction model); accepted for the registry's signature.
        mean: per-channel mean on [0, 1] pixels for the normalization layer.
        std: per-channel standard deviation on [0, 1] pixels.
        filters: widths of enc1, enc2, enc3 (the decoder mirrors enc2, enc1).
        noise_stddev: standard deviation of the training-time noise, in units of the
            normalized input; 0 disables it (a plain autoencoder).
        output_range: "pixels" ([0, 255], the default) or "unit" ([0, 1]).
        name: the model name.

    Returns:
        A functional `tf.keras.Model`, `(B, H, W, C) -> (B, H, W, C)`.
    """
    height, width, channels = input_shape
    if height % 4 or width % 4:
        raise ValueError(
            f"'{name}' needs a height and width divisible by 4 (two stride-2 stages), "
            f"got input {height}x{width}; e.g. 28x28 or 32x32."
        )
    if output_range not in OUTPUT_RANGES:
        raise ValueError(f"`output_range` must be one of {OUTPUT_RANGES}, got {output_range!r}.")
    if len(filters) != 3 or not all(isinstance(f, int) and f >= 1 for f in filters):
        raise ValueError(f"`filters` must be three positive integers, got {filters!r}.")
    if noise_stddev < 0:
        raise ValueError(f"`noise_stddev` must be >= 0, got {noise_stddev!r}.")

    inputs = tf.keras.Input(shape=input_shape, name="image")
    x = normalization_layer(mean, std, channels)(inputs)
    if noise_stddev > 0:
        x = tf.keras.layers.GaussianNoise(noise_stddev, name="noise")(x)
    x = Conv2D(filters[0], 3, padding=1, activation="relu", name="enc1")(x)
    x = Conv2D(filters[1], 3, strides=2, padding=1, activation="relu", name="enc2")(x)
    x = Conv2D(filters[2], 3, strides=2, padding=1, activation="relu", name="enc3")(x)
    x = ConvTranspose2D(filters[1], 4, strides=2, padding=1, activation="relu", name="dec1")(x)
    x = ConvTranspose2D(filters[0], 4, strides=2, padding=1, activation="relu", name="dec2")(x)
    # The output layers stay float32 under mixed precision (Keras's advice).
    outputs = Conv2D(channels, 3, padding=1, activation="sigmoid", dtype="float32", name="output")(
        x
    )
    if output_range == "pixels":
        outputs = tf.keras.layers.Rescaling(255.0, dtype="float32", name="to_pixels")(outputs)
    return tf.keras.Model(inputs, outputs, name=name)


def training_noise_pixels(model: tf.keras.Model, std: Sequence[float] | None) -> float:
    """The standard deviation, in pixel units, of the noise a denoising model trains on: its
    `GaussianNoise` layer's (on normalized pixels) times the normalization's std times 255;
    0 for a model without one."""
    noise = next((la for la in model.layers if isinstance(la, tf.keras.layers.GaussianNoise)), None)
    if noise is None:
        return 0.0
    return float(noise.stddev) * float(np.mean(std or (1.0,))) * 255.0
