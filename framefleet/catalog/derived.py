"""Images a job extracted, registered back in the catalog as pydtk-shaped rows.

Each image of a job manifest (``{out}/_jobs/{job_id}.jsonl``) becomes one row:

* ``data_type`` ``derived``, ``content_type`` ``image/jpeg`` (``png``, ``webp``), the image's
  ``width`` and ``height``;
* ``record_id``, ``database_id``, ``sub_record_id`` and ``description`` of its video, and one
  content named like the video's (``camera/front-center``) tagged with the video's tags plus
  ``extracted`` plus the spec's tag;
* ``start_timestamp`` = ``end_timestamp`` = the frame's own time (the manifest's ``timestamp``);
* ``path``: the image's absolute path, stored as every path is (relative to the catalog's base
  directory when under it), so a query gives back a path that opens the file, wherever the
  output root is;
* ``source_file_id``: the video's row id (a video keeps its id when re-ingested; removing it
  removes its images' rows), and ``job_id``: the job that registered the row.

Registering is idempotent: a row remembers a digest of what it was built from (the manifest
line, the video's row, the spec tag), so a re-run adds and rewrites nothing. Rows go in with the
writer's multi-row INSERTs, a few thousand per transaction. With ``replace``, the rows of the
same videos, spec tag and output root that the new manifest does not list (images of an earlier
extraction of a changed video) are removed. Registered rows are never videos nor timestamps
CSVs (`framefleet.catalog.kinds`), so the planner and the watcher leave them alone.

The job manifest is read here as plain JSON lines: the catalog imports neither the media engine
nor the job contract.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from framefleet.catalog.database import _reason
from framefleet.catalog.entries import ContentEntry, FileEntry, check_entry
from framefleet.catalog.models import content_tags_table as CT
from framefleet.catalog.models import contents_table as C
from framefleet.catalog.models import files_table as F
from framefleet.catalog.models import tags_table as T
from framefleet.catalog.results import QueryResult
from framefleet.catalog.store import Catalog
from framefleet.catalog.values import MAX_NAME_CHARS, text_problem
from framefleet.errors import (
    CatalogError,
    ConfigError,
    EntryRejectedError,
    MetadataError,
    OutputError,
)

DERIVED_DATA_TYPE = "derived"
EXTRACTED_TAG = "extracted"
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
BATCH_SIZE = 2000
"""Rows per write transaction: large enough for the multi-row INSERTs to pay, short enough
that a watcher writing at the same time waits well under a second."""
_CHUNK = 500
_FIRST_ANALYZE = 1000

SourceKey = tuple[str, str]
"""``(record_id, content)``: how a manifest line names its video."""


@dataclass
class RegisterReport:
    """What `register_images` did."""

    added: int = 0
    """New rows."""
    updated: int = 0
    """Rows rewritten (the image, its video's row or the spec tag changed)."""
    unchanged: int = 0
    """Rows already registered as they are."""
    removed: int = 0
    """Rows of an earlier extraction that ``replace`` removed."""
    without_image: int = 0
    """Manifest lines with no image (a requested time no frame answers): not rows."""
    seconds: float = 0.0

    @property
    def registered(self) -> int:
        """Rows written: added or updated."""
        return self.added + self.updated

    def summary(self) -> str:
        """One line for a log or a command's output."""
        return (
            f"registered {self.added} images ({self.updated} updated, {self.unchanged} "
            f"unchanged, {self.removed} replaced rows removed) in {self.seconds:.1f} s"
        )


def register_images(
    catalog: Catalog,
    job_manifest: Path,
    *,
    out_root: Path,
    job_id: str,
    source_rows: Mapping[SourceKey, Mapping[str, Any]],
    spec_tag: str,
    image_format: str,
    replace: bool = False,
) -> RegisterReport:
    """Add the images of a job to the catalog (see the module docstring).

    Args:
        job_manifest: ``{out}/_jobs/{job_id}.jsonl``.
        out_root: the directory the manifest's image paths are relative to.
        job_id: recorded on each row (``job_id``).
        source_rows: the job's videos by ``(record_id, content)``: catalog query dicts (at
            least ``id`` and ``tags``), e.g. from `source_rows_for` or the rows the job was
            planned from. With ``replace``, these are the videos whose earlier rows are
            replaced: pass the job's videos only.
        spec_tag: a tag naming the output spec (e.g. ``fps2-q25-jpeg``), added to each row.
        image_format: ``jpeg``, ``png`` or ``webp`` (gives ``content_type``).
        replace: remove the rows of the same videos, spec tag and output root that this
            manifest does not list.

    Raises:
        ConfigError: a bad argument, or ``source_rows`` lacks a line's video.
        OutputError: the manifest is unreadable or malformed, or an image is not on disk (all
            are checked before anything is written).
        CatalogError: a video is no longer in the catalog, or the catalog cannot be written.
    """
    started = time.perf_counter()
    content_type = _check_arguments(job_id, spec_tag, image_format)
    job_manifest = Path(job_manifest)
    root = Path(out_root).resolve()
    report = RegisterReport()
    _check_sources_exist(catalog, source_rows)
    paths = _check_images(
        job_manifest,
        root,
        source_rows,
        report,
        entry=lambda data, source: _entry(root, data, source, job_id, spec_tag, content_type),
    )
    batch: list[FileEntry] = []
    next_analyze = _FIRST_ANALYZE
    for _, data in _lines(job_manifest):
        if data.get("path") is None:
            continue
        source = source_rows[(data["record_id"], data["content"])]
        batch.append(_entry(root, data, source, job_id, spec_tag, content_type))
        if len(batch) == BATCH_SIZE:
            _write(catalog, batch, report)
            batch = []
            if report.added >= next_analyze:  # at 1k, 2k, 4k... new rows: see Catalog.analyze
                catalog.analyze()
                next_analyze = 2 * report.added
    if batch:
        _write(catalog, batch, report)
    if replace:
        keep = {catalog.stored_path(root / p) for p in paths}
        ids = sorted({int(row["id"]) for row in source_rows.values()})
        report.removed = _remove(catalog, ids, spec_tag=spec_tag, out_root=root, keep=keep)
    report.seconds = time.perf_counter() - started
    return report


def unregister_source(
    catalog: Catalog,
    source_file_id: int,
    *,
    spec_tag: str | None = None,
    out_root: Path | None = None,
) -> int:
    """Remove the registered images of a video (all, or those with ``spec_tag`` and under
    ``out_root``); return how many rows went.

    Raises:
        CatalogError: the catalog cannot be written.
    """
    root = None if out_root is None else Path(out_root).resolve()
    return _remove(catalog, [source_file_id], spec_tag=spec_tag, out_root=root, keep=set())


def source_rows_for(
    catalog: Catalog, videos: Mapping[SourceKey, str | os.PathLike[str]]
) -> dict[SourceKey, dict[str, Any]]:
    """The catalog rows of a job's videos, by ``(record_id, content)``: what `register_images`
    takes. ``videos`` maps each to the video's absolute path (a segment spec's ``video_path``).

    Raises:
        CatalogError: a video is not in the catalog (with that record id and content).
    """
    wanted = {catalog.stored_path(Path(path)): key for key, path in videos.items()}
    found: dict[SourceKey, dict[str, Any]] = {}
    stored = list(wanted)
    for i in range(0, len(stored), _CHUNK):
        for item in QueryResult(catalog, F.c.path.in_(stored[i : i + _CHUNK])):
            key = (item["record_id"], item["contents"])
            if wanted.get(catalog.stored_path(Path(item["path"]))) == key:
                found[key] = item
    for key, path in videos.items():
        if key not in found:
            raise CatalogError(
                f"video {os.fspath(path)!r} (record {key[0]!r}, content {key[1]!r}) is not in "
                f"catalog {catalog.url!r}: its images cannot be registered; ingest it first"
            )
    return found


# --- reading the manifest ---------------------------------------------------------------------


def _check_arguments(job_id: str, spec_tag: str, image_format: str) -> str:
    for name, value in (("job_id", job_id), ("spec_tag", spec_tag)):
        problem = (
            "is not text"
            if not isinstance(value, str)
            else "is empty"
            if not value
            else text_problem(value, max_chars=MAX_NAME_CHARS)
        )
        if problem is not None:
            raise ConfigError(f"{name} {value!r} {problem}")
    if image_format not in CONTENT_TYPES:
        raise ConfigError(
            f"image_format must be one of {', '.join(CONTENT_TYPES)}, got {image_format!r}"
        )
    return CONTENT_TYPES[image_format]


def _lines(manifest: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    where = f"job manifest {str(manifest)!r}"
    try:
        with manifest.open(encoding="utf-8", errors="surrogatepass") as f:
            for number, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    data = json.loads(text)
                except ValueError as e:
                    raise OutputError(f"{where} line {number} is not JSON ({e})") from e
                if not isinstance(data, dict) or not all(
                    isinstance(data.get(k), str) for k in ("record_id", "content")
                ):
                    raise OutputError(
                        f"{where} line {number} is not an image line (a JSON object with "
                        "record_id and content); assemble the manifest again"
                    )
                yield number, data
    except OSError as e:
        raise OutputError(f"{where} cannot be read: {e.strerror or e}") from e


def _check_images(
    manifest: Path,
    root: Path,
    sources: Mapping[SourceKey, Mapping[str, Any]],
    report: RegisterReport,
    *,
    entry: Callable[[Mapping[str, Any], Mapping[str, Any]], FileEntry],
) -> list[str]:
    """Every image on disk, once, with a known video, its row within the catalog's bounds
    (``entry`` builds it; a hand-edited manifest may hold anything); returns the image paths
    (relative)."""
    seen: dict[str, int] = {}
    for number, data in _lines(manifest):
        path = data.get("path")
        if path is None:
            report.without_image += 1
            continue
        if not _relative_name(path):
            raise OutputError(
                f"job manifest {str(manifest)!r} line {number}: image path {path!r} is not a "
                "plain relative name under the output root"
            )
        first = seen.setdefault(path, number)
        if first != number:
            raise OutputError(
                f"job manifest {str(manifest)!r} lists image {path!r} twice (lines {first} and "
                f"{number}); assemble the manifest again"
            )
        key = (data["record_id"], data["content"])
        if key not in sources:
            raise ConfigError(
                f"no source row for record {key[0]!r} content {key[1]!r} (job manifest line "
                f"{number}); pass the catalog rows of the job's videos (source_rows_for)"
            )
        try:
            check_entry(entry(data, sources[key]))
        except MetadataError as e:
            raise OutputError(
                f"job manifest {str(manifest)!r} line {number} is not a valid image line ({e}); "
                "nothing was registered"
            ) from e
        try:
            regular = stat.S_ISREG(os.stat(root / path).st_mode)
        except OSError as e:
            regular, reason = False, e.strerror or str(e)
        else:
            reason = "not a regular file"
        if not regular:
            raise OutputError(
                f"image {str(root / path)!r} (job manifest line {number}) is missing ({reason}): "
                "nothing was registered; restore it or run the job again with --force"
            )
    return list(seen)


def _relative_name(path: object) -> bool:
    if not isinstance(path, str) or not path or "\x00" in path or path.startswith("/"):
        return False
    return all(p not in ("", ".", "..") for p in PurePosixPath(path).parts)


# --- writing ----------------------------------------------------------------------------------


def _check_sources_exist(catalog: Catalog, sources: Mapping[SourceKey, Mapping[str, Any]]) -> None:
    ids: dict[int, SourceKey] = {}
    for key, row in sources.items():
        value = row.get("id")
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(
                f"the source row of record {key[0]!r} content {key[1]!r} has no row id "
                f"('id': {value!r}); pass catalog query dicts"
            )
        ids[value] = key
    found: set[int] = set()
    try:
        with catalog.engine.connect() as connection:
            wanted = sorted(ids)
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i : i + _CHUNK]
                found.update(connection.execute(select(F.c.id).where(F.c.id.in_(chunk))).scalars())
    except SQLAlchemyError as e:
        raise CatalogError(f"catalog query failed: {_reason(e)}") from e
    for file_id, (record_id, content) in ids.items():
        if file_id not in found:
            raise CatalogError(
                f"the video of record {record_id!r} content {content!r} (row {file_id}) is no "
                "longer in the catalog: its images cannot be linked to it; ingest it again and "
                "register with its new row"
            )


def _entry(
    root: Path,
    line: Mapping[str, Any],
    source: Mapping[str, Any],
    job_id: str,
    spec_tag: str,
    content_type: str,
) -> FileEntry:
    tags = tuple(dict.fromkeys([*(source.get("tags") or ()), EXTRACTED_TAG, spec_tag]))
    fields = {
        "database_id": source.get("database_id"),
        "sub_record_id": source.get("sub_record_id"),
        "description": source.get("description"),
    }
    digest = hashlib.blake2b(
        json.dumps(
            [dict(line), source["id"], tags, fields, content_type],
            sort_keys=True,
            ensure_ascii=True,
        ).encode("ascii"),
        digest_size=16,
    ).hexdigest()
    timestamp = line.get("timestamp")
    return FileEntry(
        path=root / line["path"],
        record_id=line["record_id"],
        contents=(ContentEntry(name=line["content"], tags=tags),),
        source_key=digest,
        data_type=DERIVED_DATA_TYPE,
        content_type=content_type,
        start_timestamp=timestamp,
        end_timestamp=timestamp,
        width=line.get("width"),
        height=line.get("height"),
        source_file_id=source["id"],
        job_id=job_id,
        **fields,
    )


def _write(catalog: Catalog, batch: Sequence[FileEntry], report: RegisterReport) -> None:
    try:
        outcomes = catalog.upsert(batch)
    except EntryRejectedError:
        # Another process registering the same job (both saw it complete) inserted some of
        # these rows after this batch looked for them: now they are there, and unchanged.
        outcomes = catalog.upsert(batch)
    for outcome in outcomes:
        if outcome == "added":
            report.added += 1
        elif outcome == "updated":
            report.updated += 1
        else:
            report.unchanged += 1


def _remove(
    catalog: Catalog,
    source_ids: Sequence[int],
    *,
    spec_tag: str | None,
    out_root: Path | None,
    keep: set[str],
) -> int:
    """Delete the derived rows of these videos (with the tag, under the root) not in ``keep``."""
    prefix = None if out_root is None else catalog.stored_path(out_root / "x")[:-1]
    removed = 0
    try:
        with catalog.write_transaction() as connection:
            for i in range(0, len(source_ids), _CHUNK):
                statement = select(F.c.id, F.c.path).where(
                    F.c.source_file_id.in_(source_ids[i : i + _CHUNK])
                )
                if spec_tag is not None:
                    tagged = (
                        select(C.c.file_id)
                        .join(CT, CT.c.content_id == C.c.id)
                        .join(T, T.c.id == CT.c.tag_id)
                        .where(T.c.name == spec_tag)
                    )
                    statement = statement.where(F.c.id.in_(tagged))
                stale = [
                    file_id
                    for file_id, path in connection.execute(statement)
                    if path not in keep and (prefix is None or path.startswith(prefix))
                ]
                for j in range(0, len(stale), _CHUNK):
                    ids = stale[j : j + _CHUNK]
                    contents = select(C.c.id).where(C.c.file_id.in_(ids))
                    connection.execute(delete(CT).where(CT.c.content_id.in_(contents)))
                    connection.execute(delete(C).where(C.c.file_id.in_(ids)))
                    connection.execute(delete(F).where(F.c.id.in_(ids)))
                removed += len(stale)
    except SQLAlchemyError as e:
        raise CatalogError(f"cannot write to catalog {catalog.url!r}: {_reason(e)}") from e
    return removed
