"""Writing entries in batches: insert new files, rewrite changed ones, link timestamps CSVs.

A batch is one write transaction. Rows go in with multi-row INSERT ... RETURNING (SQLAlchemy's
"insertmanyvalues"), so a batch of a thousand files costs a handful of round trips, on SQLite and
on PostgreSQL alike. A changed file keeps its row id (so links to it stay valid); its contents and
tags are replaced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import PurePosixPath
from typing import Any, Literal, NamedTuple

from sqlalchemy import Connection, bindparam, delete, insert, not_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from framefleet.catalog.entries import FileEntry
from framefleet.catalog.kinds import is_image, is_image_column, is_video
from framefleet.catalog.models import content_tags_table as CT
from framefleet.catalog.models import contents_table as C
from framefleet.catalog.models import files_table as F
from framefleet.catalog.models import tags_table as T
from framefleet.pydtk import is_timestamps_csv_name, timestamps_csv_for

Outcome = Literal["added", "updated", "unchanged"]

_CHUNK = 500  # rows per IN (...) list: well under every backend's parameter limit
_FILE_COLUMNS = tuple(
    f.name for f in fields(FileEntry) if f.name not in ("path", "contents", "sidecar_path")
)


class StoredEntry(NamedTuple):
    """An entry with its paths as the catalog writes them (relative to the base directory)."""

    path: str
    sidecar_path: str | None
    entry: FileEntry


class ExistingRow(NamedTuple):
    """What `existing_rows` reads of a file already in the catalog."""

    id: int
    source_key: str
    sidecar_path: str | None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def existing_rows(connection: Connection, paths: Sequence[str]) -> dict[str, ExistingRow]:
    """``{stored path: row}`` for those of ``paths`` already in the catalog."""
    found: dict[str, ExistingRow] = {}
    for chunk in _chunks(list(dict.fromkeys(paths))):
        rows = connection.execute(
            select(F.c.path, F.c.id, F.c.source_key, F.c.sidecar_path).where(F.c.path.in_(chunk))
        )
        found.update({path: ExistingRow(i, key, sidecar) for path, i, key, sidecar in rows})
    return found


def write_entries(connection: Connection, entries: Sequence[StoredEntry]) -> list[Outcome]:
    """Upsert entries (paths unique within the batch); one outcome each."""
    known = existing_rows(connection, [item.path for item in entries])
    outcomes: list[Outcome] = []
    new: list[StoredEntry] = []
    changed: list[tuple[int, StoredEntry]] = []
    for item in entries:
        if item.path not in known:
            outcomes.append("added")
            new.append(item)
        elif known[item.path].source_key != item.entry.source_key:
            outcomes.append("updated")
            changed.append((known[item.path].id, item))
        else:
            outcomes.append("unchanged")

    if changed:
        ids = [file_id for file_id, _ in changed]
        for chunk in _chunks(ids):
            stale = select(C.c.id).where(C.c.file_id.in_(chunk))
            connection.execute(delete(CT).where(CT.c.content_id.in_(stale)))
            connection.execute(delete(C).where(C.c.file_id.in_(chunk)))
        statement = (
            update(F)
            .where(F.c.id == bindparam("_id"))
            .values({name: bindparam("v_" + name) for name in (*_FILE_COLUMNS, "sidecar_path")})
        )
        params = [
            {"v_" + k: v for k, v in _file_row(item).items()} | {"_id": i} for i, item in changed
        ]
        connection.execute(statement, params)
    file_ids = [file_id for file_id, _ in changed]
    written = [item.entry for _, item in changed]
    if new:
        rows = [_file_row(item) | {"path": item.path} for item in new]
        result = connection.execute(insert(F).returning(F.c.id, sort_by_parameter_order=True), rows)
        file_ids += [row.id for row in result]
        written += [item.entry for item in new]
    _insert_contents(connection, file_ids, written)
    if new or changed:
        link_timestamps(connection, {entry.record_id for entry in written})
    return outcomes


def _file_row(item: StoredEntry) -> dict[str, Any]:
    row = {name: getattr(item.entry, name) for name in _FILE_COLUMNS}
    row["sidecar_path"] = item.sidecar_path
    return row


def _insert_contents(
    connection: Connection, file_ids: Sequence[int], entries: Sequence[FileEntry]
) -> None:
    rows, tag_lists = [], []
    for file_id, entry in zip(file_ids, entries, strict=True):
        for content in entry.contents:
            rows.append(
                {
                    "file_id": file_id,
                    "name": content.name,
                    "msg_type": content.msg_type,
                    "msg_md5sum": content.msg_md5sum,
                    "count": content.count,
                    "frequency": content.frequency,
                    "timestamps_file_id": None,
                }
            )
            tag_lists.append(content.tags)
    if not rows:
        return
    result = connection.execute(insert(C).returning(C.c.id, sort_by_parameter_order=True), rows)
    content_ids = [row.id for row in result]
    tag_ids = tag_ids_for(connection, {name for names in tag_lists for name in names})
    pairs = [
        {"content_id": content_id, "tag_id": tag_ids[name], "position": position}
        for content_id, names in zip(content_ids, tag_lists, strict=True)
        for position, name in enumerate(names)
    ]
    if pairs:
        connection.execute(insert(CT), pairs)


def tag_ids_for(connection: Connection, names: set[str]) -> dict[str, int]:
    """The vocabulary ids of ``names``, adding the new ones (safe against a concurrent writer)."""

    def lookup(wanted: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(wanted):
            rows = connection.execute(select(T.c.name, T.c.id).where(T.c.name.in_(chunk)))
            found.update({name: tag_id for name, tag_id in rows})
        return found

    ids = lookup(sorted(names))
    missing = sorted(names - ids.keys())
    if missing:
        dialect = connection.dialect.name
        statement: Any = insert(T)
        if dialect == "postgresql":
            statement = postgresql.insert(T).on_conflict_do_nothing(index_elements=["name"])
        elif dialect == "sqlite":
            statement = sqlite.insert(T).on_conflict_do_nothing(index_elements=["name"])
        connection.execute(statement, [{"name": name} for name in missing])
        ids.update(lookup(missing))
    return ids


def _is_timestamps(path: str, content_type: str | None) -> bool:
    if is_image(content_type):
        return False
    return content_type == "text/csv" or is_timestamps_csv_name(path)


def link_timestamps(connection: Connection, record_ids: Iterable[str]) -> None:
    """Point each video content at the camera timestamps CSV of the same record and content.

    Among the CSVs of that record and content, the one named ``<video stem>_timestamps.csv``
    beside the video wins; then any ``*_timestamps.csv``; then any ``text/csv`` (lowest id first).
    Images (registered by a job: thousands per record) are neither, and are not read.
    """
    by_key: dict[tuple[str, str], list[tuple[int, int, str, str | None, int | None]]]
    updates: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(set(record_ids))):
        by_key = defaultdict(list)
        rows = connection.execute(
            select(
                F.c.record_id,
                C.c.name,
                C.c.id,
                F.c.id,
                F.c.path,
                F.c.content_type,
                C.c.timestamps_file_id,
            )
            .join(F, C.c.file_id == F.c.id)
            .where(F.c.record_id.in_(chunk), not_(is_image_column(F.c.content_type)))
        )
        for record_id, name, content_id, file_id, path, content_type, linked in rows:
            by_key[(record_id, name)].append((content_id, file_id, path, content_type, linked))
        for group in by_key.values():
            csvs = [g for g in group if _is_timestamps(g[2], g[3])]
            for content_id, file_id, path, content_type, linked in group:
                if not is_video(path, content_type):
                    continue
                expected = str(timestamps_csv_for(PurePosixPath(path)))
                ranked = sorted(
                    (c for c in csvs if c[1] != file_id),
                    key=lambda c: (c[2] != expected, not is_timestamps_csv_name(c[2]), c[1]),
                )
                target = ranked[0][1] if ranked else None
                if target != linked:
                    updates.append({"_id": content_id, "v_target": target})
    if updates:
        connection.execute(
            update(C)
            .where(C.c.id == bindparam("_id"))
            .values(timestamps_file_id=bindparam("v_target")),
            updates,
        )
