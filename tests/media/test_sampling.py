"""The sampling rule and segment splitting, as properties (hypothesis)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framefleet.errors import ConfigError
from framefleet.media.sampling import Pick, parse_fps, pick_frames, split_segments
from framefleet.media.timing import exact

steps = st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=200)
rates = st.sampled_from(["2", "5", "0.5", "30000/1001", "7/3", "60", "1000"]).map(Fraction)


def _times(step_ms: list[int], first_ms: int) -> list[Fraction]:
    t, out = first_ms, []
    for s in step_ms:
        out.append(Fraction(t, 1000))
        t += s
    return out


def _whole(times: list[Fraction], end: Fraction, fps: Fraction) -> list[Pick]:
    return pick_frames(times, end_of_last=end, target_fps=fps)


@given(steps, st.integers(0, 500), rates, st.lists(st.floats(0, 30, allow_nan=False), max_size=6))
def test_any_tiling_equals_the_whole(
    step_ms: list[int], first_ms: int, fps: Fraction, cuts: list[float]
) -> None:
    times = _times(step_ms, first_ms)
    end = times[-1] + Fraction(33, 1000)
    bounds = [0.0, *sorted(set(c for c in cuts if c > 0)), None]
    tiled: list[Pick] = []
    for a, b in itertools.pairwise(bounds):
        tiled += pick_frames(
            times,
            end_of_last=end,
            target_fps=fps,
            start_seconds=exact(a),
            end_seconds=None if b is None else exact(b),
        )
    assert tiled == _whole(times, end, fps)


@given(steps, st.integers(0, 500), rates)
def test_each_pick_is_the_frame_shown_at_its_grid_time(
    step_ms: list[int], first_ms: int, fps: Fraction
) -> None:
    times = _times(step_ms, first_ms)
    end = times[-1] + Fraction(1, 50)
    picks = _whole(times, end, fps)
    frames = [p.frame for p in picks]
    assert len(frames) == len(set(frames)), "a frame was emitted twice"
    assert frames == sorted(frames)
    for p in picks:
        shown = max(j for j, t in enumerate(times) if t <= p.grid_seconds)
        assert shown == p.frame
        assert (p.grid_seconds * fps).denominator == 1, "grid time not on the grid"
    # every grid time inside the video is covered by some pick (no frame lost)
    k = 0
    while Fraction(k) / fps < end:
        g = Fraction(k) / fps
        if g >= times[0]:
            shown = max(j for j, t in enumerate(times) if t <= g)
            assert shown in frames
        k += 1


@given(
    st.floats(0, 100, allow_nan=False),
    st.floats(0.001, 200, allow_nan=False),
    st.floats(0.01, 30, allow_nan=False),
)
def test_split_segments_tiles_without_gaps(start: float, length: float, seg: float) -> None:
    end = start + length
    if not end > start:
        return
    spans = split_segments(start, end, segment_seconds=seg)
    assert spans[0].start_seconds == start
    assert spans[-1].end_seconds == end
    for a, b in itertools.pairwise(spans):
        assert a.end_seconds == b.start_seconds
    assert all(s.end_seconds is not None and s.end_seconds > s.start_seconds for s in spans)
    open_spans = split_segments(start, end, segment_seconds=seg, open_ended=True)
    assert open_spans[-1].end_seconds is None
    assert len(open_spans) == len(spans)


def test_tail_shorter_than_a_segment_is_kept() -> None:
    spans = split_segments(0.0, 25.0, segment_seconds=10.0)
    assert [(s.start_seconds, s.end_seconds) for s in spans] == [
        (0.0, 10.0),
        (10.0, 20.0),
        (20.0, 25.0),
    ]


@pytest.mark.parametrize("bad", [0, -1, "0", "abc", "1/0", float("nan")])
def test_bad_fps_is_rejected(bad: object) -> None:
    with pytest.raises(ConfigError, match="fps must be"):
        parse_fps(bad)  # type: ignore[arg-type]


def test_bad_segment_bounds_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"end \(5.0\) must be after start \(5.0\)"):
        split_segments(5.0, 5.0, segment_seconds=1)
    with pytest.raises(ConfigError, match="segment length must be > 0"):
        split_segments(0.0, 5.0, segment_seconds=0)
