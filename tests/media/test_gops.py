"""GOP-aligned segments: still exactly the frames of one whole run, and no GOP decoded twice."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from framefleet.media.decode import needed_packets
from framefleet.media.gops import MAX_STRETCH, align_segments, boundary_seconds
from framefleet.media.pipeline import plan_segment, process_segment
from framefleet.media.probe import index_video
from framefleet.media.sampling import Pick, Span, pick_frames
from framefleet.media.specs import OutputSpec, SegmentSpec
from framefleet.media.timing import exact, keyframe_seconds, read_keyframe_flags
from tests.clips import ClipSpec, camera_times_ms, make_clip, write_timestamps_csv
from tests.media.reference import decode_all, expected_picks

rates = st.sampled_from(["2", "5", "0.5", "30000/1001", "7/3", "30", "1000"]).map(Fraction)


def _tile(times: list[Fraction], end: Fraction, fps: Fraction, spans: list[Span]) -> list[Pick]:
    picks: list[Pick] = []
    for span in spans:
        picks += pick_frames(
            times,
            end_of_last=end,
            target_fps=fps,
            start_seconds=exact(span.start_seconds),
            end_seconds=None if span.end_seconds is None else exact(span.end_seconds),
        )
    return picks


@st.composite
def recordings(draw: st.DrawFn) -> tuple[list[Fraction], list[int], Fraction]:
    """Frame times (ms steps, some equal), keyframe display indices (0 first), end of last."""
    steps = draw(st.lists(st.integers(0, 120), min_size=2, max_size=300))
    gops = draw(st.lists(st.integers(1, 90), min_size=1, max_size=40))
    times, t = [], 0
    for s in steps:
        times.append(Fraction(t, 1000))
        t += s
    keys = [k for k in itertools.accumulate([0, *gops]) if k < len(times)]
    return times, keys, Fraction(t + 33, 1000)


@given(recordings(), rates, st.floats(0.05, 5.0), st.booleans())
@settings(max_examples=400, deadline=None)
def test_aligned_plans_tile_exactly_and_split_no_gop(
    recording: tuple[list[Fraction], list[int], Fraction],
    fps: Fraction,
    segment_seconds: float,
    keyframes_mode: bool,
) -> None:
    times, keys, end = recording
    key_seconds = [times[k] for k in keys]
    spans = align_segments(
        0.0,
        float(end),
        keyframe_seconds=key_seconds,
        segment_seconds=segment_seconds,
        open_ended=True,
    )
    assert spans[0].start_seconds == 0.0 and spans[-1].end_seconds is None
    for a, b in itertools.pairwise(spans):
        assert a.end_seconds == b.start_seconds  # bit for bit
        assert a.end_seconds is not None and a.start_seconds < a.end_seconds
        assert a.end_seconds - a.start_seconds <= MAX_STRETCH * segment_seconds + 1e-9
    candidates = keys if keyframes_mode else None
    whole = pick_frames(times, end_of_last=end, target_fps=fps, candidates=candidates)
    tiled: list[Pick] = []
    gop_of = np.searchsorted(np.asarray(keys), np.arange(len(times)), side="right") - 1
    segment_gops: list[set[int]] = []
    for span in spans:
        picks = pick_frames(
            times,
            end_of_last=end,
            target_fps=fps,
            start_seconds=exact(span.start_seconds),
            end_seconds=None if span.end_seconds is None else exact(span.end_seconds),
            candidates=candidates,
        )
        tiled += picks
        segment_gops.append({int(gop_of[p.frame]) for p in picks})
    assert tiled == whole
    # A GOP shared by two neighbours only where no keyframe was in reach (a long GOP, cut).
    for i, (a, b) in enumerate(itertools.pairwise(segment_gops)):
        if a & b:
            start = exact(spans[i].start_seconds)
            low = start + exact(segment_seconds) / 2
            high = start + exact(MAX_STRETCH * segment_seconds)
            assert not any(low <= k <= high and k < end for k in key_seconds), (i, spans)


@given(
    st.integers(0, 10**7).map(lambda ms: Fraction(ms, 1000)),
    st.sampled_from([Fraction(1, 90000), Fraction(1001, 30000), Fraction(1, 1000)]),
    st.integers(0, 10**6),
)
def test_a_boundary_is_the_keyframe_time_or_just_before(
    t: Fraction, unit: Fraction, n: int
) -> None:
    keyframe = t + unit * n  # times that are not whole milliseconds too
    b = boundary_seconds(keyframe)
    assert exact(b) <= keyframe < exact(math.nextafter(b, math.inf))


def test_a_gop_longer_than_the_stretch_is_cut_as_without_keyframes() -> None:
    keys = [Fraction(0), Fraction(50)]
    spans = align_segments(0.0, 60.0, keyframe_seconds=keys, segment_seconds=10.0)
    assert [(s.start_seconds, s.end_seconds) for s in spans] == [
        (0.0, 10.0),
        (10.0, 20.0),
        (20.0, 30.0),
        (30.0, 50.0),  # the keyframe at 50 s is within reach (twice the length)
        (50.0, 60.0),
    ]
    # 8.3 s GOPs and 10 s segments: one GOP each, on the keyframes.
    keys = [Fraction(250 * i, 30) for i in range(10)]
    spans = align_segments(0.0, 80.0, keyframe_seconds=keys, segment_seconds=10.0)
    assert [s.end_seconds for s in spans][:3] == [boundary_seconds(k) for k in keys[1:4]]


CLIPS = {
    "b3-gop36-30fps": ClipSpec(fps=30, frames=240, gop=36, bframes=3),
    "b2-gop25-vfr": ClipSpec(frames=200, gop=25, bframes=2, vfr_steps_ms=[33, 50, 17, 40]),
}


@pytest.fixture(scope="module", params=sorted(CLIPS))
def bclip(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("gops") / f"{request.param}.mp4", CLIPS[request.param])


def _specs(video: Path, out: Path, spans: list[Span], **output: object) -> list[SegmentSpec]:
    spec = OutputSpec(out_dir=str(out), **output)  # type: ignore[arg-type]
    return [
        SegmentSpec(
            video_path=str(video),
            record_id="r",
            output=spec,
            start_seconds=s.start_seconds,
            end_seconds=s.end_seconds,
        )
        for s in spans
    ]


@given(st.floats(0.3, 4.0), st.sampled_from(["2", "5", "30000/1001", "15"]))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_aligned_plans_on_b_frame_clips_need_each_packet_once(
    bclip: Path, tmp_path: Path, segment_seconds: float, fps: str
) -> None:
    """From the packet index alone: segments planned on keyframes pick exactly the frames of
    one run, and their minimal packet sets are disjoint and add up to the whole run's."""
    index = index_video(bclip)
    keys = keyframe_seconds(bclip)
    assert keys is not None and keys[0] == 0
    duration = float(index.duration_seconds)
    spans = align_segments(
        0.0,
        duration,
        keyframe_seconds=keys,
        segment_seconds=segment_seconds,
        open_ended=True,
    )
    (whole,) = _specs(bclip, tmp_path, [Span(0.0, None)], target_fps=fps)
    planned_whole = plan_segment(whole).frames
    need_whole = needed_packets(index, [p.decode_index for p in planned_whole])
    longest_gop = max(b - a for a, b in itertools.pairwise([*keys, index.duration_seconds]))
    cut_gops = longest_gop > MAX_STRETCH * segment_seconds
    total = np.zeros(index.frame_count, dtype=np.int64)
    tiled = []
    for spec in _specs(bclip, tmp_path, spans, target_fps=fps):
        planned = plan_segment(spec).frames
        tiled += planned
        total += needed_packets(index, [p.decode_index for p in planned])
    assert tiled == planned_whole
    if not cut_gops:
        assert total.max(initial=0) <= 1, "a packet is decoded by two segments"
        assert np.array_equal(total.astype(bool), need_whole)


def test_aligned_segments_decode_the_minimal_set_and_match_the_reference(
    tmp_path: Path,
) -> None:
    video = make_clip(tmp_path / "b.mp4", ClipSpec(fps=30, frames=240, gop=50, bframes=3))
    frames, end = decode_all(video)
    picks = expected_picks(frames, fps=Fraction(5), end_of_last=end)
    keys = keyframe_seconds(video)
    spans = align_segments(
        0.0,
        float(end),
        keyframe_seconds=keys,
        segment_seconds=1.0,
        open_ended=True,
    )
    assert len(spans) >= 4
    out = tmp_path / "out"
    (whole,) = _specs(video, tmp_path / "whole", [Span(0.0, None)], target_fps="5")
    minimal = process_segment(whole, decode_threads=1).frames_minimal
    decoded = 0
    got = []
    for spec in _specs(video, out, spans, target_fps="5", image_format="png"):
        result = process_segment(spec, decode_threads=1)
        assert result.frames_decoded == result.frames_minimal
        decoded += result.frames_decoded
        for record in result.images:
            with Image.open(out / record.path) as image:
                got.append(np.asarray(image.convert("RGB")))
    assert decoded == minimal, "segments on keyframes decode exactly what one run does"
    assert len(got) == len(picks)
    for rgb, (_, n) in zip(got, picks, strict=True):
        assert np.array_equal(rgb, frames[n].rgb)


def test_keyframes_come_from_the_camera_csv_when_it_has_them(tmp_path: Path) -> None:
    video = make_clip(tmp_path / "camera_01.mp4", ClipSpec(frames=95, gop=30))
    csv = write_timestamps_csv(tmp_path / "camera_01_timestamps.csv", camera_times_ms(1000, 95))
    assert read_keyframe_flags(csv) == tuple(i % 30 == 0 for i in range(95))
    from_csv = keyframe_seconds(video, timestamps_path=csv, start_timestamp=1.0)
    assert from_csv == [Fraction(0), Fraction(1), Fraction(2), Fraction(3)]
    # The camera's own keyframes, not the stream's, when they differ (a hint: cost, not result).
    clock = camera_times_ms(1000, 95)
    other = write_timestamps_csv(tmp_path / "other_timestamps.csv", clock, keyframe_every=45)
    assert keyframe_seconds(video, timestamps_path=other) == [
        Fraction(clock[i] - clock[0], 1000) for i in (0, 45, 90)
    ]
    # No column: the stream's keyframes, on the camera clock.
    bare = tmp_path / "bare_timestamps.csv"
    bare.write_text("".join(f"{t}\n" for t in camera_times_ms(1000, 95)))
    assert read_keyframe_flags(bare) is None
    assert keyframe_seconds(video, timestamps_path=bare, start_timestamp=1.0) == from_csv
    assert keyframe_seconds(tmp_path / "missing.mp4") is None
