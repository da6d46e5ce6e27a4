"""Frames at requested times (another sensor's clock), checked against an independent reference:
every frame decoded by plain PyAV, the rule applied by brute force per requested time."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from framefleet import iter_frames, read_frames
from framefleet.cli import main
from framefleet.errors import ConfigError
from framefleet.media.attimes import parse_requested_times, store_requested_times
from framefleet.media.pipeline import process_segment, read_manifest_lines
from framefleet.media.specs import OutputSpec, SegmentSpec
from tests.clips import ClipSpec, make_clip
from tests.media.reference import RefFrame, decode_all

START = Fraction(1000)
"""The recordings start at epoch 1000 s: requested times are epoch seconds."""


class Clip:
    """B-frames and a variable frame rate with a hole: 40 ms, 40 ms, then 200 ms steps; with
    every frame decoded by the reference. (Not a hypothesis argument: no giant reprs.)"""

    def __init__(self, directory: Path) -> None:
        self.path = make_clip(
            directory / "cam.mp4",
            ClipSpec(frames=40, gop=10, bframes=2, vfr_steps_ms=[40, 40, 200]),
        )
        self.frames, self.end = decode_all(self.path)

    def __repr__(self) -> str:
        return f"Clip({self.path.name})"

    def __iter__(self):  # path, frames, end
        return iter((self.path, self.frames, self.end))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    return Clip(tmp_path_factory.mktemp("at"))


def _expected(
    frames: list[RefFrame], end: Fraction, requested: list[Fraction], gap: Fraction | None
) -> tuple[dict[int, list[Fraction]], list[Fraction]]:
    """Brute force: frame number -> the requested times it answers; the missing times."""
    answers: dict[int, list[Fraction]] = {}
    missing = []
    for t in requested:
        rel = t - START
        shown = [n for n, f in enumerate(frames) if f.seconds <= rel]
        if not shown or rel >= end or (gap is not None and rel - frames[shown[-1]].seconds > gap):
            missing.append(t)
            continue
        answers.setdefault(shown[-1], []).append(t)
    return answers, missing


TIMES = st.lists(
    st.integers(-1000, 5000).map(lambda ms: START + Fraction(ms, 1000)),
    min_size=1,
    max_size=40,
    unique=True,
).map(sorted)
"""Requested times in whole milliseconds, from 1 s before the recording to past its end."""


@given(requested=TIMES, gap_ms=st.one_of(st.none(), st.integers(0, 300)))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_read_frames_at_times_matches_the_reference(clip, requested, gap_ms) -> None:
    path, frames, end = clip
    gap = None if gap_ms is None else Fraction(gap_ms, 1000)
    answers, _ = _expected(frames, end, requested, gap)
    meta = {"path": str(path), "start_timestamp": float(START)}
    timestamps, data, _ = read_frames(
        meta, at_times=[str(_decimal(t)) for t in requested], max_gap_ms=gap_ms
    )
    assert [float(START + frames[n].seconds) for n in sorted(answers)] == timestamps.tolist()
    for rgb, n in zip(data, sorted(answers), strict=True):
        assert np.array_equal(rgb, frames[n].rgb)


def _run(path: Path, out: Path, requested: list[Fraction], gap_ms, bounds) -> tuple[list, list]:
    digest = store_requested_times(out, [_decimal(t) for t in requested])
    output = OutputSpec(out_dir=str(out), at_times=digest, max_gap_ms=gap_ms, image_format="png")
    images, missing = [], []
    for a, b in itertools.pairwise(bounds):
        spec = SegmentSpec(
            video_path=str(path),
            record_id="cam",
            start_timestamp=float(START),
            start_seconds=a,
            end_seconds=b,
            output=output,
        )
        result = process_segment(spec, decode_threads=1)
        assert result.frames_decoded == result.frames_minimal
        got_images, got_missing = read_manifest_lines(Path(result.manifest_path))
        images += got_images
        missing += got_missing
    return images, missing


def _decimal(t: Fraction):
    from decimal import Decimal

    return Decimal(t.numerator) / Decimal(t.denominator)


@given(
    requested=TIMES,
    gap_ms=st.one_of(st.none(), st.integers(0, 300)),
    cuts=st.lists(st.floats(0.01, 4.5), max_size=3, unique=True).map(sorted),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_segmentation_gives_each_answering_frame_once(
    clip, tmp_path_factory: pytest.TempPathFactory, requested, gap_ms, cuts
) -> None:
    path, frames, end = clip
    gap = None if gap_ms is None else Fraction(gap_ms, 1000)
    answers, expected_missing = _expected(frames, end, requested, gap)
    out = tmp_path_factory.mktemp("out")
    images, missing = _run(path, out, requested, gap_ms, [0.0, *cuts, None])

    assert [i.timestamp for i in images] == [
        float(START + frames[n].seconds) for n in sorted(answers)
    ]
    for image, n in zip(images, sorted(answers), strict=True):
        assert image.requested_times == [float(t) for t in answers[n]]
        assert image.grid_count == len(answers[n]) and image.grid_time == float(answers[n][0])
        with Image.open(out / image.path) as png:
            assert np.array_equal(np.asarray(png.convert("RGB")), frames[n].rgb)
    assert sorted(m.requested_time for m in missing) == [float(t) for t in expected_missing]


def test_missing_times_say_why(clip, tmp_path: Path) -> None:
    path, frames, end = clip
    hole = START + frames[2].seconds + Fraction(150, 1000)  # inside a 200 ms step
    requested = [START - 1, hole, START + end + 1]
    _, missing = _run(path, tmp_path, requested, 100, [0.0, None])
    reasons = {m.requested_time: m.missing for m in missing}
    assert reasons[float(START - 1)].startswith("before the first frame")
    assert reasons[float(hole)].startswith("the frame shown then is 150.000 ms old")
    assert reasons[float(START + end + 1)].startswith("after the last frame")


def test_extract_file_at_times_from_a_csv_column(clip, tmp_path: Path) -> None:
    path = clip.path
    lidar = tmp_path / "lidar.csv"
    lidar.write_text("sweep,stamp\n1,1000.1\n2,1000.2\n3,999.0\n4,1000.1\n")
    result = CliRunner().invoke(
        main,
        ["extract-file", str(path), "--out", str(tmp_path / "o"), "--start-timestamp", "1000",
         "--at-times", str(lidar), "--times-column", "stamp", "--max-gap", "500"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 requested time(s) missing" in result.output
    manifest = next((tmp_path / "o" / "_manifests").rglob("*.jsonl"))
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    answered = sorted(t for line in lines for t in line.get("requested_times", []))
    assert answered == [1000.1, 1000.2]
    assert [line["requested_time"] for line in lines if "missing" in line] == [999.0]

    again = CliRunner().invoke(
        main, ["extract-file", str(path), "--out", str(tmp_path / "o"), "--at-times", str(lidar),
               "--times-column", "stamp", "--max-gap", "500", "--start-timestamp", "1000"],
    )  # fmt: skip
    assert again.exit_code == 0 and again.output.startswith("already complete")


@pytest.mark.parametrize(
    ("text", "column", "match"),
    [
        ("1000.5\ninf\n", None, r"line 2: 'inf' is not epoch seconds"),
        ("1e1000000000\n", None, "is not epoch seconds"),
        ("t\n1000\n", None, r"line 1: 't' is not epoch seconds .*name the column"),
        ("a,b\n1,2\n", "c", r"has no column 'c' \(columns: a, b\)"),
        ("\n\n", None, "holds no requested times"),
    ],
)
def test_bad_times_files_are_one_line_errors(text: str, column, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_requested_times(text, column=column)


def test_at_times_and_fps_exclude_each_other(clip, tmp_path: Path) -> None:
    path, _, _ = clip
    times = tmp_path / "t.txt"
    times.write_text("1000.5\n")
    result = CliRunner().invoke(
        main, ["extract-file", str(path), "--out", str(tmp_path), "--at-times", str(times),
               "--fps", "5"],
    )  # fmt: skip
    assert result.exit_code == 2 and "--at-times replaces --fps" in result.output
    result = CliRunner().invoke(
        main, ["extract-file", str(path), "--out", str(tmp_path), "--max-gap", "5"]
    )
    assert result.exit_code == 2 and "--max-gap applies to --at-times" in result.output


def test_iter_frames_at_times_streams_the_same(clip) -> None:
    path, _, _ = clip
    meta = {"path": str(path), "start_timestamp": 1000.0}
    streamed = [t for t, _ in iter_frames(meta, at_times=[1000.25, 1000.5, 1000.75])]
    assert streamed == read_frames(meta, at_times=[1000.25, 1000.5, 1000.75])[0].tolist()
