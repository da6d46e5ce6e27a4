"""pydtk's conventions, in one dependency-free place: file kinds, companion names, camera clocks.

pydtk lays a recording out as data files with companions beside them::

    records/016_.../data/camera_01.mp4                 a video
    records/016_.../data/camera_01.mp4.json            its sidecar metadata (`sidecar_for`)
    records/016_.../data/camera_01_timestamps.csv      its camera clock (`timestamps_csv_for`)
    records/016_.../data/drive.bag                     a ROS1 bag (cameras are image topics)
    records/016_.../data/drive.bag.json                its sidecar (contents: topic names)

Bags (`bag_kind`): a ROS1 bag is a ``*.bag`` file; a ROS2 bag is a folder holding
``metadata.yaml`` and its ``*.db3`` or ``*.mcap`` storage files; a plain MCAP file is a
``*.mcap`` file outside such a folder. Their image topics (`IMAGE_MSG_TYPES`) are cameras.

The camera timestamps CSV has one row per frame, in frame order, no header:
``epoch_ms, byte_offset, size, is_keyframe``. Only the first column is read, strictly
(`parse_camera_times_ms`): whole epoch milliseconds written as a plain decimal (at most
`MAX_EPOCH_MS_DIGITS` digits, optionally followed by a fraction of zeros such as ``.0``), not
after the year 9999, never going backwards, and not all equal. Anything else (``1.5``, ``1e3``,
``inf``, ``nan``, ``-5``, a 400-digit number, bytes that are not UTF-8) is a `TimestampsError`
naming the file and the row, found in one linear pass: a hostile CSV can neither hang the parser
nor overflow a later computation.

Standard library and `framefleet.errors` only: the catalog and the media engine both use it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from fractions import Fraction
from pathlib import PurePath
from typing import Any, Literal, TypeVar

from framefleet.errors import TimestampsError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".ts", ".h264", ".264", ".hevc")
"""File name suffixes (lower case) of videos."""
SIDECAR_SUFFIX = ".json"
"""A sidecar is its data file's name plus this."""
TIMESTAMPS_SUFFIX = "_timestamps.csv"
"""A camera clock is its video's stem plus this."""

ROS1_BAG_SUFFIX = ".bag"
"""A ROS1 bag file."""
MCAP_SUFFIX = ".mcap"
"""A plain MCAP file, or a ROS2 bag's storage file."""
ROS2_METADATA_NAME = "metadata.yaml"
"""What makes a folder a ROS2 bag (with its storage files beside it)."""
ROS2_STORAGE_SUFFIXES = (".db3", ".mcap")
"""Suffixes of a ROS2 bag's storage files."""
BagKind = Literal["ros1", "ros2", "mcap"]
BAG_CONTENT_TYPES: dict[BagKind, str] = {
    "ros1": "application/x-rosbag",
    "ros2": "application/x-ros2bag",
    "mcap": "application/x-mcap",
}
"""The catalog's ``content_type`` of each kind of bag."""
IMAGE_MSG_TYPES = frozenset(
    {
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CompressedImage",
        "sensor_msgs/Image",
        "sensor_msgs/CompressedImage",
    }
)
"""Message types of camera topics, in their ROS2 and ROS1 spellings."""

MAX_CSV_BYTES = 256 * 1024 * 1024
"""Largest camera CSV read: ~7 million rows, 65 hours at 30 fps."""
MAX_EPOCH_MS_DIGITS = 16
"""Most digits in a time (the year 9999 needs 15)."""
MAX_EPOCH_MS = 253_402_300_800_000
"""The first millisecond of the year 10000: every time must be before it."""

P = TypeVar("P", bound=PurePath)

_WHOLE_MS = re.compile(rf"([0-9]{{1,{MAX_EPOCH_MS_DIGITS}}})(?:\.0*)?")
_DECIMAL = re.compile(r"[0-9]*\.[0-9]+|[0-9]+\.[0-9]*")
_SHOWN_CHARS = 40
_EXPECTED = "expected rows 'epoch_ms, byte_offset, size, is_keyframe', e.g. '1489728491000,24,1,1'"


def is_video_name(name: str) -> bool:
    """A file name with a video suffix (any case)."""
    return name.lower().endswith(VIDEO_SUFFIXES)


def is_bag_file_name(name: str) -> bool:
    """A file name with a bag suffix (``.bag``, ``.mcap``; any case). A ``.mcap`` file inside a
    ROS2 bag folder is that bag's storage, not a bag of its own (`bag_kind` tells)."""
    return name.lower().endswith((ROS1_BAG_SUFFIX, MCAP_SUFFIX))


def is_ros2_bag_dir(path: str | os.PathLike[str]) -> bool:
    """A folder with ``metadata.yaml`` and at least one ``*.db3`` or ``*.mcap`` file."""
    if not os.path.isfile(os.path.join(path, ROS2_METADATA_NAME)):
        return False
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(n.lower().endswith(ROS2_STORAGE_SUFFIXES) for n in names)


def bag_kind(path: str | os.PathLike[str]) -> BagKind | None:
    """What kind of bag ``path`` is (None: not a bag). Looks at names only, except for folders
    and for a ``.mcap`` file, whose folder is checked for being a ROS2 bag."""
    if os.path.isdir(path):
        return "ros2" if is_ros2_bag_dir(path) else None
    name = os.fspath(path).lower()
    if name.endswith(ROS1_BAG_SUFFIX):
        return "ros1"
    if name.endswith(MCAP_SUFFIX):
        parent = os.path.dirname(os.path.abspath(path))
        return "ros2" if os.path.isfile(os.path.join(parent, ROS2_METADATA_NAME)) else "mcap"
    return None


def is_image_msg_type(msg_type: str | None) -> bool:
    """A camera's message type: ``sensor_msgs/(msg/)Image`` or ``CompressedImage``."""
    return msg_type in IMAGE_MSG_TYPES


def is_image_topic(row: Mapping[str, Any]) -> bool:
    """A catalog result (a pydtk metadata dict) that is a bag's image topic: its ``msg_type`` is
    an image type. Never true for a video, whose content has no message type."""
    return is_image_msg_type(row.get("msg_type"))


def is_timestamps_csv_name(name: str) -> bool:
    """A file name that follows the camera clock naming (``*_timestamps.csv``)."""
    return name.endswith(TIMESTAMPS_SUFFIX)


def timestamps_csv_name(video_name: str) -> str:
    """``camera_01.mp4`` -> ``camera_01_timestamps.csv``."""
    return PurePath(video_name).stem + TIMESTAMPS_SUFFIX


def timestamps_csv_for(video: P) -> P:
    """The camera clock's path beside ``video`` (whether or not it exists)."""
    return video.with_name(timestamps_csv_name(video.name))


def sidecar_for(data: P) -> P:
    """The sidecar's path beside ``data`` (whether or not it exists)."""
    return data.with_name(data.name + SIDECAR_SUFFIX)


def read_camera_times_ms(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """The frame times of a camera timestamps CSV file; see `parse_camera_times_ms`.

    Raises:
        TimestampsError: the file is missing, unreadable, larger than `MAX_CSV_BYTES`, or
            malformed.
    """
    shown = repr(os.fspath(path))
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CSV_BYTES + 1)
    except FileNotFoundError as e:
        raise TimestampsError(f"timestamps CSV not found: {shown}") from e
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise TimestampsError(f"cannot read timestamps CSV {shown}: {reason}") from e
    if len(data) > MAX_CSV_BYTES:
        raise TimestampsError(
            f"timestamps CSV {shown} is larger than {MAX_CSV_BYTES:,} bytes: not a camera clock"
        )
    return parse_camera_times_ms(data, source=os.fspath(path))


def parse_camera_times_ms(data: bytes, *, source: str) -> tuple[int, ...]:
    """The first column of a camera timestamps CSV: epoch milliseconds, one per frame.

    Blank lines are skipped; a UTF-8 byte-order mark is allowed; a first field in double quotes
    is unquoted. Equal neighbouring times are allowed (the earlier frame is then never shown).

    Args:
        data: the file's bytes.
        source: the file's name, for messages.

    Raises:
        TimestampsError: not UTF-8, a row whose first field is not whole epoch milliseconds,
            a time after the year 9999, times going backwards, every time equal, or no rows.
    """
    shown = repr(source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        row = data.count(b"\n", 0, e.start) + 1
        raise TimestampsError(
            f"{shown} row {row}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})"
        ) from None
    times: list[int] = []
    append = times.append
    match = _WHOLE_MS.fullmatch
    last = -1
    for row, line in enumerate(text.split("\n"), start=1):
        first = line.split(",", 1)[0].strip(" \t\r")
        if not first:
            if not line.strip(" \t\r,"):
                continue  # a blank line
        elif first[0] == '"' and first[-1] == '"' and len(first) > 1:
            first = first[1:-1].strip(" \t")
        if len(first) <= MAX_EPOCH_MS_DIGITS and first.isdigit() and first.isascii():
            ms = int(first)  # the common case, without the regular expression
        else:
            m = match(first) if len(first) <= 2 * MAX_EPOCH_MS_DIGITS else None
            if m is None:
                raise TimestampsError(f"{shown} row {row}: {_why_not(first)}")
            ms = int(m.group(1))
        if ms >= MAX_EPOCH_MS:
            raise TimestampsError(
                f"{shown} row {row}: {ms} ms is after the year 9999: not epoch milliseconds"
            )
        if ms < last:
            raise TimestampsError(
                f"{shown} row {row}: time {ms} ms goes back from {last} ms; "
                "rows must be in frame order"
            )
        append(ms)
        last = ms
    if not times:
        raise TimestampsError(f"timestamps CSV {shown} has no rows")
    if len(times) > 1 and times[0] == times[-1]:
        raise TimestampsError(
            f"timestamps CSV {shown}: all {len(times)} rows have the same time {times[0]} ms; "
            "a camera clock advances from frame to frame"
        )
    return tuple(times)


def _why_not(field: str) -> str:
    """Why a first field is not whole epoch milliseconds (the field shown shortened)."""
    quoted = repr(field if len(field) <= _SHOWN_CHARS else field[:_SHOWN_CHARS] + "...")
    body = field.lstrip("+-")
    if body and ((body.isdigit() and body.isascii()) or _DECIMAL.fullmatch(body)):
        if field.startswith("-") and body.strip("0."):
            return f"{quoted} is negative: epoch milliseconds are >= 0"
        if "." in body and body.split(".", 1)[1].strip("0"):
            return f"{quoted} is not a whole number of milliseconds"
        if len(body.split(".", 1)[0]) > MAX_EPOCH_MS_DIGITS:
            return f"{quoted} has more than {MAX_EPOCH_MS_DIGITS} digits: not epoch milliseconds"
    return f"{quoted} is not an epoch time in milliseconds ({_EXPECTED})"


def seconds_not_before(ns: int) -> float:
    """Epoch nanoseconds as pydtk's float seconds, never earlier than they are: the smallest
    float whose decimal form (as framefleet reads floats) is >= ``ns`` (a grid anchored there
    never starts before the first frame)."""
    exact = Fraction(ns, 1_000_000_000)
    value = ns / 1_000_000_000
    while Fraction(repr(value)) < exact:
        value = math.nextafter(value, math.inf)
    return value
