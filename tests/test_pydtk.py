"""pydtk's conventions: names, and the one strict camera-CSV parser (catalog and media share it)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import framefleet.pydtk as pydtk
from framefleet.errors import TimestampsError
from framefleet.media.timing import parse_timestamps_csv, read_timestamps_csv
from framefleet.pydtk import (
    MAX_EPOCH_MS,
    is_timestamps_csv_name,
    is_video_name,
    parse_camera_times_ms,
    read_camera_times_ms,
    sidecar_for,
    timestamps_csv_for,
    timestamps_csv_name,
)


def test_names() -> None:
    assert timestamps_csv_name("camera_01.mp4") == "camera_01_timestamps.csv"
    assert timestamps_csv_for(PurePosixPath("r/d/cam.MOV")) == PurePosixPath(
        "r/d/cam_timestamps.csv"
    )
    assert sidecar_for(Path("/d/cam.mp4")) == Path("/d/cam.mp4.json")
    assert is_timestamps_csv_name("/d/camera_01_timestamps.csv")
    assert not is_timestamps_csv_name("/d/camera_01.csv")
    assert [is_video_name(n) for n in ("a.MP4", "b.hevc", "c.ts", "d.json", "mp4")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def _parse(text: str | bytes) -> tuple[int, ...]:
    data = text.encode() if isinstance(text, str) else text
    return parse_camera_times_ms(data, source="/d/cam_timestamps.csv")


def test_the_pydtk_format() -> None:
    assert _parse("1489728491000,24,180971,1\n1489728491033,180995,35166,0\n") == (
        1489728491000,
        1489728491033,
    )
    assert _parse('\ufeff10,1\r\n\n 20 ,2\r\n20.000\n"30",3') == (10, 20, 20, 30)
    assert _parse("5\n") == (5,)  # one frame


REFUSED = [
    ("1e1000000000\n", r"row 1: '1e1000000000' is not an epoch time in milliseconds \(expected"),
    ("0\n1e5000\n", r"row 2: '1e5000' is not an epoch time"),
    ("inf\n", r"row 1: 'inf' is not an epoch time"),
    ("0\nnan\n", r"row 2: 'nan' is not an epoch time"),
    ("0\n-5\n", r"row 2: '-5' is negative: epoch milliseconds are >= 0$"),
    ("1.5,1,2,1\n", r"row 1: '1.5' is not a whole number of milliseconds$"),
    ("1" * 400 + "\n", r"row 1: '1{40}\.\.\.' has more than 16 digits: not epoch milliseconds$"),
    ("9999999999999999\n", r"row 1: 9999999999999999 ms is after the year 9999"),
    ("100,1,2,1\n50,1,2,0\n", r"row 2: time 50 ms goes back from 100 ms; rows must be in frame"),
    ("7\n7\n7\n", r"all 3 rows have the same time 7 ms; a camera clock advances"),
    ("\n\n", r"timestamps CSV '/d/cam_timestamps.csv' has no rows$"),
    ("\u0661\n", r"row 1: '\u0661' is not an epoch time"),
    ("0\n1\x002\n", r"row 2: '1\\x002' is not an epoch time"),
    (b"0\n1\n\xff\xfe", r"row 3: not UTF-8 text \(byte 0xff at offset 4\)$"),
    ("epoch_ms,offset\n1,2\n", r"row 1: 'epoch_ms' is not an epoch time"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_refused_rows_name_the_file_and_the_row(text: str | bytes, message: str) -> None:
    with pytest.raises(TimestampsError, match=message) as info:
        _parse(text)
    assert str(info.value).startswith(("'/d/cam_timestamps.csv' row ", "timestamps CSV '/d/"))
    assert "\n" not in str(info.value)


_fields = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats().map(repr),
    st.sampled_from(["inf", "-inf", "nan", "1e1000000000", "1e5000", "1.0", "1.50", "", '"1"']),
    st.text(max_size=8),
)
_rows = st.lists(st.lists(_fields, min_size=1, max_size=4).map(",".join), max_size=20)


def _outcome(data: bytes) -> tuple[int, ...] | TimestampsError:
    try:
        return _parse(data)
    except TimestampsError as e:
        return e


def _is_one_line_error(error: TimestampsError) -> bool:
    message = str(error)
    return "\n" not in message and "\r" not in message and "cam_timestamps.csv" in message


@given(rows=_rows, newline=st.sampled_from(["\n", "\r\n"]))
@settings(max_examples=300, deadline=None)
def test_any_rows_give_times_or_one_line_error(rows: list[str], newline: str) -> None:
    outcome = _outcome(newline.join(rows).encode("utf-8", "surrogatepass"))
    if isinstance(outcome, TimestampsError):
        assert _is_one_line_error(outcome), str(outcome)
        assert len(str(outcome)) < 400
        return
    assert outcome and list(outcome) == sorted(outcome)
    assert all(0 <= t < MAX_EPOCH_MS for t in outcome)
    assert len(outcome) == 1 or outcome[0] != outcome[-1]


@given(data=st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_any_bytes_give_times_or_one_line_error(data: bytes) -> None:
    outcome = _outcome(data)
    assert not isinstance(outcome, TimestampsError) or _is_one_line_error(outcome), str(outcome)


_clocks = st.lists(st.integers(min_value=0, max_value=MAX_EPOCH_MS - 1), min_size=2).map(sorted)


@given(times=_clocks)
@settings(max_examples=100, deadline=None)
def test_valid_clocks_round_trip(times: list[int]) -> None:
    text = "".join(f"{t},{i},1,0\n" for i, t in enumerate(times))
    if times[0] == times[-1]:
        with pytest.raises(TimestampsError, match="have the same time"):
            _parse(text)
    else:
        assert _parse(text) == tuple(times)


def test_reading_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TimestampsError, match=r"^timestamps CSV not found: '.*missing.csv'$"):
        read_camera_times_ms(tmp_path / "missing.csv")
    with pytest.raises(TimestampsError, match=r"^cannot read timestamps CSV '.*': Is a directory$"):
        read_camera_times_ms(tmp_path)
    with pytest.raises(TimestampsError, match=r"cannot read timestamps CSV .*embedded null byte"):
        read_camera_times_ms("a\x00b.csv")
    big = tmp_path / "big.csv"
    big.write_text("1\n" * 100)
    monkeypatch.setattr(pydtk, "MAX_CSV_BYTES", 64)
    with pytest.raises(TimestampsError, match=r"is larger than 64 bytes: not a camera clock$"):
        read_camera_times_ms(big)


def test_media_reads_through_the_same_parser(tmp_path: Path) -> None:
    csv = tmp_path / "cam_timestamps.csv"
    csv.write_text("1489728491000,1,1,1\n1e1000000000,1,1,0\n")  # used to hang (Fraction)
    with pytest.raises(TimestampsError, match=r"row 2: '1e1000000000' is not an epoch time"):
        parse_timestamps_csv(csv)
    csv.write_text("5\n5\n")
    with pytest.raises(TimestampsError, match=r"all 2 rows have the same time 5 ms"):
        read_timestamps_csv(csv)
    csv.write_text("1489728491000,1,1,1\n1489728491033,1,1,0\n")
    clock = read_timestamps_csv(csv)
    assert clock.epoch_ms == (1489728491000, 1489728491033)
    assert read_timestamps_csv(csv) is clock  # cached while the file is unchanged
