"""Building the zoo model a run trains, with the run's flags checked against its builder.

Example:

>>> model = build_model("lenet5_modern", 10, None, {}, sync_bn=True)
"""

from __future__ import annotations

import inspect
from typing import Any

import tensorflow as tf

__all__ = ["build_model"]


def _create(name, num_classes, input_shape, overrides):
    from zoo import create_model

    try:
        return create_model(name, num_classes=num_classes, input_shape=input_shape, **overrides)
    except TypeError as e:
        raise ValueError(
            f"model {name!r} does not accept the option(s) {sorted(overrides)} ({e}); see "
            f"`python -m zoo` for its builder's keywords"
        ) from e


def build_model(
    name: str,
    num_classes: int,
    input_shape: tuple[int, int, int] | None,
    overrides: dict[str, Any],
    sync_bn: bool,
    reparam: bool = False,
) -> tf.keras.Model:
    """`create_model`; with `sync_bn` the builder gets `synchronized=True`, which makes every
    BatchNorm compute its moments across replicas (lenet5_modern and alexnet_bn take it); with
    `reparam` it gets `reparam=True`, the re-parameterized training form (lenet5_modern)."""
    flags = {}
    for wanted, keyword, flag, what in (
        (sync_bn, "synchronized", "--sync-bn", "has no BatchNorm layer to synchronize"),
        (reparam, "reparam", "--reparam", "has no re-parameterized training form"),
    ):
        if not wanted:
            continue
        if not _builder_takes(name, keyword):
            raise ValueError(
                f"{flag}: model {name!r} {what}; drop the flag or use a model that takes it "
                f"({', '.join(_models_taking(keyword))})"
            )
        flags[keyword] = True
    return _create(name, num_classes, input_shape, {**overrides, **flags})


def _builder_takes(name: str, keyword: str) -> bool:
    from zoo import get_model_info

    return keyword in inspect.signature(get_model_info(name).builder).parameters


def _models_taking(keyword: str) -> list[str]:
    from zoo import list_models

    return [name for name in list_models() if _builder_takes(name, keyword)]
