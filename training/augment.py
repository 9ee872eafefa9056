"""On-the-fly augmentation: Keras preprocessing layers applied to whole batches in tf.data.

Augmentation is never saved as copies of the data (the lecture's point): every epoch sees
freshly transformed images. Each transform is a Keras preprocessing layer applied to a batch
`(B, H, W, C)` float32 in [0, 255]; the layers draw one random transform per image, so a
batch is transformed in one vectorized call.

Levels (`--augment`), a translation of `t` being a pad-with-zeros-and-random-crop of up to
`t * H` pixels:

============  ========================================================================
none          identity
light         horizontal flip; where flips are not allowed (digits) a shift of 0.04 (1 pixel
              on 28x28) instead
medium        light + random erasing (one zero-filled rectangle of 2-20 % of the area on a
              quarter of the images, see below)
standard      translation 0.1, flip, rotation +/-10 degrees, zoom +/-10 %
strong        standard + contrast 0.3 + the same random erasing
============  ========================================================================

Keras's `RandomErasing(factor=0.5)` draws each image's erasing probability uniformly from
[0, 0.5]: a quarter of the images are erased (measured: 26 %), not half; each erased rectangle
has sides of sqrt(U(0.02, 0.2)) times the image's, 10 % of the area on average.

Digits (MNIST) never flip: a mirrored 2 is no 2. Per data set the default (`auto`) is `light`
for the 28x28 IDX sets and `standard` otherwise.

Example:

>>> augment = build_augmenter("standard", allows_flips=True, seed=0)
>>> y = augment(tf.zeros([8, 28, 28, 1]))  # same shape and dtype
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

AUGMENT_LEVELS = ("none", "light", "medium", "standard", "strong")

_DATASET_DEFAULTS = {"mnist": "light", "fashion_mnist": "light"}


def default_augment(dataset_name: str) -> str:
    """The `auto` level for a data set: `light` for MNIST-like sets, else `standard`."""
    return _DATASET_DEFAULTS.get(dataset_name, "standard")


def resolve_augment(level: str, dataset_name: str) -> str:
    """Maps `auto` to the data set's default and checks the level."""
    if level == "auto":
        return default_augment(dataset_name)
    if level not in AUGMENT_LEVELS:
        raise ValueError(f"augment must be one of {('auto', *AUGMENT_LEVELS)}, got {level!r}")
    return level


def augmentation_layers(
    level: str, allows_flips: bool, seed: int | None = None
) -> list[tf.keras.layers.Layer]:
    """The Keras preprocessing layers of one level, in application order."""
    if level not in AUGMENT_LEVELS:
        raise ValueError(f"augment must be one of {AUGMENT_LEVELS}, got {level!r}")
    if level == "none":
        return []

    def s(i: int) -> int | None:
        return None if seed is None else seed + i

    layers_ = []
    if allows_flips:
        layers_.append(tf.keras.layers.RandomFlip("horizontal", seed=s(1), name="flip"))
    geometric = dict(fill_mode="constant", fill_value=0.0, interpolation="bilinear")
    if level in ("standard", "strong"):
        layers_.append(
            tf.keras.layers.RandomRotation(10 / 360, seed=s(2), name="rotate", **geometric)
        )
        layers_.append(tf.keras.layers.RandomZoom(0.1, 0.1, seed=s(3), name="zoom", **geometric))
    small = level in ("light", "medium")
    if not small or not allows_flips:
        # Nearest-neighbour translation moves pixels without blurring them: pad-and-crop.
        shift = 0.04 if small else 0.1  # light, medium: +/- 1 pixel on 28x28
        layers_.append(
            tf.keras.layers.RandomTranslation(
                shift,
                shift,
                fill_mode="constant",
                interpolation="nearest",
                seed=s(4),
                name="translate",
            )
        )
    if level == "strong":
        layers_.append(
            tf.keras.layers.RandomContrast(0.3, value_range=(0, 255), seed=s(5), name="contrast")
        )
    if level in ("medium", "strong"):
        layers_.append(
            tf.keras.layers.RandomErasing(
                factor=0.5,
                scale=(0.02, 0.2),
                fill_value=0.0,
                value_range=(0, 255),
                seed=s(6),
                name="erase",
            )
        )
    return layers_


def build_augmenter(
    level: str, allows_flips: bool, seed: int | None = None
) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """A function `(B, H, W, C) float32 -> (B, H, W, C) float32` for `tf.data.Dataset.map`.

    Returns None for `"none"`. Values stay in [0, 255] and the dtype is float32.
    """
    layers_ = augmentation_layers(level, allows_flips, seed)
    if not layers_:
        return None

    def augment(images: tf.Tensor) -> tf.Tensor:
        x = images
        for layer in layers_:
            x = layer(x, training=True)
        x = tf.clip_by_value(tf.cast(x, tf.float32), 0.0, 255.0)
        return tf.ensure_shape(x, images.shape)

    return augment


def preview_grid(
    images: np.ndarray,
    augmenter: Callable[[tf.Tensor], tf.Tensor] | None,
    path: str,
    copies: int = 7,
    title: str = "",
    noise_std: float = 0.0,
) -> None:
    """Writes a PNG grid: one row per source image, the original then `copies` augmentations
    (with Gaussian noise of `noise_std` pixels added, as a denoising model sees them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.artifacts import atomic_savefig

    rows = len(images)
    x = tf.convert_to_tensor(images, tf.float32)
    columns = [x.numpy()]
    rng = np.random.default_rng(0)
    for _ in range(copies):
        augmented = x.numpy() if augmenter is None else augmenter(x).numpy()
        if noise_std:
            augmented = np.clip(augmented + rng.normal(0, noise_std, augmented.shape), 0, 255)
        columns.append(augmented)
    fig, axes = plt.subplots(
        rows, copies + 1, figsize=(1.2 * (copies + 1), 1.2 * rows), squeeze=False
    )
    for r in range(rows):
        for c in range(copies + 1):
            img = columns[c][r]
            ax = axes[r][c]
            if img.shape[-1] == 1:
                ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=255)
            else:
                ax.imshow(np.clip(img, 0, 255).astype(np.uint8))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("original" if c == 0 else f"aug {c}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def adapt_images(images: tf.Tensor, target_shape: tuple[int, int, int]) -> tf.Tensor:
    """The resize/channel step between a data set and a model expecting another input shape.

    Channels: 1 -> 3 repeats the gray channel, 3 -> 1 takes the luminance. Spatial size: a
    target at most 16 pixels larger per dimension is reached by zero padding around the centre
    (LeNet-5's 32x32 from MNIST's 28x28, as in the paper); any other change is a bilinear
    resize. Works on a batch `(B, H, W, C)` float32.
    """
    h, w, c = (int(d) for d in images.shape[1:])
    th, tw, tc = (int(d) for d in target_shape)
    x = images
    if c != tc:
        if c == 1 and tc == 3:
            x = tf.image.grayscale_to_rgb(x)
        elif c == 3 and tc == 1:
            x = tf.image.rgb_to_grayscale(x)
        else:
            raise ValueError(
                f"cannot adapt images with {c} channels to a model expecting {tc}; "
                f"supported: 1 <-> 3"
            )
    if (h, w) != (th, tw):
        if th >= h and tw >= w and th - h <= 16 and tw - w <= 16:
            top, left = (th - h) // 2, (tw - w) // 2
            x = tf.pad(x, [[0, 0], [top, th - h - top], [left, tw - w - left], [0, 0]])
        else:
            x = tf.image.resize(x, (th, tw), method="bilinear")
    return x


def needs_adapting(image_shape, target_shape) -> bool:
    return tuple(int(d) for d in image_shape) != tuple(int(d) for d in target_shape)
