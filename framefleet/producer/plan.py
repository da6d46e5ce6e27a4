"""Plan a job: catalog rows in, the job's segments out (nothing enqueued or written).

Each matching video row becomes segments of ``segment_seconds`` covering its recording, times
relative to the recording start (``start_timestamp``). The last segment is open-ended, so frames
past the metadata's ``end_timestamp`` (metadata is often a frame short) are never lost. A segment
whose manifest already exists for the same output spec is marked skipped unless ``force``.

Rows are plain dicts of the catalog's query shape, so planning works (and is tested) without a
database; the plan is deterministic: rows sorted by record, content and path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framefleet.catalog.kinds import is_video
from framefleet.errors import MediaError
from framefleet.media.probe import probe_video
from framefleet.media.sampling import split_segments
from framefleet.media.specs import OutputSpec, SegmentSpec


@dataclass(frozen=True)
class PlannedSegment:
    """A segment of the job, numbered in plan order; ``skipped``: its manifest already exists."""

    segment_id: int
    spec: SegmentSpec
    skipped: bool


@dataclass(frozen=True)
class Plan:
    """All segments of a job in plan order, and how many videos they come from."""

    segments: tuple[PlannedSegment, ...]
    videos: int

    @property
    def pending(self) -> tuple[PlannedSegment, ...]:
        """The segments to run (not skipped)."""
        return tuple(s for s in self.segments if not s.skipped)

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.segments)


def is_video_row(row: Mapping[str, Any]) -> bool:
    """True for rows that hold a video file (the catalog's rule, `framefleet.catalog.kinds`)."""
    return is_video(row.get("path"), row.get("content_type"))


def plan_job(
    rows: Iterable[Mapping[str, Any]],
    *,
    output: OutputSpec,
    segment_seconds: float,
    force: bool = False,
) -> Plan:
    """Segments for every video row in ``rows`` (other rows are ignored); see the module doc.

    Args:
        output: what images to make, and where.
        segment_seconds: segment length; the tail segment may be shorter (and is open-ended).
        force: plan every segment, even those whose manifest exists.
    """
    videos: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in rows:
        if is_video_row(row):
            videos.setdefault((str(row["path"]), _content(row)), row)
    ordered = sorted(videos.values(), key=lambda r: (str(r["record_id"]), _content(r), r["path"]))
    segments: list[PlannedSegment] = []
    root = Path(output.out_dir)
    for row in ordered:
        for spec in _video_segments(row, output=output, segment_seconds=segment_seconds):
            skipped = not force and (root / spec.manifest_name).is_file()
            segments.append(PlannedSegment(len(segments), spec, skipped))
    return Plan(tuple(segments), len(ordered))


def _content(row: Mapping[str, Any]) -> str:
    return str(row.get("contents") or "video")


def _video_segments(
    row: Mapping[str, Any], *, output: OutputSpec, segment_seconds: float
) -> list[SegmentSpec]:
    timestamps = row.get("timestamps_path")

    def segment(start_seconds: float, end_seconds: float | None) -> SegmentSpec:
        return SegmentSpec(
            video_path=str(row["path"]),
            record_id=str(row["record_id"]),
            content=_content(row),
            start_timestamp=_number(row.get("start_timestamp")),
            timestamps_path=None if not timestamps else str(timestamps),
            start_seconds=start_seconds,
            end_seconds=end_seconds,
            output=output,
        )

    duration = _duration(row)
    if duration is None:
        return [segment(0.0, None)]
    spans = split_segments(0.0, duration, segment_seconds=segment_seconds, open_ended=True)
    return [segment(s.start_seconds, s.end_seconds) for s in spans]


def _duration(row: Mapping[str, Any]) -> float | None:
    """The recording's length: metadata times, the catalog's probe, or a probe now.

    None when nothing says (e.g. the file is missing or corrupt): the job gets one open-ended
    segment for it and the worker reports the real error.
    """
    start, end = _number(row.get("start_timestamp")), _number(row.get("end_timestamp"))
    if start is not None and end is not None and end > start:
        return end - start
    seconds = _number(row.get("duration_seconds"))
    if seconds is not None and seconds > 0:
        return seconds
    frames, fps = _number(row.get("frame_count")), _number(row.get("fps"))
    if frames and fps:
        return frames / fps
    try:
        probed = float(probe_video(str(row["path"])).duration_seconds)
    except (MediaError, OSError):
        return None
    return probed if probed > 0 else None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
