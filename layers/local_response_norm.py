"""Local response normalization (AlexNet) written out from shifted channel slices."""

from __future__ import annotations

import tensorflow as tf

from layers._args import check_choice
from layers._norm_utils import compute_float_dtype

ALPHA_CONVENTIONS = ("tensorflow", "pytorch")


@tf.keras.utils.register_keras_serializable(package="convzoo")
class LocalResponseNorm(tf.keras.layers.Layer):
    """Local response normalization across channels (Krizhevsky et al., 2012), from scratch.

    Each activation is divided by a power of the energy of its `n = 2 * depth_radius + 1`
    neighbouring channels at the same position (channels-last, the window clipped at the ends):

        b[..., c] = a[..., c] / (bias + scale * sum_{j = c - r}^{c + r} a[..., j]^2) ^ beta

    with `r = depth_radius` and, by `alpha_convention`,

    - `"tensorflow"` (default): `scale = alpha`, `tf.nn.local_response_normalization`'s
      convention, where `alpha` multiplies the plain sum. AlexNet's paper (n = 5, k = 2,
      alpha = 1e-4, beta = 0.75) writes the same formula, so its values are this layer's
      defaults (`depth_radius=2` is n = 5).
    - `"pytorch"`: `scale = alpha / n`, the convention of PyTorch's `nn.LocalResponseNorm` and
      of ONNX's `LRN` (and Caffe's), which average the squares over the window size (zeros
      counted where the window is clipped) before multiplying by `alpha`.

    The mapping, for an odd window size `n`:

        PyTorch LocalResponseNorm(size=n, alpha=a, beta=b, k=k)
        == ONNX LRN(size=n, alpha=a, beta=b, bias=k)
        == LocalResponseNorm(depth_radius=(n - 1) // 2, alpha=a, beta=b, bias=k,
                             alpha_convention="pytorch")
        == LocalResponseNorm(depth_radius=(n - 1) // 2, alpha=a / n, beta=b, bias=k)
        == tf.nn.local_response_normalization(depth_radius=(n - 1) / 2, alpha=a / n,
                                              beta=b, bias=k)

    (so PyTorch's `alpha=5e-4, size=5` equals `alpha=1e-4` here). Note PyTorch's default `k`
    is 1.0, this layer's `bias` default 2.0 (AlexNet's).

    Even window sizes are not supported: the window is always `2 * depth_radius + 1` channels.
    PyTorch and ONNX accept an even `size` but place its window off-centre, in opposite ways:
    PyTorch sums channels `[c - n/2, c + n/2 - 1]`, ONNX `[c - n/2 + 1, c + n/2]`, and ONNX
    Runtime refuses an even size altogether (Caffe does too); no model we know uses one.

    The window sum is built from the squares padded with `depth_radius` zero channels on each
    side and added up as `2r + 1` shifted slices (PAD, STRIDED_SLICE, ADD, POW, MUL/DIV), so
    it converts to TFLite built-ins and to ONNX. float16/bfloat16 inputs are computed in
    float32 and cast back to the compute dtype.

    Args:
        depth_radius: half-width `r` of the channel window, >= 0. Default 2 (window of 5).
        bias: the constant `k` added to the scaled sum, AlexNet's 2.0.
        alpha: the scale of the sum of squares (see `alpha_convention`). Default 1e-4.
        beta: the exponent. Default 0.75.
        alpha_convention: `"tensorflow"` (`alpha` multiplies the sum) or `"pytorch"` (`alpha`
            multiplies the mean over the window size, as PyTorch and ONNX).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape: `(batch, ..., channels)`, rank >= 2, e.g. `(batch, height, width, channels)`.
    Output shape: the input shape.

    Example:

    >>> LocalResponseNorm()(tf.random.normal((1, 13, 13, 96))).shape
    TensorShape([1, 13, 13, 96])
    >>> # PyTorch's nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0):
    >>> ported = LocalResponseNorm(2, bias=2.0, alpha=1e-4, alpha_convention="pytorch")
    """

    def __init__(
        self,
        depth_radius: int = 2,
        bias: float = 2.0,
        alpha: float = 1e-4,
        beta: float = 0.75,
        alpha_convention: str = "tensorflow",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(depth_radius, bool) or not isinstance(depth_radius, int) or depth_radius < 0:
            raise ValueError(
                f"`depth_radius` must be an integer >= 0 (the window spans 2 * depth_radius + 1 "
                f"channels), got {depth_radius!r}."
            )
        self.depth_radius = depth_radius
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.alpha_convention = check_choice(
            alpha_convention, ALPHA_CONVENTIONS, "alpha_convention"
        )

    @property
    def window_size(self) -> int:
        """The number of channels in the window, `2 * depth_radius + 1` (PyTorch's `size`)."""
        return 2 * self.depth_radius + 1

    def build(self, input_shape):
        input_shape = tuple(tf.TensorShape(input_shape).as_list())
        if len(input_shape) < 2:
            raise ValueError(
                f"Layer '{self.name}' expects an input of rank >= 2 (batch, ..., channels), "
                f"got shape {input_shape} ({len(input_shape)}D)."
            )
        if input_shape[-1] is None:
            raise ValueError(
                f"Layer '{self.name}' needs a known number of channels (last axis), "
                f"got input shape {input_shape}."
            )
        self._channels = input_shape[-1]
        self.built = True

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        x = tf.cast(inputs, compute_float_dtype(inputs.dtype))
        squares = tf.square(x)
        r, channels = self.depth_radius, self._channels
        if r > 0:
            rank = len(x.shape)
            padded = tf.pad(squares, [[0, 0]] * (rank - 1) + [[r, r]])
            window_sum = tf.add_n([padded[..., i : i + channels] for i in range(2 * r + 1)])
        else:
            window_sum = squares
        scale = self.alpha
        if self.alpha_convention == "pytorch":
            scale = self.alpha / self.window_size
        outputs = x / tf.pow(self.bias + scale * window_sum, self.beta)
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "depth_radius": self.depth_radius,
                "bias": self.bias,
                "alpha": self.alpha,
                "beta": self.beta,
                "alpha_convention": self.alpha_convention,
            }
        )
        return config
