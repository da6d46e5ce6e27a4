"""Catalog entries for a video that has no sidecar: what its probe and its camera CSV tell.

The video's record id is its stem (or the one given to ingest), its single content is
`BARE_VIDEO_CONTENT` tagged ``video``; its camera timestamps CSV, when it has one, is an entry of
its own (content tagged ``timestamps``) that the store links to the video.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from framefleet.catalog.entries import ContentEntry, FileEntry, VideoInfoLike
from framefleet.errors import MetadataError, TimestampsError
from framefleet.pydtk import read_camera_times_ms

BARE_VIDEO_CONTENT = "video"
"""Content name of a video added without a sidecar (as in pydtk's own sample)."""


def camera_times_ms(csv: Path) -> tuple[int, ...]:
    """The frame times of a camera CSV (`framefleet.pydtk`'s strict rules).

    Raises:
        MetadataError: the CSV breaks them; the message names the file and the row.
    """
    try:
        return read_camera_times_ms(csv)
    except TimestampsError as e:
        raise MetadataError(str(e)) from e


def video_entries(
    video: Path,
    csv: Path,
    info: VideoInfoLike,
    times_ms: tuple[int, ...],
    *,
    key: str,
    record_id: str,
    database_id: str | None,
    start: float,
) -> list[FileEntry]:
    """The video's entry and, when it has camera times, its timestamps CSV's (linked by name)."""
    duration = float(info.duration_seconds)
    end = max(start + duration, times_ms[-1] / 1000.0) if times_ms else start + duration
    entries = [
        FileEntry(
            path=video,
            record_id=record_id,
            database_id=database_id,
            data_type="raw_data",
            contents=(ContentEntry(name=BARE_VIDEO_CONTENT, tags=("video",)),),
            source_key=key,
            content_type=mimetypes.guess_type(video.name)[0] or "video/mp4",
            start_timestamp=start,
            end_timestamp=end,
            duration_seconds=duration,
            fps=float(info.fps),
            width=int(info.width),
            height=int(info.height),
            frame_count=int(info.frame_count),
        )
    ]
    if times_ms:
        entries.append(
            FileEntry(
                path=csv.resolve(),
                record_id=record_id,
                database_id=database_id,
                data_type="raw_data",
                contents=(ContentEntry(name=BARE_VIDEO_CONTENT, tags=("timestamps",)),),
                source_key=key,
                content_type="text/csv",
                start_timestamp=times_ms[0] / 1000.0,
                end_timestamp=times_ms[-1] / 1000.0,
                count=len(times_ms),
            )
        )
    return entries


def unchanged(video: Path, key: str) -> FileEntry:
    """A stand-in for a known, unchanged video: the store sees the same key and writes nothing."""
    return FileEntry(path=video, record_id="", contents=(), source_key=key)
