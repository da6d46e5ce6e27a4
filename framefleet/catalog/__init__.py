"""The catalog: a SQL database of recordings, filled from pydtk sidecars, queried safely.

    from framefleet.catalog import Catalog, ingest_paths

    catalog = Catalog("sqlite:///framefleet.db")
    ingest_paths(catalog, ["/data/records"])
    for item in catalog.query('tags like "%camera%" and record_id like "%016_%"'):
        print(item["path"], item["timestamps_path"])

SQLAlchemy and Alembic only: the catalog never imports the media engine (videos without a sidecar
are probed through a callable passed to `ingest_paths`), Celery or Redis.
"""

from framefleet.catalog.discover import discover
from framefleet.catalog.entries import VideoInfoLike
from framefleet.catalog.ingest import IngestReport, ingest_paths
from framefleet.catalog.query import parse_query
from framefleet.catalog.store import Catalog, QueryResult
from framefleet.catalog.syntax import FIELDS, format_query

__all__ = [
    "FIELDS",
    "Catalog",
    "IngestReport",
    "QueryResult",
    "VideoInfoLike",
    "discover",
    "format_query",
    "ingest_paths",
    "parse_query",
]
