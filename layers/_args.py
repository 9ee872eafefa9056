"""Argument checks shared by the layers: one message style for every bad value.

Every check raises `ValueError` whose message names the argument, the value received and
what would have been accepted, so a user sees at once what to change.
"""

from __future__ import annotations

from collections.abc import Sequence


def normalize_tuple(
    value: int | Sequence[int], rank: int, name: str, *, minimum: int = 1
) -> tuple[int, ...]:
    """Turns an int or a sequence of `rank` ints into a tuple, each at least `minimum`.

    Args:
        value: an int (used for every spatial dimension) or a sequence of `rank` ints.
        rank: number of spatial dimensions (1, 2 or 3).
        name: the argument's name, used in the error message.
        minimum: smallest accepted value (1 for kernel sizes and strides, 0 for output padding).

    Returns:
        A tuple of `rank` ints.

    Raises:
        ValueError: when the value is not of that form or an entry is below `minimum`.
    """
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    accepted = f"{what} or a tuple of {rank} such integers"
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be {accepted}, got {value!r}.")
    if isinstance(value, int):
        values = (value,) * rank
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
        if len(values) != rank or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values
        ):
            raise ValueError(f"`{name}` must be {accepted}, got {value!r}.")
    else:
        raise ValueError(f"`{name}` must be {accepted}, got {value!r}.")
    if any(v < minimum for v in values):
        raise ValueError(f"`{name}` must be {accepted}, got {value!r}.")
    return values


def check_choice(value: str, choices: Sequence[str], name: str) -> str:
    """Returns `value` lower-cased if it is one of `choices`, else raises `ValueError`."""
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}, got {value!r}.")


def check_input_rank(layer_name: str, shape: Sequence, rank: int, layout: str) -> None:
    """Raises `ValueError` unless `shape` has `rank` dimensions (batch included).

    Args:
        layer_name: the layer's name for the message.
        shape: the input shape, batch dimension included.
        rank: the number of dimensions expected.
        layout: a readable layout such as "(batch, height, width, channels)".
    """
    if len(shape) != rank:
        raise ValueError(
            f"Layer '{layer_name}' expects a {rank}D input {layout}, "
            f"got shape {tuple(shape)} ({len(shape)}D)."
        )
