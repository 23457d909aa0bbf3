"""An exception as a user reads it: one line."""

from __future__ import annotations


def first_line(err: BaseException | str, limit: int | None = None) -> str:
    """The first non-empty line of ``err``'s message (at most ``limit`` characters), or the name of its type when
    the message is empty: never an empty string, never an IndexError of its own."""
    text = str(err)
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    if not line:
        line = type(err).__name__ if isinstance(err, BaseException) else "error"
    return line[:limit] if limit else line
