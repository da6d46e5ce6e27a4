"""Catalog entries for bags: one file row per bag, one content per image topic.

A ROS1 bag (``*.bag``), a ROS2 bag folder or an MCAP file becomes one ``files`` row whose
contents are its image topics, pydtk-shaped: the content name is the topic, with the topic's
``msg_type``, ``msg_md5sum`` (ROS1), ``count`` and ``frequency``, tagged from the bag's sidecar
(``<bag>.json``; its ``contents`` may name topics with tags) or ``camera, image``. A query then
gives one result per image topic. The row's ``start_timestamp``/``end_timestamp`` are the
earliest and latest stamps over its image topics (header stamps, or receive times with
``bag_time="receive"``); the start is the smallest float not before the exact stamp, so a grid
anchored at it never starts before the first frame.

The catalog never reads bags itself: ingest is handed a ``bag_topics`` callable
(`framefleet.media.bags.image_topics` fits), as it is handed ``probe`` for videos.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

from framefleet.catalog.entries import ContentEntry, FileEntry
from framefleet.catalog.values import show_path
from framefleet.errors import MetadataError
from framefleet.pydtk import (
    BAG_CONTENT_TYPES,
    ROS2_METADATA_NAME,
    ROS2_STORAGE_SUFFIXES,
    bag_kind,
    seconds_not_before,
)

BagTime = Literal["header", "receive"]
BAG_TIMES: tuple[BagTime, ...] = ("header", "receive")
IMAGE_TOPIC_TAGS = ("camera", "image")
"""Tags of an image topic its sidecar does not tag."""
_NS = 1_000_000_000


class BagTopicLike(Protocol):
    """What the catalog needs of a bag's image topic (`framefleet.media.bags.TopicInfo` fits)."""

    @property
    def topic(self) -> str: ...
    @property
    def msg_type(self) -> str: ...
    @property
    def md5sum(self) -> str | None: ...
    @property
    def count(self) -> int: ...
    @property
    def first_header_ns(self) -> int: ...
    @property
    def last_header_ns(self) -> int: ...
    @property
    def first_receive_ns(self) -> int: ...
    @property
    def last_receive_ns(self) -> int: ...
    @property
    def frequency(self) -> float | None: ...
    @property
    def receive_frequency(self) -> float | None: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def unset_stamps(self) -> int: ...
    @property
    def truncated(self) -> bool: ...
    @property
    def stop_reason(self) -> str: ...


BagTopics = Callable[[Path], Sequence[BagTopicLike]]
"""Reads a bag's image topics; raises a `framefleet.errors.FramefleetError` for a bad bag."""


def bag_state(path: Path) -> tuple[object, ...]:
    """What tells a changed bag: the size and mtime of the file, or of a ROS2 bag's files."""
    if path.is_dir():
        return tuple(
            (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
            for entry in sorted(os.scandir(path), key=lambda e: e.name)
            if entry.name == ROS2_METADATA_NAME
            or entry.name.lower().endswith(ROS2_STORAGE_SUFFIXES)
        )
    st = path.stat()
    return (st.st_size, st.st_mtime_ns)


def bag_record_id(path: Path) -> str:
    """A bag's record id without a sidecar: the file's stem, or the ROS2 bag folder's name."""
    return path.name if path.is_dir() else path.stem


def bag_entry(
    path: Path,
    topics: Sequence[BagTopicLike],
    *,
    key: str,
    bag_time: BagTime,
    record_id: str,
    database_id: str | None,
    sidecar: FileEntry | None = None,
) -> tuple[FileEntry, list[str]]:
    """The entry of a bag and the warnings about it (each naming the bag).

    Args:
        path: the bag (absolute): a ``*.bag`` or ``*.mcap`` file, or a ROS2 bag folder.
        topics: its image topics.
        sidecar: the entry its sidecar describes: record id, tags per topic and the other pydtk
            fields come from there.

    Raises:
        MetadataError: no image topic can be catalogued (the message says why).
    """
    shown = show_path(path)
    warnings: list[str] = []
    named = {c.name: c for c in sidecar.contents} if sidecar is not None else {}
    contents: list[ContentEntry] = []
    starts: list[int] = []
    ends: list[int] = []
    for topic in sorted(topics, key=lambda t: t.topic):
        if bag_time == "header" and topic.unset_stamps:
            warnings.append(
                f"{shown}: topic {topic.topic!r} skipped: {topic.unset_stamps} of {topic.count} "
                "messages have no header stamp; add the bag with --bag-time receive"
            )
            continue
        header = bag_time == "header"
        starts.append(topic.first_header_ns if header else topic.first_receive_ns)
        ends.append(topic.last_header_ns if header else topic.last_receive_ns)
        given = named.get(topic.topic)
        contents.append(
            ContentEntry(
                name=topic.topic,
                tags=given.tags if given is not None and given.tags else IMAGE_TOPIC_TAGS,
                msg_type=topic.msg_type,
                msg_md5sum=topic.md5sum,
                count=topic.count,
                frequency=topic.frequency if header else topic.receive_frequency,
            )
        )
    if not contents:
        raise MetadataError(f"{shown}: no image topic to catalogue ({'; '.join(warnings)})")
    found = {t.topic for t in topics}
    for name in named:
        if name not in found:
            warnings.append(f"{shown}: the sidecar names {name!r}, not an image topic of the bag")
    cut = next((t for t in topics if t.truncated), None)
    if cut is not None:
        warnings.append(f"{shown}: stops early ({cut.stop_reason}); the messages before are kept")
    sizes = {(t.width, t.height) for t in topics}
    width, height = sizes.pop() if len(sizes) == 1 else (None, None)
    start, end = seconds_not_before(min(starts)), max(ends) / _NS
    kind = bag_kind(path) or "mcap"
    entry = FileEntry(
        path=path,
        record_id=sidecar.record_id if sidecar is not None else record_id,
        contents=tuple(contents),
        source_key=key,
        sidecar_path=None if sidecar is None else sidecar.sidecar_path,
        description=None if sidecar is None else sidecar.description,
        database_id=database_id if sidecar is None else sidecar.database_id,
        sub_record_id=None if sidecar is None else sidecar.sub_record_id,
        data_type=(sidecar.data_type if sidecar is not None else None) or "raw_data",
        content_type=(sidecar.content_type if sidecar is not None else None)
        or BAG_CONTENT_TYPES[kind],
        start_timestamp=start,
        end_timestamp=max(end, start),
        duration_seconds=max(0.0, end - start),
        width=width,
        height=height,
    )
    return entry, warnings
