"""MCAP files (plain, or a ROS2 bag's storage): the index without the messages, and messages
read one by one.

An indexed MCAP ends with a summary section: schemas, channels, one chunk index per chunk
(where the chunk lies, its compression, and where each channel's message index follows it).
Reading the index (`read_index`) reads the footer and the summary (`mcap`'s own reader), then
each image channel's message index records (log time and offset of each message in the chunk's
records): a few bytes per message, none of the messages. A message (`Messages.get`) is read in
place, only as many bytes as asked, when its chunk is stored uncompressed; a ``zstd`` or ``lz4``
chunk is read and decompressed whole, once while consecutive messages come from it.

A file without a summary, with chunks that have no message indexes, or cut (no footer) is read
from the start, record by record: every message before the cut is kept; a chunk cut in the
middle keeps its complete messages when it is uncompressed and is lost when compressed.

Image channels: a schema named like `IMAGE_MSG_TYPES` with message encoding ``ros1`` or
``cdr``. The receive time is the message's ``log_time``. A `Loc` here is ``(file, chunk number,
offset of the message record in the chunk's records)``, or ``(file, -1, file offset)`` for a
message outside any chunk.
"""

from __future__ import annotations

import struct

import lz4.frame
import zstandard
from mcap.exceptions import McapError
from mcap.reader import SeekingReader

from framefleet.errors import InvalidBagError
from framefleet.media.bags.layout import (
    BagFile,
    ChunkRef,
    Layout,
    Loc,
    RawTopic,
    Serialization,
    not_a_bag,
)
from framefleet.pydtk import is_image_msg_type

MAGIC = b"\x89MCAP0\r\n"
_HEADER, _FOOTER, _SCHEMA, _CHANNEL, _MESSAGE, _CHUNK, _MSG_INDEX, _DATA_END = (
    0x01,
    0x02,
    0x03,
    0x04,
    0x05,
    0x06,
    0x07,
    0x0F,
)
_SERIALIZATIONS: dict[str, Serialization] = {"ros1": "ros1", "cdr": "cdr"}
_MESSAGE_PREFIX = 1 + 8 + 2 + 4 + 8 + 8
"""A message record's opcode, length, channel, sequence, log and publish times."""
_MAX_RECORD = 1 << 32


def index(path: str) -> Layout:
    """The layout of the plain MCAP file at ``path``.

    Raises:
        InvalidBagError: not an MCAP file, or nothing readable.
    """
    layout = Layout(kind="mcap", path=path, files=[path], topics={}, image={})
    read_index(layout, path, 0)
    for topic in layout.image.values():
        topic.sort()
    return layout


class _Channels:
    """Channel id -> its image topic (None: not an image channel) for one file."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.schemas: dict[int, str] = {}
        self.image: dict[int, RawTopic | None] = {}

    def add(self, cid: int, topic: str, encoding: str, schema_id: int, md5: str | None) -> None:
        msg_type = self.schemas.get(schema_id, "")
        self.layout.topics.setdefault(topic, msg_type)
        serialization = _SERIALIZATIONS.get(encoding)
        if not is_image_msg_type(msg_type) or serialization is None:
            self.image.setdefault(cid, None)
            return
        raw = self.layout.image.setdefault(topic, RawTopic(topic, msg_type, md5, serialization))
        if raw.msg_type != msg_type or raw.serialization != serialization:
            raise InvalidBagError(
                f"{self.layout.path!r}: topic {topic!r} carries both {raw.msg_type} "
                f"({raw.serialization}) and {msg_type} ({serialization})"
            )
        self.image[cid] = raw


def read_index(layout: Layout, path: str, file: int) -> None:
    """Add the topics and image messages of the MCAP file ``path`` (``layout.files[file]``)."""
    with BagFile(path) as f:
        magic = f.read(0, len(MAGIC))
        if magic != MAGIC:
            raise not_a_bag(path, "empty file" if not magic else "no MCAP magic at its start")
        channels = _Channels(layout)
        why = _read_summary(f, layout, channels, file)
        if why:
            _recover(f, layout, _Channels(layout), file, why)


def _read_summary(f: BagFile, layout: Layout, channels: _Channels, file: int) -> str:
    """Read the index from the summary; empty when done, else why it cannot be."""
    try:
        with open(f.path, "rb") as stream:
            summary = SeekingReader(stream).get_summary()
    except (McapError, struct.error, ValueError, OSError, EOFError) as e:
        return f"it has no readable summary ({type(e).__name__}: {e}): cut, or not closed"
    if summary is None:
        return "it has no summary section"
    if any(not c.message_index_offsets for c in summary.chunk_indexes):
        return "its chunks have no message indexes"
    stats = summary.statistics
    if not summary.chunk_indexes and (stats is None or stats.message_count > 0):
        return "its messages are not in indexed chunks"
    for sid, schema in summary.schemas.items():
        channels.schemas[sid] = schema.name
    for cid, ch in sorted(summary.channels.items()):
        channels.add(cid, ch.topic, ch.message_encoding, ch.schema_id, ch.metadata.get("md5sum"))
    wanted = {cid for cid, raw in channels.image.items() if raw is not None}
    for chunk in sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset):
        compression = chunk.compression or "none"
        records_pos = chunk.chunk_start_offset + 1 + 8 + 8 + 8 + 8 + 4 + 4
        records_pos += len(chunk.compression.encode()) + 8
        number = len(layout.chunks)
        layout.chunks.append(
            ChunkRef(file, records_pos, chunk.compressed_size, compression, chunk.uncompressed_size)
        )
        for cid, offset in chunk.message_index_offsets.items():
            if cid in wanted:
                raw = channels.image[cid]
                assert raw is not None
                _read_message_index(f, raw, offset, file, number)
    return ""


def _read_message_index(f: BagFile, raw: RawTopic, pos: int, file: int, number: int) -> None:
    head = f.exact(pos, 15, "a message index")
    if head[0] != _MSG_INDEX:
        raise InvalidBagError(f"{f.path!r}: no message index at byte {pos}")
    length = struct.unpack_from("<I", head, 11)[0]
    for log_time, offset in struct.iter_unpack("<QQ", f.exact(pos + 15, length, "an index")):
        raw.receive_ns.append(log_time)
        raw.locs.append((file, number, offset))


def _string(body: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", body, pos)
    end = pos + 4 + n
    if end > len(body):
        raise ValueError("a string runs past its record")
    return body[pos + 4 : end].decode("utf-8", "replace"), end


def _inner_record(channels: _Channels, opcode: int, body: bytes, loc: Loc, layout: Layout) -> None:
    """Take a schema, a channel or a message record (other records are skipped)."""
    if opcode == _SCHEMA:
        (sid,) = struct.unpack_from("<H", body, 0)
        channels.schemas[sid], _ = _string(body, 2)
    elif opcode == _CHANNEL:
        cid, sid = struct.unpack_from("<HH", body, 0)
        topic, pos = _string(body, 4)
        encoding, pos = _string(body, pos)
        (meta_len,) = struct.unpack_from("<I", body, pos)
        meta: dict[str, str] = {}
        pos += 4
        end = pos + meta_len
        while pos < end:
            key, pos = _string(body, pos)
            meta[key], pos = _string(body, pos)
        channels.add(cid, topic, encoding, sid, meta.get("md5sum"))
    elif opcode == _MESSAGE:
        cid, _, log_time = struct.unpack_from("<HIQ", body, 0)
        raw = channels.image.get(cid)
        if raw is not None:
            raw.receive_ns.append(log_time)
            raw.locs.append(loc)


def _walk(channels: _Channels, data: bytes, file: int, number: int, layout: Layout) -> None:
    """The complete records of a chunk's (possibly cut) records."""
    pos = 0
    while pos + 9 <= len(data):
        opcode = data[pos]
        (length,) = struct.unpack_from("<Q", data, pos + 1)
        if pos + 9 + length > len(data):
            return
        body = data[pos + 9 : pos + 9 + length]
        _inner_record(channels, opcode, body, (file, number, pos), layout)
        pos += 9 + length


def _recover(f: BagFile, layout: Layout, channels: _Channels, file: int, why: str) -> None:
    """Walk the records from the start, keeping every complete message (see the docstring)."""
    pos = len(MAGIC)
    stop = ""
    while True:
        head = f.read(pos, 9)
        if len(head) < 9:
            stop = f"no data end record: the file ends at byte {f.size}"
            break
        opcode = head[0]
        (length,) = struct.unpack_from("<Q", head, 1)
        body_pos = pos + 9
        complete = length < _MAX_RECORD and body_pos + length <= f.size
        if opcode in (_DATA_END, _FOOTER):
            break
        try:
            if opcode == _CHUNK:
                stop = _recover_chunk(f, layout, channels, file, body_pos, length)
            elif opcode in (_SCHEMA, _CHANNEL, _MESSAGE) and complete:
                body = f.read(body_pos, length)
                _inner_record(channels, opcode, body, (file, -1, pos), layout)
        except (ValueError, struct.error) as e:
            stop = f"a record at byte {pos} is unreadable ({e})"
        if not complete and not stop:
            stop = f"cut inside a record at byte {pos}; the file ends at byte {f.size}"
        if stop:
            break
        pos = body_pos + length
    if stop:
        layout.truncated = True
        reason = f"{f.path!r}: {why}; read from the start: {stop}"
        layout.stop_reason = f"{layout.stop_reason}; {reason}" if layout.stop_reason else reason


def _recover_chunk(
    f: BagFile, layout: Layout, channels: _Channels, file: int, pos: int, length: int
) -> str:
    """Walk one chunk met while reading from the start; what stopped there (empty: nothing)."""
    head = f.read(pos, 36)
    if len(head) < 36:
        return f"cut inside the chunk at byte {pos - 9}"
    (uncompressed,) = struct.unpack_from("<Q", head, 16)
    compression, records_len_pos = _string(head + f.read(pos + 36, 64), 28)
    (records_len,) = struct.unpack_from("<Q", f.read(pos + records_len_pos, 8).ljust(8, b"\0"))
    records_pos = pos + records_len_pos + 8
    compression = compression or "none"
    ref = ChunkRef(file, records_pos, records_len, compression, uncompressed)
    number = len(layout.chunks)
    layout.chunks.append(ref)
    data = f.read(records_pos, records_len)
    if len(data) < records_len:
        if compression != "none":
            return f"cut inside a {compression} chunk at byte {pos - 9}: its messages lost"
        _walk(channels, data, file, number, layout)
        return f"cut inside the chunk at byte {pos - 9}; the file ends at byte {f.size}"
    _walk(channels, decompress(ref, data), file, number, layout)
    return ""


def decompress(ref: ChunkRef, data: bytes) -> bytes:
    """A chunk's records from its stored bytes."""
    try:
        if ref.compression == "zstd":
            decompressor = zstandard.ZstdDecompressor()
            return decompressor.decompress(data, max_output_size=ref.uncompressed_len)
        if ref.compression == "lz4":
            return bytes(lz4.frame.decompress(data))
    except (zstandard.ZstdError, RuntimeError, ValueError) as e:
        raise InvalidBagError(f"a {ref.compression} chunk does not decompress ({e})") from e
    if ref.compression != "none":
        raise InvalidBagError(f"chunk compression {ref.compression!r} is not supported")
    return data


class Messages:
    """Reads messages of a layout by `Loc`; keeps the last decompressed chunk."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.files: dict[int, BagFile] = {}
        self._chunk: tuple[int, bytes] = (-1, b"")

    def _file(self, number: int) -> BagFile:
        if number not in self.files:
            self.files[number] = BagFile(self.layout.files[number])
        return self.files[number]

    def get(self, loc: Loc, limit: int | None = None) -> bytes:
        """The serialized message at ``loc`` (its first ``limit`` bytes when given)."""
        file, number, offset = loc
        if number < 0:
            return self._in_place(self._file(file), offset, limit)
        ref = self.layout.chunks[number]
        if ref.compression == "none":
            return self._in_place(self._file(file), ref.data_pos + offset, limit)
        if self._chunk[0] != number:
            stored = self._file(file).exact(ref.data_pos, ref.data_len, "a chunk")
            self._chunk = (number, decompress(ref, stored))
        data = self._chunk[1]
        if offset + _MESSAGE_PREFIX > len(data) or data[offset] != _MESSAGE:
            raise InvalidBagError(f"{self.layout.path!r}: no message at offset {offset} of a chunk")
        (length,) = struct.unpack_from("<Q", data, offset + 1)
        size = length - 22 if limit is None else min(limit, length - 22)
        return data[offset + _MESSAGE_PREFIX : offset + _MESSAGE_PREFIX + size]

    @staticmethod
    def _in_place(f: BagFile, pos: int, limit: int | None) -> bytes:
        buf = f.read(pos, _MESSAGE_PREFIX + (limit or 0))
        if len(buf) < _MESSAGE_PREFIX or buf[0] != _MESSAGE:
            raise InvalidBagError(f"{f.path!r}: no message record at byte {pos}")
        (length,) = struct.unpack_from("<Q", buf, 1)
        size = length - 22 if limit is None else min(limit, length - 22)
        if _MESSAGE_PREFIX + size <= len(buf):
            return buf[_MESSAGE_PREFIX : _MESSAGE_PREFIX + size]
        return f.exact(pos + _MESSAGE_PREFIX, size, "a message")

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()

    def __enter__(self) -> Messages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
