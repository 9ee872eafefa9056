"""Folding a re-parameterized training model into its plain deployment twin.

A model built for training with `RepConv2D` layers (for example
`create_model("lenet5_modern", reparam=True)`) and the same model built plainly
(`reparam=False`) share their layer names. `fuse_into(trained, deployed)` copies every
layer's weights by name and, for each `RepConv2D`, writes its fused kernel and bias into
the plain layer of the same name:

    RepConv2D "conv1"  ->  Conv2D "conv1" (kernel K, bias c when it has one)
                           [+ the BatchNorm that reads conv1's output, set to the identity
                              plus c: gamma = 1, beta = c, moving_mean = 0,
                              moving_variance = 1 - epsilon, when the Conv2D has no bias]

so that, in inference, `deployed(x) == trained(x, training=False)` up to float rounding.

Example:

>>> trained = create_model("lenet5_modern", reparam=True)
>>> deployed = fuse_into(trained, create_model("lenet5_modern"))
>>> np.allclose(deployed(x), trained(x, training=False), atol=1e-4)
True
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from layers.batch_norm import BatchNorm
from layers.fusion import consumers
from layers.rep_conv import RepConv2D

__all__ = ["fuse_into", "has_reparam_layers"]


def has_reparam_layers(model: tf.keras.Model) -> bool:
    """Whether `model` holds a layer that `fuse_into` folds (a `RepConv2D`)."""
    return any(isinstance(layer, RepConv2D) for layer in model.layers)


def _reader_of(model: tf.keras.Model, layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
    """The single layer of `model` that reads `layer`'s output."""
    readers = consumers(model, layer)
    if len(readers) != 1:
        raise ValueError(
            f"layer '{layer.name}' of '{model.name}' feeds {len(readers)} layers; fusing a "
            f"RepConv2D into a bias-free convolution needs exactly one BatchNorm after it"
        )
    return readers[0]


def _bias_holding_batch_norm(bn: BatchNorm, bias: np.ndarray) -> list[np.ndarray]:
    """BatchNorm weights (in `bn.weights` order) that add `bias` and change nothing else."""
    values = {
        "gamma": np.ones_like(bias),
        "beta": bias,
        "moving_mean": np.zeros_like(bias),
        "moving_variance": np.full_like(bias, 1.0 - bn.epsilon),
    }
    names = [weight.name.split("/")[-1].split(":")[0] for weight in bn.weights]
    if "beta" not in names:
        raise ValueError(f"BatchNorm '{bn.name}' has no beta (center=False) to hold the bias")
    return [values[name].reshape(tuple(w.shape)) for name, w in zip(names, bn.weights, strict=True)]


def fuse_into(trained: tf.keras.Model, deployed: tf.keras.Model) -> tf.keras.Model:
    """Writes `trained`'s weights into `deployed`, folding every `RepConv2D`; returns `deployed`.

    Args:
        trained: the training form (with `RepConv2D` layers), float32 or mixed precision.
        deployed: the plain form of the same model, with the same layer names.

    Raises:
        ValueError: a layer of `deployed` has no counterpart in `trained` (other than the
            BatchNorm that takes a fused bias) or its weights do not fit.
    """
    sources = {layer.name: layer for layer in trained.layers}
    filled: set[str] = set()
    for layer in deployed.layers:
        source = sources.get(layer.name)
        if not isinstance(source, RepConv2D):
            continue
        kernel, bias = (np.asarray(t, np.float32) for t in source.fused_kernel_and_bias())
        if getattr(layer, "use_bias", False):
            layer.set_weights([kernel, bias])
        else:
            layer.set_weights([kernel])
            bn = _reader_of(deployed, layer)
            if not isinstance(bn, BatchNorm):
                raise ValueError(
                    f"'{layer.name}' of '{deployed.name}' has no bias and is read by "
                    f"'{bn.name}' ({type(bn).__name__}), not by a BatchNorm to hold the bias"
                )
            bn.set_weights(_bias_holding_batch_norm(bn, bias))
            filled.add(bn.name)
        filled.add(layer.name)
    for layer in deployed.layers:
        if layer.name in filled or not layer.weights:
            continue
        source = sources.get(layer.name)
        if source is None:
            raise ValueError(
                f"layer '{layer.name}' of '{deployed.name}' has no counterpart in "
                f"'{trained.name}' to take its weights from"
            )
        weights = source.get_weights()
        shapes = [tuple(w.shape) for w in weights]
        expected = [tuple(w.shape) for w in layer.weights]
        if shapes != expected:
            raise ValueError(
                f"layer '{layer.name}' of '{deployed.name}' takes weights of shapes {expected}, "
                f"but '{trained.name}' holds {shapes}: not the same model"
            )
        layer.set_weights(weights)
    return deployed
