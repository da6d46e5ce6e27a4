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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from framefleet.catalog.entries import ContentEntry, FileEntry
from framefleet.errors import MetadataError

INGEST_VERSION = "1"
"""Part of every source key: bump it when ingest builds rows differently, so re-ingest rewrites."""

_TEXT_FIELDS = ("description", "database_id", "sub_record_id", "msg_type", "msg_md5sum")
_ALIASES = {"type": "data_type", "content-type": "content_type"}


def source_key(*parts: object) -> str:
    """A stable digest of what an entry is built from."""
    digest = hashlib.sha256(INGEST_VERSION.encode())
    for part in parts:
        digest.update(b"\x00")
        digest.update(part if isinstance(part, bytes) else str(part).encode())
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
        MetadataError: unreadable or invalid JSON, a missing or mistyped field, or a data file
            that exists nowhere; the message names the sidecar and the field.
    """
    try:
        raw = sidecar.read_bytes()
    except OSError as e:
        raise MetadataError(f"{sidecar}: cannot read: {e.strerror or e}") from e
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MetadataError(f"{sidecar}: not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise MetadataError(f"{sidecar}: expected a JSON object, got {type(data).__name__}")
    fields: dict[str, Any] = {_ALIASES.get(str(k), str(k)): v for k, v in data.items()}
    where = str(sidecar)

    record_id = fields.get("record_id")
    if not isinstance(record_id, str) or not record_id:
        raise MetadataError(f"{where}: 'record_id' is missing or not a non-empty string")
    text = {
        name: _text(fields, name, where) for name in (*_TEXT_FIELDS, "data_type", "content_type")
    }
    if text["database_id"] is None:
        text["database_id"] = database_id
    start = _number(fields, "start_timestamp", where)
    end = _number(fields, "end_timestamp", where)
    if start is not None and end is not None and end < start:
        raise MetadataError(f"{where}: end_timestamp {end} is before start_timestamp {start}")
    path = _resolve_data_path(sidecar, fields.get("path"), base_dir)
    return FileEntry(
        path=path,
        record_id=record_id,
        contents=_contents(fields, where),
        source_key=source_key(raw, path, database_id or ""),
        description=text["description"],
        database_id=text["database_id"],
        sub_record_id=text["sub_record_id"],
        data_type=text["data_type"],
        content_type=text["content_type"],
        start_timestamp=start,
        end_timestamp=end,
        msg_type=text["msg_type"],
        msg_md5sum=text["msg_md5sum"],
        count=_integer(fields, "count", where),
        frequency=_number(fields, "frequency", where),
    )


def _text(fields: Mapping[str, Any], name: str, where: str) -> str | None:
    value = fields.get(name)
    if value is None or isinstance(value, str):
        return value
    raise MetadataError(f"{where}: {name!r} must be a string, got {json.dumps(value)}")


def _number(fields: Mapping[str, Any], name: str, where: str) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MetadataError(f"{where}: {name!r} must be a number, got {json.dumps(value)}")
    return float(value)


def _integer(fields: Mapping[str, Any], name: str, where: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MetadataError(f"{where}: {name!r} must be an integer, got {json.dumps(value)}")
    return value


def _tags(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise MetadataError(f"{where}: 'tags' must be a list of strings, got {json.dumps(value)}")
    return tuple(dict.fromkeys(t for t in value if t))  # drop duplicates and blanks, keep order


def _contents(fields: Mapping[str, Any], where: str) -> tuple[ContentEntry, ...]:
    contents = fields.get("contents")
    if isinstance(contents, str) and contents:  # the flat form
        return (ContentEntry(name=contents, tags=_tags(fields.get("tags"), where)),)
    if not isinstance(contents, dict) or not contents:
        raise MetadataError(
            f"{where}: 'contents' must be a content name or an object "
            '{"<name>": {"tags": [...]}}, got ' + json.dumps(contents)
        )
    out = []
    for name, info in contents.items():
        inner = f"{where}: contents[{name!r}]"
        if not name:
            raise MetadataError(f"{where}: a content name is empty")
        if info is None:
            info = {}
        if not isinstance(info, dict):
            raise MetadataError(f"{inner} must be an object, got {json.dumps(info)}")
        out.append(
            ContentEntry(
                name=name,
                tags=_tags(info.get("tags"), inner),
                msg_type=_text(info, "msg_type", inner),
                msg_md5sum=_text(info, "msg_md5sum", inner),
                count=_integer(info, "count", inner),
                frequency=_number(info, "frequency", inner),
            )
        )
    return tuple(out)


def _resolve_data_path(sidecar: Path, given: Any, base_dir: Path | None) -> Path:
    # os.path rather than pathlib: this runs once per file on trees of 100k files.
    if given is not None and not isinstance(given, str):
        raise MetadataError(f"{sidecar}: 'path' must be a string, got {json.dumps(given)}")
    tried: list[str] = []
    if given:
        expanded = os.path.expanduser(given)
        if os.path.isabs(expanded):
            tried.append(os.path.realpath(expanded))
        elif base_dir is not None:
            tried.append(os.path.normpath(os.path.join(base_dir, expanded)))
    tried.append(os.path.abspath(str(sidecar)[: -len(".json")]))
    for candidate in tried:
        if os.path.isfile(candidate):
            return Path(candidate)
    shown = ", ".join(repr(t) for t in tried)
    raise MetadataError(f"{sidecar}: data file not found (looked for {shown})")
