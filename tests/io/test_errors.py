"""An exception as a user reads it: its first line, whatever the message holds."""

import pytest

from cyclegan_hub.io.errors import first_line


@pytest.mark.parametrize(
    "err, expected",
    [
        (ValueError("a.png is truncated\ntraceback detail"), "a.png is truncated"),
        (ValueError(""), "ValueError"),
        (OSError("\n\n  the disk is full  \nmore"), "the disk is full"),
        (KeyError(), "KeyError"),
        ("plain text\nsecond", "plain text"),
        ("", "error"),
    ],
)
def test_the_first_line_is_never_empty(err, expected):
    assert first_line(err) == expected


def test_the_first_line_is_cut_at_the_limit():
    assert first_line(RuntimeError("x" * 500), 160) == "x" * 160
