"""Requested times: another sensor's clock, read from a person's file, kept exact for the job.

``--at-times FILE`` takes epoch seconds, one per line, or one column of a CSV named by
``--times-column`` (or ``-``: standard input). They are parsed strictly (plain decimals, no
``inf``, no exponents that would build gigantic numbers), sorted, de-duplicated, and stored
once under the output root as ``{out}/_times/<digest>.txt``: every segment of the job reads the
same exact list from there (a message carries only the digest, never thousands of times), and
the digest is part of the output spec, so other times are another spec.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import re
import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from framefleet.errors import ConfigError, OutputError
from framefleet.media.images import inside, write_atomic
from framefleet.media.naming import TIMES_DIR

MAX_TIMES = 10_000_000
"""More requested times than this is refused (a day at 100 Hz is 8.6 million)."""
MAX_BYTES = 512 * 1024 * 1024
_NUMBER = re.compile(r"[+-]?[0-9]{1,12}(\.[0-9]{1,12})?")
_DIGEST = re.compile(r"[0-9a-f]{16}")


def read_requested_times(source: str, *, column: str | None = None) -> list[Decimal]:
    """Parse a times file (``-``: standard input) into sorted, unique epoch seconds.

    Raises:
        ConfigError: unreadable, empty, a value that is not a plain decimal number (naming the
            line), an unknown column, or too many times.
    """
    where = "standard input" if source == "-" else repr(source)
    try:
        if source == "-":
            text = sys.stdin.read(MAX_BYTES + 1)
        else:
            with open(source, encoding="utf-8") as f:
                text = f.read(MAX_BYTES + 1)
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the requested times from {where}: {e}") from e
    if len(text) > MAX_BYTES:
        raise ConfigError(f"the requested times in {where} are over {MAX_BYTES >> 20} MiB")
    return parse_requested_times(text, column=column, where=where)


def parse_requested_times(
    text: str, *, column: str | None = None, where: str = "the times"
) -> list[Decimal]:
    """Epoch seconds from ``text``: one per line, or the column ``column`` of a CSV (header
    first). Sorted and unique. See `read_requested_times` for the errors."""
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    index = 0
    if column is not None:
        header = next(rows, None)
        names = [name.strip() for name in header or []]
        if column not in names:
            shown = ", ".join(names[:20]) or "none"
            raise ConfigError(f"{where} has no column {column!r} (columns: {shown})")
        index = names.index(column)
    found: set[Decimal] = set()
    for line, row in enumerate(rows, start=2 if column is not None else 1):
        if not row or not "".join(row).strip():
            continue
        raw = row[index].strip() if index < len(row) else ""
        if not _NUMBER.fullmatch(raw):
            hint = "" if column is not None else " (a CSV with a header? name the column)"
            raise ConfigError(
                f"{where} line {line}: {raw[:40]!r} is not epoch seconds such as "
                f"1489728491.25{hint}"
            )
        found.add(Decimal(raw))
        if len(found) > MAX_TIMES:
            raise ConfigError(f"{where} holds more than {MAX_TIMES} requested times")
    if not found:
        raise ConfigError(f"{where} holds no requested times")
    return sorted(found)


def parse_time_values(values: Iterable[float | int | str | Decimal]) -> list[Decimal]:
    """Requested times given as values (a notebook's list), through the same strict parser.

    Raises:
        ConfigError: a value that is not epoch seconds, or none at all.
    """
    if isinstance(values, str | bytes):
        raise ConfigError("requested times must be a sequence of epoch seconds, not one string")
    lines = []
    for t in values:
        if isinstance(t, bool) or not isinstance(t, int | float | str | Decimal):
            raise ConfigError(f"requested times must be epoch seconds, got {t!r}")
        lines.append(format(Decimal(repr(t)), "f") if isinstance(t, float) else str(t))
    return parse_requested_times("\n".join(lines), where="the requested times")


def times_digest(times: Iterable[Decimal]) -> str:
    """The short digest that names a list of requested times (its canonical text's hash)."""
    return hashlib.sha256(_canonical(times)).hexdigest()[:16]


def store_requested_times(root: Path, times: Sequence[Decimal]) -> str:
    """Keep ``times`` under the output root (once per list); returns their digest.

    A file already there with other bytes (damaged, cut) is written again.
    """
    data = _canonical(times)
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = inside(root, f"{TIMES_DIR}/{digest}.txt")
    if not _holds(path, data):
        write_atomic(path, data)
    return digest


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def load_requested_times(root: Path, digest: str) -> tuple[Fraction, ...]:
    """The requested times a job stored under ``root`` (cached per process), exact.

    Raises:
        OutputError: they are not there (a job planned elsewhere, an output root cleaned up),
            or the file does not hold the times its name's digest stands for (damaged).
    """
    if not _DIGEST.fullmatch(digest):
        raise ConfigError(f"requested times digest must be 16 hex digits, got {digest!r}")
    path = inside(root, f"{TIMES_DIR}/{digest}.txt")
    try:
        st = path.stat()
    except OSError as e:
        raise OutputError(
            f"the requested times of this job are not at {path}: plan the job again "
            "(the output root must be the one it was planned with)"
        ) from e
    return _load(str(path), digest, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load(path: str, digest: str, size: int, mtime_ns: int) -> tuple[Fraction, ...]:
    del size, mtime_ns  # part of the cache key only
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise _damaged(path, f"unreadable: {e.strerror or e}") from e
    if hashlib.sha256(data).hexdigest()[:16] != digest:
        raise _damaged(path, "its content does not match its digest")
    try:  # the canonical text, as written: plain decimals, one a line
        return tuple(Fraction(line) for line in data.decode("ascii").splitlines())
    except (UnicodeDecodeError, ValueError, ZeroDivisionError) as e:
        raise _damaged(path, str(e)) from e


def _damaged(path: str, why: str) -> OutputError:
    return OutputError(
        f"the requested times file {path!r} is damaged ({why}); plan the job again to write it anew"
    )


def _canonical(times: Iterable[Decimal]) -> bytes:
    return "".join(f"{t.normalize():f}\n" for t in times).encode("ascii")
