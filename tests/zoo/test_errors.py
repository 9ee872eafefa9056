"""`zoo.errors.first_line`: the one line of an exception a CLI or a report row shows."""

import pytest

from zoo.errors import first_line


@pytest.mark.parametrize(
    "error, expected",
    [
        (ValueError("bad shape\n  at node conv1"), "bad shape"),
        (RuntimeError("\n\n  the message  \nmore"), "the message"),
        (KeyError(), "KeyError"),
        (ValueError("   \n  "), "ValueError"),
    ],
)
def test_first_non_empty_line_or_the_type_name(error, expected):
    assert first_line(error) == expected
