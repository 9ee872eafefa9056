"""Deployment graph rewrite: few-input-channel convolutions as space-to-depth convolutions.

XNNPACK's int8 convolution on x86 CPUs with AMX costs about the same per *output pixel and
kernel tap* for any input channel count up to 64, so a convolution with few input channels
(LeNet-5's C1) dominates an int8 file's time (docs/MEASUREMENTS.md, "Space-to-depth deployment
rewrite (XNNPACK int8)").

The same convolution computed on a space-to-depth view of its padded
input has `block**2` times fewer output pixels and `block**2` times more channels:

    xp  = pad(x)                                   (H + pt + pb', W + pl + pr', C)
    s   = space_to_depth(xp, b)                    (Hq, Wq, b*b*C)
    z   = conv_valid(s, K) + bias; act(z)          (Hq - kq + 1, Wq - kq + 1, b*b*F)
    y   = depth_to_space(z, b)[:H_out, :W_out]     (H_out, W_out, F)

with the phase kernel, for output phase (p_r, p_c), input phase (q_r, q_c), tap (u, v):

    K[u, v, (q_r*b + q_c)*C + c, (p_r*b + p_c)*F + f] = W[b*u + q_r - p_r, b*v + q_c - p_c, c, f]

(zero where that index falls outside the k x k kernel), `kq = ceil((k + b - 1) / b)`. Every
product `W[a] * xp[i + a]` of the original appears exactly once, so the result is the same sum
(float32: equal up to summation order; int8: the per-channel weight scales are the same,
because each phase's kernel holds all of W's taps, and int32 accumulation is exact, so the
integer outputs equal the original's given the same calibration ranges). A following BatchNorm
(inference statistics) is folded into the kernel and bias, as the TFLite converter does, and a
following ReLU is applied before depth_to_space, where the converter fuses it into CONV_2D
(`layers.fusion.fold_following`).

PAD, SPACE_TO_DEPTH, CONV_2D and DEPTH_TO_SPACE are TFLite built-ins with int8 kernels, so the
rewritten file stays integer-only. This is a rewrite for deployment only: the zoo's models keep
the paper's architecture, and `rewrite_for_deployment` returns a new model (the other layers
copied with their weights).

Example:

>>> fast = rewrite_for_deployment(model)
>>> np.allclose(fast(x), model(x), atol=1e-4)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from layers.convolution import Conv2D
from layers.fusion import fold_following, is_linear
from layers.padding import same_padding


@tf.keras.utils.register_keras_serializable(package="convzoo")
class SpaceToDepthConv2D(tf.keras.layers.Layer):
    """A stride-1 2D convolution computed as pad -> space_to_depth -> conv -> depth_to_space.

    Args:
        kernel: the original kernel `(k_h, k_w, C, F)` (BatchNorm already folded in).
        bias: `(F,)`.
        pads: `((top, bottom), (left, right))` zero padding of the original convolution.
        block: the space-to-depth block size `b`.
        relu: apply a ReLU (before depth_to_space, so the converter fuses it).

    Input shape: `(B, H, W, C)` with known H and W. Output shape: `(B, H_out, W_out, F)`, the
    original convolution's.
    """

    def __init__(
        self,
        kernel: np.ndarray,
        bias: np.ndarray,
        pads: Sequence[Sequence[int]],
        block: int = 2,
        relu: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(block) < 2:
            raise ValueError(f"`block` must be an integer >= 2, got {block!r}")
        self.original_kernel = np.asarray(kernel, np.float32)
        self.original_bias = np.asarray(bias, np.float32)
        self.pads = tuple(tuple(int(p) for p in pair) for pair in pads)
        self.block = int(block)
        self.relu = bool(relu)
        self.phase_kernel = phase_kernel(self.original_kernel, self.block)
        self.phase_bias = np.tile(self.original_bias, self.block * self.block)

    def call(self, inputs):
        b = self.block
        kh, kw = self.original_kernel.shape[:2]
        height, width = inputs.shape[1], inputs.shape[2]
        (top, bottom), (left, right) = self.pads
        out_h = height + top + bottom - kh + 1
        out_w = width + left + right - kw + 1
        kq_h, kq_w = self.phase_kernel.shape[:2]
        # Rows of the space-to-depth view so that the VALID conv yields ceil(out / b) rows.
        rows = (-(-out_h // b) + kq_h - 1) * b
        cols = (-(-out_w // b) + kq_w - 1) * b
        x = tf.pad(
            inputs, [[0, 0], [top, rows - height - top], [left, cols - width - left], [0, 0]]
        )
        x = tf.nn.space_to_depth(x, b)
        x = tf.nn.conv2d(x, tf.constant(self.phase_kernel, x.dtype), 1, "VALID")
        x = tf.nn.bias_add(x, tf.constant(self.phase_bias, x.dtype))
        if self.relu:
            x = tf.nn.relu(x)
        x = tf.nn.depth_to_space(x, b)
        if x.shape[1] != out_h or x.shape[2] != out_w:
            x = x[:, :out_h, :out_w, :]
        return x

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel": self.original_kernel.tolist(),
                "bias": self.original_bias.tolist(),
                "pads": [list(p) for p in self.pads],
                "block": self.block,
                "relu": self.relu,
            }
        )
        return config


def phase_kernel(kernel: np.ndarray, block: int) -> np.ndarray:
    """The `(kq_h, kq_w, b*b*C, b*b*F)` kernel of the space-to-depth form of `kernel`."""
    kh, kw, cin, cout = kernel.shape
    b = block
    kq_h, kq_w = (kh + b - 2) // b + 1, (kw + b - 2) // b + 1
    out = np.zeros((kq_h, kq_w, b * b * cin, b * b * cout), kernel.dtype)
    for pr in range(b):
        for pc in range(b):
            for qr in range(b):
                for qc in range(b):
                    for u in range(kq_h):
                        a = b * u + qr - pr
                        if not 0 <= a < kh:
                            continue
                        for v in range(kq_w):
                            c = b * v + qc - pc
                            if not 0 <= c < kw:
                                continue
                            i0 = (qr * b + qc) * cin
                            o0 = (pr * b + pc) * cout
                            out[u, v, i0 : i0 + cin, o0 : o0 + cout] = kernel[a, c]
    return out


def _is_plain_conv(layer: tf.keras.layers.Layer, max_in_channels: int) -> bool:
    if isinstance(layer, Conv2D):
        ok = (
            layer.rank == 2
            and layer.groups == 1
            and layer.padding_mode == "zeros"
            and tuple(layer.dilation) == (1, 1)
        )
    elif type(layer) is tf.keras.layers.Conv2D:
        ok = layer.groups == 1 and tuple(layer.dilation_rate) == (1, 1)
    else:
        return False
    return (
        ok
        and tuple(layer.strides) == (1, 1)
        and layer.input.shape[-1] <= max_in_channels
        and None not in layer.input.shape[1:3]
        and is_linear(layer)
    )


def _conv_pads(layer: tf.keras.layers.Layer) -> tuple[tuple[int, int], tuple[int, int]]:
    height, width = layer.input.shape[1:3]
    kh, kw = layer.kernel.shape[:2]
    padding = layer.padding
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return same_padding(height, kh, 1), same_padding(width, kw, 1)
    return tuple(tuple(int(p) for p in pair) for pair in padding)


def rewritable_convolutions(
    model: tf.keras.Model, max_in_channels: int = 8
) -> list[tf.keras.layers.Layer]:
    """The convolutions `rewrite_for_deployment` replaces (none: it returns the model as is)."""
    return [layer for layer in model.layers if _is_plain_conv(layer, max_in_channels)]


def rewrite_for_deployment(
    model: tf.keras.Model, block: int | None = None, max_in_channels: int = 8
) -> tf.keras.Model:
    """A copy of functional `model` whose stride-1 convolutions with at most
    `max_in_channels` input channels run as `SpaceToDepthConv2D` (with a directly following
    inference BatchNorm and ReLU folded in). Other layers are copies with the same weights.

    Args:
        model: a functional Keras model.
        block: space-to-depth block size; None picks 4 for one input channel and 2 otherwise
            (the fastest on LeNet-5 int8: docs/MEASUREMENTS.md, "Space-to-depth deployment
            rewrite (XNNPACK int8)").
        max_in_channels: convolutions with more input channels are left alone.

    Returns:
        The rewritten model, or `model` itself when no layer matches.
    """
    if not isinstance(model, tf.keras.Model) or not hasattr(model, "inputs"):
        raise ValueError("rewrite_for_deployment needs a functional Keras model")
    if block is not None and (isinstance(block, bool) or int(block) < 2):
        raise ValueError(f"`block` must be None or an integer >= 2, got {block!r}")
    replaced: dict[str, tf.keras.layers.Layer] = {}
    removed: set[str] = set()
    for layer in rewritable_convolutions(model, max_in_channels):
        fused = fold_following(model, layer)
        replaced[layer.name] = SpaceToDepthConv2D(
            fused.kernel,
            fused.bias,
            _conv_pads(layer),
            block=block or (4 if layer.input.shape[-1] == 1 else 2),
            relu=fused.relu is not None,
            name=f"{layer.name}_s2d",
        )
        removed.update(absorbed.name for absorbed in fused.absorbed)
    if not replaced:
        return model

    def clone(layer):
        if layer.name in replaced:
            return replaced[layer.name]
        if layer.name in removed:
            return tf.keras.layers.Identity(name=f"{layer.name}_folded")
        # A fresh copy (sharing the layer would give it a second graph node, and
        # `layer.output` would still point into the original model).
        return layer.__class__.from_config(layer.get_config())

    rewritten = tf.keras.models.clone_model(model, clone_function=clone)
    for layer in rewritten.layers:
        if layer.name not in replaced and layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return rewritten
