"""A job manifest as Parquet: one row per manifest line, for pandas, polars, DuckDB or Spark.

Columns, in this order:

* the image columns of every manifest line (`framefleet.media.pipeline.ImageRecord`): ``path``
  (relative to the output root), ``record_id``, ``content``, ``timestamp`` (the frame's own
  time), ``grid_time``, ``pts_seconds``, ``width``, ``height``, ``bytes``, ``spec``;
* every other key some line has, sorted by name: ``grid_count``, ``requested_times`` (a list),
  and for a requested time no frame answers, ``requested_time`` and ``missing`` (such a line has
  no ``path``). Known keys have fixed types; another key's type is inferred from its values (as
  JSON text when they mix kinds). A line without a key has null there;
* with ``sources``, the source video's catalog fields as ``source_id``, ``source_path``,
  ``source_tags``, ... (`framefleet.export.lines.SOURCE_FIELDS`).

Frameset manifests (``--sync``: one JSON line per grid time) become a second file with one row
per line, columns as the lines have them (nested objects become structs).

Both files are written through a temporary name and a rename, and the same input gives the same
bytes (same pyarrow version): no timestamps, rows in manifest order. pyarrow is an optional
dependency (``pip install 'framefleet[parquet]'``), imported only here and only when called.
The whole table is held in memory while it is written (about 100 bytes an image).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framefleet.errors import ConfigError, OutputError
from framefleet.export.layout import atomic_output, framesets_parquet_path, parquet_path
from framefleet.export.lines import (
    SOURCE_FIELDS,
    Sources,
    check_images,
    default_out_root,
    iter_lines,
    source_fields,
)

INSTALL_HINT = "pip install 'framefleet[parquet]'"

IMAGE_COLUMNS = (
    "path",
    "record_id",
    "content",
    "timestamp",
    "grid_time",
    "pts_seconds",
    "width",
    "height",
    "bytes",
    "spec",
)
"""Columns every image table has, first, in this order."""

SOURCE_PREFIX = "source_"


def require_pyarrow() -> None:
    """Raise `ConfigError` now, without importing it, when pyarrow is not installed.

    A job asking for a Parquet export is refused when it is planned, not after its images.
    """
    if importlib.util.find_spec("pyarrow") is None:
        raise ConfigError(f"--export parquet needs pyarrow (not installed): {INSTALL_HINT}")


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as e:
        raise ConfigError(f"writing Parquet needs pyarrow (not installed): {INSTALL_HINT}") from e
    return pyarrow


def _types(pa: Any) -> dict[str, Any]:
    text, real, whole = pa.string(), pa.float64(), pa.int64()
    return {
        "path": text,
        "record_id": text,
        "content": text,
        "timestamp": real,
        "grid_time": real,
        "pts_seconds": real,
        "width": whole,
        "height": whole,
        "bytes": whole,
        "spec": text,
        "grid_count": whole,
        "requested_times": pa.list_(real),
        "requested_time": real,
        "missing": text,
        SOURCE_PREFIX + "id": whole,
        SOURCE_PREFIX + "path": text,
        SOURCE_PREFIX + "timestamps_path": text,
        SOURCE_PREFIX + "database_id": text,
        SOURCE_PREFIX + "sub_record_id": text,
        SOURCE_PREFIX + "description": text,
        SOURCE_PREFIX + "data_type": text,
        SOURCE_PREFIX + "content_type": text,
        SOURCE_PREFIX + "start_timestamp": real,
        SOURCE_PREFIX + "end_timestamp": real,
        SOURCE_PREFIX + "tags": pa.list_(text),
    }


def write_parquet(
    job_manifest: Path,
    out: Path | None = None,
    *,
    out_root: Path | None = None,
    sources: Sources | None = None,
    framesets: Path | Sequence[Path] | None = None,
) -> Path:
    """Write a job manifest as Parquet (see the module docstring); return the file's path.

    Args:
        job_manifest: ``{out}/_jobs/{job_id}.jsonl``.
        out: the Parquet file; default ``{out}/_jobs/{job_id}.parquet`` (`parquet_path`).
        out_root: the directory the manifest's image paths are relative to (every image is
            checked to be there first); default: the manifest's ``{out}``.
        sources: the source rows by ``(record_id, content)`` (`sources_by_content` over the
            catalog rows the job was planned from); adds the ``source_*`` columns.
        framesets: frameset manifests (``{out}/_framesets/{record_id}.jsonl``), concatenated in
            the order given into ``{job_id}.framesets.parquet`` beside ``out``'s default
            (`framesets_parquet_path`).

    Raises:
        ConfigError: pyarrow is not installed, ``sources`` lacks a line's source, or the output
            root is not known.
        OutputError: the manifest (or a frameset manifest) cannot be read or holds a value its
            column cannot, an image is missing or was rewritten, or the file cannot be written.
    """
    pa = _pyarrow()
    job_manifest = Path(job_manifest)
    target = parquet_path(job_manifest) if out is None else Path(out)
    root = default_out_root(job_manifest) if out_root is None else Path(out_root)
    check_images(job_manifest, root.resolve())
    columns: dict[str, list[Any]] = {name: [] for name in IMAGE_COLUMNS}
    for row, line in enumerate(iter_lines(job_manifest)):
        values = dict(line.data)
        if sources is not None:
            fields = source_fields(line, sources)
            values.update({SOURCE_PREFIX + name: fields[name] for name in SOURCE_FIELDS})
        for name, value in values.items():
            if name not in columns:
                columns[name] = [None] * row
            columns[name].append(value)
        for column in columns.values():
            if len(column) == row:  # a key this line does not have
                column.append(None)
    table = _table(pa, columns, job_manifest)
    _write(pa, table, target)
    if framesets is not None:
        paths = (
            [Path(framesets)] if isinstance(framesets, str | Path) else list(map(Path, framesets))
        )
        _write(pa, _framesets_table(pa, paths), framesets_parquet_path(job_manifest))
    return target


def _ordered(columns: dict[str, list[Any]]) -> list[str]:
    image = list(IMAGE_COLUMNS)
    source = [SOURCE_PREFIX + name for name in SOURCE_FIELDS if SOURCE_PREFIX + name in columns]
    others = sorted(set(columns) - set(image) - set(source))
    return image + others + source


def _table(pa: Any, columns: dict[str, list[Any]], where: Path) -> Any:
    types = _types(pa)
    arrays = []
    names = _ordered(columns)
    for name in names:
        arrays.append(_array(pa, name, columns[name], types.get(name), where))
    return pa.Table.from_arrays(arrays, names=names)


def _array(pa: Any, name: str, values: list[Any], kind: Any, where: Path) -> Any:
    if kind is not None:
        try:
            return pa.array(values, type=kind)
        except (ValueError, TypeError, OverflowError) as e:  # Arrow's errors are both kinds
            raise OutputError(
                f"{str(where)!r}: column {name!r} holds a value Parquet cannot store as "
                f"{kind} ({e}); assemble the manifest again"
            ) from e
    try:
        return pa.array(values)
    except (ValueError, TypeError, OverflowError):  # mixed kinds, bad text: keep them as JSON
        return pa.array(
            [None if v is None else json.dumps(v, sort_keys=True) for v in values],
            type=pa.string(),
        )


def _framesets_table(pa: Any, paths: list[Path]) -> Any:
    rows: list[dict[str, Any]] = []
    for path in paths:
        rows.extend(line.data for line in iter_lines(path, images=False))
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    where = paths[0] if paths else Path("framesets")
    arrays = [_array(pa, name, [row.get(name) for row in rows], None, where) for name in names]
    return pa.Table.from_arrays(arrays, names=list(names))


def _write(pa: Any, table: Any, target: Path) -> None:
    try:
        with atomic_output(target) as f:
            pa.parquet.write_table(table, f, compression="snappy")
    except (pa.ArrowException, ValueError) as e:  # e.g. text that is not valid UTF-8
        raise OutputError(f"cannot write {str(target)!r} as Parquet: {e}") from e
