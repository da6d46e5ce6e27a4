"""Reading a job manifest for export: its lines, their images on disk, their sources' metadata.

A job manifest (`framefleet.jobs.manifest`) has one JSON object per line. A line with a ``path``
is an image (`framefleet.media.pipeline.ImageRecord`); a line without one reports a requested
time that no frame answers (``missing``): it is exported as a row, but has no image to pack.
Lines are read one at a time, so a manifest of any length is read in bounded memory.

Every image a line names must be on disk, with the size the line gives: an export never skips
an image silently, and never packs one that was rewritten after its manifest line.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from framefleet.errors import ConfigError, OutputError
from framefleet.media.naming import JOBS_DIR

SOURCE_FIELDS = (
    "id",
    "path",
    "timestamps_path",
    "database_id",
    "sub_record_id",
    "description",
    "data_type",
    "content_type",
    "start_timestamp",
    "end_timestamp",
    "tags",
)
"""The fields of a source row (a catalog query dict) that an export carries, in this order."""

SourceKey = tuple[str, str]
"""``(record_id, content)``: how a manifest line names the video it comes from."""

Sources = Mapping[SourceKey, Mapping[str, Any]]
"""Source rows by ``(record_id, content)``; `sources_by_content` builds one from query dicts."""


@dataclass(frozen=True)
class Line:
    """One line of a job manifest."""

    number: int
    """1-based, for messages."""
    data: dict[str, Any]
    """The JSON object as written."""

    @property
    def path(self) -> str | None:
        """The image's path relative to the output root; None for a line without an image."""
        value = self.data.get("path")
        return value if isinstance(value, str) else None

    @property
    def source_key(self) -> SourceKey:
        return (self.data["record_id"], self.data["content"])


def sources_by_content(rows: Iterable[Mapping[str, Any]]) -> dict[SourceKey, Mapping[str, Any]]:
    """Index catalog query dicts (``Catalog.query``) by ``(record_id, contents)``.

    The rows a job was planned from do: a job writes one recording's content from one video.
    """
    return {(str(row["record_id"]), str(row["contents"])): row for row in rows}


def iter_lines(manifest: Path, *, images: bool = True) -> Iterator[Line]:
    """The lines of a JSON-lines manifest, in order.

    Args:
        images: the lines describe images (a job manifest): each must have string
            ``record_id`` and ``content`` and, when it has one, a relative ``path``. With False
            (a frameset manifest) any JSON object will do.

    Raises:
        OutputError: the manifest cannot be read, or a line is not such a JSON object.
    """
    try:
        with manifest.open(encoding="utf-8", errors="surrogatepass") as f:
            for number, text in enumerate(f, start=1):
                if text.strip():
                    yield _parse(manifest, number, text, images=images)
    except OSError as e:
        raise OutputError(
            f"job manifest {str(manifest)!r} cannot be read: {e.strerror or e}"
        ) from e


def _parse(manifest: Path, number: int, text: str, *, images: bool) -> Line:
    where = f"manifest {str(manifest)!r} line {number}"
    try:
        data = json.loads(text)
    except ValueError as e:
        raise OutputError(f"{where} is not JSON ({e}); assemble the manifest again") from e
    if not isinstance(data, dict):
        raise OutputError(f"{where} is not a JSON object; assemble the manifest again")
    if not images:
        return Line(number, data)
    for name in ("record_id", "content"):
        if not isinstance(data.get(name), str):
            raise OutputError(f"{where} has no {name} (text); assemble the manifest again")
    path = data.get("path")
    if path is not None and not _relative_name(path):
        raise OutputError(
            f"{where}: image path {path!r} is not a plain relative name under the output root "
            "(absolute, empty, '.' or '..' parts); this manifest was not written by framefleet"
        )
    return Line(number, data)


def _relative_name(path: object) -> bool:
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        return False
    parts = PurePosixPath(path).parts
    return not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def image_file(out_root: Path, line: Line) -> Path:
    """Where the image of ``line`` is on disk, checked to be a regular file of its size.

    ``out_root`` is resolved by the caller, once; the name was checked when the line was read,
    so the path cannot climb out of the root by its text.

    Raises:
        OutputError: the image is missing, not a regular file, or not the size the line gives.
    """
    assert line.path is not None
    path = out_root / line.path
    try:
        found = os.stat(path)
    except OSError as e:
        raise _missing(line, path, e.strerror or str(e)) from e
    check_file(path, found, line)
    return path


def check_file(path: Path, found: os.stat_result, line: Line) -> None:
    """Refuse an image that is not a regular file of the size its line gives.

    Raises:
        OutputError: naming the image, the line and what to do.
    """
    if not stat.S_ISREG(found.st_mode):
        raise _missing(line, path, "not a regular file")
    expected = line.data.get("bytes")
    if isinstance(expected, int) and not isinstance(expected, bool) and expected != found.st_size:
        raise OutputError(
            f"image {str(path)!r} (manifest line {line.number}) has {found.st_size} bytes on "
            f"disk, the manifest says {expected}: it was rewritten after the job; run the job "
            "again (or with --force) so that its manifest describes it"
        )


def _missing(line: Line, path: Path, reason: str) -> OutputError:
    return OutputError(
        f"image {str(path)!r} (job manifest line {line.number}) is missing ({reason}): restore "
        "it, or run the job again with --force to rewrite it, then export again"
    )


def default_out_root(job_manifest: Path) -> Path:
    """The output root of ``{out}/_jobs/{job_id}.jsonl``.

    Raises:
        ConfigError: the manifest is not in a ``_jobs`` directory, so the root is not known.
    """
    if job_manifest.parent.name != JOBS_DIR:
        raise ConfigError(
            f"job manifest {str(job_manifest)!r} is not in an output root's {JOBS_DIR} "
            "directory: pass out_root, the directory its image paths are relative to"
        )
    return job_manifest.parent.parent


def check_images(job_manifest: Path, out_root: Path, *, key: Callable[[str], str] = str) -> int:
    """Check, before anything is written, that every image of the manifest is on disk with its
    size and listed once (no two paths with the same ``key``); return how many there are.

    Raises:
        OutputError: the manifest is unreadable, an image is missing or was rewritten, or two
            lines name the same image.
    """
    seen: dict[str, int] = {}
    for line in iter_lines(job_manifest):
        if line.path is None:
            continue
        first = seen.setdefault(key(line.path), line.number)
        if first != line.number:
            raise OutputError(
                f"job manifest {str(job_manifest)!r} lists image {line.path!r} twice (lines "
                f"{first} and {line.number}); assemble the manifest again"
            )
        image_file(out_root, line)
    return len(seen)


def source_fields(line: Line, sources: Sources) -> dict[str, Any]:
    """The `SOURCE_FIELDS` of the line's source row (absent fields are None).

    Raises:
        ConfigError: ``sources`` has no row for the line's ``(record_id, content)``.
    """
    row = sources.get(line.source_key)
    if row is None:
        record_id, content = line.source_key
        raise ConfigError(
            f"no source row for record {record_id!r} content {content!r} (job manifest line "
            f"{line.number}); pass the catalog rows the job was planned from "
            "(sources_by_content(rows)), or no sources at all"
        )
    return {name: _plain(row.get(name)) for name in SOURCE_FIELDS}


def _plain(value: Any) -> Any:
    """A value as JSON has it (tags as a list, paths as text)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
