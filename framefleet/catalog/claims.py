"""Claims: which videos a watcher rule has enqueued, recorded so that it happens exactly once
per version of each file.

The ``claims`` table's primary key ``(file_id, rule)`` is what concurrent watchers race on: an
insert that conflicts does nothing, and each watcher then reads back which claims carry its own
job id. A claim remembers the file's source key (`version`); when ingest rewrites the row of a
changed file (a video replaced or grown, a sidecar arriving or edited), the key changes and the
claim is stale: the file is found again and re-claimed by an update that only one watcher wins.
Finding work is an anti-join ("matching videos with no current claim for this rule"), so rows
added by any process, committed in any order, are found on the next poll.

Reached as ``catalog.claims``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, exists, not_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from framefleet.catalog.database import _reason
from framefleet.catalog.filters import build_filter
from framefleet.catalog.kinds import is_bag_column, is_video_column
from framefleet.catalog.models import claims_table as CL
from framefleet.catalog.models import files_table as F
from framefleet.catalog.store import Catalog, QueryResult
from framefleet.errors import CatalogError


class Claims:
    """The claims of one catalog (``catalog.claims``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def unclaimed_videos(self, *, rule: str, where: str | None) -> list[dict[str, Any]]:
        """Cameras (videos, bags) matching ``where`` with no current claim of ``rule``, as query
        dicts (a bag's non-image topics are left out by the planner)."""
        current = or_(CL.c.version == F.c.source_key, CL.c.version.is_(None))
        condition = and_(
            build_filter(
                where,
                base_dir=self.catalog.base_dir,
                sqlite=self.catalog.engine.dialect.name == "sqlite",
            ),
            or_(is_video_column(F.c.path, F.c.content_type), is_bag_column(F.c.content_type)),
            not_(exists().where(and_(CL.c.file_id == F.c.id, CL.c.rule == rule, current))),
        )
        return list(QueryResult(self.catalog, condition))

    def adopt_legacy(self) -> int:
        """Give claims made before claims had versions the current version of their file."""
        key = select(F.c.source_key).where(F.c.id == CL.c.file_id).scalar_subquery()
        return self._write(update(CL).where(CL.c.version.is_(None)).values(version=key))

    def claim(self, file_ids: Sequence[int], *, rule: str, job_id: str, owner: str) -> set[int]:
        """Claim the current version of ``file_ids`` for ``rule`` under ``job_id``.

        New claims are inserted; stale ones (the file changed since) are taken over by an
        update that only matches while they are stale, so of several watchers exactly one wins
        each file. Returns the ids this call won.
        """
        if not file_ids:
            return set()
        dialect = postgresql if self.catalog.engine.dialect.name == "postgresql" else sqlite
        ids = sorted(set(file_ids))
        claim = {"job_id": job_id, "owner": owner, "state": "claimed", "claimed_at": time.time()}
        try:
            with self.catalog.write_transaction() as connection:
                versions = dict(
                    connection.execute(select(F.c.id, F.c.source_key).where(F.c.id.in_(ids))).all()
                )
                rows = [
                    {"file_id": i, "rule": rule, "version": versions[i], **claim}
                    for i in ids
                    if i in versions  # a row deleted meanwhile is not claimed
                ]
                if rows:
                    insert = dialect.insert(CL).on_conflict_do_nothing(
                        index_elements=["file_id", "rule"]
                    )
                    connection.execute(insert, rows)
                for row in rows:
                    connection.execute(
                        update(CL)
                        .where(
                            CL.c.file_id == row["file_id"],
                            CL.c.rule == rule,
                            CL.c.version.is_not(None),
                            CL.c.version != row["version"],
                        )
                        .values(version=row["version"], **claim)
                    )
                won = connection.execute(
                    select(CL.c.file_id).where(CL.c.rule == rule, CL.c.job_id == job_id)
                )
                return set(won.scalars())
        except SQLAlchemyError as e:
            raise CatalogError(f"cannot record claims: {_reason(e)}") from e

    def mark_enqueued(self, file_ids: Sequence[int], *, rule: str, job_id: str) -> None:
        """The job of these claims is on the queue: they are final (for their file's version)."""
        self._write(
            update(CL)
            .where(CL.c.rule == rule, CL.c.file_id.in_(file_ids), CL.c.job_id == job_id)
            .values(state="enqueued")
        )

    def release(self, file_ids: Sequence[int], *, rule: str, job_id: str) -> None:
        """Give claims back (their job could not be enqueued): the next poll tries again."""
        self._write(
            delete(CL).where(
                CL.c.rule == rule,
                CL.c.file_id.in_(file_ids),
                CL.c.job_id == job_id,
                CL.c.state == "claimed",
            )
        )

    def release_stale(self, *, older_than_seconds: float) -> int:
        """Release claims never marked enqueued (their watcher died mid-way); how many."""
        cutoff = time.time() - older_than_seconds
        return self._write(delete(CL).where(CL.c.state == "claimed", CL.c.claimed_at < cutoff))

    def unregistered_jobs(self, *, rule: str) -> list[str]:
        """The jobs ``rule`` enqueued whose images are not in the catalog (yet): what a
        watcher that registers the rule's jobs still has to do, after a restart too."""
        registered = exists().where(F.c.job_id == CL.c.job_id)
        statement = (
            select(CL.c.job_id)
            .where(CL.c.rule == rule, CL.c.state == "enqueued", not_(registered))
            .distinct()
            .order_by(CL.c.job_id)
        )
        try:
            with self.catalog.engine.connect() as connection:
                return [str(job_id) for job_id in connection.execute(statement).scalars()]
        except SQLAlchemyError as e:
            raise CatalogError(f"catalog query failed: {_reason(e)}") from e

    def of(self, *, rule: str | None = None) -> list[dict[str, Any]]:
        """The claims (all, or of one rule), oldest first: for status and tests."""
        statement = select(CL).order_by(CL.c.claimed_at, CL.c.file_id)
        if rule is not None:
            statement = statement.where(CL.c.rule == rule)
        try:
            with self.catalog.engine.connect() as connection:
                return [dict(row) for row in connection.execute(statement).mappings()]
        except SQLAlchemyError as e:
            raise CatalogError(f"catalog query failed: {_reason(e)}") from e

    def _write(self, statement: Any) -> int:
        try:
            with self.catalog.write_transaction() as connection:
                return int(connection.execute(statement).rowcount or 0)
        except SQLAlchemyError as e:
            raise CatalogError(f"cannot update claims: {_reason(e)}") from e
