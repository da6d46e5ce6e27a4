"""Plan a job: catalog rows in, the job's segments out (nothing enqueued or written).

Each matching video row becomes segments of ``segment_seconds`` covering its recording, times
relative to the recording start (``start_timestamp``). The last segment is open-ended, so frames
past the metadata's ``end_timestamp`` (metadata is often a frame short) are never lost. A segment
whose manifest already exists for the same output spec is marked skipped unless ``force``.

A recording that cannot be planned fails alone, with its reason, and the others go on: image
names too long for the file system, names that another recording of the same job would also
write, or names another spec already owns under the output root (`framefleet.media.ownership`:
refused unless ``takeover``). Planning claims the names of every recording it plans.

Rows are plain dicts of the catalog's query shape, so planning works (and is tested) without a
database; the plan is deterministic: rows sorted by record, content and path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from framefleet.catalog.kinds import is_video
from framefleet.errors import FramefleetError, MediaError
from framefleet.jobs.completion import Completion
from framefleet.jobs.message import SegmentMessage
from framefleet.media.gops import align_segments
from framefleet.media.images import EXTENSIONS
from framefleet.media.naming import INDEX_DIR, check_name_lengths, path_safe
from framefleet.media.ownership import claim_names, pattern_of
from framefleet.media.probe import probe_video
from framefleet.media.sampling import split_segments
from framefleet.media.specs import BagClock, OutputSpec, SegmentSpec, source_version
from framefleet.media.timing import keyframe_seconds
from framefleet.pydtk import is_image_topic

MAX_SEGMENTS_PER_VIDEO = 100_000
"""More segments than this for one video means its metadata is wrong (11 days at 10 s)."""


@dataclass(frozen=True)
class PlannedSegment:
    """A segment of the job, numbered in plan order.

    ``skipped``: its manifest already exists. ``error``: its recording could not be planned
    (the segment is failed at once with this reason, never enqueued).
    """

    segment_id: int
    spec: SegmentSpec
    skipped: bool
    error: str | None = None


@dataclass(frozen=True)
class Plan:
    """All segments of a job in plan order, how many videos they come from, and what to do
    when the job completes."""

    segments: tuple[PlannedSegment, ...]
    videos: int
    completion: Completion = field(default_factory=Completion)
    sources: tuple[Mapping[str, Any], ...] = ()
    """The catalog rows of the cameras planned (what exports and registration describe)."""

    @property
    def pending(self) -> tuple[PlannedSegment, ...]:
        """The segments to run (not skipped, not failed at planning)."""
        return tuple(s for s in self.segments if not s.skipped and s.error is None)

    @property
    def failed(self) -> tuple[PlannedSegment, ...]:
        """The segments of recordings that could not be planned."""
        return tuple(s for s in self.segments if s.error is not None)

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.segments)

    @property
    def skipped_ids(self) -> list[int]:
        return [s.segment_id for s in self.segments if s.skipped]

    @property
    def errors(self) -> dict[int, str]:
        """Segment id -> why its recording could not be planned."""
        return {s.segment_id: s.error for s in self.segments if s.error is not None}

    def messages(self, job_id: str, *, force: bool = False) -> list[SegmentMessage]:
        """One message per segment, in plan order (index = segment id)."""
        return [
            SegmentMessage(job_id=job_id, segment_id=s.segment_id, spec=s.spec, force=force)
            for s in self.segments
        ]


def is_video_row(row: Mapping[str, Any]) -> bool:
    """True for rows that hold a camera: a video file (the catalog's rule,
    `framefleet.catalog.kinds`) or a bag's image topic (`framefleet.pydtk.is_image_topic`)."""
    return is_image_topic(row) or is_video(row.get("path"), row.get("content_type"))


def plan_job(
    rows: Iterable[Mapping[str, Any]],
    *,
    output: OutputSpec,
    segment_seconds: float,
    force: bool = False,
    takeover: bool | None = None,
    sync: bool = False,
    anchor: float | None = None,
    max_skew_ms: float | None = None,
    bag_time: BagClock = "header",
    completion: Completion | None = None,
) -> Plan:
    """Segments for every video row in ``rows`` (other rows are ignored); see the module doc.

    Args:
        output: what images to make, and where.
        segment_seconds: segment length; the tail segment may be shorter (and is open-ended).
        force: plan every segment, even those whose manifest exists.
        takeover: replace images another spec owns under the same names (default: ``force``).
        sync: the cameras of a record share one grid, anchored at ``anchor`` (epoch seconds)
            or else at the earliest ``start_timestamp`` among the record's matched files;
            the job writes each record's framesets when it completes.
        max_skew_ms: with ``sync``: a frameset whose camera's frame is older is incomplete.
        bag_time: the clock of bag topics: their messages' ``header`` stamps or ``receive``
            times.
        completion: exports and registration when the job completes (framesets come from
            ``sync``).
    """
    takeover = force if takeover is None else takeover
    completion = replace(completion or Completion(), framesets=sync, max_skew_ms=max_skew_ms)
    videos: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in rows:
        if is_video_row(row):
            videos.setdefault((str(row["path"]), _content(row)), row)
    ordered = sorted(videos.values(), key=lambda r: (str(r["record_id"]), _content(r), r["path"]))
    anchors = _record_anchors(ordered, anchor) if sync else {}
    segments: list[PlannedSegment] = []
    root = Path(output.out_dir)
    names: dict[str, SegmentSpec] = {}  # image name pattern -> the recording that writes it
    for row in ordered:
        try:
            grid_anchor = None
            if sync:
                grid_anchor = anchors.get(str(row["record_id"]))
                if grid_anchor is None or _number(row.get("start_timestamp")) is None:
                    raise MediaError(
                        f"{row['path']}: --sync needs the start_timestamp of every camera of "
                        f"record {row['record_id']!r} (epoch seconds), and this file has none"
                    )
            specs = _video_segments(
                row,
                output=output,
                segment_seconds=segment_seconds,
                grid_anchor=grid_anchor,
                bag_time=bag_time,
            )
            _check_names(specs[0], names, takeover=takeover)
        except Exception as e:  # one recording's problem, whatever it is, fails it alone
            spec = _whole_recording(row, output)
            segments.append(PlannedSegment(len(segments), spec, False, _reason(e)))
            continue
        for spec in specs:
            skipped = not force and (root / spec.manifest_name).is_file()
            segments.append(PlannedSegment(len(segments), spec, skipped))
    return Plan(tuple(segments), len(ordered), completion, tuple(ordered))


def _check_names(spec: SegmentSpec, names: dict[str, SegmentSpec], *, takeover: bool) -> None:
    """Refuse names too long, or already written by another recording of this job or another
    spec; then claim them under the output root."""
    output = spec.output
    widest = {"timestamp": 1e10 + 0.5, "grid_time": 1e10 + 0.5, "frame": 10**8}
    check_name_lengths(
        output.name_template,
        {
            "record_id": path_safe(spec.record_id),
            "content": path_safe(spec.content),
            "ext": EXTENSIONS[output.image_format],
            **widest,
        },
    )
    pattern = pattern_of(spec)
    other = names.setdefault(pattern, spec)
    if other is not spec:
        raise MediaError(
            f"record {spec.record_id!r} content {spec.content!r} ({spec.video_path}) would write "
            f"the same image names as record {other.record_id!r} content {other.content!r} "
            f"({other.video_path}) under {output.name_template!r}; nothing of it was run. Give "
            "--name-template the fields that tell them apart ({record_id}, {content})"
        )
    claim_names(output.root.resolve(), spec, takeover=takeover, corrects=True)


def _reason(error: BaseException) -> str:
    text = str(error).strip() or repr(error)
    return text if isinstance(error, FramefleetError) else f"{type(error).__name__}: {text}"


def _whole_recording(row: Mapping[str, Any], output: OutputSpec) -> SegmentSpec:
    """A stand-in spec for a recording that could not be planned (what status shows). Never
    run: it has no start time, timestamps, topic or grid; its segment is failed, marked not
    planned (`framefleet.jobs.store.NOT_PLANNED`), and ``retry`` leaves it failed."""
    return SegmentSpec(
        video_path=str(row.get("path") or "?").replace("\x00", "?"),
        record_id=str(row.get("record_id") or "?").replace("\x00", "?"),
        content=_content(row).replace("\x00", "?"),
        output=output,
    )


def _content(row: Mapping[str, Any]) -> str:
    return str(row.get("contents") or "video")


def _record_anchors(rows: Iterable[Mapping[str, Any]], anchor: float | None) -> dict[str, float]:
    """Each record's grid anchor: ``anchor``, else its earliest matched start."""
    anchors: dict[str, float] = {}
    for row in rows:
        start = _number(row.get("start_timestamp"))
        record = str(row["record_id"])
        if anchor is not None:
            anchors[record] = anchor
        elif start is not None:
            anchors[record] = min(start, anchors.get(record, start))
    return anchors


def _video_segments(
    row: Mapping[str, Any],
    *,
    output: OutputSpec,
    segment_seconds: float,
    grid_anchor: float | None = None,
    bag_time: BagClock = "header",
) -> list[SegmentSpec]:
    timestamps = None if not row.get("timestamps_path") else str(row["timestamps_path"])
    version = source_version(str(row["path"]), timestamps)

    def segment(start_seconds: float, end_seconds: float | None) -> SegmentSpec:
        return SegmentSpec(
            video_path=str(row["path"]),
            record_id=str(row["record_id"]),
            content=_content(row),
            start_timestamp=_number(row.get("start_timestamp")),
            timestamps_path=timestamps,
            start_seconds=start_seconds,
            end_seconds=end_seconds,
            source_version=version,
            grid_anchor=grid_anchor,
            topic=topic,
            bag_time=bag_time,
            output=output,
        )

    topic = _content(row) if is_image_topic(row) else None
    duration = _duration(row)
    if duration is None:
        return [segment(0.0, None)]
    if duration / segment_seconds > MAX_SEGMENTS_PER_VIDEO:
        raise MediaError(
            f"{row['path']}: the metadata says the recording lasts {duration:.0f} s, which would "
            f"be more than {MAX_SEGMENTS_PER_VIDEO} segments of {segment_seconds:g} s; check its "
            "start_timestamp/end_timestamp, or use longer --segment-seconds"
        )
    if topic is not None:  # a bag topic: every image stands alone, any boundary is as good
        spans = split_segments(0.0, duration, segment_seconds=segment_seconds, open_ended=True)
        return [segment(s.start_seconds, s.end_seconds) for s in spans]
    # Boundaries on keyframes (no GOP decoded twice); the index made for that is shared with
    # the workers through the output root.
    keyframes = keyframe_seconds(
        str(row["path"]),
        timestamps_path=timestamps,
        start_timestamp=_number(row.get("start_timestamp")),
        index_cache=output.root.resolve() / INDEX_DIR,
    )
    spans = align_segments(
        0.0,
        duration,
        keyframe_seconds=keyframes,
        segment_seconds=segment_seconds,
        open_ended=True,
    )
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
