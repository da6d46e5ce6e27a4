"""The notebook API, pydtk-compatible: frames of one recording as NumPy arrays.

``iter_frames`` streams, so memory stays bounded whatever the recording's length;
``read_frames`` collects them into pydtk's ``(timestamps, data, columns)``. Both take the same
keyword options (`FrameOptions`): a grid rate, or the times of another sensor (``at_times``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal, TypedDict

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter
from typing_extensions import Unpack

from framefleet.errors import ConfigError
from framefleet.media.attimes import parse_time_values, times_digest
from framefleet.media.bagframes import iter_bag_frames
from framefleet.media.bags import BagImage
from framefleet.media.images import frame_to_rgb
from framefleet.media.pipeline import SegmentPlan, check_window, iter_segment_frames, plan_segment
from framefleet.media.specs import OutputSpec, SegmentSpec
from framefleet.media.timing import recording_start, timestamps_csv_for
from framefleet.pydtk import is_bag_file_name, is_ros2_bag_dir

COLUMNS = ["red", "green", "blue"]
"""What the last axis of ``data`` holds."""

Metadata = Mapping[str, Any] | str | os.PathLike[str]


class FrameOptions(TypedDict, total=False):
    """The keyword options of `iter_frames` and `read_frames`.

    target_frame_rate: grid rate in frames per second (default 2).
    at_times: instead of a grid, these epoch seconds (another sensor's): for each, the frame
        shown then; a frame answering several is returned once.
    max_gap_ms: with ``at_times``, skip a time whose frame was shown longer ago than this.
    resize_rate: scale factor (pydtk's parameter), or ``max_side_px``.
    start_timestamp: first time to include (epoch seconds, like the metadata), inclusive.
    end_timestamp: time to stop at, exclusive.
    mode: ``"exact"`` (the frame shown at each grid time, the default) or ``"keyframes"``.
    fast_decode: skip H.264's deblocking filter: ~1.2x faster decoding, pixels no longer
        bit-exact (~40 dB PSNR at a quarter size; `OutputSpec.fast_decode`).
    bag_time: a bag topic's clock: ``"header"`` stamps (the default) or ``"receive"`` times.

    A bag (ROS1, ROS2, MCAP) is read like a video when the metadata's ``contents`` names its
    image topic, as the catalog's rows of bag topics do.
    """

    target_frame_rate: float | str
    at_times: Sequence[float | str | Decimal] | None
    max_gap_ms: float | None
    resize_rate: float | None
    max_side_px: int | None
    start_timestamp: float | None
    end_timestamp: float | None
    mode: Literal["exact", "keyframes"]
    fast_decode: bool
    bag_time: Literal["header", "receive"]


def iter_frames(
    metadata: Metadata, *, decode_threads: int = 0, **options: Unpack[FrameOptions]
) -> Iterator[tuple[float, npt.NDArray[np.uint8]]]:
    """Stream ``(timestamp, rgb)`` for the frames of one video, H x W x 3 uint8.

    Args:
        metadata: a pydtk metadata dict (``path``, ``start_timestamp``, ``record_id``, ...) or a
            video path. A ``<stem>_timestamps.csv`` beside the video supplies the camera clock.
        decode_threads: decoder threads (0: FFmpeg's choice).
        options: see `FrameOptions`.

    Raises:
        ConfigError: a bad option, or a window outside the recording (naming its span).
        MediaError: the video (or its timestamps CSV) cannot be read.
    """
    spec, plan = _plan(metadata, options)
    resize = spec.output.resize
    reformatter = VideoReformatter()
    frames: Iterator[tuple[Any, Any, Any, Any]] = (
        iter_bag_frames(spec, plan)
        if spec.topic is not None
        else iter_segment_frames(spec, decode_threads=decode_threads, plan=plan)
    )
    for planned, times, _, frame in frames:
        if isinstance(frame, BagImage):  # a bag topic's image: the same resize as a video's
            pixels = frame.to_rgb()
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        size = resize.target_size(frame.width, frame.height)
        rgb = frame_to_rgb(frame, size, reformatter=reformatter)
        yield times.epoch(planned.pick.frame), np.asarray(rgb.to_ndarray(), dtype=np.uint8)


def read_frames(
    metadata: Metadata, **options: Unpack[FrameOptions]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8], list[str]]:
    """pydtk's ``(timestamps, data, columns)``: N timestamps, N x H x W x 3 RGB uint8, channels.

    Same arguments as `iter_frames`. Holds every frame in memory: use `iter_frames` for long
    recordings at full size.
    """
    pairs = list(iter_frames(metadata, **options))
    timestamps = np.asarray([t for t, _ in pairs], dtype=np.float64)
    if not pairs:
        return timestamps, np.empty((0, 0, 0, 3), dtype=np.uint8), list(COLUMNS)
    return timestamps, np.stack([rgb for _, rgb in pairs]), list(COLUMNS)


def _plan(metadata: Metadata, options: FrameOptions) -> tuple[SegmentSpec, SegmentPlan]:
    unknown = set(options) - set(FrameOptions.__annotations__)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(FrameOptions.__annotations__)}"
        )
    requested = _requested(options.get("at_times"))
    spec = _segment(metadata, options, requested)
    plan = plan_segment(spec, requested=requested)
    if options.get("start_timestamp") is not None or options.get("end_timestamp") is not None:
        check_window(spec, plan.times)
    return spec, plan


def _requested(at_times: Sequence[float | str | Decimal] | None) -> list[Fraction] | None:
    return None if at_times is None else [Fraction(t) for t in parse_time_values(at_times)]


def _segment(
    metadata: Metadata, options: FrameOptions, requested: list[Fraction] | None
) -> SegmentSpec:
    meta: Mapping[str, Any] = (
        {"path": os.fspath(metadata)} if isinstance(metadata, str | os.PathLike) else metadata
    )
    if "path" not in meta:
        raise ConfigError("metadata needs a 'path' (the video file)")
    path = str(meta["path"])
    csv = meta.get("timestamps_path") or timestamps_csv_for(path)
    start = recording_start(meta.get("start_timestamp"), csv)
    anchor = float(start or 0.0)
    start_timestamp, end_timestamp = options.get("start_timestamp"), options.get("end_timestamp")
    start_seconds = 0.0 if start_timestamp is None else max(0.0, start_timestamp - anchor)
    end_seconds = None if end_timestamp is None else end_timestamp - anchor
    if end_seconds is not None and end_seconds <= start_seconds:
        raise ConfigError(
            f"end_timestamp ({end_timestamp}) must be after start_timestamp "
            f"({start_timestamp if start_timestamp is not None else anchor}) and the "
            f"recording's start ({anchor})"
        )
    contents = meta.get("contents")
    topic = None
    if is_bag_file_name(path) or is_ros2_bag_dir(path):
        if not isinstance(contents, str) or not contents:
            raise ConfigError(f"{path!r} is a bag: name its image topic as the 'contents'")
        topic = contents
    digest = None if requested is None else times_digest(_decimal(t) for t in requested)
    return SegmentSpec(
        video_path=path,
        record_id=str(meta.get("record_id") or os.path.splitext(os.path.basename(path))[0]),
        content=contents if isinstance(contents, str) else "video",
        start_timestamp=start,
        timestamps_path=None if csv is None else str(csv),
        start_seconds=start_seconds,
        end_seconds=end_seconds,
        topic=topic,
        bag_time=options.get("bag_time", "header"),
        output=OutputSpec(
            out_dir=".",
            target_fps=str(options.get("target_frame_rate", 2.0)),
            mode=options.get("mode", "exact"),
            resize_rate=options.get("resize_rate"),
            max_side_px=options.get("max_side_px"),
            fast_decode=options.get("fast_decode", False),
            at_times=digest,
            max_gap_ms=options.get("max_gap_ms"),
        ),
    )


def _decimal(t: Fraction) -> Decimal:
    return Decimal(t.numerator) / Decimal(t.denominator)
