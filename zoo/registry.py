"""The model registry: every builder in the zoo, by name, with its defaults and provenance.

A family module decorates its builder with `register_model(...)`; users and the other
packages (training, export) only ever call `create_model(name, ...)`, so a new model becomes
available everywhere the moment its module is imported by `zoo/__init__.py`.

Every registered builder has the signature

    builder(input_shape: tuple[int, int, int], num_classes: int, **overrides) -> tf.keras.Model

and returns a model that takes RAW pixel values (float32 in [0, 255], channels last) and
normalizes them itself in its first layer (see `normalization_layer`). Classification models
return logits; reconstruction models return an image of the input's shape.

Example:

>>> from zoo import create_model, get_model_info, list_models
>>> list_models("lenet*")
['lenet5', 'lenet5_modern']
>>> model = create_model("lenet5", num_classes=10)
>>> model.output_shape
(None, 10)
>>> get_model_info("alexnet").input_shape
(227, 227, 3)
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tensorflow as tf

__all__ = [
    "TASKS",
    "ModelInfo",
    "create_model",
    "forwards_keywords_of",
    "get_model_info",
    "list_models",
    "normalization_layer",
    "register_model",
]

TASKS = ("classification", "reconstruction")


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model.

    Attributes:
        name: the registry name (`create_model(name)`).
        builder: `builder(input_shape, num_classes, **overrides) -> tf.keras.Model`.
        input_shape: the default per-example input shape `(H, W, C)`.
        num_classes: the default number of classes (outputs of the classifier).
        mean: per-channel mean of the training data, on pixels scaled to [0, 1].
        std: per-channel standard deviation, on pixels scaled to [0, 1].
        paper: the citation the architecture follows.
        task: "classification" (logits out) or "reconstruction" (target = input).
    """

    name: str
    builder: Callable[..., tf.keras.Model]
    input_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    paper: str
    task: str = "classification"


_REGISTRY: dict[str, ModelInfo] = {}


def _check_input_shape(input_shape: Sequence[int], name: str) -> tuple[int, int, int]:
    shape = tuple(input_shape) if isinstance(input_shape, Sequence) else None
    if (
        shape is None
        or len(shape) != 3
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
    ):
        raise ValueError(
            f"`input_shape` of '{name}' must be (height, width, channels) with positive "
            f"integers, got {input_shape!r}."
        )
    return shape


def _check_num_classes(num_classes: int, name: str) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"`num_classes` of '{name}' must be a positive integer, got {num_classes!r}."
        )
    return num_classes


def register_model(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    paper: str,
    task: str = "classification",
) -> Callable[[Callable[..., tf.keras.Model]], Callable[..., tf.keras.Model]]:
    """Class-less decorator that registers a model builder under its function name.

    Args:
        input_shape: default `(H, W, C)`.
        num_classes: default number of classes.
        mean: per-channel mean on [0, 1] pixels (one value per channel of `input_shape`).
        std: per-channel standard deviation on [0, 1] pixels.
        paper: citation of the architecture.
        task: "classification" or "reconstruction".

    Returns:
        The decorator; it returns the builder unchanged.

    Raises:
        ValueError: on a duplicate name, a bad task or inconsistent mean/std.
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}, got {task!r}.")
    if len(mean) != len(std) or any(s <= 0 for s in std):
        raise ValueError(
            f"`mean` and `std` must have one value per channel and a positive std, "
            f"got mean={mean!r}, std={std!r}."
        )

    def decorator(builder: Callable[..., tf.keras.Model]) -> Callable[..., tf.keras.Model]:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"A model named '{name}' is already registered.")
        _REGISTRY[name] = ModelInfo(
            name=name,
            builder=builder,
            input_shape=_check_input_shape(input_shape, name),
            num_classes=_check_num_classes(num_classes, name),
            mean=tuple(float(m) for m in mean),
            std=tuple(float(s) for s in std),
            paper=paper,
            task=task,
        )
        return builder

    return decorator


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Sorted names of the registered models matching a shell-style `pattern`; with
    `pretrained=True`, only those the package ships trained weights for (as timm's)."""
    names = sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))
    if pretrained:
        from zoo.pretrained import list_pretrained

        trained = {tag.partition(":")[0] for tag in list_pretrained(pattern)}
        names = [name for name in names if name in trained]
    return names


def get_model_info(name: str) -> ModelInfo:
    """The `ModelInfo` of `name`; `ValueError` listing the known names if there is none."""
    if name not in _REGISTRY:
        known = list_models()
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Known models: {', '.join(known)}.")
    return _REGISTRY[name]


def create_model(
    name: str,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    pretrained: bool | str | os.PathLike = False,
    **overrides,
) -> tf.keras.Model:
    """Builds the registered model `name`, optionally with trained weights.

    Args:
        name: a name from `list_models()`.
        num_classes: number of classes; the model's (or the weights') default when None.
            Ignored for reconstruction models except that it must still be a positive
            integer if given.
        input_shape: per-example `(H, W, C)`; the model's (or the weights') default when None.
        pretrained: False for random weights; True for the model's default shipped weights;
            a data set name (`"fashion_mnist"`, see `list_pretrained()`) for the weights
            trained on it, whose builder options and normalization come with them; or a path
            to your own `.weights.h5`, `.keras` or `.npz` file.
        **overrides: builder-specific keyword arguments (e.g. `dropout_rate=0.3`); the
            normalization can be overridden with `mean=` and `std=`.

    Returns:
        An uncompiled `tf.keras.Model` taking raw pixels in [0, 255].

    Raises:
        ValueError: unknown name, `num_classes < 1`, malformed `input_shape`, an input
            the architecture cannot process (the message names the minimum), no such
            pretrained weights (the message lists what exists), a corrupt weights file, or
            weights that do not fit the requested `num_classes`/`input_shape`.
        FileNotFoundError: a `pretrained` path, or a shipped weights file, that is missing.
    """
    info = get_model_info(name)
    weights_path, manifest = None, None
    if pretrained is not False and pretrained is not None:
        from zoo.pretrained import build_options, resolve_pretrained

        weights_path, manifest = resolve_pretrained(name, pretrained)
    if manifest is not None:
        trained_classes, input_shape, overrides = build_options(
            manifest, num_classes, input_shape, overrides
        )
        num_classes = num_classes if info.task != "classification" else trained_classes
    num_classes = info.num_classes if num_classes is None else num_classes
    input_shape = info.input_shape if input_shape is None else input_shape
    overrides.setdefault("mean", info.mean)
    overrides.setdefault("std", info.std)
    model = info.builder(
        input_shape=_check_input_shape(input_shape, name),
        num_classes=_check_num_classes(num_classes, name),
        **overrides,
    )
    if weights_path is not None:
        from zoo.pretrained import load_weights_into

        load_weights_into(model, weights_path)
    return model


def forwards_keywords_of(builder: Callable, *, fixed: Sequence[str] = ()) -> Callable:
    """Decorator: a variant that passes `**overrides` on to `builder` declares, in its
    signature, the keyword-only parameters of `builder` it forwards (all but `fixed`, the ones
    the variant sets itself).

    `inspect.signature(variant)` then lists every keyword `create_model` accepts for it, with
    its annotation and default, as it would for a builder written out in full: `python -m zoo
    NAME` prints them and `python -m training --model-options` checks against them.

    Args:
        builder: the function the variant calls with `**overrides`.
        fixed: `builder`'s keywords the variant sets itself (not options of the variant).

    Example:

    >>> @forwards_keywords_of(build_alexnet, fixed=("towers",))
    ... def alexnet(input_shape, num_classes, **overrides): ...
    """

    def decorate(variant: Callable) -> Callable:
        own = inspect.signature(variant)
        kept = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
        names = {p.name for p in kept} | set(fixed)
        forwarded = [
            p
            for p in inspect.signature(builder).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in names
        ]
        variant.__signature__ = own.replace(parameters=kept + forwarded)
        return variant

    return decorate


def normalization_layer(
    mean: Sequence[float], std: Sequence[float], channels: int, name: str = "normalize"
) -> tf.keras.layers.Rescaling:
    """The first layer of every zoo model: `(x / 255 - mean) / std`, per channel.

    Written as `x * scale + offset` with `scale = 1 / (255 std)` and `offset = -mean / std`,
    a `Rescaling` layer with no weights (so parameter counts stay the paper's) that both
    Keras worlds, TFLite and ONNX accept. It is what lets a quantized model take raw pixels.

    Args:
        mean: per-channel mean on [0, 1] pixels; one value, or one per channel.
        std: per-channel standard deviation on [0, 1] pixels, same length as `mean`.
        channels: the number of input channels. A 3-value mean/std on a 1-channel input
            (e.g. AlexNet on grayscale Fashion-MNIST) is averaged to one value.
        name: the layer name.

    Returns:
        A `tf.keras.layers.Rescaling` layer.
    """
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != len(std) or not mean or any(s <= 0 for s in std):
        raise ValueError(
            f"`mean` and `std` must be non-empty, of equal length, with std > 0; "
            f"got mean={mean!r}, std={std!r}."
        )
    if len(mean) != channels:
        if channels == 1:
            mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
        elif len(mean) == 1:
            mean, std = mean * channels, std * channels
        else:
            raise ValueError(
                f"`mean`/`std` have {len(mean)} values but the input has {channels} channels; "
                f"give 1 or {channels} values."
            )
    scale = [1.0 / (255.0 * s) for s in std]
    offset = [-m / s for m, s in zip(mean, std, strict=True)]
    if channels == 1:
        return tf.keras.layers.Rescaling(scale=scale[0], offset=offset[0], name=name)
    return tf.keras.layers.Rescaling(scale=scale, offset=offset, name=name)
