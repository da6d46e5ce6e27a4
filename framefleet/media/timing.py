"""Frame times: from the stream's PTS, or from the camera's clock in a pydtk timestamps CSV.

Times are exact rationals (``Fraction``) in seconds relative to the recording start, so no float
rounding ever decides which frame is picked. The camera clock matters: a real camera steps
33 ms with a 43 ms step once a second, 0.8 s apart from nominal PTS after 80 s.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from framefleet.errors import MediaError, TimestampsError
from framefleet.media.probe import VideoIndex, index_video
from framefleet.pydtk import MAX_CSV_BYTES, read_camera_times_ms
from framefleet.pydtk import timestamps_csv_for as _timestamps_csv_beside


def exact(value: float | int | str | Fraction) -> Fraction:
    """A float read as the decimal it prints as (``1489728570.957`` stays ``.957``)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


def timestamps_csv_for(video_path: str | os.PathLike[str]) -> Path | None:
    """The pydtk convention: ``<video_stem>_timestamps.csv`` beside the video, if it exists."""
    candidate = _timestamps_csv_beside(Path(video_path))
    return candidate if candidate.is_file() else None


@dataclass(frozen=True)
class CameraClock:
    """The per-frame epoch times of a camera, in frame (display) order, in milliseconds."""

    path: str
    epoch_ms: tuple[int, ...]


def read_timestamps_csv(path: str | os.PathLike[str]) -> CameraClock:
    """The camera clock of a CSV, cached per process while the file is unchanged; see
    `parse_timestamps_csv`."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise TimestampsError(f"timestamps CSV not found: {str(p)!r}") from e
    return _read_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _read_cached(path: str, size: int, mtime_ns: int) -> CameraClock:
    del size, mtime_ns  # part of the cache key only
    return parse_timestamps_csv(path)


def parse_timestamps_csv(path: str | os.PathLike[str]) -> CameraClock:
    """Read ``epoch_ms, byte_offset, size, is_keyframe`` rows (no header; extra columns ignored).

    The rules are pydtk's, kept in `framefleet.pydtk.parse_camera_times_ms`: whole epoch
    milliseconds as plain decimals, in frame order, not all equal.

    Raises:
        TimestampsError: missing or unreadable file, a row whose first field is not whole epoch
            milliseconds, or times that go backwards (equal times are allowed: the earlier frame
            is then never shown), or all equal.
    """
    p = Path(path)
    return CameraClock(path=str(p), epoch_ms=read_camera_times_ms(p))


def recording_start(
    start_timestamp: float | None, timestamps_path: str | os.PathLike[str] | None
) -> float | None:
    """The grid's anchor: the given start, else the camera clock's first time, else None (0)."""
    if start_timestamp is None and timestamps_path is not None:
        return read_timestamps_csv(timestamps_path).epoch_ms[0] / 1000
    return start_timestamp


@dataclass(frozen=True)
class FrameTimes:
    """Display times of every frame, relative to the recording start, plus where the last ends."""

    seconds: tuple[Fraction, ...]
    """``seconds[k]``: time of the k-th displayed frame, relative to ``start_timestamp``."""
    end_seconds: Fraction
    """When the last frame stops being displayed."""
    start_timestamp: Fraction
    """The recording start (epoch seconds, or 0 for a bare video): the grid's anchor."""
    source: str
    """``"pts"`` or the CSV path: where the times came from."""

    def epoch(self, k: int) -> float:
        """Absolute time of the k-th displayed frame (epoch seconds when the start is known)."""
        return float(self.start_timestamp + self.seconds[k])


def frame_times(
    index: VideoIndex,
    *,
    start_timestamp: float | Fraction | None = None,
    clock: CameraClock | None = None,
) -> FrameTimes:
    """`compute_frame_times`, remembered on the (per-process cached) index: the segments of one
    file share one computation instead of building every frame's time again."""
    key = (start_timestamp, clock)
    cached = index.memo.get(key)
    if not isinstance(cached, FrameTimes):
        cached = index.memo[key] = compute_frame_times(
            index, start_timestamp=start_timestamp, clock=clock
        )
    return cached


def compute_frame_times(
    index: VideoIndex,
    *,
    start_timestamp: float | Fraction | None = None,
    clock: CameraClock | None = None,
) -> FrameTimes:
    """Times of the frames of ``index``, from the camera clock when given, else from PTS.

    Args:
        start_timestamp: recording start in epoch seconds. With PTS, the first frame is shown at
            this time (0 when None: times are then seconds from the video start). With a camera
            clock, None means the clock's first time.
        clock: the camera's per-frame times; its row count must match the video's frame count.

    Raises:
        TimestampsError: the CSV's row count does not match the video.
    """
    if clock is None:
        start = exact(start_timestamp) if start_timestamp is not None else Fraction(0)
        origin = index.start_pts
        tb = index.time_base
        ordered = index.pts[index.display_order]
        seconds = tuple((int(p) - origin) * tb for p in ordered)
        end = seconds[-1] + index.last_duration_pts * tb
        return FrameTimes(seconds, end, start, "pts")

    rows = len(clock.epoch_ms)
    frames = index.frame_count
    # A truncated video keeps the frames before its cut; its CSV still has a row per recorded frame.
    cut_but_aligned = index.truncated and frames <= rows and rows == index.expected_frames
    if rows != frames and not cut_but_aligned:
        raise TimestampsError(
            f"timestamps CSV {clock.path!r} has {rows} rows but video {index.path!r} has "
            f"{frames} frames; they must match one row per frame (is it the CSV of another video?)"
        )
    start = (
        exact(start_timestamp) if start_timestamp is not None else Fraction(clock.epoch_ms[0], 1000)
    )
    seconds = tuple(Fraction(ms, 1000) - start for ms in clock.epoch_ms[:frames])
    if frames < rows:
        end = Fraction(clock.epoch_ms[frames], 1000) - start
    elif frames > 1:
        end = seconds[-1] + (seconds[-1] - seconds[-2])
    else:
        end = seconds[-1] + index.last_duration_pts * index.time_base
    return FrameTimes(seconds, end, start, clock.path)


_FLAGS = {"1": True, "0": False, "true": True, "false": False}


def read_keyframe_flags(path: str | os.PathLike[str]) -> tuple[bool, ...] | None:
    """The camera CSV's ``is_keyframe`` column (the fourth field), one flag per row.

    None when any row has no readable flag (``0``/``1``/``true``/``false``): the column is a
    hint for planning only, never trusted in part. Rows are the lines `parse_timestamps_csv`
    counts (blank lines skipped).
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CSV_BYTES + 1)
        text = data.decode("utf-8-sig")
    except (OSError, ValueError):
        return None
    if len(data) > MAX_CSV_BYTES:
        return None
    flags: list[bool] = []
    for line in text.split("\n"):
        if not line.strip(" \t\r,"):
            continue
        fields = line.split(",", 4)
        flag = _FLAGS.get(fields[3].strip(' \t\r"').lower()) if len(fields) > 3 else None
        if flag is None:
            return None
        flags.append(flag)
    return tuple(flags)


def keyframe_seconds(
    video_path: str | os.PathLike[str],
    *,
    timestamps_path: str | os.PathLike[str] | None = None,
    start_timestamp: float | None = None,
    index_cache: Path | None = None,
) -> list[Fraction] | None:
    """Display times of a recording's keyframes, seconds from its start, in the clock its
    frames are sampled in (`frame_times`); what `framefleet.media.gops` plans boundaries on.

    From the camera CSV's ``is_keyframe`` column when every row has one (nothing else is
    read); else from the packet index (`index_video`, kept in ``index_cache``). None when
    neither can be read now: the segments then report why when they run.
    """
    try:
        clock = read_timestamps_csv(timestamps_path) if timestamps_path is not None else None
        if clock is not None and timestamps_path is not None:
            flags = read_keyframe_flags(timestamps_path)
            if flags is not None and len(flags) == len(clock.epoch_ms) and any(flags):
                start = (
                    exact(start_timestamp)
                    if start_timestamp is not None
                    else Fraction(clock.epoch_ms[0], 1000)
                )
                return [
                    Fraction(ms, 1000) - start
                    for ms, key in zip(clock.epoch_ms, flags, strict=True)
                    if key
                ]
        index = index_video(video_path, cache_dir=index_cache)
        times = frame_times(index, start_timestamp=start_timestamp, clock=clock)
    except (MediaError, OSError):
        return None
    ranks = sorted(int(r) for r in index.display_rank[index.is_keyframe])
    return [times.seconds[r] for r in ranks if r < len(times.seconds)]
