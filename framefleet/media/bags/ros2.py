"""ROS2 bags: a folder with ``metadata.yaml`` and its storage files (``*.db3`` or ``*.mcap``).

``metadata.yaml`` names the storage (``sqlite3`` or ``mcap``) and its files, in order (a split
bag has several). MCAP storage is read as any MCAP file (`framefleet.media.bags.mcapfile`).

SQLite storage (``*.db3``) is opened read-only with the standard library: the ``topics`` table
gives the topics; for each image topic, one query over ``messages`` gives each message's row id
and receive ``timestamp`` without its ``data`` (SQLite keeps a large blob in overflow pages it
does not read for that); a message is then read through incremental blob I/O
(``Connection.blobopen``), only as many bytes as asked. A `Loc` here is ``(file, 0, rowid)``.

Compressed bags (``compression_mode`` ``file`` or ``message``) are refused with a message
saying so. A storage file listed in ``metadata.yaml`` that is missing, or a database that
stops being readable part way (a cut file), leaves the layout truncated with the reason.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from framefleet.errors import InvalidBagError
from framefleet.media.bags import mcapfile
from framefleet.media.bags.layout import Layout, Loc, RawTopic, not_a_bag
from framefleet.pydtk import ROS2_METADATA_NAME, is_image_msg_type

_MAX_METADATA_BYTES = 16 * 1024 * 1024


def _metadata(path: str) -> dict[str, Any]:
    meta = os.path.join(path, ROS2_METADATA_NAME)
    try:
        with open(meta, "rb") as f:
            text = f.read(_MAX_METADATA_BYTES + 1)
        if len(text) > _MAX_METADATA_BYTES:
            raise not_a_bag(path, f"{ROS2_METADATA_NAME} is larger than 16 MiB")
        data = YAML(typ="safe", pure=True).load(text)
    except OSError as e:
        raise not_a_bag(path, f"cannot read {ROS2_METADATA_NAME}: {e.strerror or e}") from e
    except (YAMLError, ValueError) as e:
        raise not_a_bag(path, f"{ROS2_METADATA_NAME} is not valid YAML ({e})") from e
    info = data.get("rosbag2_bagfile_information") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        raise not_a_bag(path, f"{ROS2_METADATA_NAME} has no 'rosbag2_bagfile_information'")
    return info


def index(path: str) -> Layout:
    """The layout of the ROS2 bag folder ``path``.

    Raises:
        InvalidBagError: no usable ``metadata.yaml``, an unsupported storage or compression, or
            no storage file readable.
    """
    info = _metadata(path)
    storage = str(info.get("storage_identifier", ""))
    if storage not in ("sqlite3", "mcap"):
        raise InvalidBagError(
            f"{path!r}: storage {storage!r} is not supported (supported: sqlite3, mcap)"
        )
    mode = str(info.get("compression_mode") or "none").lower()
    if mode not in ("", "none"):
        raise InvalidBagError(
            f"{path!r} is compressed (compression_mode: {mode}), which is not supported: "
            "store it uncompressed (ros2 bag convert) and add it again"
        )
    names = info.get("relative_file_paths")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise not_a_bag(path, f"{ROS2_METADATA_NAME} lists no storage files")
    files = [os.path.join(path, os.path.basename(n)) for n in names]
    present = [f for f in files if os.path.isfile(f)]
    if not present:
        raise InvalidBagError(f"{path!r}: none of its storage files exists ({', '.join(names)})")
    layout = Layout(kind="ros2", path=path, files=present, topics={}, image={}, storage=storage)
    missing = [os.path.basename(f) for f in files if f not in present]
    if missing:
        layout.truncated = True
        layout.stop_reason = f"storage files listed in {ROS2_METADATA_NAME} are missing: " + (
            ", ".join(missing)
        )
    for number, file in enumerate(present):
        if storage == "mcap":
            mcapfile.read_index(layout, file, number)
        else:
            _read_db3(layout, file, number)
    for topic in layout.image.values():
        topic.sort()
    return layout


def _connect(file: str) -> sqlite3.Connection:
    uri = f"file:{urllib.parse.quote(os.path.abspath(file))}?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _read_db3(layout: Layout, file: str, number: int) -> None:
    try:
        con = _connect(file)
    except sqlite3.Error as e:
        raise not_a_bag(file, f"SQLite cannot open it ({e})") from e
    try:
        try:
            topics = con.execute(
                "SELECT id, name, type, serialization_format FROM topics"
            ).fetchall()
        except sqlite3.Error as e:
            raise not_a_bag(file, f"it has no readable topics table ({e})") from e
        wanted: dict[int, RawTopic] = {}
        for tid, name, msg_type, serialization in topics:
            layout.topics.setdefault(str(name), str(msg_type))
            if is_image_msg_type(msg_type) and serialization == "cdr":
                raw = layout.image.setdefault(name, RawTopic(name, msg_type, None, "cdr"))
                wanted[int(tid)] = raw
        count = 0
        try:
            for tid, raw in wanted.items():
                query = "SELECT id, timestamp FROM messages WHERE topic_id = ?"
                for rowid, stamp in con.execute(query, (tid,)):
                    raw.receive_ns.append(int(stamp))
                    raw.locs.append((number, 0, int(rowid)))
                    count += 1
        except sqlite3.DatabaseError as e:
            layout.truncated = True
            reason = f"{os.path.basename(file)} is unreadable after {count} image messages ({e})"
            layout.stop_reason = f"{layout.stop_reason}; {reason}" if layout.stop_reason else reason
    finally:
        con.close()


class Db3Messages:
    """Reads messages of a SQLite-stored ROS2 bag by `Loc`, through incremental blob I/O."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.connections: dict[int, sqlite3.Connection] = {}

    def get(self, loc: Loc, limit: int | None = None) -> bytes:
        """The serialized message at ``loc`` (its first ``limit`` bytes when given)."""
        file, _, rowid = loc
        con = self.connections.get(file)
        if con is None:
            con = self.connections[file] = _connect(self.layout.files[file])
        try:
            with con.blobopen("messages", "data", rowid, readonly=True) as blob:
                return blob.read(-1 if limit is None else limit)
        except sqlite3.Error as e:
            raise InvalidBagError(
                f"{self.layout.files[file]!r}: message row {rowid} is unreadable ({e})"
            ) from e

    def close(self) -> None:
        for con in self.connections.values():
            con.close()
        self.connections.clear()

    def __enter__(self) -> Db3Messages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
