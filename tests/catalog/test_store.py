"""The Catalog API and its database: results, pagination, records, stats, safety, migrations."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import framefleet.catalog.results as results_module
from framefleet.catalog import Catalog
from framefleet.catalog.database import head_revision
from framefleet.catalog.entries import ContentEntry, FileEntry
from framefleet.catalog.models import Base
from framefleet.errors import CatalogError, QueryError

BASE = Path("/data")


def entry(i: int, *, record_id: str = "r", start: float | None = None, **kw: Any) -> FileEntry:
    tags = kw.pop("tags", ("camera",))
    return FileEntry(
        path=BASE / f"{record_id}/f{i:05d}.mp4",
        record_id=record_id,
        contents=(ContentEntry(name=kw.pop("content", "camera/front"), tags=tags),),
        source_key=kw.pop("key", "k"),
        content_type="video/mp4",
        start_timestamp=start,
        end_timestamp=None if start is None else start + 60,
        **kw,
    )


def test_query_result_is_an_iterator_with_a_cheap_len(catalog: Catalog) -> None:
    catalog.upsert([entry(i) for i in range(3)])
    result = catalog.query(tags=["camera"])
    assert len(result) == 3
    first = next(result)
    assert first["path"] == "/data/r/f00000.mp4"  # absolute: no base dir set
    assert [i["path"] for i in result] == ["/data/r/f00001.mp4", "/data/r/f00002.mp4"]
    assert len(result) == 3  # the total, not what is left
    assert list(catalog.query(tags=["camera", "nope"])) == []


def test_results_span_pages(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results_module, "PAGE_SIZE", 7)
    catalog.upsert([entry(i, tags=("camera", f"n{i}")) for i in range(30)])
    items = list(catalog.query('tags like "camera"'))
    assert [i["path"] for i in items] == [f"/data/r/f{i:05d}.mp4" for i in range(30)]
    assert [i["tags"] for i in items[:2]] == [["camera", "n0"], ["camera", "n1"]]
    assert "_content_id" not in items[0]


def test_globs_and_time_range(catalog: Catalog) -> None:
    catalog.upsert(
        [
            entry(1, record_id="016_a", start=1000.0),
            entry(2, record_id="016_b", start=2000.0, content="camera/rear"),
            entry(3, record_id="017_a", start=3000.0, content="lidar/top"),
            entry(4, record_id="x_%", start=None, content="other"),
        ]
    )

    def records(**kw: Any) -> list[str]:
        return [i["record_id"] for i in catalog.query(**kw)]

    assert records(record_id="016_*") == ["016_a", "016_b"]
    assert records(record_id="01?_A") == ["016_a", "017_a"]  # globs are case-insensitive
    assert records(record_id="x_%") == ["x_%"]  # LIKE's wildcards are literal in a glob
    assert records(record_id="x__") == []
    assert records(content="camera/*") == ["016_a", "016_b"]
    assert records(since=2030.0) == ["016_b", "017_a"]  # overlaps: ends at 2060
    assert records(since=2061.0) == ["017_a"]
    assert records(until=2000.0) == ["016_a"]  # half-open: starts before until
    assert records(since="1970-01-01T00:33:20Z", until=3000) == ["016_b"]
    assert records(where="record_id like '016%'", content="camera/rear") == ["016_b"]
    with pytest.raises(QueryError, match=r"until \(1\) must be after since \(2\)"):
        catalog.query(since=2, until=1)
    with pytest.raises(QueryError, match="since 'soon' is neither epoch seconds nor an ISO"):
        catalog.query(since="soon")
    with pytest.raises(QueryError, match="tags must be a list of tag names"):
        catalog.query(tags="camera")


INJECTIONS = [
    "record_id = 'x'; DROP TABLE files",
    "record_id = 'x' or 1=1",
    "1=1 --",
    "record_id = 'x' --",
    "record_id in (select record_id from files)",
    "lower(record_id) = 'r'",
    "record_id = 'x' union select * from files",
    "record_id = sqlite_version()",
    "record_id = 'x\"; DROP TABLE files; --'",
    "record_id = ''' or ''1''=''1'",
    'record_id like "%" or "1"="1"',
    "record_id = 'r' /* comment */",
]


@pytest.mark.parametrize("query", INJECTIONS)
def test_injection_is_an_error_or_a_harmless_literal(catalog: Catalog, query: str) -> None:
    catalog.upsert([entry(1)])
    message, matches = "", []
    try:
        matches = list(catalog.query(query))
    except QueryError as e:
        message = str(e)
    if message:
        assert f"\n  {query}\n" in message and "^" in message  # the query, a caret under it
    else:
        assert matches == []  # a literal compared with a string: nothing matches
    assert {"files", "contents", "tags", "catalog_meta"} <= set(
        inspect(catalog._engine).get_table_names()
    )
    assert len(catalog.query()) == 1


def test_get_record(catalog: Catalog) -> None:
    catalog.upsert(
        [
            entry(1, record_id="rec", start=10.0, database_id="db"),
            entry(2, record_id="rec", start=30.0),
            entry(3, record_id="other"),
        ]
    )
    record = catalog.get_record("rec")
    assert record is not None
    assert {k: v for k, v in record.items() if k != "files"} == {
        "record_id": "rec",
        "database_ids": ["db"],
        "start_timestamp": 10.0,
        "end_timestamp": 90.0,
        "duration": 80.0,
    }
    assert [f["path"] for f in record["files"]] == ["/data/rec/f00001.mp4", "/data/rec/f00002.mp4"]
    assert catalog.get_record("nope") is None
    assert catalog.get_record("re%") is None  # exact, not a pattern


def test_stats(catalog: Catalog) -> None:
    catalog.upsert([entry(1, start=5.0), entry(2, record_id="b", tags=("camera", "x"))])
    stats = catalog.stats()
    assert {k: stats[k] for k in ("files", "records", "contents", "distinct_tags")} == {
        "files": 2,
        "records": 2,
        "contents": 2,
        "distinct_tags": 2,
    }
    assert stats["top_tags"] == {"camera": 2, "x": 1}
    assert stats["content_types"] == {"video/mp4": 2}
    assert (stats["start_timestamp"], stats["end_timestamp"], stats["revision"]) == (
        5.0,
        65.0,
        head_revision(),
    )


def test_upsert_outcomes_and_remove(catalog: Catalog) -> None:
    assert catalog.upsert([entry(1), entry(2)]) == ["added", "added"]
    assert catalog.upsert([entry(1), entry(2, key="new"), entry(3)]) == [
        "unchanged",
        "updated",
        "added",
    ]
    with pytest.raises(CatalogError, match="a batch names the same file twice"):
        catalog.upsert([entry(4), entry(4)])
    assert catalog.remove([BASE / "r/f00001.mp4", BASE / "r/missing.mp4"]) == 1
    assert [i["path"] for i in catalog.query()] == ["/data/r/f00002.mp4", "/data/r/f00003.mp4"]
    assert catalog.stats()["distinct_tags"] == 1


def test_timestamps_link_prefers_the_csv_named_after_the_video(catalog: Catalog) -> None:
    def csv(name: str, i: int) -> FileEntry:
        return FileEntry(
            path=BASE / "r" / name,
            record_id="r",
            contents=(ContentEntry(name="camera/front"),),
            source_key=str(i),
            content_type="text/csv",
        )

    catalog.upsert([csv("other.csv", 1), entry(7)])
    (video,) = catalog.query(tags=["camera"])
    assert video["timestamps_path"] == "/data/r/other.csv"
    catalog.upsert([csv("f00007_timestamps.csv", 2)])  # a later batch re-links
    (video,) = catalog.query(tags=["camera"])
    assert video["timestamps_path"] == "/data/r/f00007_timestamps.csv"
    catalog.remove([BASE / "r/f00007_timestamps.csv"])
    (video,) = catalog.query(tags=["camera"])
    assert video["timestamps_path"] is None  # ON DELETE SET NULL


# --- opening and migrating ---------------------------------------------------------------


def test_migrations_create_exactly_the_models(db_url: str) -> None:
    with Catalog(db_url) as cat:
        assert cat.revision == head_revision()
        with cat._engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert cat.init() == head_revision()  # idempotent


def test_opening_without_migrating_needs_an_initialised_catalog(db_url: str) -> None:
    missing = "does not exist: create it with 'framefleet catalog init' or 'framefleet catalog add'"
    message = missing if db_url.startswith("sqlite") else "is not initialised: run framefleet"
    with pytest.raises(CatalogError, match=message):
        Catalog(db_url, migrate=False)
    Catalog(db_url).close()
    with Catalog(db_url, migrate=False) as cat:
        assert cat.revision == head_revision()


def test_opening_without_creating_never_creates(db_url: str, tmp_path: Path) -> None:
    if db_url.startswith("sqlite"):
        with pytest.raises(CatalogError, match=rf"catalog '{db_url}' does not exist: create it"):
            Catalog(db_url, create=False)
        assert not (tmp_path / "catalog.db").exists()
        (tmp_path / "catalog.db").touch()  # an empty file, e.g. left by an older framefleet
    with pytest.raises(CatalogError, match=r"is not initialised: run framefleet catalog init"):
        Catalog(db_url, create=False)
    with Catalog(db_url) as cat:
        cat.upsert([entry(1)])
    with Catalog(db_url, create=False) as cat:
        assert len(cat.query()) == 1


def test_a_newer_schema_is_refused(db_url: str) -> None:
    Catalog(db_url).close()
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(CatalogError, match=r"schema revision '9999', newer than this framefleet"):
        Catalog(db_url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nonsense", r"bad database URL 'nonsense'"),
        ("sqlite:////no/such/dir/x.db", r"directory '/no/such/dir' does not exist"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/x", r"cannot open catalog .*127\.0\.0\.1:1"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        Catalog(url)


def test_sqlite_is_in_wal_mode(tmp_path: Path) -> None:
    with Catalog(f"sqlite:///{tmp_path / 'c.db'}") as cat, cat._engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _writer(url: str, worker: int, files: int) -> None:
    with Catalog(url) as cat:
        for i in range(files):
            cat.upsert([entry(worker * 1000 + i, record_id=f"w{worker}")])
            list(cat.query(record_id=f"w{worker}"))


def test_concurrent_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    """Several processes open a new catalog at once (racing to migrate), then write and read."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(url, w, 20)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    with Catalog(url) as cat:
        assert len(cat.query()) == 80
