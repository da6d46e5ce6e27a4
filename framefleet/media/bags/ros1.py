"""ROS1 bags (format 2.0): the index without the messages, and messages read one by one.

A bag is records (``uint32`` header length, header fields ``name=value``, ``uint32`` data
length, data). After the bag header come the chunks, each followed by one index record per
connection in it (``IDXDATA``: receive time and offset of each message in the chunk); at the
end, at ``index_pos``, the connection records and one ``CHUNK_INFO`` per chunk.

Reading the index (`index`) touches the bag header, the connection and chunk-info records at
the end, and each chunk's header and index records, seeking over the chunks' data: a few KiB
per chunk, whatever the messages weigh. A message (`Messages.get`) is then read at its chunk's
data position plus its offset, only as many bytes as asked, when the chunk is stored
uncompressed; a compressed chunk (``lz4``, ``bz2``) is read and decompressed whole, once while
consecutive messages come from it.

A bag without a usable index (recording stopped before it was closed, or a file cut while
copying) is read from the start, chunk by chunk, as ``rosbag reindex`` would: every message
before the cut is kept; a chunk cut in the middle keeps its complete messages when it is
uncompressed and is lost when compressed. `Layout.stop_reason` says where it stopped.

A `Loc` here is ``(0, chunk number, offset of the message record in the chunk's data)``.
"""

from __future__ import annotations

import bz2
import struct

import lz4.frame

from framefleet.errors import InvalidBagError
from framefleet.media.bags.layout import BagFile, ChunkRef, Layout, Loc, RawTopic, not_a_bag
from framefleet.pydtk import is_image_msg_type

MAGIC = b"#ROSBAG V2.0\n"
_OP_MSG, _OP_BAG, _OP_IDX, _OP_CHUNK, _OP_INFO, _OP_CONN = 2, 3, 4, 5, 6, 7
_U32 = struct.Struct("<I")
_MAX_HEADER = 1 << 20
_MAX_CHUNK = 1 << 31


def _fields(raw: bytes) -> dict[str, bytes]:
    """A record header's ``name=value`` fields."""
    out: dict[str, bytes] = {}
    pos = 0
    while pos + 4 <= len(raw):
        size = _U32.unpack_from(raw, pos)[0]
        pos += 4
        name, sep, value = raw[pos : pos + size].partition(b"=")
        if not sep or pos + size > len(raw):
            raise ValueError("a header field is malformed")
        out[name.decode("latin-1")] = value
        pos += size
    return out


def _u32(fields: dict[str, bytes], name: str) -> int:
    return int(_U32.unpack(fields[name][:4])[0])


def _u64(fields: dict[str, bytes], name: str) -> int:
    return int(struct.unpack("<Q", fields[name][:8])[0])


def _time(raw: bytes) -> int:
    sec, nsec = struct.unpack("<II", raw[:8])
    return int(sec) * 1_000_000_000 + int(nsec)


def _op(fields: dict[str, bytes]) -> int:
    return fields["op"][0] if fields.get("op") else -1


def _ros1_type(msg_type: str) -> str:
    """``pkg/msg/Name`` -> ``pkg/Name`` (ROS1 spelling)."""
    parts = msg_type.split("/")
    return f"{parts[0]}/{parts[-1]}" if len(parts) == 3 and parts[1] == "msg" else msg_type


class _Record:
    """A record read at a position: its header fields and where its data lies."""

    def __init__(self, f: BagFile, pos: int) -> None:
        self.pos = pos
        head = f.exact(pos, 4, "a record")
        length = _U32.unpack(head)[0]
        if length > _MAX_HEADER:
            raise ValueError(f"a record header of {length} bytes at byte {pos}")
        raw = f.exact(pos + 4, length + 4, "a record header")
        self.fields = _fields(raw[:length])
        self.op = _op(self.fields)
        self.data_len = _U32.unpack_from(raw, length)[0]
        self.data_pos = pos + 4 + length + 4
        self.end = self.data_pos + self.data_len


def _connection(fields: dict[str, bytes], data: bytes) -> tuple[int, str, str, str]:
    """(id, topic, type, md5sum) of a connection record."""
    inner = _fields(data)
    topic = fields["topic"].decode("utf-8", "replace")
    return (
        _u32(fields, "conn"),
        topic,
        inner["type"].decode("utf-8", "replace"),
        inner.get("md5sum", b"").decode("ascii", "replace"),
    )


def index(path: str) -> Layout:
    """The layout of the ROS1 bag at ``path`` from its index (or, without one, from its chunks).

    Raises:
        InvalidBagError: not a ROS1 bag of format 2.0, encrypted, or nothing readable.
    """
    with BagFile(path) as f:
        magic = f.read(0, len(MAGIC))
        if magic != MAGIC:
            why = "empty file" if not magic else "no '#ROSBAG V2.0' magic at its start"
            raise not_a_bag(path, why)
        try:
            bag = _Record(f, len(MAGIC))
            if bag.op != _OP_BAG:
                raise ValueError("the first record is not the bag header")
            if bag.fields.get("encryptor"):
                raise InvalidBagError(f"{path!r} is encrypted: not supported")
            index_pos = _u64(bag.fields, "index_pos")
            conn_count = _u32(bag.fields, "conn_count")
            chunk_count = _u32(bag.fields, "chunk_count")
        except (ValueError, KeyError, struct.error, InvalidBagError) as e:
            raise not_a_bag(path, f"its bag header is unreadable ({e})") from e
        layout = Layout(kind="ros1", path=path, files=[path], topics={}, image={})
        if index_pos == 0:
            why = "it has no index (it was not closed: recording stopped?)"
        elif index_pos >= f.size:
            why = f"its index at byte {index_pos} lies past its end ({f.size} bytes): cut"
        else:
            try:
                _read_index(f, layout, index_pos, conn_count, chunk_count)
                return layout
            except (ValueError, KeyError, struct.error, InvalidBagError) as e:
                why = f"its index is damaged ({e})"
        layout.image.clear()
        layout.topics.clear()
        layout.chunks.clear()
        _recover(f, layout, bag.end, why)
        return layout


def _read_index(f: BagFile, layout: Layout, pos: int, conns: int, chunks: int) -> None:
    by_conn: dict[int, RawTopic] = {}
    for _ in range(conns):
        rec = _Record(f, pos)
        if rec.op != _OP_CONN:
            raise ValueError(f"expected a connection record at byte {pos}")
        cid, topic, msg_type, md5 = _connection(rec.fields, f.exact(rec.data_pos, rec.data_len, ""))
        _add_connection(layout, by_conn, cid, topic, msg_type, md5)
        pos = rec.end
    infos: list[tuple[int, int]] = []
    for _ in range(chunks):
        rec = _Record(f, pos)
        if rec.op != _OP_INFO:
            raise ValueError(f"expected a chunk info record at byte {pos}")
        infos.append((_u64(rec.fields, "chunk_pos"), _u32(rec.fields, "count")))
        pos = rec.end
    for number, (chunk_pos, count) in enumerate(infos):
        chunk = _Record(f, chunk_pos)
        if chunk.op != _OP_CHUNK:
            raise ValueError(f"expected a chunk at byte {chunk_pos}")
        layout.chunks.append(_chunk_ref(chunk))
        pos = chunk.end
        for _ in range(count):
            rec = _Record(f, pos)
            if rec.op != _OP_IDX:
                raise ValueError(f"expected a chunk's index record at byte {pos}")
            raw = by_conn.get(_u32(rec.fields, "conn"))
            n = _u32(rec.fields, "count")
            if raw is not None:
                entries = f.exact(rec.data_pos, 12 * n, "a chunk's index")
                for sec, nsec, offset in struct.iter_unpack("<III", entries):
                    raw.receive_ns.append(sec * 1_000_000_000 + nsec)
                    raw.locs.append((0, number, offset))
            pos = rec.end
    for image in layout.image.values():
        image.sort()


def _add_connection(
    layout: Layout, by_conn: dict[int, RawTopic], cid: int, topic: str, msg_type: str, md5: str
) -> None:
    msg_type = _ros1_type(msg_type)
    layout.topics.setdefault(topic, msg_type)
    if not is_image_msg_type(msg_type):
        return
    raw = layout.image.setdefault(topic, RawTopic(topic, msg_type, md5 or None, "ros1"))
    if raw.msg_type != msg_type:
        raise InvalidBagError(
            f"{layout.path!r}: topic {topic!r} carries both {raw.msg_type} and {msg_type}"
        )
    by_conn[cid] = raw


def _chunk_ref(chunk: _Record) -> ChunkRef:
    compression = chunk.fields.get("compression", b"none").decode("ascii", "replace")
    size = _u32(chunk.fields, "size")
    if compression not in ("none", "lz4", "bz2"):
        raise InvalidBagError(f"chunk at byte {chunk.pos}: compression {compression!r}")
    return ChunkRef(0, chunk.data_pos, chunk.data_len, compression, size)


def _recover(f: BagFile, layout: Layout, pos: int, why: str) -> None:
    """Walk the chunks from the start, keeping every complete message (see the docstring)."""
    by_conn: dict[int, RawTopic] = {}
    stop = ""
    while pos < f.size and not stop:
        try:
            rec = _Record(f, pos)
        except (ValueError, KeyError, struct.error, InvalidBagError) as e:
            stop = f"cut inside a record at byte {pos} ({e})"
            break
        if rec.op == _OP_CHUNK:
            ref = _chunk_ref(rec)
            number = len(layout.chunks)
            layout.chunks.append(ref)
            if rec.end > f.size:
                if ref.compression != "none":
                    stop = f"cut inside a {ref.compression} chunk at byte {pos}: its messages lost"
                    break
                data = f.read(rec.data_pos, rec.data_len)
                stop = f"cut inside the chunk at byte {pos}"
            else:
                data = _decompress(ref, f.read(rec.data_pos, rec.data_len))
            _walk_chunk(layout, by_conn, data, number)
        elif rec.op == _OP_CONN:
            data = f.read(rec.data_pos, rec.data_len)
            try:
                cid, topic, msg_type, md5 = _connection(rec.fields, data)
            except (ValueError, KeyError) as e:
                stop = f"a connection record at byte {pos} is unreadable ({e})"
                break
            _add_connection(layout, by_conn, cid, topic, msg_type, md5)
        elif rec.op not in (_OP_IDX, _OP_INFO):
            stop = f"an unknown record (op {rec.op}) at byte {pos}"
        pos = rec.end
    if stop and pos >= f.size:
        stop = f"{stop}; the file ends at byte {f.size}"
    layout.truncated = bool(stop)
    layout.stop_reason = f"{why}; read from the start: {stop}" if stop else ""
    for image in layout.image.values():
        image.sort()


def _walk_chunk(layout: Layout, by_conn: dict[int, RawTopic], data: bytes, number: int) -> None:
    """Add the connections and the complete messages of a chunk's (possibly cut) data."""
    pos = 0
    while pos + 4 <= len(data):
        length = _U32.unpack_from(data, pos)[0]
        if pos + 8 + length > len(data):
            return
        try:
            fields = _fields(data[pos + 4 : pos + 4 + length])
        except ValueError:
            return
        data_len = _U32.unpack_from(data, pos + 4 + length)[0]
        start = pos + 8 + length
        if start + data_len > len(data):
            return
        op = _op(fields)
        if op == _OP_CONN:
            cid, topic, msg_type, md5 = _connection(fields, data[start : start + data_len])
            _add_connection(layout, by_conn, cid, topic, msg_type, md5)
        elif op == _OP_MSG and "conn" in fields and "time" in fields:
            raw = by_conn.get(_u32(fields, "conn"))
            if raw is not None:
                raw.receive_ns.append(_time(fields["time"]))
                raw.locs.append((0, number, pos))
        pos = start + data_len


def _decompress(ref: ChunkRef, data: bytes) -> bytes:
    try:
        if ref.compression == "lz4":
            return bytes(lz4.frame.decompress(data))
        if ref.compression == "bz2":
            return bz2.decompress(data)
    except (RuntimeError, OSError, ValueError, EOFError) as e:
        raise InvalidBagError(f"a {ref.compression} chunk does not decompress ({e})") from e
    return data


class Messages:
    """Reads messages of a layout by `Loc`; keeps the last decompressed chunk."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.file = BagFile(layout.path)
        self._chunk: tuple[int, bytes] = (-1, b"")

    def get(self, loc: Loc, limit: int | None = None) -> bytes:
        """The serialized message at ``loc`` (its first ``limit`` bytes when given)."""
        _, number, offset = loc
        ref = self.layout.chunks[number]
        if ref.compression == "none":
            return self._in_place(ref.data_pos + offset, limit)
        if self._chunk[0] != number:
            data = self.file.exact(ref.data_pos, ref.data_len, "a chunk")
            self._chunk = (number, _decompress(ref, data))
        data = self._chunk[1]
        pos = offset
        while True:  # a chunk's connection records may precede the message
            length = _U32.unpack_from(data, pos)[0]
            fields = _fields(data[pos + 4 : pos + 4 + length])
            data_len = _U32.unpack_from(data, pos + 4 + length)[0]
            start = pos + 8 + length
            if _op(fields) != _OP_CONN:
                break
            pos = start + data_len
        if _op(fields) != _OP_MSG:
            raise InvalidBagError(f"{self.file.path!r}: no message at offset {offset} of a chunk")
        end = start + data_len if limit is None else start + min(limit, data_len)
        return data[start:end]

    def _in_place(self, pos: int, limit: int | None) -> bytes:
        """A message record read in place: one read for the record header and a prefix."""
        guess = 64 + (limit or 0)
        buf = self.file.read(pos, guess)
        while True:  # a chunk's connection records may precede the message
            if len(buf) < 4:
                raise InvalidBagError(f"{self.file.path!r}: no message record at byte {pos}")
            length = _U32.unpack_from(buf, 0)[0]
            if length > _MAX_HEADER:
                raise InvalidBagError(f"{self.file.path!r}: no message record at byte {pos}")
            if 8 + length > len(buf):
                buf = self.file.exact(pos, 8 + length + (limit or 0), "a message record")
            fields = _fields(buf[4 : 4 + length])
            data_len = _U32.unpack_from(buf, 4 + length)[0]
            start = 8 + length
            if _op(fields) != _OP_CONN:
                break
            pos += start + data_len
            buf = self.file.read(pos, guess)
        if _op(fields) != _OP_MSG:
            raise InvalidBagError(f"{self.file.path!r}: no message record at byte {pos}")
        want = data_len if limit is None else min(limit, data_len)
        if start + want <= len(buf):
            return buf[start : start + want]
        return self.file.exact(pos + start, want, "a message")

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Messages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
