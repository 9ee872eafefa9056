"""Augmentation keeps shapes, dtypes, value range and labels; the pipeline's adapt step."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from training.augment import (
    AUGMENT_LEVELS,
    adapt_images,
    augmentation_layers,
    build_augmenter,
    preview_grid,
    resolve_augment,
)
from training.pipeline import make_dataset

# Training runs in the Keras 3 world (DESIGN.md); RandomErasing & co. exist only there.
pytestmark = pytest.mark.keras3_only


def _block_images(labels: np.ndarray, size: int = 28) -> np.ndarray:
    """Black images with a centred 8x8 block whose value encodes the label (20 * label + 30)."""
    x = np.zeros((len(labels), size, size, 1), np.uint8)
    lo = size // 2 - 4
    x[:, lo : lo + 8, lo : lo + 8, 0] = (20 * labels + 30)[:, None, None]
    return x


@pytest.mark.parametrize("level", ["light", "medium", "standard", "strong"])
@pytest.mark.parametrize("allows_flips", [True, False])
def test_augmenter_keeps_shape_dtype_range(level, allows_flips):
    augment = build_augmenter(level, allows_flips, seed=1)
    x = tf.random.uniform([16, 28, 28, 1], 0, 255, seed=2)
    y = augment(x)
    assert y.shape == x.shape and y.dtype == tf.float32
    assert float(tf.reduce_min(y)) >= 0.0 and float(tf.reduce_max(y)) <= 255.0
    # It really transforms, and per image: two images of one batch get different transforms.
    assert not np.allclose(y.numpy(), x.numpy())
    same = tf.tile(x[:1], [8, 1, 1, 1])
    out = augment(same).numpy()
    assert any(not np.allclose(out[0], out[i]) for i in range(1, 8))


def test_none_is_identity_and_flips_follow_the_dataset():
    assert build_augmenter("none", True) is None
    names = lambda layers: [layer.name for layer in layers]  # noqa: E731
    assert names(augmentation_layers("light", allows_flips=True)) == ["flip"]
    assert names(augmentation_layers("light", allows_flips=False)) == ["translate"]
    assert "flip" not in names(augmentation_layers("strong", allows_flips=False))
    assert "erase" in names(augmentation_layers("strong", allows_flips=True))
    assert resolve_augment("auto", "mnist") == "light"
    assert resolve_augment("auto", "tfds:cifar10") == "standard"
    with pytest.raises(ValueError, match=r"light.*'heavy'"):
        resolve_augment("heavy", "mnist")
    assert set(AUGMENT_LEVELS) == {"none", "light", "medium", "standard", "strong"}
    assert names(augmentation_layers("medium", allows_flips=True)) == ["flip", "erase"]
    assert names(augmentation_layers("medium", allows_flips=False)) == ["translate", "erase"]


def test_medium_erases_a_quarter_of_the_images_as_documented():
    # RandomErasing(factor=0.5) draws each image's probability from U(0, 0.5): E = 0.25.
    augment = build_augmenter("medium", allows_flips=True, seed=3)
    x = tf.fill([2000, 28, 28, 1], 255.0)  # flips leave a constant image unchanged
    erased = tf.reduce_mean(tf.cast(augment(x) < 1.0, tf.float32), axis=[1, 2, 3]).numpy()
    hit = erased[erased > 0]
    assert 0.21 < len(hit) / len(erased) < 0.31
    assert hit.min() > 0.01 and hit.max() < 0.25  # 2-20 % of the area, up to pixel rounding
    assert 0.08 < hit.mean() < 0.13


@pytest.mark.parametrize("level", ["light", "standard"])
def test_training_pipeline_keeps_labels_with_their_images(level):
    labels = np.arange(64) % 10
    x = _block_images(labels)
    ds = make_dataset(
        x,
        labels.astype(np.int64),
        16,
        training=True,
        augmenter=build_augmenter(level, allows_flips=True, seed=0),
        seed=0,
    )
    seen = []
    for images, batch_labels in ds:
        assert images.shape == (16, 28, 28, 1) and images.dtype == tf.float32
        assert batch_labels.dtype == tf.int64
        # The block stays inside the image (shift <= 2.8 px, rotation 10 deg, zoom 10 %): its
        # brightest pixels still carry the label.
        peak = images.numpy().reshape(16, -1).max(axis=1)
        np.testing.assert_allclose(peak, 20 * batch_labels.numpy() + 30, atol=2.0)
        seen += batch_labels.numpy().tolist()
    assert sorted(seen) == sorted(labels.tolist())  # every example once per epoch


def test_eval_pipeline_order_one_hot_and_reconstruction():
    labels = np.array([3, 1, 4, 1, 5], np.int64)
    x = _block_images(labels)
    ds = make_dataset(x, labels, 2, training=False, label_smoothing=0.1, num_classes=10)
    got = np.concatenate([y.numpy() for _, y in ds])
    np.testing.assert_array_equal(got.argmax(1), labels)  # order kept, last partial batch kept
    assert got.shape == (5, 10)
    rec = make_dataset(x, labels, 5, training=False, task="reconstruction")
    noisy, clean = next(iter(rec))
    np.testing.assert_array_equal(noisy.numpy(), x.astype(np.float32))
    np.testing.assert_array_equal(clean.numpy(), x.astype(np.float32))


def test_adapt_pads_small_differences_and_resizes_large_ones():
    x = tf.random.uniform([2, 28, 28, 1], 0, 255)
    padded = adapt_images(x, (32, 32, 1))
    assert padded.shape == (2, 32, 32, 1)
    np.testing.assert_array_equal(padded[:, 2:30, 2:30].numpy(), x.numpy())
    assert float(tf.reduce_sum(padded)) == pytest.approx(float(tf.reduce_sum(x)), rel=1e-6)
    rgb = adapt_images(x, (227, 227, 3))
    assert rgb.shape == (2, 227, 227, 3)
    np.testing.assert_allclose(rgb[..., 0].numpy(), rgb[..., 2].numpy())
    gray = adapt_images(tf.random.uniform([1, 8, 8, 3]), (8, 8, 1))
    assert gray.shape == (1, 8, 8, 1)
    with pytest.raises(ValueError, match="4 channels"):
        adapt_images(tf.zeros([1, 8, 8, 4]), (8, 8, 3))


def test_pipeline_adapts_to_the_model_input():
    labels = np.arange(8) % 10
    ds = make_dataset(
        _block_images(labels),
        labels.astype(np.int64),
        4,
        training=True,
        augmenter=build_augmenter("light", True, seed=0),
        target_shape=(64, 64, 3),
    )
    images, _ = next(iter(ds))
    assert images.shape == (4, 64, 64, 3)


def test_preview_grid_writes_png(tmp_path):
    path = tmp_path / "augment_preview.png"
    preview_grid(_block_images(np.arange(3)), build_augmenter("strong", True, 0), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
