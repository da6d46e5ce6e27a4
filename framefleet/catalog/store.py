"""`Catalog`: the catalog database as a Python object: open, query, look up, write.

Opening a `Catalog` brings its schema up to date (see `framefleet.catalog.database`); with
``create=False`` it never creates a catalog that does not exist. Queries give pydtk-shaped
metadata dicts, one per (file, content) pair, with absolute paths (`framefleet.catalog.results`).
Writing is done by `framefleet.catalog.ingest`, through `Catalog.upsert`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Engine, Select, and_, delete, insert, select
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from framefleet.catalog import results
from framefleet.catalog.database import (
    _reason,
    create_catalog_engine,
    current_revision,
    head_revision,
    migrate,
    write_connection,
)
from framefleet.catalog.entries import FileEntry, check_entry
from framefleet.catalog.filters import build_filter, stored_path
from framefleet.catalog.models import content_tags_table as CT
from framefleet.catalog.models import contents_table as C
from framefleet.catalog.models import files_table as F
from framefleet.catalog.models import meta_table as M
from framefleet.catalog.results import PAGE_SIZE, QueryResult
from framefleet.catalog.times import TimeLike
from framefleet.catalog.values import MAX_PATH_CHARS, text_problem
from framefleet.catalog.writer import Outcome, StoredEntry, existing_rows, write_entries
from framefleet.errors import CatalogError, EntryRejectedError

if TYPE_CHECKING:
    from framefleet.catalog.claims import Claims

__all__ = ["PAGE_SIZE", "Catalog", "KnownFile", "QueryResult"]


@dataclass(frozen=True)
class KnownFile:
    """What the catalog remembers of a file it holds: how to tell a change, and its sidecar."""

    source_key: str
    sidecar_path: Path | None
    """Absolute; None when the file was probed rather than described by a sidecar."""


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
        create: create the catalog when it does not exist (the default). With False (what the
            reading commands use), a SQLite file that does not exist or a database that was
            never initialised is an error naming the URL, and nothing is created.

    Raises:
        CatalogError: the database cannot be opened or migrated, or does not exist and
            ``create`` is False.
    """

    def __init__(
        self,
        url: str,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        migrate: bool = True,
        create: bool = True,
    ) -> None:
        self.url = url
        self._engine = create_catalog_engine(url, create=create and migrate)
        self._base_dir_override = None if base_dir is None else Path(base_dir).resolve()
        try:
            if migrate and create:
                self.revision = self.init()
            else:
                self.revision = self._check_revision()
                if migrate and self.revision != head_revision():
                    self.revision = self.init()  # an existing catalog is upgraded, not created
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
            CatalogError: a different base directory is already stored, or the path cannot be
                stored.
        """
        problem = text_problem(os.fspath(path), max_chars=MAX_PATH_CHARS, name_like=False)
        if problem is not None:
            raise CatalogError(f"base directory {os.fspath(path)!r} {problem}")
        new = Path(path).resolve()
        try:
            with self.write_transaction() as connection:
                stored = connection.execute(select(M.c.value).where(M.c.key == "base_dir")).scalar()
                if stored is not None and Path(stored) != new:
                    raise CatalogError(
                        f"catalog base directory is {stored!r}, not {str(new)!r}: paths stored "
                        f"relative to it would resolve wrongly; pass --base-dir {stored} "
                        "(or none), or use a new catalog"
                    )
                if stored is None:
                    connection.execute(insert(M).values(key="base_dir", value=str(new)))
        except SQLAlchemyError as e:
            raise CatalogError(f"cannot write to catalog {self._engine.url!r}: {_reason(e)}") from e
        self._stored_base_dir = new
        return new

    def stored_path(self, path: Path) -> str:
        """How ``path`` is written in the catalog (relative to the base directory when under it)."""
        return stored_path(path, self.base_dir)

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
        derived: bool = True,
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
            derived: include the images jobs registered (`framefleet.catalog.derived`); the
                planner passes False, so that it never fetches thousands of images to skip.

        Returns:
            An iterator of dicts, one per (file, content), in the order they were added. Keys:
            pydtk's (description, database_id, record_id, sub_record_id, data_type, path,
            start_timestamp, end_timestamp, content_type, contents, msg_type, msg_md5sum, count,
            frequency, tags) with an absolute ``path``, plus ``id`` (the file's row id),
            ``timestamps_path`` (the linked camera timestamps CSV, absolute, or None) and the
            probe's ``duration_seconds``, ``fps``, ``width``, ``height``, ``frame_count``, and
            for a registered image ``source_file_id`` and ``job_id`` (else None).

        Raises:
            QueryError: the filter does not parse or is too large; raised here, before any
                database access.
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
        if not derived:
            condition = and_(condition, F.c.source_file_id.is_(None))
        return QueryResult(self, condition)

    def _matching_ids(self, condition: ColumnElement[bool]) -> list[int]:
        return results.matching_ids(self._engine, condition)

    def _fetch(self, content_ids: Sequence[int]) -> list[dict[str, Any]]:
        return results.fetch(self._engine, content_ids, self.base_dir)

    def get_record(self, record_id: str, *, derived: bool = False) -> dict[str, Any] | None:
        """One recording: its time span and its files (query dicts), or None when unknown.

        ``derived``: list the images jobs registered among its files too (there may be
        thousands); by default only the recording's own files.
        """
        condition = F.c.record_id == record_id
        if not derived:
            condition = and_(condition, F.c.source_file_id.is_(None))
        items = list(QueryResult(self, condition))
        return results.record_summary(record_id, items) if items else None

    def stats(self) -> dict[str, Any]:
        """Counts for ``framefleet catalog stats``: files, records, contents, tags, time span."""
        return {
            "url": repr(self._engine.url),
            "revision": self.revision,
            "base_dir": None if self.base_dir is None else str(self.base_dir),
            **results.stats(self._engine),
        }

    def _scalar(self, statement: Select[Any]) -> Any:
        try:
            with self._engine.connect() as connection:
                return connection.execute(statement).scalar()
        except SQLAlchemyError as e:
            raise CatalogError(f"catalog query failed: {_reason(e)}") from e

    # --- writing ----------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for the catalog's own modules, e.g. `Claims`)."""
        return self._engine

    def write_transaction(self) -> Any:
        """A connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on
        success and rolled back on error: ``with catalog.write_transaction() as c: ...``."""
        return write_connection(self._engine)

    @property
    def claims(self) -> Claims:
        """The watcher's claims on this catalog's files (`framefleet.catalog.claims`)."""
        from framefleet.catalog.claims import Claims

        return Claims(self)

    def known_files(self, paths: Sequence[Path]) -> dict[Path, KnownFile]:
        """What the catalog holds of those of ``paths`` (absolute) it knows."""
        stored = {self.stored_path(p): p for p in paths}
        try:
            with self._engine.connect() as connection:
                found = existing_rows(connection, list(stored))
        except SQLAlchemyError as e:
            raise CatalogError(f"catalog query failed: {_reason(e)}") from e
        base_dir = self.base_dir

        def absolute(stored: str) -> Path:
            p = Path(stored)
            return p if p.is_absolute() or base_dir is None else base_dir / p

        return {
            stored[path]: KnownFile(
                row.source_key, None if row.sidecar_path is None else absolute(row.sidecar_path)
            )
            for path, row in found.items()
        }

    def upsert(self, entries: Sequence[FileEntry]) -> list[Outcome]:
        """Write a batch of entries in one transaction; "added", "updated" or "unchanged" each.

        Raises:
            MetadataError: an entry has a value the catalog does not take (see `check_entry`).
            EntryRejectedError: the database refused a value (nothing of the batch is written);
                written one at a time, the other entries would go in.
            CatalogError: the database cannot be written (nothing of the batch is written), or
                two entries name the same file.
        """
        for entry in entries:
            check_entry(entry)
        rows = [
            StoredEntry(
                self.stored_path(entry.path),
                None if entry.sidecar_path is None else self.stored_path(entry.sidecar_path),
                entry,
            )
            for entry in entries
        ]
        if len({row.path for row in rows}) != len(rows):
            raise CatalogError("a batch names the same file twice")
        url = self._engine.url
        try:
            with self.write_transaction() as connection:
                return write_entries(connection, rows)
        except (OperationalError, InterfaceError) as e:  # the database, not the data
            raise CatalogError(f"cannot write to catalog {url!r}: {_reason(e)}") from e
        except (SQLAlchemyError, ValueError, OverflowError) as e:  # ValueError: encoding, too big
            raise EntryRejectedError(f"catalog {url!r} refused a value: {_reason(e)}") from e

    def analyze(self) -> None:
        """Refresh the planner's statistics (ANALYZE).

        Ingest calls this as the tables grow: PostgreSQL plans a fresh, never-analysed table as
        tiny and would scan it whole for every batch, which makes a large first load quadratic.
        """
        try:
            with self.write_transaction() as connection:
                connection.exec_driver_sql("ANALYZE")
        except SQLAlchemyError as e:
            raise CatalogError(f"cannot analyze catalog {self._engine.url!r}: {_reason(e)}") from e

    def remove(self, paths: Sequence[Path]) -> int:
        """Forget files (absolute paths); returns how many were in the catalog."""
        stored = [self.stored_path(p) for p in paths]
        try:
            with self.write_transaction() as connection:
                found = existing_rows(connection, stored)
                ids = [row.id for row in found.values()]
                if ids:
                    contents = select(C.c.id).where(C.c.file_id.in_(ids))
                    connection.execute(delete(CT).where(CT.c.content_id.in_(contents)))
                    connection.execute(delete(C).where(C.c.file_id.in_(ids)))
                    connection.execute(delete(F).where(F.c.id.in_(ids)))
                return len(ids)
        except SQLAlchemyError as e:
            raise CatalogError(f"cannot write to catalog {self._engine.url!r}: {_reason(e)}") from e
