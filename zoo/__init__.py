"""The model zoo: LeNet-5, AlexNet and a convolutional autoencoder, built from `layers`.

Every model takes raw pixels (float32 in [0, 255], channels last), normalizes them in its
first layer, and is built by name:

>>> from zoo import create_model, list_models, summary
>>> list_models()
['alexnet', 'alexnet_bn', 'alexnet_single_tower', 'conv_autoencoder', 'lenet5', 'lenet5_modern']
>>> model = create_model("lenet5", num_classes=10)
>>> trained = create_model("lenet5_modern", pretrained="fashion_mnist")  # shipped weights
"""

import importlib

__all__ = [
    "ModelInfo",
    "create_model",
    "get_model_info",
    "layer_stats",
    "list_models",
    "list_pretrained",
    "plot_model",
    "register_model",
    "summary",
    "weights_manifest",
]

# Where each public name lives (no submodule shares a public name, so importing one never
# shadows a function of the package). The package imports them (and TensorFlow) on first use, so
# `python -m zoo --help` and the shared `zoo.cli` parser answer without loading TensorFlow.
_HOMES = {
    "ModelInfo": "zoo.registry",
    "create_model": "zoo.registry",
    "get_model_info": "zoo.registry",
    "list_models": "zoo.registry",
    "register_model": "zoo.registry",
    "list_pretrained": "zoo.pretrained",
    "weights_manifest": "zoo.pretrained",
    "layer_stats": "zoo.model_summary",
    "plot_model": "zoo.model_plot",
    "summary": "zoo.model_summary",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    importlib.import_module("layers")  # first: imports TensorFlow without its native logs
    for builders in ("zoo.alexnet", "zoo.autoencoder", "zoo.lenet"):
        importlib.import_module(builders)  # importing registers the models
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
