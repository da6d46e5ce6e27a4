"""``process_segment(spec) -> SegmentResult``: the whole media job for one segment.

Index the video (cached in the process and under ``{out}/_index`` for the job's other
processes), time its frames, pick the grid's frames in ``[start, end)``, decode only those,
and hand each frame to a writer thread that resizes, encodes and writes it atomically while the
next one decodes (`framefleet.media.writer`); then write the segment manifest *last*: a segment
with a manifest is complete, and running it again writes nothing. A segment first claims its
image names (`framefleet.media.ownership`, which refuses a spec whose video changed since it
was planned) and checks before each write that it still owns them: one taken over stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.video.reformatter import VideoReformatter

from framefleet.errors import (
    ConfigError,
    InvalidVideoError,
    MediaError,
    OutputError,
    TruncatedVideoError,
)
from framefleet.media.attimes import load_requested_times
from framefleet.media.bagframes import bag_times, iter_bag_frames, render_bag_image
from framefleet.media.bags import BagImage, TopicIndex
from framefleet.media.decode import DecodeStats, decode_frames
from framefleet.media.images import EXTENSIONS, encode_image, frame_to_rgb, inside, write_atomic
from framefleet.media.manifest import (
    ImageRecord,
    MissingRecord,
    read_manifest,
    read_manifest_lines,
    write_manifest,
)
from framefleet.media.naming import INDEX_DIR, path_safe, render_name
from framefleet.media.ownership import OwnerGuard, check_unchanged, claim_names
from framefleet.media.probe import VideoIndex, index_video
from framefleet.media.sampling import Missing, Pick, parse_fps, pick_at_times, pick_frames
from framefleet.media.specs import OutputSpec, SegmentSpec
from framefleet.media.timing import FrameTimes, exact, frame_times, read_timestamps_csv
from framefleet.media.writer import OverlappedWriter

__all__ = [  # ImageRecord and read_manifest live in `manifest`; they are known from here too
    "DEFAULT_MAX_FRAME_PIXELS",
    "ImageRecord",
    "PlannedFrame",
    "SegmentPlan",
    "SegmentResult",
    "check_window",
    "iter_segment_frames",
    "plan_segment",
    "prepare_root",
    "process_segment",
    "read_manifest",
    "read_manifest_lines",
]

DEFAULT_MAX_FRAME_PIXELS = 40_000_000
"""Frames larger than this are refused (8K UHD is 33 MP): a full-size frame and the decoder's
reference frames take ~6 bytes a pixel each, so a 67 MP frame needs well over a gigabyte."""


@dataclass
class SegmentResult:
    """What one segment produced and what it cost."""

    record_id: str
    content: str
    start_seconds: float
    end_seconds: float | None
    manifest_path: str
    images: list[ImageRecord] = field(default_factory=list)
    missing: list[MissingRecord] = field(default_factory=list)
    frames_demuxed: int = 0
    frames_decoded: int = 0
    frames_minimal: int = 0
    bytes_written: int = 0
    decode_seconds: float = 0.0
    wall_seconds: float = 0.0
    skipped: bool = False
    """True when the segment was already complete (its manifest existed): nothing was written."""

    @property
    def images_written(self) -> int:
        return len(self.images)

    def summary(self) -> dict[str, Any]:
        """The counters, without the image list (what a queue reports)."""
        data = asdict(self)
        del data["images"], data["missing"]
        data["images_written"] = self.images_written
        data["missing_times"] = len(self.missing)
        return data


@dataclass(frozen=True)
class PlannedFrame:
    """A frame the segment will emit: decode index, display index, grid time."""

    decode_index: int
    pick: Pick


_Item = tuple[PlannedFrame, FrameTimes, VideoIndex | TopicIndex, av.VideoFrame | BagImage]
"""A decoded frame on its way to the writer thread."""


@dataclass(frozen=True)
class SegmentPlan:
    """What a segment will do, known before decoding anything."""

    index: VideoIndex | TopicIndex
    """The video's packet index, or the bag topic's message index."""
    times: FrameTimes
    frames: list[PlannedFrame]
    missing: list[Missing]
    """Requested times in the segment that no frame answers."""


def plan_segment(
    spec: SegmentSpec,
    *,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    index_cache: Path | None = None,
    requested: Sequence[Fraction] | None = None,
) -> SegmentPlan:
    """Which frames ``spec`` emits, decided from the packet index alone (nothing decoded).

    Args:
        index_cache: where the job keeps packet indexes (`probe.index_video`), if anywhere.
        requested: the requested times (epoch seconds) when not stored under the output root
            (the notebook API); by default those of ``spec.output.at_times``.

    Raises:
        MediaError: the video is unreadable, changed since the job was planned, or its frames
            are larger than ``max_frame_pixels``.
    """
    check_unchanged(spec)
    index: VideoIndex | TopicIndex
    if spec.topic is not None:
        index, times = bag_times(spec, max_frame_pixels=max_frame_pixels)
    else:
        index = index_video(spec.video_path, cache_dir=index_cache)
        pixels = index.width * index.height
        if pixels > max_frame_pixels:
            raise InvalidVideoError(
                f"{spec.video_path!r} has {index.width}x{index.height} frames "
                f"({pixels / 1e6:.1f} MP), more than max_frame_pixels "
                f"({max_frame_pixels / 1e6:.1f} MP); decoding them needs gigabytes: raise the "
                "max_frame_pixels setting if this host has the memory"
            )
        clock = read_timestamps_csv(spec.timestamps_path) if spec.timestamps_path else None
        times = frame_times(index, start_timestamp=spec.start_timestamp, clock=clock)
    output = spec.output
    start = exact(spec.start_seconds)
    end = None if spec.end_seconds is None else exact(spec.end_seconds)
    missing: list[Missing] = []
    if requested is not None or output.at_times is not None:
        epoch = requested if requested is not None else _stored_times(output)
        picks, missing = pick_at_times(
            times.seconds,
            end_of_last=times.end_seconds,
            requested=[t - times.start_timestamp for t in epoch],
            start_seconds=start,
            end_seconds=end,
            max_gap=None if output.max_gap_ms is None else exact(output.max_gap_ms) / 1000,
        )
    else:
        candidates = None  # a bag topic's every image is a keyframe: all are candidates
        if output.mode == "keyframes" and isinstance(index, VideoIndex):
            candidates = sorted(int(index.display_rank[i]) for i in index.is_keyframe.nonzero()[0])
        anchor = Fraction(0) if spec.grid_anchor is None else exact(spec.grid_anchor)
        picks = pick_frames(
            times.seconds,
            end_of_last=times.end_seconds,
            target_fps=parse_fps(output.target_fps),
            start_seconds=start,
            end_seconds=end,
            candidates=candidates,
            grid_offset=Fraction(0) if spec.grid_anchor is None else anchor - times.start_timestamp,
        )
    if isinstance(index, VideoIndex):
        planned = [PlannedFrame(int(index.display_order[p.frame]), p) for p in picks]
    else:
        planned = [PlannedFrame(index.positions[p.frame], p) for p in picks]
    return SegmentPlan(index, times, planned, missing)


def _stored_times(output: OutputSpec) -> tuple[Fraction, ...]:
    assert output.at_times is not None
    return load_requested_times(output.root.resolve(), output.at_times)


def check_window(spec: SegmentSpec, times: FrameTimes) -> None:
    """Refuse a requested window ``[start, end)`` that lies entirely outside the recording.

    For windows a person asked for (``extract-file --start/--end``, the notebook API); planned
    segments past a recording's end (metadata often runs a frame long) just emit nothing.

    Raises:
        ConfigError: naming the window and the recording's span.
    """
    first, end = times.seconds[0], times.end_seconds
    start = exact(spec.start_seconds)
    stop = None if spec.end_seconds is None else exact(spec.end_seconds)
    if start >= end or (stop is not None and stop <= first):
        anchor = times.start_timestamp
        shown = "end" if stop is None else f"{float(anchor + stop):.3f}"
        raise ConfigError(
            f"the requested window [{float(anchor + start):.3f}, {shown}) lies outside the "
            f"recording {spec.video_path!r}, which spans [{float(anchor + first):.3f}, "
            f"{float(anchor + end):.3f}) ({'epoch' if anchor else 'video'} seconds)"
        )


def iter_segment_frames(
    spec: SegmentSpec,
    *,
    decode_threads: int = 0,
    stats: DecodeStats | None = None,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    index_cache: Path | None = None,
    plan: SegmentPlan | None = None,
) -> Iterator[tuple[PlannedFrame, FrameTimes, VideoIndex, av.VideoFrame]]:
    """Decode the planned frames of ``spec`` in display order, full size, not yet resized.

    ``plan``: the segment's plan, when the caller made it already (`plan_segment`).

    Raises TruncatedVideoError *after* yielding every frame before the cut when the segment
    reaches past the end of a truncated video.
    """
    if plan is None:
        plan = plan_segment(spec, max_frame_pixels=max_frame_pixels, index_cache=index_cache)
    index, times = plan.index, plan.times
    if not isinstance(index, VideoIndex):
        raise ConfigError(f"{spec.video_path!r} is a bag: its frames come from iter_bag_frames")
    by_decode = {p.decode_index: p for p in plan.frames}
    frames = decode_frames(
        index, by_decode, threads=decode_threads, fast=spec.output.fast_decode, stats=stats
    )
    for i, frame in frames:
        yield by_decode[i], times, index, frame
    last_time = times.seconds[-1]
    if index.truncated and (spec.end_seconds is None or exact(spec.end_seconds) > last_time):
        raise TruncatedVideoError(
            f"{spec.video_path!r} is truncated ({index.stop_reason}): stopped at "
            f"{float(last_time):.3f} s, after frame {index.frame_count}; the images before the "
            "cut were written, the segment is not complete"
        )


def process_segment(
    spec: SegmentSpec,
    *,
    decode_threads: int = 0,
    force: bool = False,
    takeover: bool = False,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    on_image: Callable[[ImageRecord], None] | None = None,
) -> SegmentResult:
    """Make the images of one segment and its manifest; see the module docstring.

    Args:
        decode_threads: decoder threads (0: FFmpeg's choice; 1 suits one process per core).
        force: redo a segment even if its manifest says it is complete.
        takeover: replace images that another spec owns under the same names
            (`framefleet.media.ownership`); without it such a segment is refused.
        max_frame_pixels: refuse videos with larger frames (memory guard).
        on_image: called after each image is written (progress bars).

    Raises:
        MediaError: the video is missing, unreadable, truncated, changed since the job was
            planned (checked before anything is claimed), or its timestamps do not match.
        OutputError: the output root cannot be written, or a name escapes it.
        OutputConflictError: another spec owns these image names (see ``takeover``), or took
            them over while this segment ran (it stops before its next write).
    """
    t0 = time.perf_counter()
    output = spec.output
    root = prepare_root(output.root)
    manifest = inside(root, spec.manifest_name)
    result = SegmentResult(
        record_id=spec.record_id,
        content=spec.content,
        start_seconds=spec.start_seconds,
        end_seconds=spec.end_seconds,
        manifest_path=str(manifest),
    )
    claim_names(root, spec, takeover=takeover)
    if manifest.is_file() and not force:
        result.images, result.missing = read_manifest_lines(manifest)
        result.skipped = True
        result.wall_seconds = time.perf_counter() - t0
        return result
    guard = OwnerGuard(root, spec)
    stats = DecodeStats()
    ext = EXTENSIONS[output.image_format]
    record_safe, content_safe = path_safe(spec.record_id), path_safe(spec.content)
    identity = spec.identity
    written: dict[Path, float] = {}  # the writer thread's own
    reformatter = VideoReformatter()  # the writer thread's own: one scaler set-up per segment

    def write(item: _Item) -> ImageRecord:
        """Resize, encode and write one frame (in the writer thread)."""
        planned, times, index, frame = item
        if isinstance(frame, BagImage):
            data, size = render_bag_image(
                frame, output, reformatter, max_frame_pixels=max_frame_pixels
            )
            pts_seconds = times.seconds[planned.pick.frame] - times.seconds[0]
        else:
            assert isinstance(index, VideoIndex)
            size = output.resize.target_size(frame.width, frame.height)
            rgb = frame_to_rgb(frame, size, reformatter=reformatter)
            data = encode_image(rgb, image_format=output.image_format, quality=output.quality)
            pts_seconds = index.pts_seconds(int(index.pts[planned.decode_index]))
        timestamp = times.epoch(planned.pick.frame)
        grid_time = float(times.start_timestamp + planned.pick.grid_seconds)
        relative = render_name(
            output.name_template,
            record_id=record_safe,
            content=content_safe,
            timestamp=timestamp,
            grid_time=grid_time,
            frame=planned.pick.frame,
            ext=ext,
        )
        path = inside(root, relative)
        if path in written:
            raise OutputError(
                f"name template {output.name_template!r} gives the frames at "
                f"{written[path]:.6f} and {timestamp:.6f} the same name {relative!r}; "
                "use more decimals ({timestamp:.6f}) or {frame}"
            )
        written[path] = timestamp
        with guard.writing():  # stops here once another spec took the names over
            write_atomic(path, data)
        return ImageRecord(
            path=str(path.relative_to(root)),
            record_id=spec.record_id,
            content=spec.content,
            timestamp=timestamp,
            grid_time=grid_time,
            pts_seconds=float(pts_seconds),
            width=size[0],
            height=size[1],
            bytes=len(data),
            spec=identity,
            grid_count=planned.pick.count,
            requested_times=[float(times.start_timestamp + t) for t in planned.pick.requested]
            if output.at_times is not None
            else None,
        )

    def report(records: list[ImageRecord]) -> None:
        for record in records:
            result.images.append(record)
            result.bytes_written += record.bytes
            if on_image is not None:
                on_image(record)

    plan = plan_segment(spec, max_frame_pixels=max_frame_pixels, index_cache=root / INDEX_DIR)
    result.missing = [
        MissingRecord(
            record_id=spec.record_id,
            content=spec.content,
            requested_time=float(plan.times.start_timestamp + m.requested),
            missing=m.reason,
            spec=identity,
        )
        for m in plan.missing
    ]
    frames: Iterator[_Item] = (
        iter_bag_frames(spec, plan)
        if spec.topic is not None
        else iter_segment_frames(spec, decode_threads=decode_threads, stats=stats, plan=plan)
    )
    writer: OverlappedWriter[_Item, ImageRecord] = OverlappedWriter(write)
    try:
        for item in frames:
            report(writer.submit(item))
        report(writer.close())
    except MediaError:
        # The video's problem (a cut, damage): the images before it are written, as they
        # would be without the writer thread, unless the writer failed too.
        report(writer.close())
        raise
    except BaseException:
        writer.abort()  # the writer's own error, a callback's, an interrupt: stop now
        raise
    finally:
        result.frames_demuxed = stats.packets_demuxed
        result.frames_decoded = stats.frames_decoded
        result.frames_minimal = stats.frames_minimal
        result.decode_seconds = stats.decode_seconds
        result.wall_seconds = time.perf_counter() - t0
    with guard.writing():
        write_manifest(manifest, result.images, result.missing)
    result.wall_seconds = time.perf_counter() - t0
    return result


def prepare_root(root: Path) -> Path:
    """Create the output root if needed; its resolved path."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"cannot create output directory {str(root)!r}: {e.strerror or e}; choose another --out"
        ) from e
    if not root.is_dir():
        raise OutputError(f"output path {str(root)!r} is not a directory")
    return root.resolve()
