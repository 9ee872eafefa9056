"""convzoo layers: Keras layers written from scratch in TensorFlow ops, and conv arithmetic.

Every layer subclasses `tf.keras.layers.Layer`, so the same code runs in Keras 3 and in the
legacy tf_keras world (DESIGN.md), is registered for `.keras` loading under the package
"convzoo", and converts to TFLite built-in ops and to ONNX.

>>> from layers import Conv2D, BatchNorm, ConvTranspose2D
"""

from layers._native_logs import import_tensorflow_quietly

import_tensorflow_quietly()

from layers import arithmetic  # noqa: E402
from layers.batch_norm import BatchNorm  # noqa: E402
from layers.conv_transpose import ConvTranspose1D, ConvTranspose2D, ConvTranspose3D  # noqa: E402
from layers.convolution import Conv1D, Conv2D, Conv3D  # noqa: E402
from layers.group_norm import GroupNorm  # noqa: E402
from layers.instance_norm import InstanceNorm  # noqa: E402
from layers.layer_norm import LayerNorm  # noqa: E402
from layers.local_response_norm import LocalResponseNorm  # noqa: E402
from layers.padding import PADDING_MODES, pad_spatial  # noqa: E402
from layers.pooling import AvgPool1D, AvgPool2D, AvgPool3D, MaxPool1D, MaxPool2D, MaxPool3D  # noqa: E402
from layers.rep_conv import RepConv2D  # noqa: E402
from layers.resize import Resize  # noqa: E402

__all__ = [
    "PADDING_MODES",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BatchNorm",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "ConvTranspose1D",
    "ConvTranspose2D",
    "ConvTranspose3D",
    "GroupNorm",
    "InstanceNorm",
    "LayerNorm",
    "LocalResponseNorm",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "RepConv2D",
    "Resize",
    "arithmetic",
    "pad_spatial",
]
