"""Points in time as the catalog takes them: epoch seconds, or ISO 8601 text.

Timestamps are stored as epoch seconds (pydtk's ``start_timestamp``/``end_timestamp``). People
type ISO times; an ISO time without a zone is taken as UTC, so a query means the same on every
machine.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from framefleet.errors import QueryError

TimeLike = float | int | str | datetime


def to_epoch_seconds(value: TimeLike, *, name: str = "time") -> float:
    """``value`` as epoch seconds.

    Args:
        value: epoch seconds (a number, or text such as ``"1489728491.5"``), an ISO 8601 string
            (``"2017-03-17T05:28:11Z"``; no zone means UTC) or a `datetime` (naive means UTC).
        name: what the value is, for the error message.

    Raises:
        QueryError: the value is neither.
    """
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            return moment.timestamp()
        except (OverflowError, ValueError, OSError) as e:  # e.g. year 1 with a positive offset
            raise QueryError(f"{name} {_shown(value)} is out of range: {e}") from None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise QueryError(f"{name} must be epoch seconds or an ISO time, got {_shown(value)}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond any float
            raise QueryError(
                f"{name} must be a finite number of seconds, got an integer of "
                f"{len(str(abs(value)))} digits"
            ) from None
    else:
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as e:
                raise QueryError(
                    f"{name} {_shown(value)} is neither epoch seconds nor an ISO time "
                    "(e.g. 1489728491 or 2017-03-17T05:28:11Z)"
                ) from e
            return to_epoch_seconds(moment, name=name)
    if not math.isfinite(seconds):
        raise QueryError(f"{name} must be a finite number of seconds, got {_shown(value)}")
    return seconds


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
