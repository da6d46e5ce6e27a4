"""Serialized image messages: header stamp, format, size and where the pixels are, from bytes.

Both serializations are read by hand, field by field, so that a few hundred bytes from the start
of a message are enough for everything but the pixels:

* ROS1: little-endian, no alignment, strings as ``uint32`` length + bytes; the header is
  ``seq, stamp.secs, stamp.nsecs, frame_id``.
* ROS2 (CDR, XCDR1): a 4-byte encapsulation header (``00 01`` little-, ``00 00`` big-endian),
  then fields aligned to their size from the end of it; strings carry a terminating NUL; the
  header is ``stamp.sec (int32), stamp.nanosec, frame_id``.

``sensor_msgs/CompressedImage`` is ``header, format, data[]``; ``sensor_msgs/Image`` is
``header, height, width, encoding, is_bigendian, step, data[]``. A compressed image's format is
taken from its first bytes (JPEG ``FF D8 FF``, PNG's signature) and only then from its
``format`` string, which image_transport writes as e.g. ``bgr8; jpeg compressed bgr8``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from framefleet.media.bags.layout import Serialization

PREFIX_BYTES = 512
"""Read from the start of a message for its header: enough for the fields and, for most JPEG
and PNG images, the image size too."""

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_NO_LENGTH = {0x01, *range(0xD0, 0xD9)}


class ShortMessage(Exception):
    """The bytes end before the fields do; ``needed`` is how many would reach the next field."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class BadMessage(Exception):
    """The bytes are not an image message (the text says why)."""


@dataclass(frozen=True, slots=True)
class ImageMessage:
    """An image message's fields; the pixels are ``raw[data_offset:data_offset + data_length]``."""

    header_ns: int
    encoding: str
    """``jpeg`` or ``png`` for a compressed image (else its format string); a raw image's
    encoding (``rgb8``, ``bayer_rggb8``...)."""
    compressed: bool
    width: int | None
    height: int | None
    is_bigendian: bool
    step: int
    data_offset: int
    data_length: int


class _Cursor:
    """Reads fields in order from ``buf``; CDR aligns each to its size."""

    def __init__(self, buf: bytes, serialization: Serialization) -> None:
        self.buf = buf
        self.cdr = serialization == "cdr"
        if self.cdr:
            if len(buf) < 4:
                raise ShortMessage(4)
            kind = buf[:2]
            if kind not in (b"\x00\x00", b"\x00\x01"):
                raise BadMessage(f"unsupported CDR encapsulation {kind.hex()} (expected 0000/0001)")
            self.little = kind == b"\x00\x01"
            self.pos = 4
        else:
            self.little = True
            self.pos = 0
        self.u32 = struct.Struct("<I" if self.little else ">I").unpack_from
        self.i32 = struct.Struct("<i" if self.little else ">i").unpack_from

    def _take(self, size: int, align: int) -> int:
        if self.cdr and align > 1:
            self.pos = 4 + -(-(self.pos - 4) // align) * align
        start = self.pos
        if start + size > len(self.buf):
            raise ShortMessage(start + size)
        self.pos = start + size
        return start

    def uint32(self) -> int:
        return int(self.u32(self.buf, self._take(4, 4))[0])

    def int32(self) -> int:
        return int(self.i32(self.buf, self._take(4, 4))[0])

    def uint8(self) -> int:
        return self.buf[self._take(1, 1)]

    def string(self, name: str) -> str:
        length = self.uint32()
        if length > 1 << 16:
            raise BadMessage(f"{name} is {length} bytes long: not an image message")
        raw = self.buf[self._take(length, 1) : self.pos]
        if self.cdr:
            raw = raw.rstrip(b"\x00")
        return raw.decode("utf-8", "replace")

    def sequence(self) -> tuple[int, int]:
        length = self.uint32()
        return self.pos, length


def parse_image(buf: bytes, *, serialization: Serialization, compressed: bool) -> ImageMessage:
    """The fields of an image message from its bytes, or from its first bytes only.

    Raises:
        ShortMessage: ``buf`` ends before the fields (not before the pixels: those may be cut).
        BadMessage: the bytes cannot be such a message.
    """
    c = _Cursor(buf, serialization)
    if c.cdr:
        sec = c.int32()
        nsec = c.uint32()
    else:
        c.uint32()  # seq
        sec = c.uint32()
        nsec = c.uint32()
    c.string("frame_id")
    stamp = sec * 1_000_000_000 + nsec
    if compressed:
        fmt = c.string("format")
        offset, length = c.sequence()
        head = buf[offset : offset + min(length, len(buf) - offset)]
        encoding = compressed_format(head, fmt)
        size = image_size(head, encoding)
        return ImageMessage(
            header_ns=stamp,
            encoding=encoding,
            compressed=True,
            width=None if size is None else size[0],
            height=None if size is None else size[1],
            is_bigendian=False,
            step=0,
            data_offset=offset,
            data_length=length,
        )
    height = c.uint32()
    width = c.uint32()
    encoding = c.string("encoding")
    bigendian = c.uint8() != 0
    step = c.uint32()
    offset, length = c.sequence()
    return ImageMessage(
        header_ns=stamp,
        encoding=encoding,
        compressed=False,
        width=width,
        height=height,
        is_bigendian=bigendian,
        step=step,
        data_offset=offset,
        data_length=length,
    )


def compressed_format(head: bytes, format_field: str) -> str:
    """``jpeg`` or ``png`` from the image's first bytes, else from the ``format`` string, else
    that string as it is (an unsupported format, e.g. ``16UC1; compressedDepth png``)."""
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if head.startswith(_PNG_MAGIC):
        return "png"
    words = format_field.lower()
    if "compresseddepth" in words or len(head) >= len(_PNG_MAGIC):
        return format_field or "unknown"  # the bytes are there and are neither
    if "jpeg" in words or "jpg" in words:
        return "jpeg"
    if "png" in words:
        return "png"
    return format_field or "unknown"


def image_size(head: bytes, encoding: str) -> tuple[int, int] | None:
    """(width, height) of a JPEG or PNG from its first bytes, when they hold it."""
    if encoding == "png":
        if len(head) >= 24 and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return int(width), int(height)
        return None
    if encoding != "jpeg":
        return None
    i = 2
    while i + 4 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _NO_LENGTH:
            i += 2
            continue
        if marker in _SOF:
            if i + 9 > len(head):
                return None
            height, width = struct.unpack(">HH", head[i + 5 : i + 9])
            return int(width), int(height)
        i += 2 + int.from_bytes(head[i + 2 : i + 4], "big")
    return None
