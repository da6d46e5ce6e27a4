"""Training-ready exports of a job: its manifest as Parquet, its images as WebDataset shards.

    from framefleet.export import sources_by_content, write_parquet, write_webdataset

    manifest = Path("/data/out/_jobs/20261201T101500-1a2b3c.jsonl")
    sources = sources_by_content(catalog.query('tags like "%front%"'))
    write_parquet(manifest, sources=sources)                  # /data/out/_jobs/{job}.parquet
    write_webdataset(manifest, Path("/data/out"), sources=sources)
    # /data/out/_exports/{job}/shard-000000.tar, shard-000001.tar, ...

Both read the job manifest line by line, refuse a manifest whose images are not all on disk, and
write atomically; the same manifest gives the same bytes. Parquet needs pyarrow (the
``parquet`` extra); WebDataset shards need nothing beyond the standard library. No catalog,
queue or decoder is imported here: sources are plain mappings.
"""

from framefleet.export.layout import (
    framesets_parquet_path,
    parquet_path,
    shard_path,
    shard_prefix,
)
from framefleet.export.lines import SOURCE_FIELDS, sources_by_content
from framefleet.export.parquet import IMAGE_COLUMNS, require_pyarrow, write_parquet
from framefleet.export.webdataset import sample_key, write_webdataset

__all__ = [
    "IMAGE_COLUMNS",
    "SOURCE_FIELDS",
    "framesets_parquet_path",
    "parquet_path",
    "require_pyarrow",
    "sample_key",
    "shard_path",
    "shard_prefix",
    "sources_by_content",
    "write_parquet",
    "write_webdataset",
]
