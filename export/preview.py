"""`reconstructions.png`: what a denoising model does, for a person to look at.

For a few test images, three rows: the input with the model's training noise added (the
`noise` layer's standard deviation, on normalized pixels, brought back to pixel units), the
Keras model's reconstruction of it, and the clean target.

Example:

>>> write_reconstruction_preview(model, x_test, (0.353,), "exports/ae/reconstructions.png")
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from zoo.autoencoder import training_noise_pixels

__all__ = ["write_reconstruction_preview"]


def write_reconstruction_preview(
    model: tf.keras.Model,
    x: np.ndarray,
    std: Sequence[float] | None,
    path: str | os.PathLike,
    count: int = 8,
    seed: int = 0,
) -> str:
    """Draws noisy input / reconstruction / clean target for the first `count` images of `x`
    (raw pixels in [0, 255]) to `path`; returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clean = x[:count].astype(np.float32)
    sigma = training_noise_pixels(model, std)
    noise = np.random.default_rng(seed).normal(0.0, sigma, clean.shape).astype(np.float32)
    noisy = np.clip(clean + noise, 0.0, 255.0)
    restored = np.asarray(model.predict(noisy, verbose=0), np.float32)
    peak = 255.0 if restored.max() > 2.0 else 1.0
    rows = (
        (f"input + noise (std {sigma:.0f})", noisy, 255.0),
        ("reconstruction", restored, peak),
        ("clean target", clean, 255.0),
    )
    figure, axes = plt.subplots(3, len(clean), figsize=(1.3 * len(clean), 4.3), squeeze=False)
    for row, (title, images, top) in enumerate(rows):
        for column, image in enumerate(images):
            axis = axes[row][column]
            axis.imshow(np.clip(image / top, 0, 1).squeeze(), cmap="gray", vmin=0, vmax=1)
            axis.set_xticks([]), axis.set_yticks([])
        axes[row][0].set_ylabel(title, fontsize=8)
    figure.suptitle(f"{model.name}: denoising test images (Keras model)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return str(path)
