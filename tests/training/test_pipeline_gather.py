"""The gathering training pipeline yields exactly the batches of the per-example one."""

import numpy as np
import pytest

import training.pipeline as pipeline
from training.pipeline import make_dataset


def _epochs(ds, count):
    return [[(x.numpy(), y.numpy()) for x, y in ds] for _ in range(count)]


@pytest.mark.parametrize("n, batch", [(37, 8), (64, 16), (5, 8)])
def test_gathered_batches_equal_per_example_batches(monkeypatch, n, batch):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 256, size=(n, 6, 5, 1), dtype=np.uint8)
    y = rng.integers(0, 10, size=(n,))
    gathered = _epochs(make_dataset(x, y, batch, training=True, seed=3), 2)
    monkeypatch.setattr(pipeline, "GATHER_LIMIT_BYTES", 0)  # forces the per-example path
    reference = _epochs(make_dataset(x, y, batch, training=True, seed=3), 2)
    assert len(gathered) == len(reference) == 2
    steps = n // batch if n >= batch else 1  # a set smaller than one batch keeps its remainder
    for got_epoch, want_epoch in zip(gathered, reference, strict=True):
        assert len(got_epoch) == len(want_epoch) == steps
        for (gx, gy), (wx, wy) in zip(got_epoch, want_epoch, strict=True):
            assert gx.dtype == wx.dtype == np.float32
            np.testing.assert_array_equal(gx, wx)
            np.testing.assert_array_equal(gy, wy)
    # Reshuffled every epoch, and every image keeps its own label.
    first, second = (np.concatenate([b[1] for b in e]) for e in gathered)
    lookup = {x[i].tobytes(): y[i] for i in range(n)}
    for epoch in gathered:
        for images, labels in epoch:
            for image, label in zip(images.astype(np.uint8), labels, strict=True):
                assert lookup[image.tobytes()] == label
    if n >= 16:
        assert not np.array_equal(first, second)
