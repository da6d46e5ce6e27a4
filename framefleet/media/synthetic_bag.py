"""A synthetic camera recorded as a bag: JPEG ``CompressedImage`` messages in an MCAP file.

What the demo uses to show a recording stored as a bag beside the videos. Written with the
``mcap`` library (a dependency already, for reading) in ``ros1`` message encoding, whose
serialisation is a few lines: a header (seq, stamp, frame id), the format, the bytes.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from pathlib import Path

from mcap.writer import CompressionType, Writer
from PIL import Image

from framefleet.media.synthetic import frame_image

COMPRESSED_IMAGE = "sensor_msgs/CompressedImage"
_DEFINITION = b"""Header header
string format
uint8[] data
================================================================================
MSG: std_msgs/Header
uint32 seq
time stamp
string frame_id
"""


def write_jpeg_mcap(
    path: Path,
    *,
    topic: str,
    stamps_ns: Sequence[int],
    width: int = 480,
    height: int = 270,
    receive_delay_ns: int = 2_000_000,
) -> Path:
    """An MCAP file with one JPEG image per stamp on ``topic`` (header stamp = the stamp,
    receive time a little later, as a recorder sees it)."""
    with path.open("wb") as f:
        writer = Writer(f, compression=CompressionType.NONE)
        writer.start(profile="ros1", library="framefleet")
        schema = writer.register_schema(name=COMPRESSED_IMAGE, encoding="ros1msg", data=_DEFINITION)
        channel = writer.register_channel(topic=topic, message_encoding="ros1", schema_id=schema)
        for seq, stamp in enumerate(stamps_ns):
            buffer = io.BytesIO()
            Image.fromarray(frame_image(seq, width, height)).save(buffer, "JPEG", quality=85)
            writer.add_message(
                channel,
                log_time=stamp + receive_delay_ns,
                publish_time=stamp + receive_delay_ns,
                data=_compressed_image(seq, stamp, buffer.getvalue()),
            )
        writer.finish()  # type: ignore[no-untyped-call]
    return path


def _compressed_image(seq: int, stamp_ns: int, jpeg: bytes) -> bytes:
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    frame_id, fmt = b"camera", b"jpeg"
    return b"".join(
        [
            struct.pack("<III", seq, sec, nsec),
            struct.pack("<I", len(frame_id)) + frame_id,
            struct.pack("<I", len(fmt)) + fmt,
            struct.pack("<I", len(jpeg)) + jpeg,
        ]
    )
