"""Reading the catalog: query results as pydtk-shaped dicts, fetched lazily, and the stats.

A query runs over ``contents JOIN files``: one result per (file, content) pair, with the file's
pydtk fields, the content's name, tags and per-content values, the linked camera timestamps CSV
and the probe's measurements. Paths come back absolute (resolved against the base directory).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Engine, Select, distinct, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from framefleet.catalog.database import _reason
from framefleet.catalog.models import File
from framefleet.catalog.models import content_tags_table as CT
from framefleet.catalog.models import contents_table as C
from framefleet.catalog.models import files_table as F
from framefleet.catalog.models import tags_table as T
from framefleet.errors import CatalogError

if TYPE_CHECKING:
    from framefleet.catalog.store import Catalog

PAGE_SIZE = 500
"""Rows fetched per round trip while iterating a query."""

_TS = aliased(File, name="timestamps_file")
_PYDTK_FILE_KEYS = (
    "description",
    "database_id",
    "record_id",
    "sub_record_id",
    "data_type",
    "path",
    "start_timestamp",
    "end_timestamp",
    "content_type",
)
_PER_CONTENT_KEYS = ("msg_type", "msg_md5sum", "count", "frequency")
_PROBE_KEYS = ("duration_seconds", "fps", "width", "height", "frame_count")
_DERIVED_KEYS = ("source_file_id", "job_id")


def _columns() -> list[ColumnElement[Any]]:
    cols: list[ColumnElement[Any]] = [F.c.id, C.c.id.label("content_id"), C.c.name]
    cols += [F.c[k] for k in _PYDTK_FILE_KEYS]
    cols += [func.coalesce(C.c[k], F.c[k]).label(k) for k in _PER_CONTENT_KEYS]
    cols += [F.c[k] for k in (*_PROBE_KEYS, *_DERIVED_KEYS)]
    cols.append(_TS.path.label("timestamps_path"))
    return cols


class QueryResult(Iterator[dict[str, Any]]):
    """The matches of a catalog query, fetched lazily.

    An iterator (``next()`` works) of metadata dicts. The first ``next()`` or ``len()`` runs the
    filter once, for the ids of every match only (with no ORDER BY ... LIMIT to push the
    database onto a primary-key walk); rows are then read by id, a page at a time, so no
    transaction stays open while the caller works. ``len()`` is the total number of matches, not
    the number left. (``list(result)`` asks for ``len()`` first: that is the same single query.)
    """

    def __init__(self, catalog: Catalog, condition: ColumnElement[bool]) -> None:
        self._catalog = catalog
        self._condition = condition
        self._ids: list[int] | None = None
        self._next = 0
        self._page: list[dict[str, Any]] = []

    def _matching_ids(self) -> list[int]:
        if self._ids is None:
            self._ids = self._catalog._matching_ids(self._condition)
        return self._ids

    def __iter__(self) -> QueryResult:
        return self

    def __next__(self) -> dict[str, Any]:
        if not self._page:
            ids = self._matching_ids()
            chunk = ids[self._next : self._next + PAGE_SIZE]
            self._next += len(chunk)
            self._page = self._catalog._fetch(chunk)[::-1] if chunk else []
        if not self._page:
            raise StopIteration
        return self._page.pop()

    def __len__(self) -> int:
        return len(self._matching_ids())


def absolute(stored: str | None, base_dir: Path | None) -> str | None:
    """A stored path made absolute (relative ones are under the base directory)."""
    if stored is None:
        return None
    p = Path(stored)
    return str(p if p.is_absolute() or base_dir is None else base_dir / p)


def matching_ids(engine: Engine, condition: ColumnElement[bool]) -> list[int]:
    """The content ids matching ``condition``, ascending."""
    statement = (
        select(C.c.id).select_from(C.join(F, C.c.file_id == F.c.id)).where(condition)
    )  # no ORDER BY: it would steer the planner to walk contents by id; sorted here instead
    try:
        with engine.connect() as connection:
            return sorted(connection.execute(statement).scalars())
    except SQLAlchemyError as e:
        raise CatalogError(f"catalog query failed: {_reason(e)}") from e


def fetch(
    engine: Engine, content_ids: Sequence[int], base_dir: Path | None
) -> list[dict[str, Any]]:
    """The result dicts of these contents, in this order (rows deleted meanwhile: skipped)."""
    statement = (
        select(*_columns())
        .select_from(C.join(F, C.c.file_id == F.c.id))
        .outerjoin(_TS, C.c.timestamps_file_id == _TS.id)
        .where(C.c.id.in_(content_ids))
    )
    try:
        with engine.connect() as connection:
            rows = {row["content_id"]: row for row in connection.execute(statement).mappings()}
            tags: dict[int, list[str]] = defaultdict(list)
            tag_rows = connection.execute(
                select(CT.c.content_id, T.c.name)
                .join(T, CT.c.tag_id == T.c.id)
                .where(CT.c.content_id.in_(content_ids))
                .order_by(CT.c.content_id, CT.c.position)
            )
            for content_id, name in tag_rows:
                tags[content_id].append(name)
    except SQLAlchemyError as e:
        raise CatalogError(f"catalog query failed: {_reason(e)}") from e
    return [_to_dict(rows[i], tags[i], base_dir) for i in content_ids if i in rows]


def _to_dict(row: Any, tags: list[str], base_dir: Path | None) -> dict[str, Any]:
    item: dict[str, Any] = {key: row[key] for key in _PYDTK_FILE_KEYS}
    item["path"] = absolute(row["path"], base_dir)
    item["contents"] = row["name"]
    item.update({key: row[key] for key in _PER_CONTENT_KEYS})
    item["tags"] = tags
    item["id"] = row["id"]
    item["timestamps_path"] = absolute(row["timestamps_path"], base_dir)
    item.update({key: row[key] for key in (*_PROBE_KEYS, *_DERIVED_KEYS)})
    return item


def record_summary(record_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One recording from its query dicts: its time span and its files."""
    starts = [i["start_timestamp"] for i in items if i["start_timestamp"] is not None]
    ends = [i["end_timestamp"] for i in items if i["end_timestamp"] is not None]
    start, end = (min(starts) if starts else None), (max(ends) if ends else None)
    return {
        "record_id": record_id,
        "database_ids": sorted({i["database_id"] for i in items if i["database_id"]}),
        "start_timestamp": start,
        "end_timestamp": end,
        "duration": None if start is None or end is None else end - start,
        "files": items,
    }


def stats(engine: Engine) -> dict[str, Any]:
    """Counts: files, records, contents, tags, content types, time span."""
    try:
        with engine.connect() as connection:

            def scalar(statement: Select[Any]) -> Any:
                return connection.execute(statement).scalar()

            by_type = connection.execute(
                select(F.c.content_type, func.count()).group_by(F.c.content_type)
            ).all()
            top_tags = connection.execute(
                select(T.c.name, func.count())
                .join(CT, CT.c.tag_id == T.c.id)
                .group_by(T.c.name)
                .order_by(func.count().desc(), T.c.name)
                .limit(20)
            ).all()
            return {
                "files": scalar(select(func.count()).select_from(F)),
                "records": scalar(select(func.count(distinct(F.c.record_id)))),
                "contents": scalar(select(func.count()).select_from(C)),
                "distinct_tags": scalar(select(func.count(distinct(CT.c.tag_id)))),
                "videos_with_timestamps": scalar(
                    select(func.count()).where(C.c.timestamps_file_id.is_not(None))
                ),
                "start_timestamp": scalar(select(func.min(F.c.start_timestamp))),
                "end_timestamp": scalar(select(func.max(F.c.end_timestamp))),
                "content_types": {str(k): int(v) for k, v in sorted(by_type, key=str)},
                "top_tags": {str(k): int(v) for k, v in top_tags},
            }
    except SQLAlchemyError as e:
        raise CatalogError(f"cannot read catalog stats: {_reason(e)}") from e
