"""The image topics of a bag, their time index, and their images, read through the bag's index.

What is read, and when:

* `topic_index` with ``clock="receive"`` reads the bag's index only (ROS1: the connection and
  chunk index records; MCAP: the summary and the image channels' message indexes; ROS2 SQLite:
  the ``topics`` table and each image message's row id and timestamp). No message bytes.
* `image_topics`, and `topic_index` with ``clock="header"``, also read the start of each image
  message (`messages.PREFIX_BYTES`, more only when the header is longer): its header stamp,
  format and size. In a compressed chunk (ROS1 ``lz4``/``bz2``, MCAP ``zstd``/``lz4``) that means
  decompressing the chunks holding image messages, once each.
* `read_images` reads only the messages asked for, whole.

Layouts (and the header fields read) are cached per process, keyed by the bag's path and its
files' sizes and mtimes, so a changed bag is read again.
"""

from __future__ import annotations

import functools
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from typing import Protocol

from framefleet.errors import ConfigError, InvalidBagError, TruncatedBagError, VideoNotFoundError
from framefleet.media.bags import mcapfile, ros1, ros2
from framefleet.media.bags.layout import Layout, Loc, RawTopic
from framefleet.media.bags.messages import (
    PREFIX_BYTES,
    BadMessage,
    ImageMessage,
    ShortMessage,
    parse_image,
)
from framefleet.media.bags.model import (
    CLOCKS,
    BagImage,
    Clock,
    TopicIndex,
    TopicInfo,
    build_index,
    topic_info,
)
from framefleet.media.bags.pixels import PixelError, raw_to_rgb
from framefleet.pydtk import ROS2_METADATA_NAME, ROS2_STORAGE_SUFFIXES

_MAX_HEADER_BYTES = 1 << 20
_lock = threading.Lock()


class _Messages(Protocol):
    def get(self, loc: Loc, limit: int | None = None) -> bytes: ...
    def close(self) -> None: ...


def image_topics(path: str | os.PathLike[str]) -> list[TopicInfo]:
    """Every image topic of a bag with messages, sorted by name (see the module for what is
    read): ROS1 ``*.bag``, a ROS2 bag folder, or an MCAP file.

    Raises:
        VideoNotFoundError: nothing at ``path``.
        InvalidBagError: not a readable bag, no image topic (the message lists the topics), or
            a malformed image message.
    """
    layout = _layout(path, headers=True)
    return [topic_info(layout, layout.image[name]) for name in _image_names(layout)]


def topic_index(path: str | os.PathLike[str], topic: str, *, clock: Clock) -> TopicIndex:
    """The messages of ``topic`` in time order on ``clock`` (`framefleet.media.bags.model`'s
    timing rule); ``clock="receive"`` reads no message bytes.

    Raises:
        ConfigError: a clock other than ``header`` or ``receive``.
        InvalidBagError: not a readable bag, no such image topic (the message lists the image
            topics), or unset header stamps with ``clock="header"``.
    """
    if clock not in CLOCKS:
        raise ConfigError(f"clock must be one of {', '.join(CLOCKS)}, got {clock!r}")
    layout = _layout(path, headers=clock == "header")
    return build_index(layout, _topic(layout, topic), clock)


def read_images(
    path: str | os.PathLike[str], topic: str, positions: Iterable[int]
) -> Iterator[tuple[int, BagImage]]:
    """The images at ``positions`` (`TopicIndex.positions`), in the order given, reading only
    those messages through the bag's index.

    Raises:
        ConfigError: a position that is not one of the topic's messages.
        TruncatedBagError: a position past the cut of a truncated bag (after the images before).
        InvalidBagError: a malformed message, an unsupported encoding or compressed format.
    """
    layout = _layout(path, headers=False)
    raw = _topic(layout, topic)
    with _open_messages(layout) as messages:
        for position in positions:
            if isinstance(position, bool) or not 0 <= position < len(raw.locs):
                if layout.truncated and isinstance(position, int) and position >= len(raw.locs):
                    raise TruncatedBagError(
                        f"{layout.path!r} stops early ({layout.stop_reason}): {topic!r} has "
                        f"{len(raw.locs)} messages before the cut, not message {position}"
                    )
                raise ConfigError(
                    f"position {position!r} is not a message of {topic!r} in {layout.path!r} "
                    f"(it has {len(raw.locs)}: 0..{len(raw.locs) - 1})"
                )
            yield position, _image(layout, raw, messages, position)


def _image(layout: Layout, raw: RawTopic, messages: _Messages, position: int) -> BagImage:
    where = f"{layout.path!r}: message {position} of {raw.name!r}"
    data = _get(messages, raw.locs[position], None, where)
    msg = _parse(data, raw, where)
    end = msg.data_offset + msg.data_length
    if end > len(data):
        raise InvalidBagError(
            f"{where}: its data needs {end} bytes, the message has {len(data)}: damaged"
        )
    pixels = data[msg.data_offset : end]
    if msg.compressed:
        if msg.encoding not in ("jpeg", "png"):
            raise InvalidBagError(
                f"{where}: compressed format {msg.encoding!r} is not supported (JPEG and PNG are)"
            )
        return BagImage(
            position=position,
            header_ns=msg.header_ns,
            receive_ns=raw.receive_ns[position],
            encoding=msg.encoding,
            data=pixels,
            rgb=None,
            width=msg.width,
            height=msg.height,
        )
    assert msg.width is not None
    assert msg.height is not None
    try:
        rgb = raw_to_rgb(
            pixels,
            encoding=msg.encoding,
            width=msg.width,
            height=msg.height,
            step=msg.step,
            is_bigendian=msg.is_bigendian,
        )
    except PixelError as e:
        raise InvalidBagError(f"{where}: {e}") from e
    return BagImage(
        position=position,
        header_ns=msg.header_ns,
        receive_ns=raw.receive_ns[position],
        encoding=msg.encoding,
        data=b"",
        rgb=rgb,
        width=msg.width,
        height=msg.height,
    )


def _get(messages: _Messages, loc: Loc, limit: int | None, where: str) -> bytes:
    try:
        return messages.get(loc, limit)
    except (ValueError, KeyError, IndexError, struct.error) as e:
        raise InvalidBagError(f"{where}: unreadable ({type(e).__name__}: {e})") from e


def _parse(data: bytes, raw: RawTopic, where: str) -> ImageMessage:
    try:
        return parse_image(data, serialization=raw.serialization, compressed=raw.compressed)
    except ShortMessage as e:
        raise InvalidBagError(
            f"{where}: {len(data)} bytes, its fields need {e.needed}: not a {raw.msg_type}"
        ) from None
    except BadMessage as e:
        raise InvalidBagError(f"{where}: {e}") from None


def _read_headers(layout: Layout) -> None:
    """Fill the header stamp, encoding and size of every image message (the start of each)."""
    with _open_messages(layout) as messages:
        for raw in layout.image.values():
            n = len(raw.locs)
            stamps, encodings = [0] * n, [""] * n
            sizes: list[tuple[int, int] | None] = [None] * n
            for i in sorted(range(n), key=raw.locs.__getitem__):  # in file order
                where = f"{layout.path!r}: message {i} of {raw.name!r}"
                limit = PREFIX_BYTES
                while True:
                    data = _get(messages, raw.locs[i], limit, where)
                    try:
                        msg = parse_image(
                            data, serialization=raw.serialization, compressed=raw.compressed
                        )
                        break
                    except ShortMessage as e:
                        if len(data) < limit or e.needed > _MAX_HEADER_BYTES:
                            msg = _parse(data, raw, where)  # raises with the reason
                        limit = e.needed + PREFIX_BYTES
                    except BadMessage as e:
                        raise InvalidBagError(f"{where}: {e}") from None
                stamps[i], encodings[i] = msg.header_ns, msg.encoding
                if msg.width is not None and msg.height is not None:
                    sizes[i] = (msg.width, msg.height)
            raw.header_ns, raw.encodings, raw.sizes = stamps, encodings, sizes


def _open_messages(layout: Layout) -> ros1.Messages | mcapfile.Messages | ros2.Db3Messages:
    if layout.kind == "ros1":
        return ros1.Messages(layout)
    if layout.kind == "ros2" and layout.storage == "sqlite3":
        return ros2.Db3Messages(layout)
    return mcapfile.Messages(layout)


def _image_names(layout: Layout) -> list[str]:
    names = sorted(name for name, raw in layout.image.items() if raw.locs)
    if not names:
        shown = ", ".join(f"{t} ({m or '?'})" for t, m in sorted(layout.topics.items()))
        empty = " (its image topics have no messages)" if layout.image else ""
        raise InvalidBagError(
            f"{layout.path!r} has no image topic{empty} (sensor_msgs Image or "
            f"CompressedImage); its topics: {shown or 'none'}"
            + (f"; it stops early: {layout.stop_reason}" if layout.truncated else "")
        )
    return names


def _topic(layout: Layout, topic: str) -> RawTopic:
    raw = layout.image.get(topic)
    if raw is None or not raw.locs:
        names = _image_names(layout)
        kind = f"a {layout.topics[topic]} topic" if topic in layout.topics else "not a topic"
        raise InvalidBagError(
            f"{topic!r} is {kind} of {layout.path!r}, whose image topics are: {', '.join(names)}"
        )
    return raw


def _layout(path: str | os.PathLike[str], *, headers: bool) -> Layout:
    name = os.path.abspath(os.fspath(path))
    layout = _cached(name, _fingerprint(name))
    if headers and not layout.headers_read:
        with _lock:
            if not layout.headers_read:
                _read_headers(layout)
                layout.headers_read = True
    return layout


def _fingerprint(path: str) -> tuple[object, ...]:
    """What identifies a bag's version: its files' names, sizes and mtimes."""
    try:
        if os.path.isdir(path):
            files = [
                entry
                for entry in sorted(os.scandir(path), key=lambda e: e.name)
                if entry.name == ROS2_METADATA_NAME
                or entry.name.lower().endswith(ROS2_STORAGE_SUFFIXES)
            ]
            return tuple((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in files)
        st = os.stat(path)
    except FileNotFoundError as e:
        raise VideoNotFoundError(f"bag not found: {path!r}") from e
    except OSError as e:
        raise InvalidBagError(f"cannot read {path!r}: {e.strerror or e}") from e
    return (st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _cached(path: str, fingerprint: tuple[object, ...]) -> Layout:
    del fingerprint  # part of the cache key only
    try:
        return _read_layout(path)
    except (ValueError, KeyError, IndexError, struct.error, EOFError, OverflowError) as e:
        raise InvalidBagError(f"{path!r} is damaged: {type(e).__name__}: {e}") from e
    except OSError as e:
        raise InvalidBagError(f"cannot read {path!r}: {e.strerror or e}") from e


def _read_layout(path: str) -> Layout:
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, ROS2_METADATA_NAME)):
            raise InvalidBagError(
                f"{path!r} is a folder without {ROS2_METADATA_NAME}: not a ROS2 bag"
            )
        return ros2.index(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(ros1.MAGIC[:8]):
        return ros1.index(path)
    if head.startswith(mcapfile.MAGIC):
        return mcapfile.index(path)
    why = "it is empty" if not head else f"it starts with {head[:8]!r}"
    raise InvalidBagError(
        f"{path!r} is neither a ROS1 bag nor an MCAP file ({why}); a ROS2 bag is its folder"
    )
