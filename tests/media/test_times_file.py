"""The stored requested times (``{out}/_times/<digest>.txt``): a damaged file is an OutputError
naming it, never a traceback and never other times than its digest stands for; storing the
times again repairs it."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from framefleet.errors import OutputError
from framefleet.media.attimes import load_requested_times, store_requested_times

TIMES = [Decimal("1489728491.25"), Decimal("1489728492"), Decimal("1489728493.125")]


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe1489728491.25\n",  # not ASCII
        b"1489728491.25\n1489728492\n1489728493.5\n",  # other times
        b"1489728491.25\n",  # cut
        b"",
        b"not a number\n",
    ],
)
def test_a_damaged_times_file_is_an_output_error_naming_it(tmp_path: Path, content: bytes):
    digest = store_requested_times(tmp_path, TIMES)
    stored = tmp_path / "_times" / f"{digest}.txt"
    stored.write_bytes(content)
    damaged = rf"{digest}\.txt' is damaged \(its content does not match its digest\); plan the job"
    with pytest.raises(OutputError, match=damaged):
        load_requested_times(tmp_path, digest)

    assert store_requested_times(tmp_path, TIMES) == digest  # planning again writes it anew
    assert load_requested_times(tmp_path, digest) == tuple(Fraction(t) for t in TIMES)


def test_an_unreadable_times_file_is_an_output_error(tmp_path: Path) -> None:
    digest = store_requested_times(tmp_path, TIMES)
    stored = tmp_path / "_times" / f"{digest}.txt"
    stored.unlink()
    stored.mkdir()  # there, but not a file
    with pytest.raises(OutputError, match=r"is damaged \(unreadable"):
        load_requested_times(tmp_path, digest)
