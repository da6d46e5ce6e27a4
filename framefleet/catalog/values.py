"""What the catalog accepts as text and numbers, and how it shows a value it refuses.

Every value written to the catalog fits both backends' columns, so a database never has to refuse
one (and a bad file is reported with the field to fix, not with a driver's error):

- text: valid Unicode (no lone surrogates such as ``"\\ud800"``), no NUL character (PostgreSQL
  refuses them), at most `MAX_NAME_CHARS` characters in a name-like field (``record_id``,
  ``database_id``, a content name, a tag...; their columns are ``VARCHAR(255)``), and no control
  characters there (they would break the one-line logs and listings these names appear in);
  at most `MAX_DESCRIPTION_CHARS` in ``description``; at most `MAX_PATH_CHARS` in a path;
- integers: ``0 <= n <= MAX_INTEGER`` (the columns are 32-bit ``INTEGER`` on PostgreSQL);
- timestamps: epoch seconds in `TIMESTAMP_RANGE` (1970 to the end of the year 9999, so every one
  can be printed as a date);
- other numbers: finite, within the range given per field.

Messages show the refused value shortened and escaped (`show_value`, `show_path`), so that every
error stays one line of reasonable length whatever the input.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

from framefleet.errors import MetadataError

MAX_NAME_CHARS = 255
MAX_DESCRIPTION_CHARS = 65_536
MAX_PATH_CHARS = 4096
MAX_INTEGER = 2**31 - 1
TIMESTAMP_RANGE = (0.0, 253_402_300_800.0)
"""Epoch seconds from 1970-01-01 to 10000-01-01 (exclusive)."""
FREQUENCY_RANGE = (0.0, 1e9)
"""Hz."""
MAX_CONTENTS = 10_000
"""Contents of one file (a rosbag has one per topic)."""
MAX_TAGS = 1000
"""Tags of one content."""
_SHOWN_CHARS = 60
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F))


def text_problem(value: str, *, max_chars: int, name_like: bool = True) -> str | None:
    """Why ``value`` cannot be stored as catalog text, or None when it can."""
    if len(value) > max_chars:
        return f"is {len(value)} characters long (at most {max_chars})"
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return (
                "is not valid Unicode (a lone surrogate such as \\ud800, "
                "or a file name that is not UTF-8)"
            )
    if name_like and not _CONTROL.isdisjoint(value):
        return "contains a control character (a newline, a tab...)"
    return None


def number_problem(value: int | float, low: float, high: float) -> str | None:
    """Why ``value`` is not a finite number in ``[low, high]``, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    if not low <= value <= high:  # exact for integers of any size: no float() that overflows
        return f"is out of range (allowed: {_plain(low)} to {_plain(high)})"
    return None


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() and abs(number) < 1e16 else repr(number)


def show_value(value: object) -> str:
    """A JSON value as a short, single-line text for a message."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**_SHOWN_CHARS:
        digits = str(value)  # at most 4300 digits: json.loads refuses longer ones
        return f"{digits[:20]}... ({len(digits.lstrip('-'))} digits)"
    try:
        text = json.dumps(value)  # escapes newlines, NULs and surrogates: always one line
    except (RecursionError, ValueError):
        return "a deeply nested value"
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def show_path(path: str | os.PathLike[str]) -> str:
    """A path as it appears in messages: as is when printable, else quoted with escapes."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def check_paths(paths: Iterable[tuple[str, Path | None]], where: str) -> None:
    """Paths that the catalog will store: valid Unicode, no NUL, at most `MAX_PATH_CHARS`.

    Raises:
        MetadataError: naming ``where`` and the path.
    """
    for field, path in paths:
        if path is None:
            continue
        problem = text_problem(str(path), max_chars=MAX_PATH_CHARS, name_like=False)
        if problem is not None:
            raise MetadataError(f"{where}: {field} {show_path(path)} {problem}")
