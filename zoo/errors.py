"""The one line of an exception that a CLI error or a report row shows.

Errors from TensorFlow, Keras and the runtimes often carry a stack of context lines after
the message; the first non-empty line is the message. An exception without a message is
named by its type.

Example:

>>> first_line(ValueError("bad shape\\n  at node conv1"))
'bad shape'
>>> first_line(KeyError())
'KeyError'
"""

from __future__ import annotations

__all__ = ["first_line"]


def first_line(error: BaseException) -> str:
    """The first non-empty line of `str(error)`, or the error's type name when it has none."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
