"""`Catalog`: the catalog database as a Python object: open, query, look up, write.

Opening a `Catalog` brings its schema up to date (see `framefleet.catalog.database`). Queries give
pydtk-shaped metadata dicts, one per (file, content) pair, with absolute paths. Writing is done by
`framefleet.catalog.ingest`, through `Catalog.upsert`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    delete,
    distinct,
    func,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from framefleet.catalog.database import (
    _reason,
    create_catalog_engine,
    current_revision,
    migrate,
    write_connection,
)
from framefleet.catalog.entries import FileEntry
from framefleet.catalog.filters import build_filter, stored_path
from framefleet.catalog.models import File
from framefleet.catalog.models import content_tags_table as CT
from framefleet.catalog.models import contents_table as C
from framefleet.catalog.models import files_table as F
from framefleet.catalog.models import meta_table as M
from framefleet.catalog.models import tags_table as T
from framefleet.catalog.times import TimeLike
from framefleet.catalog.writer import Outcome, existing_keys, write_entries
from framefleet.errors import CatalogError

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


def _columns() -> list[ColumnElement[Any]]:
    cols: list[ColumnElement[Any]] = [F.c.id, C.c.id.label("content_id"), C.c.name]
    cols += [F.c[k] for k in _PYDTK_FILE_KEYS]
    cols += [func.coalesce(C.c[k], F.c[k]).label(k) for k in _PER_CONTENT_KEYS]
    cols += [F.c[k] for k in _PROBE_KEYS]
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


class Catalog:
    """The catalog of recordings: data files, their contents and tags, in a SQL database.

    Args:
        url: a SQLAlchemy URL: ``sqlite:///framefleet.db`` (WAL mode, safe for several processes)
            or ``postgresql+psycopg://user@host/db``.
        base_dir: where relative paths resolve; overrides the base directory stored in the
            catalog (e.g. the same tree mounted elsewhere). New files under it are stored
            relative to it.
        migrate: bring the schema up to date on open (the default). With False, a catalog whose
            schema is not current is an error.

    Raises:
        CatalogError: the database cannot be opened or migrated.
    """

    def __init__(
        self, url: str, *, base_dir: str | os.PathLike[str] | None = None, migrate: bool = True
    ) -> None:
        self.url = url
        self._engine: Engine = create_catalog_engine(url)
        self._base_dir_override = None if base_dir is None else Path(base_dir).resolve()
        try:
            self.revision = self.init() if migrate else self._check_revision()
            stored = self._scalar(select(M.c.value).where(M.c.key == "base_dir"))
        except BaseException:
            self._engine.dispose()  # no half-open connections left to the garbage collector
            raise
        self._stored_base_dir = None if stored is None else Path(stored)

    def init(self) -> str:
        """Create or upgrade the schema to the newest revision; return that revision."""
        return migrate(self._engine)

    def _check_revision(self) -> str:
        revision = current_revision(self._engine)
        if revision is None:
            raise CatalogError(
                f"catalog {self._engine.url!r} is not initialised: run framefleet catalog init"
            )
        return revision

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self._engine.url!r})"

    # --- base directory ---------------------------------------------------------------------

    @property
    def base_dir(self) -> Path | None:
        """Where relative paths resolve: the override given to the constructor, else stored."""
        return self._base_dir_override or self._stored_base_dir

    def set_base_dir(self, path: str | os.PathLike[str]) -> Path:
        """Store the catalog's base directory (once: changing it would break stored paths).

        Raises:
            CatalogError: a different base directory is already stored.
        """
        new = Path(path).resolve()
        with self._writing() as connection:
            stored = connection.execute(select(M.c.value).where(M.c.key == "base_dir")).scalar()
            if stored is not None and Path(stored) != new:
                raise CatalogError(
                    f"catalog base directory is {stored!r}, not {str(new)!r}: paths stored "
                    f"relative to it would resolve wrongly; pass --base-dir {stored} (or none), "
                    "or use a new catalog"
                )
            if stored is None:
                connection.execute(insert(M).values(key="base_dir", value=str(new)))
        self._stored_base_dir = new
        return new

    def stored_path(self, path: Path) -> str:
        """How ``path`` is written in the catalog (relative to the base directory when under it)."""
        return stored_path(path, self.base_dir)

    def _absolute(self, stored: str | None, base_dir: Path | None) -> str | None:
        if stored is None:
            return None
        p = Path(stored)
        return str(p if p.is_absolute() or base_dir is None else base_dir / p)

    # --- reading ----------------------------------------------------------------------------

    def query(
        self,
        where: str | None = None,
        *,
        tags: Sequence[str] = (),
        record_id: str | None = None,
        content: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
    ) -> QueryResult:
        """Files and contents matching a filter, as pydtk-shaped metadata dicts.

        Args:
            where: a filter, e.g. ``tags like "%camera%" and record_id like "%016_%"``; see
                `framefleet.catalog.query` for the language and `framefleet.catalog.filters`
                for its semantics.
            tags: tags that must all be present (exact names).
            record_id: a glob on the record id, e.g. ``016_*``.
            content: a glob on the content name, e.g. ``camera/*``.
            since: files ending at or after this time (epoch seconds, ISO text, or datetime).
            until: files starting before this time.

        Returns:
            An iterator of dicts, one per (file, content), in the order they were added. Keys:
            pydtk's (description, database_id, record_id, sub_record_id, data_type, path,
            start_timestamp, end_timestamp, content_type, contents, msg_type, msg_md5sum, count,
            frequency, tags) with an absolute ``path``, plus ``id`` (the file's row id),
            ``timestamps_path`` (the linked camera timestamps CSV, absolute, or None) and the
            probe's ``duration_seconds``, ``fps``, ``width``, ``height``, ``frame_count``.

        Raises:
            QueryError: the filter does not parse; raised here, before any database access.
        """
        condition = build_filter(
            where,
            tags=tags,
            record_id=record_id,
            content=content,
            since=since,
            until=until,
            base_dir=self.base_dir,
            sqlite=self._engine.dialect.name == "sqlite",
        )
        return QueryResult(self, condition)

    def _matching_ids(self, condition: ColumnElement[bool]) -> list[int]:
        statement = (
            select(C.c.id).select_from(C.join(F, C.c.file_id == F.c.id)).where(condition)
        )  # no ORDER BY: it would steer the planner to walk contents by id; sorted here instead
        try:
            with self._engine.connect() as connection:
                return sorted(connection.execute(statement).scalars())
        except SQLAlchemyError as e:
            raise CatalogError(f"catalog query failed: {_reason(e)}") from e

    def _fetch(self, content_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The result dicts of these contents, in this order (rows deleted meanwhile: skipped)."""
        statement = (
            select(*_columns())
            .select_from(C.join(F, C.c.file_id == F.c.id))
            .outerjoin(_TS, C.c.timestamps_file_id == _TS.id)
            .where(C.c.id.in_(content_ids))
        )
        base_dir = self.base_dir
        try:
            with self._engine.connect() as connection:
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
        return [self._to_dict(rows[i], tags[i], base_dir) for i in content_ids if i in rows]

    def _to_dict(self, row: Any, tags: list[str], base_dir: Path | None) -> dict[str, Any]:
        item: dict[str, Any] = {key: row[key] for key in _PYDTK_FILE_KEYS}
        item["path"] = self._absolute(row["path"], base_dir)
        item["contents"] = row["name"]
        item.update({key: row[key] for key in _PER_CONTENT_KEYS})
        item["tags"] = tags
        item["id"] = row["id"]
        item["timestamps_path"] = self._absolute(row["timestamps_path"], base_dir)
        item.update({key: row[key] for key in _PROBE_KEYS})
        return item

    def get_record(self, record_id: str) -> dict[str, Any] | None:
        """One recording: its time span and its files (query dicts), or None when unknown."""
        items = list(QueryResult(self, F.c.record_id == record_id))
        if not items:
            return None
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

    def stats(self) -> dict[str, Any]:
        """Counts for ``framefleet catalog stats``: files, records, contents, tags, time span."""
        try:
            with self._engine.connect() as connection:

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
                    "url": repr(self._engine.url),
                    "revision": self.revision,
                    "base_dir": None if self.base_dir is None else str(self.base_dir),
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

    def _scalar(self, statement: Select[Any]) -> Any:
        try:
            with self._engine.connect() as connection:
                return connection.execute(statement).scalar()
        except SQLAlchemyError as e:
            raise CatalogError(f"catalog query failed: {_reason(e)}") from e

    # --- writing ----------------------------------------------------------------------------

    def _writing(self) -> Any:
        return write_connection(self._engine)

    def source_keys(self, paths: Sequence[Path]) -> dict[Path, str]:
        """The stored source keys of those of ``paths`` (absolute) already in the catalog."""
        stored = {self.stored_path(p): p for p in paths}
        try:
            with self._engine.connect() as connection:
                found = existing_keys(connection, list(stored))
        except SQLAlchemyError as e:
            raise CatalogError(f"catalog query failed: {_reason(e)}") from e
        return {stored[path]: key for path, (_, key) in found.items()}

    def upsert(self, entries: Sequence[FileEntry]) -> list[Outcome]:
        """Write a batch of entries in one transaction; "added", "updated" or "unchanged" each.

        Raises:
            CatalogError: the write failed (nothing of the batch is written), or two entries
                name the same file.
        """
        pairs = [(self.stored_path(entry.path), entry) for entry in entries]
        if len({path for path, _ in pairs}) != len(pairs):
            raise CatalogError("a batch names the same file twice")
        try:
            with self._writing() as connection:
                return write_entries(connection, pairs)
        except SQLAlchemyError as e:
            raise CatalogError(f"cannot write to catalog {self._engine.url!r}: {_reason(e)}") from e

    def analyze(self) -> None:
        """Refresh the planner's statistics (ANALYZE).

        Ingest calls this as the tables grow: PostgreSQL plans a fresh, never-analysed table as
        tiny and would scan it whole for every batch, which makes a large first load quadratic.
        """
        try:
            with self._writing() as connection:
                connection.exec_driver_sql("ANALYZE")
        except SQLAlchemyError as e:
            raise CatalogError(f"cannot analyze catalog {self._engine.url!r}: {_reason(e)}") from e

    def remove(self, paths: Sequence[Path]) -> int:
        """Forget files (absolute paths); returns how many were in the catalog."""
        stored = [self.stored_path(p) for p in paths]
        try:
            with self._writing() as connection:
                found = existing_keys(connection, stored)
                ids = [file_id for file_id, _ in found.values()]
                if ids:
                    contents = select(C.c.id).where(C.c.file_id.in_(ids))
                    connection.execute(delete(CT).where(CT.c.content_id.in_(contents)))
                    connection.execute(delete(C).where(C.c.file_id.in_(ids)))
                    connection.execute(delete(F).where(F.c.id.in_(ids)))
                return len(ids)
        except SQLAlchemyError as e:
            raise CatalogError(f"cannot write to catalog {self._engine.url!r}: {_reason(e)}") from e
