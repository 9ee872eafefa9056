"""tf.data input pipelines: cache the decoded set, shuffle, batch, augment, adapt, prefetch.

Training pipeline, per epoch:

    uint8 arrays -> cache -> shuffle (seeded, reshuffled every epoch) -> batch (global batch)
      -> [augment whole batch: Keras preprocessing layers] -> [adapt to the model's input:
      pad/resize, gray<->RGB] -> (one-hot for label smoothing | noisy input for
      reconstruction) -> prefetch

Training batches are gathered, not assembled: the shuffle runs over example indices (the
same seeded permutation as shuffling the examples themselves, so the batches are identical)
and each batch is one `tf.gather` from the uint8 array, instead of caching, shuffling and
batching the examples one by one, which costs more CPU time per epoch (docs/MEASUREMENTS.md,
"Gathered training batches"). Sets over `GATHER_LIMIT_BYTES` keep
the per-example path (a graph constant is limited to 2 GB).

Evaluation pipelines skip shuffling and augmentation. Images reach the model as float32 in
[0, 255] (the zoo's models normalize inside). The uint8 set is what is cached, so even
AlexNet's 227x227x3 inputs never sit in memory for the whole data set.

Example:

>>> ds = make_dataset(x, y, batch_size=256, training=True, augmenter=build_augmenter(
...     "light", allows_flips=True, seed=0), seed=0)
>>> images, labels = next(iter(ds))  # (256, 28, 28, 1) float32, (256,) int64
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from training.augment import adapt_images, needs_adapting

AUTOTUNE = tf.data.AUTOTUNE
# Largest uint8 training set the gathering pipeline holds as one graph constant.
GATHER_LIMIT_BYTES = 1 << 30


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    training: bool,
    augmenter: Callable[[tf.Tensor], tf.Tensor] | None = None,
    target_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    task: str = "classification",
    noise_std: float = 0.0,
    reconstruction_scale: float = 1.0,
    seed: int = 0,
    drop_remainder: bool | None = None,
) -> tf.data.Dataset:
    """Builds the batched pipeline for one split.

    Args:
        x: uint8 images `(N, H, W, C)`.
        y: int64 labels `(N,)` (ignored for reconstruction).
        batch_size: the global batch size.
        training: shuffle, augment and (by default) drop the last partial batch.
        augmenter: batch augmentation (`training.augment.build_augmenter`), training only.
        target_shape: the model's `(H, W, C)` if it differs from the data's.
        num_classes: needed for one-hot labels when `label_smoothing > 0`.
        label_smoothing: > 0 makes one-hot float labels (for `CategoricalCrossentropy`).
        task: "classification" -> `(image, label)`; "reconstruction" -> `(noisy, clean)`.
        noise_std: reconstruction: std of the Gaussian input noise as a fraction of 255.
        reconstruction_scale: the clean target is `image * reconstruction_scale` (1/255 for
            models whose output lies in [0, 1]).
        seed: shuffle and noise seed.
        drop_remainder: default: `training`. Static batch shapes let XLA compile once.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    if len(x) == 0:
        raise ValueError("cannot build a pipeline over 0 examples")
    if drop_remainder is None:
        drop_remainder = training and len(x) >= batch_size
    image_shape = tuple(int(d) for d in x.shape[1:])
    adapt = target_shape is not None and needs_adapting(image_shape, target_shape)

    gather = training and x.nbytes <= GATHER_LIMIT_BYTES
    if gather:
        all_images = tf.constant(x)
        all_labels = tf.constant(y.astype(np.int64))
        ds = tf.data.Dataset.range(len(x))
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64))).cache()
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def transform(*batch):
        if gather:
            (indices,) = batch
            images, labels = tf.gather(all_images, indices), tf.gather(all_labels, indices)
        else:
            images, labels = batch
        images = tf.cast(images, tf.float32)
        if training and augmenter is not None:
            images = augmenter(images)
        if adapt:
            images = adapt_images(images, target_shape)
        if task == "reconstruction":
            clean = images * reconstruction_scale
            noisy = images
            if noise_std > 0:
                noisy = images + tf.random.normal(tf.shape(images), stddev=255.0 * noise_std)
                noisy = tf.clip_by_value(noisy, 0.0, 255.0)
            return noisy, clean
        if label_smoothing > 0:
            labels = tf.one_hot(labels, num_classes)
        return images, labels

    ds = ds.map(transform, num_parallel_calls=AUTOTUNE, deterministic=True)
    return _sharded_by_data(ds).prefetch(AUTOTUNE)


def _sharded_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Several workers shard the batches (the data is in memory, not in files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
