"""What ingest hands the store: one `FileEntry` per data file, validated by `check_entry`.

Entries carry absolute paths; the store decides how to write them (relative to the base directory
when under it). They are built from a pydtk sidecar (`framefleet.catalog.sidecar`) or from probing
a video that has none (`framefleet.catalog.ingest`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from framefleet.catalog.values import (
    FREQUENCY_RANGE,
    MAX_CONTENTS,
    MAX_DESCRIPTION_CHARS,
    MAX_INTEGER,
    MAX_NAME_CHARS,
    MAX_TAGS,
    TIMESTAMP_RANGE,
    check_paths,
    number_problem,
    show_path,
    show_value,
    text_problem,
)
from framefleet.errors import MetadataError


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
    sidecar_path: Path | None = None
    """The sidecar it was read from (absolute), or None for a probed video."""
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
    source_file_id: int | None = None
    """For an image a job extracted (`framefleet.catalog.derived`): its video's row id."""
    job_id: str | None = None
    """For an image a job extracted: the job that registered it."""


_NAMES = ("record_id", "database_id", "sub_record_id", "data_type", "content_type", "job_id")
_PER_CONTENT_NAMES = ("msg_type", "msg_md5sum")
_NUMBERS = {
    "start_timestamp": TIMESTAMP_RANGE,
    "end_timestamp": TIMESTAMP_RANGE,
    "frequency": FREQUENCY_RANGE,
    "duration_seconds": (0.0, TIMESTAMP_RANGE[1]),
    "fps": (0.0, 1e6),
}
_INTEGERS = ("count", "width", "height", "frame_count", "source_file_id")


def check_entry(entry: FileEntry) -> None:
    """Check that every value of ``entry`` fits the catalog (see `framefleet.catalog.values`).

    Raises:
        MetadataError: naming the file, the field and what is wrong with it.
    """
    where = show_path(entry.path)
    check_paths((("path", entry.path), ("sidecar path", entry.sidecar_path)), where)
    texts = [(name, getattr(entry, name), False) for name in (*_NAMES, *_PER_CONTENT_NAMES)]
    texts.append(("description", entry.description, True))
    for name, value, long in texts:
        if value is not None:
            limit = MAX_DESCRIPTION_CHARS if long else MAX_NAME_CHARS
            _text(where, name, value, limit, name_like=not long)
    for name, (low, high) in _NUMBERS.items():
        _number(where, name, getattr(entry, name), low, high)
    for name in _INTEGERS:
        _number(where, name, getattr(entry, name), 0, MAX_INTEGER)
    if len(entry.contents) > MAX_CONTENTS:
        raise MetadataError(f"{where}: {len(entry.contents)} contents (at most {MAX_CONTENTS})")
    for content in entry.contents:
        _text(where, "content name", content.name, MAX_NAME_CHARS)
        inner = f"{where}: contents[{content.name!r}]"
        if len(content.tags) > MAX_TAGS:
            raise MetadataError(f"{inner}: {len(content.tags)} tags (at most {MAX_TAGS})")
        for tag in content.tags:
            _text(inner, "tag", tag, MAX_NAME_CHARS)
        for name in _PER_CONTENT_NAMES:
            value = getattr(content, name)
            if value is not None:
                _text(inner, name, value, MAX_NAME_CHARS)
        _number(inner, "count", content.count, 0, MAX_INTEGER)
        _number(inner, "frequency", content.frequency, *FREQUENCY_RANGE)


def _text(where: str, name: str, value: str, limit: int, *, name_like: bool = True) -> None:
    problem = text_problem(value, max_chars=limit, name_like=name_like)
    if problem is not None:
        raise MetadataError(f"{where}: {name} {problem}")


def _number(where: str, name: str, value: float | None, low: float, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetadataError(f"{where}: {name} is not a number ({show_value(value)})")
    problem = number_problem(value, low, high)
    if problem is not None:
        raise MetadataError(f"{where}: {name} {problem}")
