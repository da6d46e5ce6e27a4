"""Registration benchmark: a job's N images registered back in the catalog (issue 11 item 3).

    python bench/register_bench.py [--images 100000] [--postgres URL | --no-postgres]

Generates the same job as ``export_bench.py`` (tiny JPEGs, 160 per camera, two cameras per
record), puts its videos in a new catalog (SQLite, and PostgreSQL when reachable: a database
created and dropped here), then prints:

- the first registration (every image a new row; target: 100k in under 30 s on SQLite);
- a re-run (every row unchanged: what a job that is finalised twice costs);
- a re-run with ``replace=True`` (every row unchanged, plus looking for rows to remove);
- the filter ``tags like "%extracted%" and record_id like "%016%"`` (median of 5, materialised);
- planning's query with and without the registered images (``derived=False``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from export_bench import make_job
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from framefleet.catalog import Catalog
from framefleet.catalog.derived import register_images, source_rows_for
from framefleet.catalog.entries import ContentEntry, FileEntry

QUERY = 'tags like "%extracted%" and record_id like "%016%"'


def add_videos(catalog: Catalog, rows: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    entries = [
        FileEntry(
            path=Path(row["path"]),
            record_id=row["record_id"],
            contents=(ContentEntry(name=row["contents"], tags=tuple(row["tags"])),),
            source_key="v1",
            database_id=row["database_id"],
            data_type="raw_data",
            content_type="video/mp4",
            start_timestamp=row["start_timestamp"],
            end_timestamp=row["end_timestamp"],
        )
        for row in rows
    ]
    catalog.upsert(entries)
    return source_rows_for(catalog, {(r["record_id"], r["contents"]): r["path"] for r in rows})


def median_ms(work: Any, runs: int = 5) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        count = len(list(work()))
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), count


def bench(name: str, url: str, out: Path, manifest: Path, rows: list[dict[str, Any]]) -> None:
    n = sum(1 for _ in manifest.open())
    with Catalog(url) as catalog:
        sources = add_videos(catalog, rows)
        options: dict[str, Any] = {
            "out_root": out,
            "job_id": "bench-job",
            "source_rows": sources,
            "spec_tag": "fps2-q25-jpeg",
            "image_format": "jpeg",
        }
        report = register_images(catalog, manifest, **options)
        print(
            f"{name}: register {report.added:,} images in {report.seconds:.1f} s = "
            f"{report.added / report.seconds:,.0f} images/s"
        )
        catalog.analyze()
        again = register_images(catalog, manifest, **options)
        print(
            f"{name}: re-run, {again.unchanged:,} unchanged in {again.seconds:.1f} s = "
            f"{n / again.seconds:,.0f} images/s"
        )
        replaced = register_images(catalog, manifest, replace=True, **options)
        print(
            f"{name}: re-run with replace, {replaced.removed} removed in {replaced.seconds:.1f} s"
        )
        ms, count = median_ms(lambda: catalog.query(QUERY))
        print(f"{name}: {QUERY}: {ms:.0f} ms median ({count} results)")
        ms, count = median_ms(lambda: catalog.query('tags like "%front%"'))
        ms2, count2 = median_ms(lambda: catalog.query('tags like "%front%"', derived=False))
        print(
            f'{name}: planning query tags like "%front%": {ms:.0f} ms with the images '
            f"({count} results), {ms2:.1f} ms with derived=False ({count2} results)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "FRAMEFLEET_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="an admin URL; a fresh database is created and dropped",
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="register-bench-") as tmp:
        out = Path(tmp) / "out"
        t = time.perf_counter()
        manifest, rows = make_job(out, args.images)
        print(f"generated {args.images:,} images in {time.perf_counter() - t:.1f} s")
        bench("sqlite", f"sqlite:///{tmp}/catalog.db", out, manifest, rows)
        if args.no_postgres:
            return 0
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        name = f"framefleet_bench_{secrets.token_hex(4)}"
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except OperationalError as e:
            print(f"postgresql: skipped ({e.orig})")
            return 0
        try:
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            bench("postgresql", url, out, manifest, rows)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
