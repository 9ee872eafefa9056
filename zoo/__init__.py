"""The model zoo: LeNet-5, AlexNet and a convolutional autoencoder, built from `layers`.

Every model takes raw pixels (float32 in [0, 255], channels last), normalizes them in its
first layer, and is built by name:

>>> from zoo import create_model, list_models, summary
>>> list_models()
['alexnet', 'alexnet_bn', 'alexnet_single_tower', 'conv_autoencoder', 'lenet5', 'lenet5_modern']
>>> model = create_model("lenet5", num_classes=10)
"""

import layers  # noqa: F401  (first: imports TensorFlow without its native start-up logs)
from zoo import alexnet, autoencoder, lenet  # noqa: F401  (importing registers the models)
from zoo.registry import ModelInfo, create_model, get_model_info, list_models, register_model
from zoo.summary import layer_stats, plot_model, summary

__all__ = [
    "ModelInfo",
    "create_model",
    "get_model_info",
    "layer_stats",
    "list_models",
    "plot_model",
    "register_model",
    "summary",
]
