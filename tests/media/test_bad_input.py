"""Bad input: a clear FramefleetError (exit != 0 and one readable line on the CLI), nothing lost."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from framefleet.cli import main
from framefleet.errors import (
    ConfigError,
    FramefleetError,
    InvalidVideoError,
    OutputError,
    TimestampsError,
    TruncatedVideoError,
    VideoNotFoundError,
)
from framefleet.media.pipeline import process_segment
from framefleet.media.specs import OutputSpec, SegmentSpec
from tests.clips import ClipSpec, make_clip, write_timestamps_csv


def _spec(video: Path, out: Path, **kw: object) -> SegmentSpec:
    output = OutputSpec(out_dir=str(out))
    return SegmentSpec(video_path=str(video), record_id="r", output=output, **kw)  # type: ignore[arg-type]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=8000)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 8000, i * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda d: d / "nope.mp4", VideoNotFoundError, "video not found"),
        (lambda d: _write(d / "empty.mp4", b""), InvalidVideoError, r"empty \(0 bytes\)"),
        (
            lambda d: _write(d / "text.mp4", b"hello, not a video\n" * 50),
            InvalidVideoError,
            "not a video container",
        ),
        (
            lambda d: _audio_only(d / "audio.mp4"),
            InvalidVideoError,
            r"no video stream \(streams: audio\)",
        ),
    ],
    ids=["missing", "zero-bytes", "text", "audio-only"],
)
def test_unreadable_videos(tmp_path: Path, make, error: type[Exception], match: str) -> None:
    video = make(tmp_path)
    with pytest.raises(error, match=match):
        process_segment(_spec(video, tmp_path / "out"))
    result = CliRunner().invoke(main, ["extract-file", str(video), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output


def test_truncated_mp4_keeps_frames_before_the_cut(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mp4", ClipSpec(frames=150, gop=15, faststart=True))
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out"
    with pytest.raises(TruncatedVideoError, match=r"truncated .* stopped at \d+\.\d+ s"):
        process_segment(_spec(cut, out))
    images = sorted(out.rglob("*.jpg"))
    assert len(images) >= 4, "frames before the cut must be written"
    for image in images:
        with Image.open(image) as decoded:
            decoded.load()
    assert not list(out.rglob("*.jsonl")), "an incomplete segment must not get a manifest"
    # A segment wholly before the cut is complete and normal.
    result = process_segment(_spec(cut, out, end_seconds=1.0))
    assert result.images_written == 2 and Path(result.manifest_path).is_file()
    cli = CliRunner().invoke(main, ["extract-file", str(cut), "--out", str(tmp_path / "o2")])
    assert cli.exit_code == 1 and "images written" in cli.output


def test_moov_less_cut_is_a_clear_error(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mp4", ClipSpec(frames=60))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:5000])
    with pytest.raises(InvalidVideoError, match="cut before its index was written"):
        process_segment(_spec(cut, tmp_path / "out"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"start_seconds": 5.0, "end_seconds": 5.0},
            r"segment end \(5.0\) must be finite and after its start",
        ),
        (
            {"start_seconds": 5.0, "end_seconds": 2.0},
            r"segment end \(2.0\) must be finite and after its start",
        ),
        ({"start_seconds": -1.0}, "segment start must be >= 0"),
    ],
)
def test_bad_ranges(tmp_path: Path, kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _spec(tmp_path / "v.mp4", tmp_path, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_fps": "0"}, "fps must be between"),
        ({"target_fps": "-2"}, "fps must be a number"),
        ({"resize_rate": 0.0}, r"--resize \(resize_rate\) must be > 0"),
        ({"resize_rate": -0.5}, r"--resize \(resize_rate\) must be > 0"),
        ({"max_side_px": 0}, "max_side_px must be a whole number"),
        ({"resize_rate": 0.5, "max_side_px": 100}, "choose one way to resize"),
        ({"quality": 0}, "quality must be a whole number in 1..100"),
        ({"name_template": "{record_id}.{ext}"}, "must contain {timestamp}"),
        ({"name_template": "{nope}-{timestamp}"}, r"uses \{nope\}: only plain fields"),
        ({"mode": "fast"}, "mode must be one of exact, keyframes"),
    ],
)
def test_bad_output_options(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        OutputSpec(out_dir=str(tmp_path), **kwargs)  # type: ignore[arg-type]


def test_cli_bad_options_are_one_line(tmp_path: Path, clip_factory) -> None:
    video = clip_factory(frames=10)
    for args in (["--fps", "0"], ["--resize", "0"], ["--start", "3", "--end", "1"]):
        result = CliRunner().invoke(
            main, ["extract-file", str(video), "--out", str(tmp_path), *args]
        )
        assert result.exit_code in (1, 2), result.output
        assert result.output.startswith("error: ") and result.output.count("\n") == 1


def test_unwritable_output_dir(tmp_path: Path, clip_factory) -> None:
    video = clip_factory(frames=10)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"cannot create output directory .* another --out"):
        process_segment(_spec(video, blocker / "out"))


def test_timestamps_csv_with_wrong_row_count(tmp_path: Path, clip_factory) -> None:
    video = clip_factory("cam.mp4", frames=30)
    csv = write_timestamps_csv(tmp_path / "cam_timestamps.csv", list(range(0, 29 * 33, 33)))
    with pytest.raises(TimestampsError, match=r"has 29 rows but video .* has 30 frames"):
        process_segment(_spec(video, tmp_path / "out", timestamps_path=str(csv)))
    assert not (tmp_path / "out" / "r").exists()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0,1,2,1\nabc,1,2,0\n", "row 2: 'abc' is not an epoch time"),
        ("100,1,2,1\n50,1,2,0\n", "row 2: time 50 ms goes back from 100 ms"),
        ("1.5,1,2,1\n", "not a whole number of milliseconds"),
        ("\n\n", "has no rows"),
    ],
)
def test_garbage_timestamp_rows(tmp_path: Path, clip_factory, text: str, match: str) -> None:
    video = clip_factory("cam.mp4", frames=2)
    csv = tmp_path / "cam_timestamps.csv"
    csv.write_text(text)
    with pytest.raises(TimestampsError, match=match):
        process_segment(_spec(video, tmp_path / "out", timestamps_path=str(csv)))


def test_every_error_is_a_framefleet_error() -> None:
    for error in (VideoNotFoundError, InvalidVideoError, TimestampsError, OutputError, ConfigError):
        assert issubclass(error, FramefleetError)
