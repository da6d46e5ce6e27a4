"""Migration 0005 on a catalog that holds data, on SQLite and PostgreSQL: upgrading keeps every
row, tag and claim (SQLite copies ``files`` with foreign keys unenforced, so nothing cascades);
downgrading removes the registered images only; foreign keys are enforced again afterwards."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from framefleet.catalog import Catalog
from framefleet.catalog.database import (
    _alembic_config,
    _migration_connection,
    create_catalog_engine,
    head_revision,
)
from framefleet.catalog.derived import register_images, source_rows_for
from framefleet.catalog.models import Base

T0 = 1489728491.0


def _migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    engine = create_catalog_engine(url)
    try:
        with _migration_connection(engine) as connection:
            config = _alembic_config(connection)
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def _counts(url: str) -> dict[str, int]:
    engine = create_catalog_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("files", "contents", "content_tags", "tags", "claims")
            }
    finally:
        engine.dispose()


def _populate_at_0004(url: str, base: Path) -> None:
    """Files, contents, tags and a claim written by the 0004 schema (no new columns)."""
    _migrate_to(url, "0004")
    engine = create_catalog_engine(url)
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO files (id, path, record_id, content_type, source_key) VALUES "
                    "(1, :a, 'r', 'video/mp4', 'k1'), (2, :b, 'r', 'text/csv', 'k2')"
                ),
                {"a": str(base / "r/front.mp4"), "b": str(base / "r/front_timestamps.csv")},
            )
            c.execute(
                text("INSERT INTO contents (id, file_id, name) VALUES (1, 1, 'cam'), (2, 2, 'cam')")
            )
            c.execute(text("INSERT INTO tags (id, name) VALUES (1, 'camera'), (2, 'front')"))
            c.execute(
                text(
                    "INSERT INTO content_tags (content_id, tag_id, position) VALUES "
                    "(1, 1, 0), (1, 2, 1), (2, 1, 0)"
                )
            )
            c.execute(
                text(
                    "INSERT INTO claims (file_id, rule, job_id, owner, state, claimed_at, version) "
                    "VALUES (1, 'front', 'j', 'w', 'enqueued', 1.0, 'k1')"
                )
            )
            c.execute(text("UPDATE contents SET timestamps_file_id = 2 WHERE id = 1"))
            if c.dialect.name == "postgresql":  # ids given explicitly: move the sequences on
                for table in ("files", "contents", "tags"):
                    c.execute(text(f"SELECT setval('{table}_id_seq', 10)"))
    finally:
        engine.dispose()


def test_upgrade_keeps_everything_and_downgrade_removes_only_images(
    db_url: str, tmp_path: Path
) -> None:
    _populate_at_0004(db_url, tmp_path)
    before = _counts(db_url)
    with Catalog(db_url) as catalog:  # opening migrates to the head
        assert catalog.revision == head_revision() == "0005"
        assert _counts(db_url) == before
        (video,) = catalog.query(tags=["front"])
        assert video["timestamps_path"] == str(tmp_path / "r/front_timestamps.csv")
        with catalog.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
            (fk,) = inspect(connection).get_foreign_keys("files")
            assert (fk["name"], fk["options"].get("ondelete")) == (
                "fk_files_source_file_id_files",
                "CASCADE",
            )
            if connection.dialect.name == "sqlite":  # enforced again on pooled connections
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        image = tmp_path / "out/r/cam/r-1.000.jpg"
        image.parent.mkdir(parents=True)
        image.write_bytes(b"\xff\xd8\xff")
        manifest = tmp_path / "out/_jobs/j.jsonl"
        manifest.parent.mkdir()
        line = {"path": "r/cam/r-1.000.jpg", "record_id": "r", "content": "cam", "timestamp": T0}
        manifest.write_text(json.dumps(line) + "\n")
        sources = source_rows_for(catalog, {("r", "cam"): video["path"]})
        report = register_images(
            catalog,
            manifest,
            out_root=tmp_path / "out",
            job_id="j",
            source_rows=sources,
            spec_tag="s",
            image_format="jpeg",
        )
        assert report.added == 1
    _migrate_to(db_url, "0004", down=True)
    after = _counts(db_url)
    assert after == {**before, "tags": before["tags"] + 2}  # 'extracted' and 's' stay as names
    engine = create_catalog_engine(db_url)
    try:
        with engine.connect() as connection:
            names = {c["name"] for c in inspect(connection).get_columns("files")}
            assert not names & {"source_file_id", "job_id"}
    finally:
        engine.dispose()
    with Catalog(db_url) as catalog:  # and up again
        assert catalog.revision == "0005" and len(catalog.query()) == 2
