"""Building the zoo model a run trains, with the run's flags checked against its builder.

`--model-options KEY=VALUE` are checked against the builder's signature before it is called:
an unknown keyword is named with the closest accepted one and the full list, a value of the
wrong type with the type the builder declares and its default.

Example:

>>> model = build_model("lenet5_modern", 10, None, {}, sync_bn=True)
>>> check_model_options("lenet5_modern", {"dropout_rate": "abc"})  # doctest: +SKIP
ValueError: --model-options dropout_rate='abc': model 'lenet5_modern' expects a float ...
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Callable
from typing import Any

import tensorflow as tf

__all__ = ["build_model", "builder_keywords", "check_model_options"]

# Given by `create_model` itself, not model options.
_POSITIONAL = ("input_shape", "num_classes")
_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _create(name, num_classes, input_shape, overrides):
    from zoo import create_model

    try:
        return create_model(name, num_classes=num_classes, input_shape=input_shape, **overrides)
    except TypeError as e:
        raise ValueError(
            f"model {name!r} rejected --model-options {overrides} ({e}); see `python -m zoo` "
            f"for its builder's keywords"
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
    check_model_options(name, overrides)
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


def check_model_options(name: str, options: dict[str, Any]) -> None:
    """Checks builder keyword overrides against the builder of model `name`.

    Args:
        name: a zoo model name.
        options: the keyword overrides (`{"dropout_rate": 0.3}`).

    Raises:
        ValueError: a keyword the builder does not take (the message names the closest
            accepted one and all of them), or a value that does not match the builder's type
            annotation (the message names the type and the default).
    """
    accepted = builder_keywords(name)
    if accepted is None:
        return  # a builder forwarding **kwargs where they cannot be followed: it decides
    for key, value in options.items():
        if key not in accepted:
            close = difflib.get_close_matches(key, list(accepted), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"--model-options {key}={value!r}: model {name!r} has no option {key!r}{hint}; "
                f"accepted: {', '.join(sorted(accepted))}"
            )
        parameter = accepted[key]
        annotation = _annotation_text(parameter.annotation)
        if annotation and not _matches(value, annotation):
            raise ValueError(
                f"--model-options {key}={value!r}: model {name!r} expects {key} to be "
                f"{annotation}{_default_text(key, parameter.default)}, got "
                f"{type(value).__name__} {value!r}"
            )


def builder_keywords(name: str) -> dict[str, inspect.Parameter] | None:
    """The keywords model `name`'s builder accepts, by name, with their annotations and
    defaults, as its signature declares them (variants that forward `**overrides` declare what
    they forward with `zoo.registry.forwards_keywords_of`); None if it takes any `**kwargs`."""
    from zoo import get_model_info

    parameters = inspect.signature(get_model_info(name).builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return {
        k: p for k, p in parameters.items() if p.kind in _KEYWORD_KINDS and k not in _POSITIONAL
    }


def _annotation_text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _default_text(key: str, default: Any) -> str:
    """` (default: (0.286,), as KEY=VALUE: mean=[0.286])`: the value in the CLI's JSON form
    where it is spelled differently."""
    if default is inspect.Parameter.empty:
        return ""
    try:
        spelled = json.dumps(default)
    except TypeError:
        spelled = repr(default)
    example = f", as KEY=VALUE: {key}={spelled}" if spelled != repr(default) else ""
    return f" (default: {default!r}{example})"


def _split_top_level(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside brackets: `"int | tuple[int, int]"` -> 2 parts."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == separator and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


_SCALARS: dict[str, Callable[[Any], bool]] = {
    "None": lambda v: v is None,
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
}
_SEQUENCES = ("Sequence", "list", "tuple", "typing.Sequence", "collections.abc.Sequence")


def _matches(value: Any, annotation: str) -> bool:
    """Whether `value` fits a type annotation written as text (`float`, `int | None`,
    `Sequence[float]`, `tuple[int, int]`); annotations it cannot read accept any value."""
    return any(_matches_one(value, a) for a in _split_top_level(annotation, "|"))


def _matches_one(value: Any, annotation: str) -> bool:
    if annotation in _SCALARS:
        return _SCALARS[annotation](value)
    base, bracket, rest = annotation.partition("[")
    if base.strip() not in _SEQUENCES:
        return True  # an annotation this does not read: the builder checks the value
    if not isinstance(value, list | tuple):
        return False
    if not bracket:
        return True
    items = _split_top_level(rest.rstrip().removesuffix("]"), ",")
    if base.strip() == "tuple" and items[-1] != "...":
        return len(value) == len(items) and all(
            _matches(v, a) for v, a in zip(value, items, strict=True)
        )
    return all(_matches(v, items[0]) for v in value)


def _builder_takes(name: str, keyword: str) -> bool:
    from zoo import get_model_info

    return keyword in inspect.signature(get_model_info(name).builder).parameters


def _models_taking(keyword: str) -> list[str]:
    from zoo import list_models

    return [name for name in list_models() if _builder_takes(name, keyword)]
