"""Tiny bags for the tests, written with the real writers, and read back independently.

`Msg` is one image message to write: its topic, receive time, header stamp and what it holds
(JPEG, PNG, or raw pixels in an encoding). The writers: `write_ros1` (rosbags, optionally lz4 or
bz2 chunks, a chunk size), `write_ros2` (rosbags, SQLite or MCAP storage), `write_mcap` (the
``mcap`` library: ``cdr`` or ``ros1`` messages, chunks zstd/lz4/none). `reference_messages`
reads every message back with rosbags (or ``mcap``) plain iteration and deserialisation:
what framefleet's index-based reads are checked against.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.typesys import Stores, get_typestore

TS1 = get_typestore(Stores.ROS1_NOETIC)
TS2 = get_typestore(Stores.ROS2_HUMBLE)
COMPRESSED = "sensor_msgs/msg/CompressedImage"
RAW = "sensor_msgs/msg/Image"
STRING = "std_msgs/msg/String"
RAW_ENCODINGS = (
    "rgb8",
    "bgr8",
    "rgba8",
    "bgra8",
    "mono8",
    "mono16",
    "bayer_rggb8",
    "bayer_bggr8",
    "bayer_gbrg8",
    "bayer_grbg8",
)
_BAYER = {"rggb": "RGGB", "bggr": "BGGR", "gbrg": "GBRG", "grbg": "GRBG"}
Pixels = npt.NDArray[np.uint8]


def picture(k: int, width: int = 16, height: int = 12) -> Pixels:
    """A deterministic RGB picture that differs from frame to frame."""
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 13 + k * 7) % 256
    g = (y * 17 + k * 11) % 256
    b = (x * y + k * 29) % 256
    return np.stack([r, g, b], axis=2).astype(np.uint8)


def encode(rgb: Pixels, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = PILImage.fromarray(rgb)
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=90)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def raw_pixels(rgb: Pixels, encoding: str, *, pad: int, bigendian: bool) -> tuple[bytes, int]:
    """(data, step) of ``rgb`` stored in ``encoding`` with ``pad`` bytes after each row."""
    h, w, _ = rgb.shape
    if encoding in ("rgb8", "bgr8", "rgba8", "bgra8"):
        px = rgb[:, :, ::-1] if encoding.startswith("bgr") else rgb
        if encoding.endswith("a8"):
            px = np.concatenate([px, np.full((h, w, 1), 200, np.uint8)], axis=2)
        rows = px.reshape(h, -1)
    elif encoding == "mono8":
        rows = rgb[:, :, 1]
    elif encoding == "mono16":
        grey = rgb[:, :, 1].astype(np.uint16) * 257 + rgb[:, :, 0].astype(np.uint16) % 3
        rows = grey.astype(">u2" if bigendian else "<u2").view(np.uint8).reshape(h, -1)
    else:
        rows = bayer_mosaic(rgb, encoding.split("_")[1][:4])
    padded = np.concatenate([rows, np.full((h, pad), 0xEE, np.uint8)], axis=1)
    return padded.tobytes(), padded.shape[1]


def bayer_mosaic(rgb: Pixels, pattern: str) -> Pixels:
    """The Bayer samples of ``rgb`` for a pattern such as ``rggb``."""
    channel = {"r": 0, "g": 1, "b": 2}
    out = np.empty(rgb.shape[:2], np.uint8)
    for i, letter in enumerate(pattern):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, channel[letter]]
    return out


@dataclass
class Msg:
    """One image message to write."""

    topic: str
    receive_ns: int
    header_ns: int
    kind: str
    """``jpeg``, ``png`` (CompressedImage) or a raw encoding (Image)."""
    rgb: Pixels = field(repr=False)
    pad: int = 0
    bigendian: bool = False
    format_field: str | None = None

    @property
    def msg_type(self) -> str:
        return COMPRESSED if self.kind in ("jpeg", "png") else RAW

    def payload(self) -> bytes:
        """The image bytes as stored in the message's ``data``."""
        if self.kind in ("jpeg", "png"):
            return encode(self.rgb, self.kind)
        return raw_pixels(self.rgb, self.kind, pad=self.pad, bigendian=self.bigendian)[0]

    def message(self, ts: object, ros1: bool) -> object:
        types = ts.types  # type: ignore[attr-defined]
        sec, nsec = divmod(self.header_ns, 1_000_000_000)
        stamp = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec)
        header_type = types["std_msgs/msg/Header"]
        header = (
            header_type(seq=0, stamp=stamp, frame_id="camera")
            if ros1
            else header_type(stamp=stamp, frame_id="camera")
        )
        if self.kind in ("jpeg", "png"):
            data = np.frombuffer(self.payload(), np.uint8)
            fmt = self.format_field if self.format_field is not None else self.kind
            return types[COMPRESSED](header=header, format=fmt, data=data)
        raw, step = raw_pixels(self.rgb, self.kind, pad=self.pad, bigendian=self.bigendian)
        h, w, _ = self.rgb.shape
        return types[RAW](
            header=header,
            height=h,
            width=w,
            encoding=self.kind,
            is_bigendian=int(self.bigendian),
            step=step,
            data=np.frombuffer(raw, np.uint8),
        )


def string_message(ts: object, text: str) -> object:
    return ts.types[STRING](data=text)  # type: ignore[attr-defined]


def _ordered(msgs: list[Msg], others: list[tuple[str, int]]) -> list[tuple[int, Msg | str]]:
    items: list[tuple[int, Msg | str]] = [(m.receive_ns, m) for m in msgs]
    items += [(t, topic) for topic, t in others]
    return sorted(items, key=lambda item: item[0])


def write_ros1(
    path: Path,
    msgs: list[Msg],
    *,
    others: list[tuple[str, int]] = (),  # type: ignore[assignment]
    compression: str | None = None,
    chunk_bytes: int | None = None,
) -> Path:
    """A ROS1 bag of ``msgs`` and, on other topics, String messages ``(topic, receive_ns)``."""
    writer = Ros1Writer(path)
    if compression is not None:
        writer.set_compression(getattr(Ros1Writer.CompressionFormat, compression.upper()))
    if chunk_bytes is not None:
        writer.chunk_threshold = chunk_bytes
    with writer:
        conns: dict[str, object] = {}
        for t, item in _ordered(msgs, list(others)):
            topic = item.topic if isinstance(item, Msg) else item
            msg_type = item.msg_type if isinstance(item, Msg) else STRING
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msg_type, typestore=TS1)
            message = item.message(TS1, True) if isinstance(item, Msg) else string_message(TS1, "x")
            writer.write(conns[topic], t, TS1.serialize_ros1(message, msg_type))  # type: ignore[arg-type]
    return path


def write_ros2(
    path: Path,
    msgs: list[Msg],
    *,
    storage: str = "sqlite3",
    others: list[tuple[str, int]] = (),  # type: ignore[assignment]
) -> Path:
    """A ROS2 bag folder of ``msgs`` with SQLite or MCAP storage."""
    plugin = StoragePlugin.SQLITE3 if storage == "sqlite3" else StoragePlugin.MCAP
    with Ros2Writer(path, version=9, storage_plugin=plugin) as writer:
        conns: dict[str, object] = {}
        for t, item in _ordered(msgs, list(others)):
            topic = item.topic if isinstance(item, Msg) else item
            msg_type = item.msg_type if isinstance(item, Msg) else STRING
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msg_type, typestore=TS2)
            message = (
                item.message(TS2, False) if isinstance(item, Msg) else string_message(TS2, "x")
            )
            writer.write(conns[topic], t, TS2.serialize_cdr(message, msg_type))  # type: ignore[arg-type]
    return path


def write_mcap(
    path: Path,
    msgs: list[Msg],
    *,
    encoding: str = "cdr",
    compression: str = "zstd",
    chunk_bytes: int = 1 << 20,
    others: list[tuple[str, int]] = (),  # type: ignore[assignment]
) -> Path:
    """A plain MCAP file of ``msgs`` (``cdr`` or ``ros1`` messages) written by ``mcap``."""
    from mcap.writer import CompressionType, Writer

    ros1 = encoding == "ros1"
    ts = TS1 if ros1 else TS2
    with open(path, "wb") as f:
        writer = Writer(
            f, chunk_size=chunk_bytes, compression=getattr(CompressionType, compression.upper())
        )
        writer.start()
        channels: dict[str, int] = {}
        for t, item in _ordered(msgs, list(others)):
            topic = item.topic if isinstance(item, Msg) else item
            msg_type = item.msg_type if isinstance(item, Msg) else STRING
            if topic not in channels:
                name = msg_type.replace("/msg/", "/") if ros1 else msg_type
                schema = writer.register_schema(
                    name=name, encoding="ros1msg" if ros1 else "ros2msg", data=b""
                )
                channels[topic] = writer.register_channel(
                    topic=topic, message_encoding=encoding, schema_id=schema
                )
            message = item.message(ts, ros1) if isinstance(item, Msg) else string_message(ts, "x")
            data = (
                ts.serialize_ros1(message, msg_type)
                if ros1
                else ts.serialize_cdr(message, msg_type)
            )  # type: ignore[arg-type]
            writer.add_message(channels[topic], log_time=t, data=bytes(data), publish_time=t)
        writer.finish()
    return path


@dataclass
class RefMessage:
    """A message as rosbags (or mcap) reads it with plain iteration."""

    topic: str
    receive_ns: int
    header_ns: int
    encoding: str
    data: bytes
    width: int
    height: int
    step: int
    is_bigendian: bool


def reference_messages(path: Path) -> dict[str, list[RefMessage]]:
    """Every image message of a bag, per topic in receive order, read without framefleet."""
    out: dict[str, list[RefMessage]] = {}
    if path.is_file() and path.suffix == ".mcap":
        from mcap.reader import make_reader

        with open(path, "rb") as f:
            for schema, channel, message in make_reader(f).iter_messages(log_time_order=True):
                if schema is None or not schema.name.endswith("Image"):
                    continue
                ros1 = channel.message_encoding == "ros1"
                msg_type = COMPRESSED if schema.name.endswith("CompressedImage") else RAW
                ts = TS1 if ros1 else TS2
                des = ts.deserialize_ros1 if ros1 else ts.deserialize_cdr
                _add(out, channel.topic, message.log_time, des(message.data, msg_type), msg_type)
        return out
    from rosbags.highlevel import AnyReader

    with AnyReader([path], default_typestore=TS2) as reader:
        for conn, t, raw in reader.messages():
            if conn.msgtype in (COMPRESSED, RAW):
                _add(out, conn.topic, t, reader.deserialize(raw, conn.msgtype), conn.msgtype)
    return out


def _add(out: dict[str, list[RefMessage]], topic: str, t: int, msg: object, msg_type: str) -> None:
    m = msg  # a rosbags message object
    stamp = m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec  # type: ignore[attr-defined]
    if msg_type == COMPRESSED:
        ref = RefMessage(topic, t, stamp, m.format, m.data.tobytes(), 0, 0, 0, False)  # type: ignore[attr-defined]
    else:
        ref = RefMessage(
            topic,
            t,
            stamp,
            m.encoding,  # type: ignore[attr-defined]
            m.data.tobytes(),  # type: ignore[attr-defined]
            m.width,  # type: ignore[attr-defined]
            m.height,  # type: ignore[attr-defined]
            m.step,  # type: ignore[attr-defined]
            bool(m.is_bigendian),  # type: ignore[attr-defined]
        )
    out.setdefault(topic, []).append(ref)


def bytes_read() -> int | None:
    """Bytes this process has read through system calls so far (Linux), else None."""
    try:
        with open(f"/proc/{os.getpid()}/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
