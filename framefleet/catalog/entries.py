"""What ingest hands the store: one `FileEntry` per data file, already validated.

Entries carry absolute paths; the store decides how to write them (relative to the base directory
when under it). They are built from a pydtk sidecar (`framefleet.catalog.sidecar`) or from probing
a video that has none (`framefleet.catalog.ingest`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class VideoInfoLike(Protocol):
    """What the catalog needs from a video probe (`framefleet.media.probe.VideoInfo` fits)."""

    @property
    def duration_seconds(self) -> float: ...
    @property
    def fps(self) -> float: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def frame_count(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class ContentEntry:
    """One content of a file: its name, its tags in order, and pydtk's per-content fields."""

    name: str
    tags: tuple[str, ...] = ()
    msg_type: str | None = None
    msg_md5sum: str | None = None
    count: int | None = None
    frequency: float | None = None


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    """One data file as the catalog stores it."""

    path: Path
    """Absolute, resolved."""
    record_id: str
    contents: tuple[ContentEntry, ...]
    source_key: str
    """A digest of what this entry was built from; unchanged means nothing to write."""
    description: str | None = None
    database_id: str | None = None
    sub_record_id: str | None = None
    data_type: str | None = None
    content_type: str | None = None
    start_timestamp: float | None = None
    end_timestamp: float | None = None
    msg_type: str | None = None
    msg_md5sum: str | None = None
    count: int | None = None
    frequency: float | None = None
    duration_seconds: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    frame_count: int | None = None
