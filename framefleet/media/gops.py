"""Segment boundaries on keyframes, so that no GOP is decoded by two segments.

A segment decodes from the keyframe before its first frame. A boundary inside a GOP makes both
segments decode that GOP's head: with x264's defaults (8.3 s GOPs) and 10 s segments, a quarter
more frames than one run over the whole recording. Planning boundaries on keyframes removes that.

Where a boundary may go. By the sampling rule (`framefleet.media.sampling`) a frame is taken at a
grid time inside the span it is shown, so at a grid time >= its own time and < the next frame's.
With keyframe ``K`` shown from ``t_K``, frames before ``K`` are taken at grid times ``< t_K`` and
``K`` and every later frame at grid times ``>= t_K``. A boundary ``b`` therefore splits the
frames exactly at ``K`` when no grid time lies in ``[b, t_K)``: each segment then starts on its
own keyframe. (The one
exception, the leading pictures of an *open* GOP, are shown before ``t_K`` but decoded after
``K``: the earlier segment then also decodes ``K``; x264 and cameras write closed GOPs.)

The boundary is the keyframe's own time, as a float (boundaries travel in `SegmentSpec`): the
largest float not after it as the pipeline reads it back (`framefleet.media.timing.exact`). No
sample time can then fall between the boundary and the keyframe, whatever the samples are: a
grid anchored anywhere, at any rate, or requested times.

Whatever boundaries are chosen, segments tile ``[start, end)`` and emit exactly the frames of one
run over the whole recording (the sampling rule guarantees it for any tiling): alignment decides
only what the segments cost, never which images they make. Pure: no I/O.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from fractions import Fraction

from framefleet.errors import ConfigError
from framefleet.media.sampling import Span, split_segments
from framefleet.media.timing import exact

MAX_STRETCH = 2.0
"""A segment may be up to this many times ``segment_seconds`` long to end on a keyframe. Past
that (a GOP longer than twice the segment length) it is cut mid-GOP as without keyframes: its
time limit, derived from the segment length (`framefleet.jobs.limits`, 6 s of time per second of
video by default), must still hold for the longest segment."""
MIN_FRACTION = 0.5
"""A segment ends no sooner than half ``segment_seconds`` after its start (the tail excepted)."""


def boundary_seconds(keyframe_seconds: Fraction) -> float:
    """The largest float whose exact value (`exact`) is not after ``keyframe_seconds``."""
    b = float(keyframe_seconds)
    return b if exact(b) <= keyframe_seconds else math.nextafter(b, -math.inf)


def align_segments(
    start_seconds: float,
    end_seconds: float,
    *,
    keyframe_seconds: Sequence[Fraction] | None,
    segment_seconds: float,
    max_seconds: float | None = None,
    open_ended: bool = False,
) -> list[Span]:
    """Tile ``[start, end)`` with segments near ``segment_seconds`` long, ending on keyframes.

    Each boundary is the keyframe nearest to ``segment_seconds`` after the segment's start,
    among those between half a segment and ``max_seconds`` (default `MAX_STRETCH` segments)
    after it; with none there, the rest is one tail segment when the end is in reach, else
    (a long GOP) the segment is cut ``segment_seconds`` after its start, mid-GOP. The tail
    segment is what remains. One span's end is bit-for-bit the next one's start.

    Args:
        keyframe_seconds: display times of the keyframes, seconds from the recording start
            (the clock the segments are in), ascending. None or empty: `split_segments`.
        open_ended: the last span has no end (frames past a recording's announced end are
            never dropped).
    """
    if not keyframe_seconds:
        return split_segments(
            start_seconds, end_seconds, segment_seconds=segment_seconds, open_ended=open_ended
        )
    if not segment_seconds > 0:
        raise ConfigError(f"segment length must be > 0 seconds, got {segment_seconds}")
    if not end_seconds > start_seconds:
        raise ConfigError(f"end ({end_seconds}) must be after start ({start_seconds})")
    longest = MAX_STRETCH * segment_seconds if max_seconds is None else max_seconds
    if not longest >= segment_seconds:
        raise ConfigError(
            f"max_seconds ({longest}) must be at least segment_seconds ({segment_seconds})"
        )
    keys = sorted(keyframe_seconds)
    length, end = exact(segment_seconds), exact(end_seconds)
    bounds = [start_seconds]
    current = exact(start_seconds)
    while end - current > length:
        b = _next_boundary(keys, current, length, exact(longest), end)
        if b is None and end - current <= exact(longest):
            break  # no keyframe before the end, which is in reach: one tail segment
        if b is None or not current < exact(b) < end:
            b = bounds[-1] + segment_seconds  # no keyframe in reach: cut mid-GOP
            if not current < exact(b) < end:
                break  # float rounding: the rest is one segment
        bounds.append(b)
        current = exact(b)
    bounds.append(end_seconds)
    spans = [Span(a, b) for a, b in itertools.pairwise(bounds)]
    if open_ended:
        spans[-1] = Span(spans[-1].start_seconds, None)
    return spans


def _next_boundary(
    keys: list[Fraction],
    current: Fraction,
    length: Fraction,
    longest: Fraction,
    end: Fraction,
) -> float | None:
    """The boundary of the keyframe nearest ``current + length`` within reach, or None."""
    target = current + length
    low = current + length * Fraction(MIN_FRACTION)
    high = current + longest
    # The window [low, high] holds the target, so the keyframes nearest it are its neighbours.
    i = bisect.bisect_left(keys, target)
    near = [k for k in keys[max(0, i - 1) : i + 1] if low <= k <= high and k < end]
    if not near:
        return None
    best = min(near, key=lambda k: (abs(k - target), k))
    return boundary_seconds(best)
