"""Catalog benchmark: ingest N generated pydtk sidecars, then time two queries.

    python bench/catalog_bench.py [--files 100000] [--runs 7] [--postgres URL | --no-postgres]

Generates a pydtk-shaped tree (4 files per recording: two camera videos, the front camera's
timestamps CSV, a lidar capture; each an empty data file with its sidecar), ingests it into a new
SQLite file and, when reachable, a new PostgreSQL database (created and dropped here), and prints:

- ingest rate, files/s (sidecars only, no probing; includes walking the tree and parsing JSON);
- the median latency of the seed's query and of a tags + time-range query, materialising every
  result, over ``--runs`` runs.

Targets (issue 3): ingest >= 2,000 files/s, each query < 200 ms over 100k files.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from framefleet.catalog import Catalog, ingest_paths

SEED_QUERY = (
    'tags like "%camera%" and tags like "%image%" and tags like "%front%" and '
    'tags like "%center%" and record_id like "%016_00000000030000000240%"'
)
T0 = 1489728491.0
RECORD_SECONDS = 80.0
FILES = [
    ("camera_01.mp4", "video/mp4", "camera/front-center", ["camera", "front", "center", "image"]),
    (
        "camera_01_timestamps.csv",
        "text/csv",
        "camera/front-center",
        ["camera", "front", "center", "timestamps"],
    ),
    ("camera_02.mp4", "video/mp4", "camera/rear-center", ["camera", "rear", "center", "image"]),
    ("lidar.pcap", "application/vnd.tcpdump.pcap", "lidar/top", ["lidar", "top", "pointcloud"]),
]


def record_id(i: int) -> str:
    # Record 16 is the seed's recording; the others look like it.
    return f"{i:03d}_{30000000240 + i * 100:020d}" if i != 16 else "016_00000000030000000240"


def generate(root: Path, files: int, *, first_record: int = 0) -> None:
    """Write ``files`` sidecars and their (empty) data files under ``root``."""
    records = (files + len(FILES) - 1) // len(FILES)
    written = 0
    for i in range(first_record, first_record + records):
        rid = record_id(i)
        folder = root / "records" / rid / "data"
        folder.mkdir(parents=True)
        start = T0 + i * 100.0
        for name, content_type, content, tags in FILES:
            if written == files:
                return
            (folder / name).touch()
            sidecar = {
                "description": "Driving Database",
                "database_id": "Driving Behavior Database",
                "record_id": rid,
                "type": "raw_data",
                "path": f"records/{rid}/data/{name}",
                "start_timestamp": start,
                "end_timestamp": start + RECORD_SECONDS,
                "content-type": content_type,
                "contents": {content: {"tags": tags}},
            }
            (folder / f"{name}.json").write_text(json.dumps(sidecar))
            written += 1


def median_ms(catalog: Catalog, runs: int, **query: object) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        count = len(list(catalog.query(**query)))  # type: ignore[arg-type]
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), count


def bench(name: str, url: str, tree: Path, files: int, runs: int) -> None:
    with Catalog(url) as catalog:
        catalog.set_base_dir(tree)
        t = time.perf_counter()
        report = ingest_paths(catalog, [tree])
        elapsed = time.perf_counter() - t
        assert not report.failed, report.failed[:3]
        print(
            f"{name}: ingest {report.added} files in {elapsed:.1f} s = "
            f"{report.added / elapsed:,.0f} files/s"
        )
        t = time.perf_counter()
        again = ingest_paths(catalog, [tree])
        print(
            f"{name}: re-ingest (all unchanged: {again.unchanged}) "
            f"{again.unchanged / (time.perf_counter() - t):,.0f} files/s"
        )
        ms, n = median_ms(catalog, runs, where=SEED_QUERY)
        print(f"{name}: seed query: {ms:.1f} ms median ({n} result)")
        since = T0 + (files // len(FILES) // 2) * 100.0  # a recording in the middle
        range_query = (
            'tags like "%camera%" and tags like "%front%" and '
            f"start_timestamp >= {since} and end_timestamp < {since + 5000.0}"
        )
        ms, n = median_ms(catalog, runs, where=range_query)
        print(f"{name}: tags + time range: {ms:.1f} ms median ({n} results)")
        ms, n = median_ms(catalog, runs, tags=["camera", "front"], since=since, until=since + 5000)
        print(f"{name}: --tag camera --tag front --since/--until: {ms:.1f} ms median ({n} results)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "FRAMEFLEET_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="an admin URL; a fresh database is created and dropped",
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as tmp:
        tree = Path(tmp) / "tree"
        t = time.perf_counter()
        generate(tree, args.files)
        print(
            f"generated {args.files} sidecars (+ empty data files) in "
            f"{time.perf_counter() - t:.1f} s"
        )
        bench("sqlite", f"sqlite:///{Path(tmp) / 'catalog.db'}", tree, args.files, args.runs)
        if args.no_postgres:
            return 0
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        name = f"framefleet_bench_{secrets.token_hex(4)}"
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except OperationalError as e:
            print(f"postgresql: skipped, not reachable ({e.orig})", file=sys.stderr)
            return 0
        try:
            url = make_url(args.postgres).set(database=name)
            bench(
                "postgresql", url.render_as_string(hide_password=False), tree, args.files, args.runs
            )
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
