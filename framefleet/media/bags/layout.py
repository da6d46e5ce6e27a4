"""What the index of a bag says, before any message is read: its topics and where each image
message lies; and a file read by exact byte ranges.

Every kind of bag (`ros1`, `mcapfile`, `ros2`) builds a `Layout` from its own index: the topics
with their counts, and for each image topic its messages in *receive order* with their receive
times and their place (`Loc`). Reading the header stamps (`framefleet.media.bags.reader`) adds
per-message fields to the image topics; nothing else changes a layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from framefleet.errors import InvalidBagError, VideoNotFoundError
from framefleet.pydtk import BagKind

Serialization = Literal["ros1", "cdr"]
Loc = tuple[int, int, int]
"""Where a message lies: (storage file, chunk, offset), each kind's own meaning (see its
module); messages of one chunk share the first two."""


@dataclass
class RawTopic:
    """One image topic of a bag: its type and its messages in receive order."""

    name: str
    msg_type: str
    """As the bag spells it (``sensor_msgs/Image`` in ROS1, ``sensor_msgs/msg/Image`` in ROS2)."""
    md5sum: str | None
    serialization: Serialization
    receive_ns: list[int] = field(default_factory=list)
    locs: list[Loc] = field(default_factory=list)
    header_ns: list[int] | None = None
    """Filled when the header stamps are read, like the two below."""
    encodings: list[str] | None = None
    sizes: list[tuple[int, int] | None] | None = None

    @property
    def compressed(self) -> bool:
        return self.msg_type.endswith("CompressedImage")

    def sort(self) -> None:
        """Put the messages in receive order: by receive time, then by place in the file."""
        order = sorted(range(len(self.locs)), key=lambda i: (self.receive_ns[i], self.locs[i]))
        self.receive_ns = [self.receive_ns[i] for i in order]
        self.locs = [self.locs[i] for i in order]


@dataclass(frozen=True)
class ChunkRef:
    """A block of messages: where its bytes lie in its file and how they are compressed."""

    file: int
    data_pos: int
    data_len: int
    compression: str
    """``none`` (or empty) when the messages can be read in place."""
    uncompressed_len: int


@dataclass
class Layout:
    """What a bag's index says: all topics, the image topics' messages, and where it stopped."""

    kind: BagKind
    path: str
    files: list[str]
    """The files holding the messages (one, except for a split ROS2 bag)."""
    topics: dict[str, str]
    """Every topic of the bag and its message type (for messages naming them)."""
    image: dict[str, RawTopic]
    chunks: list[ChunkRef] = field(default_factory=list)
    storage: str = ""
    """A ROS2 bag's storage: ``sqlite3`` or ``mcap``."""
    truncated: bool = False
    stop_reason: str = ""
    """Why reading the bag stopped early (empty when it did not)."""
    headers_read: bool = False


def not_a_bag(path: str, why: str) -> InvalidBagError:
    return InvalidBagError(f"{path!r} is not a readable bag: {why}")


class BagFile:
    """A file read by exact byte ranges (``pread``): nothing read ahead, nothing buffered."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as e:
            raise VideoNotFoundError(f"bag not found: {path!r}") from e
        except OSError as e:
            raise InvalidBagError(f"cannot read {path!r}: {e.strerror or e}") from e
        self.size = os.fstat(self.fd).st_size

    def read(self, pos: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``pos`` (fewer at the end of the file)."""
        if size <= 0 or pos >= self.size:
            return b""
        try:
            return os.pread(self.fd, min(size, self.size - pos), pos)
        except OSError as e:
            raise InvalidBagError(f"cannot read {self.path!r} at byte {pos}: {e.strerror}") from e

    def exact(self, pos: int, size: int, what: str) -> bytes:
        """Exactly ``size`` bytes at ``pos``, else an error saying the file ends early."""
        data = self.read(pos, size)
        if len(data) != size:
            raise InvalidBagError(
                f"{self.path!r}: {what} at byte {pos} needs {size} bytes, the file ends at "
                f"byte {self.size}"
            )
        return data

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> BagFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
