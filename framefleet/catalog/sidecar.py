"""pydtk sidecar metadata: one JSON file beside each data file, read into a `FileEntry`.

Both forms pydtk wrote are accepted::

    {"record_id": "016_...", "type": "raw_data", "content-type": "video/mp4",
     "path": "records/016_.../data/camera_01.mp4", "start_timestamp": 1489728491.0,
     "contents": {"camera/front-center": {"tags": ["camera", "front"]}}}

    {"record_id": "016_...", "contents": "camera/front-center", "tags": ["camera", "front"], ...}

``type`` is pydtk's name for ``data_type`` and ``content-type`` for ``content_type`` (the
underscored names are accepted too). ``path`` may be absolute or relative; pydtk wrote paths
relative to the root of its database (``records/<record_id>/...``), which rarely matches where a
copy of the tree sits, so a path is looked for, in order: as given when absolute, under the base
directory, and finally beside the sidecar (the sidecar's name minus ``.json``).

Any bytes give either a valid entry or a `MetadataError` naming the sidecar and the field. The
bounds (see `framefleet.catalog.values` for the text rules):

- the file: a regular file of at most `MAX_SIDECAR_BYTES`, JSON (UTF-8/16/32) nested less deeply
  than Python's recursion limit, a JSON object at the top;
- ``record_id`` (required), ``database_id``, ``sub_record_id``, ``type``, ``content-type``,
  ``msg_type``, ``msg_md5sum``, content names and tags: strings of 1 to 255 characters without
  control characters (tags: a list of at most 1000 strings; blank ones are dropped);
  ``description``: a string of at most 65,536 characters; ``path``: at most 4096;
- ``start_timestamp``, ``end_timestamp``: epoch seconds from 0 to 253402300800 (the year 10000),
  end not before start; ``frequency``: 0 to 1e9 Hz; ``count``: an integer from 0 to 2^31 - 1;
- ``contents``: a non-empty name, or an object of at most 10,000 contents.

The entry's source key covers the sidecar's path and bytes and the data file's size and mtime, so
a data file replaced under the same sidecar is re-ingested.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from framefleet.catalog.entries import ContentEntry, FileEntry, check_entry
from framefleet.catalog.values import (
    FREQUENCY_RANGE,
    MAX_CONTENTS,
    MAX_DESCRIPTION_CHARS,
    MAX_INTEGER,
    MAX_NAME_CHARS,
    MAX_PATH_CHARS,
    MAX_TAGS,
    TIMESTAMP_RANGE,
    number_problem,
    show_path,
    show_value,
    text_problem,
)
from framefleet.errors import MetadataError
from framefleet.pydtk import is_ros2_bag_dir

INGEST_VERSION = "2"
"""Part of every source key: bump it when ingest builds rows differently, so re-ingest rewrites."""
MAX_SIDECAR_BYTES = 1024 * 1024
"""A pydtk sidecar is a few hundred bytes; one with thousands of rosbag topics, tens of KiB."""

_NAME_FIELDS = ("database_id", "sub_record_id", "msg_type", "msg_md5sum", "data_type")
_ALIASES = {"type": "data_type", "content-type": "content_type"}


def source_key(*parts: object) -> str:
    """A stable digest of what an entry is built from."""
    digest = hashlib.sha256(INGEST_VERSION.encode())
    for part in parts:
        digest.update(b"\x00")
        digest.update(part if isinstance(part, bytes) else str(part).encode(errors="replace"))
    return digest.hexdigest()


def read_sidecar(
    sidecar: Path, *, base_dir: Path | None = None, database_id: str | None = None
) -> FileEntry:
    """Read and validate a pydtk sidecar.

    Args:
        sidecar: the ``<file>.json``.
        base_dir: where relative ``path`` values are looked for first.
        database_id: used when the sidecar has no ``database_id`` of its own.

    Raises:
        MetadataError: unreadable or invalid JSON, a missing, mistyped or out-of-range field, or
            a data file that exists nowhere; the message names the sidecar and the field.
    """
    where = show_path(sidecar)
    raw = _read_bounded(sidecar, where)
    data = _parse_json(raw, where)
    if not isinstance(data, dict):
        raise MetadataError(f"{where}: expected a JSON object, got {type(data).__name__}")
    keys = [str(k) for k in data]  # JSON keys are strings
    fields: dict[str, Any] = {
        _ALIASES.get(k, k): v for k, v in zip(keys, data.values(), strict=True)
    }
    spelt = {_ALIASES.get(k, k): k for k in keys}  # messages name a field as written (last wins)

    record_id = fields.get("record_id")
    if not isinstance(record_id, str) or not record_id:
        raise MetadataError(f"{where}: 'record_id' is missing or not a non-empty string")
    text = {
        name: _text(fields, name, where, label=spelt.get(name))
        for name in (*_NAME_FIELDS, "content_type")
    }
    text["record_id"] = _text(fields, "record_id", where)
    description = _text(fields, "description", where, MAX_DESCRIPTION_CHARS, name_like=False)
    start = _number(fields, "start_timestamp", where, TIMESTAMP_RANGE)
    end = _number(fields, "end_timestamp", where, TIMESTAMP_RANGE)
    if start is not None and end is not None and end < start:
        raise MetadataError(f"{where}: end_timestamp {end} is before start_timestamp {start}")
    contents = _contents(fields, where)
    count = _integer(fields, "count", where)
    frequency = _number(fields, "frequency", where, FREQUENCY_RANGE)
    path = _resolve_data_path(sidecar, fields.get("path"), base_dir, where)
    data_stat = path.stat()
    own = Path(os.path.abspath(sidecar))
    entry = FileEntry(
        path=path,
        record_id=record_id,
        contents=contents,
        source_key=source_key(
            raw, own, path, database_id or "", data_stat.st_size, data_stat.st_mtime_ns
        ),
        sidecar_path=own,
        description=description,
        database_id=text["database_id"] if text["database_id"] is not None else database_id,
        sub_record_id=text["sub_record_id"],
        data_type=text["data_type"],
        content_type=text["content_type"],
        start_timestamp=start,
        end_timestamp=end,
        msg_type=text["msg_type"],
        msg_md5sum=text["msg_md5sum"],
        count=count,
        frequency=frequency,
    )
    check_entry(entry)  # the catalog-wide rules, e.g. for a --database-id given to ingest
    return entry


def _read_bounded(sidecar: Path, where: str) -> bytes:
    """The file's bytes; never blocks on a FIFO, never reads more than the limit."""
    try:
        fd = os.open(sidecar, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise MetadataError(f"{where}: cannot read: {reason}") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MetadataError(f"{where}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_SIDECAR_BYTES + 1)
    except OSError as e:
        raise MetadataError(f"{where}: cannot read: {e.strerror or e}") from e
    finally:
        os.close(fd)
    if len(raw) > MAX_SIDECAR_BYTES:
        raise MetadataError(
            f"{where}: larger than {MAX_SIDECAR_BYTES // 1024} KiB: not a pydtk sidecar"
        )
    return raw


def _parse_json(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        reason = "nested too deeply"
    except UnicodeDecodeError as e:
        reason = f"not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start})"
    except json.JSONDecodeError as e:
        reason = str(e)
    except ValueError:  # int() refuses more than 4300 digits
        reason = "a number has too many digits"
    raise MetadataError(f"{where}: not valid JSON: {reason}")


def _text(
    fields: Mapping[str, Any],
    name: str,
    where: str,
    limit: int = MAX_NAME_CHARS,
    *,
    name_like: bool = True,
    label: str | None = None,
) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    label = label or name
    if not isinstance(value, str):
        raise MetadataError(f"{where}: {label!r} must be a string, got {show_value(value)}")
    problem = text_problem(value, max_chars=limit, name_like=name_like)
    if problem is not None:
        raise MetadataError(f"{where}: {label!r} {problem}")
    return value


def _number(
    fields: Mapping[str, Any], name: str, where: str, bounds: tuple[float, float]
) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetadataError(f"{where}: {name!r} must be a number, got {show_value(value)}")
    problem = number_problem(value, *bounds)
    if problem is not None:
        raise MetadataError(f"{where}: {name!r} {show_value(value)} {problem}")
    return float(value)  # in range: no overflow


def _integer(fields: Mapping[str, Any], name: str, where: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MetadataError(f"{where}: {name!r} must be an integer, got {show_value(value)}")
    problem = number_problem(value, 0, MAX_INTEGER)
    if problem is not None:
        raise MetadataError(f"{where}: {name!r} {show_value(value)} {problem}")
    return value


def _tags(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise MetadataError(f"{where}: 'tags' must be a list of strings, got {show_value(value)}")
    if len(value) > MAX_TAGS:
        raise MetadataError(f"{where}: 'tags' has {len(value)} tags (at most {MAX_TAGS})")
    for tag in value:
        problem = text_problem(tag, max_chars=MAX_NAME_CHARS)
        if problem is not None:
            raise MetadataError(f"{where}: tag {show_value(tag)} {problem}")
    return tuple(dict.fromkeys(t for t in value if t))  # drop duplicates and blanks, keep order


def _contents(fields: Mapping[str, Any], where: str) -> tuple[ContentEntry, ...]:
    contents = fields.get("contents")
    if isinstance(contents, str) and contents:  # the flat form
        _content_name(contents, where)
        return (ContentEntry(name=contents, tags=_tags(fields.get("tags"), where)),)
    if not isinstance(contents, dict) or not contents:
        raise MetadataError(
            f"{where}: 'contents' must be a content name or an object "
            '{"<name>": {"tags": [...]}}, got ' + show_value(contents)
        )
    if len(contents) > MAX_CONTENTS:
        raise MetadataError(
            f"{where}: 'contents' has {len(contents)} contents (at most {MAX_CONTENTS})"
        )
    out = []
    for name, info in contents.items():
        _content_name(name, where)
        inner = f"{where}: contents[{name!r}]"
        if info is None:
            info = {}
        if not isinstance(info, dict):
            raise MetadataError(f"{inner} must be an object, got {show_value(info)}")
        out.append(
            ContentEntry(
                name=name,
                tags=_tags(info.get("tags"), inner),
                msg_type=_text(info, "msg_type", inner),
                msg_md5sum=_text(info, "msg_md5sum", inner),
                count=_integer(info, "count", inner),
                frequency=_number(info, "frequency", inner, FREQUENCY_RANGE),
            )
        )
    return tuple(out)


def _content_name(name: str, where: str) -> None:
    if not name:
        raise MetadataError(f"{where}: 'contents' has an empty content name")
    problem = text_problem(name, max_chars=MAX_NAME_CHARS)
    if problem is not None:
        raise MetadataError(
            f"{where}: 'contents' has a content name {show_value(name)} that {problem}"
        )


def _resolve_data_path(sidecar: Path, given: Any, base_dir: Path | None, where: str) -> Path:
    # os.path rather than pathlib: this runs once per file on trees of 100k files.
    if given is not None and not isinstance(given, str):
        raise MetadataError(f"{where}: 'path' must be a string, got {show_value(given)}")
    if given:
        problem = text_problem(given, max_chars=MAX_PATH_CHARS, name_like=False)
        if problem is not None:
            raise MetadataError(f"{where}: 'path' {problem}")
    tried: list[str] = []
    if given:
        expanded = os.path.expanduser(given)
        if os.path.isabs(expanded):
            tried.append(os.path.realpath(expanded))
        elif base_dir is not None:
            tried.append(os.path.normpath(os.path.join(base_dir, expanded)))
    tried.append(os.path.abspath(str(sidecar)[: -len(".json")]))
    for candidate in tried:
        if os.path.isfile(candidate) or is_ros2_bag_dir(candidate):  # a ROS2 bag is a folder
            return Path(candidate)
    shown = ", ".join(repr(t) for t in tried)
    raise MetadataError(f"{where}: 'path': data file not found (looked for {shown})")
