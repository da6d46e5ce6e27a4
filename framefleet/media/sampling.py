"""The sampling rule: a global time grid, the frame shown at each grid time, and segments.

The rule, stated once:

* The grid for a target rate ``fps`` is ``g_k = start_timestamp + k / fps`` for ``k = 0, 1, ...``:
  anchored at the recording start, never at a segment start.
* Frame ``j`` is shown during ``[t_j, t_{j+1})`` (the last frame until the video ends).
* At each grid time the frame shown then is taken: the last frame whose time is <= the grid time.
  A frame shown over several grid times is taken once, at the first of them, its *grid time*.
* A segment ``[start, end)`` emits exactly the frames whose grid time lies in it. Segments that
  tile a recording therefore emit every frame of processing it whole, once: no duplicates at
  boundaries, nothing lost in the last, partial segment.
* Synchronised cameras share one grid: anchored at their record's start, which for a camera
  that started later is an offset before its own first frame (``grid_offset``).
* Instead of a grid, explicit *requested times* (another sensor's, `pick_at_times`): the same
  rule per requested time (the frame shown then), each frame emitted once, by the segment
  holding the first requested time it answers, listing every requested time it answers. A
  requested time with no frame shown (before the first frame, after the last) or whose frame is
  older than ``max_gap`` is reported missing, never filled.

All times are exact ``Fraction`` seconds relative to the recording start.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from framefleet.errors import ConfigError

MIN_FPS = Fraction(1, 86400)
MAX_FPS = Fraction(1000)
_FPS_TEXT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,12})?$|^[0-9]{1,12}/[0-9]{1,12}$")


def parse_fps(value: float | int | str | Fraction) -> Fraction:
    """A target rate as an exact rational: ``2``, ``0.5``, ``"30000/1001"``.

    Raises:
        ConfigError: not such a number (text is checked before any arithmetic, so no hostile
            value can make it slow), or outside one frame a day .. 1000 fps.
    """
    if isinstance(value, bool):
        raise ConfigError(f"fps must be a number such as 2, 0.5 or 30000/1001, got {value!r}")
    if isinstance(value, Fraction):
        fps = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"fps must be a finite number, got {value!r}")
        fps = Fraction(repr(value))
    elif isinstance(value, int):
        fps = Fraction(value)
    else:
        text = str(value).strip()
        if not _FPS_TEXT.match(text):
            raise ConfigError(
                f"fps must be a number such as 2, 0.5 or 30000/1001, got {str(value)[:40]!r}"
            )
        try:
            fps = Fraction(text)
        except ZeroDivisionError as e:
            raise ConfigError(f"fps must be a number such as 2 or 30000/1001, got {text!r}") from e
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ConfigError(
            f"fps must be between 1/86400 (one frame a day) and 1000, got {str(value)[:40]!r}"
        )
    return fps


def grid_ceil(t: Fraction, fps: Fraction, offset: Fraction = Fraction(0)) -> Fraction:
    """The first grid time ``offset + k / fps`` (``k >= 0``) at or after ``t``: never before
    the grid's anchor."""
    k = max(0, math.ceil((t - offset) * fps))
    return offset + Fraction(k) / fps


@dataclass(frozen=True)
class Pick:
    """One sampled frame: which frame (display index) and the first time it stands for.

    On a grid, ``count`` is how many consecutive grid times it is shown for (the frameset of
    each of them holds it); for requested times, ``requested`` lists every one it answers.
    """

    frame: int
    grid_seconds: Fraction
    count: int = 1
    requested: tuple[Fraction, ...] = ()


@dataclass(frozen=True)
class Missing:
    """A requested time no frame answers, and why."""

    requested: Fraction
    reason: str


def pick_frames(
    times: Sequence[Fraction],
    *,
    end_of_last: Fraction,
    target_fps: Fraction,
    start_seconds: Fraction | None = None,
    end_seconds: Fraction | None = None,
    candidates: Sequence[int] | None = None,
    grid_offset: Fraction = Fraction(0),
) -> list[Pick]:
    """The frames a segment ``[start_seconds, end_seconds)`` emits, in display order.

    Args:
        times: display times of all frames, non-decreasing.
        end_of_last: when the last frame stops being shown.
        start_seconds: segment start (None: from the recording start).
        end_seconds: segment end, exclusive (None: to the end of the video).
        candidates: restrict sampling to these display indices (ascending), e.g. keyframes; each is
            then shown until the next candidate.
        grid_offset: where the grid is anchored, relative to this recording's start (a
            synchronised record's start: zero or negative).
    """
    # Without candidates, index the times directly: no per-segment copy of a long recording.
    order: Sequence[int] = range(len(times)) if candidates is None else candidates
    shown = times if candidates is None else [times[j] for j in candidates]
    lo = 0
    if start_seconds is not None:
        # Frames shown entirely before the start cannot hold a grid time >= start.
        lo = max(0, bisect.bisect_right(shown, start_seconds) - 1)
    hi = len(shown) if end_seconds is None else bisect.bisect_left(shown, end_seconds)
    picks: list[Pick] = []
    for n in range(lo, hi):
        until = shown[n + 1] if n + 1 < len(shown) else end_of_last
        g = grid_ceil(shown[n], target_fps, grid_offset)
        if g >= until:
            continue  # no grid time while this frame is shown
        if start_seconds is not None and g < start_seconds:
            continue
        if end_seconds is not None and g >= end_seconds:
            continue
        count = math.ceil((until - grid_offset) * target_fps) - int((g - grid_offset) * target_fps)
        picks.append(Pick(order[n], g, count))
    return picks


def pick_at_times(
    times: Sequence[Fraction],
    *,
    end_of_last: Fraction,
    requested: Sequence[Fraction],
    start_seconds: Fraction | None = None,
    end_seconds: Fraction | None = None,
    max_gap: Fraction | None = None,
) -> tuple[list[Pick], list[Missing]]:
    """The frames and missing times of a segment ``[start, end)`` for requested times.

    Args:
        times: display times of all frames, non-decreasing.
        end_of_last: when the last frame stops being shown.
        requested: every requested time of the job (sorted, unique), relative to the start;
            the segment handles those in its range, but a frame it emits lists all it answers.
        max_gap: a requested time whose frame was shown more than this long before is missing.

    Returns:
        The picks in display order, and the requested times in range no frame answers.
    """
    # The first segment (start 0) also answers the times before the recording: missing ones.
    lo = 0 if not start_seconds else bisect.bisect_left(requested, start_seconds)
    hi = len(requested) if end_seconds is None else bisect.bisect_left(requested, end_seconds)
    picks: dict[int, Pick] = {}
    missing: list[Missing] = []
    for t in requested[lo:hi]:
        j = bisect.bisect_right(times, t) - 1
        if j < 0:
            missing.append(Missing(t, f"before the first frame (shown from {_ms(times[0])})"))
            continue
        if t >= end_of_last:
            missing.append(Missing(t, f"after the last frame (shown until {_ms(end_of_last)})"))
            continue
        shown_since = times[j]
        if max_gap is not None and t - shown_since > max_gap:
            missing.append(
                Missing(
                    t,
                    f"the frame shown then is {_ms(t - shown_since)} old, more than the "
                    f"allowed gap of {_ms(max_gap)}",
                )
            )
            continue
        if j in picks:
            continue
        until = times[j + 1] if j + 1 < len(times) else end_of_last
        first = bisect.bisect_left(requested, shown_since)
        if start_seconds and requested[first] < start_seconds:
            continue  # emitted by the segment that holds the first time it answers
        last = bisect.bisect_left(requested, until)
        if max_gap is not None:
            last = min(last, bisect.bisect_right(requested, shown_since + max_gap))
        answered = tuple(requested[first:last])
        picks[j] = Pick(j, answered[0], len(answered), answered)
    return [picks[j] for j in sorted(picks)], missing


def _ms(seconds: Fraction) -> str:
    return f"{float(seconds) * 1000:.3f} ms" if abs(seconds) < 1 else f"{float(seconds):.3f} s"


@dataclass(frozen=True)
class Span:
    """A half-open range ``[start_seconds, end_seconds)`` of a recording; None end = to its end."""

    start_seconds: float
    end_seconds: float | None


def split_segments(
    start_seconds: float,
    end_seconds: float,
    *,
    segment_seconds: float,
    open_ended: bool = False,
) -> list[Span]:
    """Tile ``[start, end)`` with segments of ``segment_seconds``; the last one may be shorter.

    Boundaries are computed as ``start + k * segment_seconds`` (never accumulated), so one span's
    end is bit-for-bit the next one's start. With ``open_ended=True`` the last span has no end:
    frames past a recording's announced end (metadata is often a frame short) are never dropped.
    """
    if not segment_seconds > 0:
        raise ConfigError(f"segment length must be > 0 seconds, got {segment_seconds}")
    if not end_seconds > start_seconds:
        raise ConfigError(f"end ({end_seconds}) must be after start ({start_seconds})")
    count = max(1, math.ceil((end_seconds - start_seconds) / segment_seconds))
    bounds = [start_seconds + k * segment_seconds for k in range(count)] + [end_seconds]
    if count > 1 and bounds[-2] >= end_seconds:  # float rounding made an empty last span
        del bounds[-2]
    spans = [Span(a, b) for a, b in itertools.pairwise(bounds)]
    if open_ended:
        spans[-1] = Span(spans[-1].start_seconds, None)
    return spans
