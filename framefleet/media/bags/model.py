"""What `framefleet.media.bags` hands out: a topic's summary, its time index, and an image.

The timing rule of bag frames (`build_index`), stated once:

* A message's time is its header stamp (``clock="header"``: when the camera took it) or the
  time the recorder received it (``clock="receive"``), in integer nanoseconds since the epoch.
* Messages are ordered by that time; messages with equal times keep their receive order
  (a stable sort), so the later received one is shown and the earlier one never is: the
  sampling rule takes "the last frame whose time is <= the grid time" (as for equal CSV
  times). Header stamps that jitter or arrive out of order are thereby sorted, not refused;
  `TopicIndex.reordered` counts the messages received after one with a later stamp.
* The last message is shown for the median step between consecutive distinct times (the
  topic's nominal period, robust to jitter and dropped messages); a single message for 1 ns.
* With ``clock="header"`` a stamp of zero or less (a publisher that never set it) is an
  error that says to use the receive clock.
"""

from __future__ import annotations

import io
import itertools
import statistics
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from framefleet.errors import InvalidBagError, TruncatedBagError
from framefleet.media.bags.layout import Layout, RawTopic

Clock = Literal["header", "receive"]
CLOCKS: tuple[Clock, ...] = ("header", "receive")
NS = 1_000_000_000


@dataclass(frozen=True)
class TopicInfo:
    """An image topic of a bag as the catalog stores it (`image_topics`)."""

    topic: str
    msg_type: str
    """As the bag spells it: ``sensor_msgs/CompressedImage`` (ROS1) or
    ``sensor_msgs/msg/CompressedImage`` (ROS2)."""
    md5sum: str | None
    """The ROS1 message definition's MD5 (None for ROS2 and most MCAP)."""
    count: int
    first_header_ns: int
    """The earliest header stamp (stamps may jitter: not always the first message's)."""
    last_header_ns: int
    """The latest header stamp."""
    first_receive_ns: int
    last_receive_ns: int
    frequency: float | None
    """Messages per second over the header stamps' span: ``(count - 1) / span``; None for one
    message or a zero span."""
    receive_frequency: float | None
    """The same over the receive times."""
    encodings: tuple[str, ...]
    """Distinct encodings in order of appearance: ``jpeg``, ``png``, or a raw encoding."""
    width: int | None
    """Of the first message, when known (raw images; most JPEG and PNG)."""
    height: int | None
    unset_stamps: int
    """Messages whose header stamp is zero or less: then only ``clock="receive"`` works."""
    truncated: bool
    stop_reason: str


@dataclass(frozen=True, eq=False)
class TopicIndex:
    """The messages of one image topic in time order (`topic_index`): the frames of a camera.

    Every tuple has one item per message, in the order of ``times_ns`` (non-decreasing).
    """

    path: str
    topic: str
    msg_type: str
    clock: Clock
    times_ns: tuple[int, ...]
    """Each message's time on ``clock``, epoch nanoseconds."""
    positions: tuple[int, ...]
    """Each message's position (its number in receive order): what `read_images` takes."""
    receive_ns: tuple[int, ...]
    header_ns: tuple[int, ...] | None
    """None when the headers were not read (``clock="receive"`` reads none)."""
    encodings: tuple[str | None, ...]
    """``jpeg``/``png``/a raw encoding; None where the headers were not read."""
    sizes: tuple[tuple[int, int] | None, ...]
    """(width, height) where known."""
    end_ns: int
    """When the last message stops being shown (see the module's timing rule)."""
    reordered: int
    truncated: bool
    stop_reason: str

    @property
    def count(self) -> int:
        return len(self.times_ns)

    def seconds(self, start: Fraction | float | int) -> tuple[Fraction, ...]:
        """Message times in exact seconds relative to ``start`` (epoch seconds; a float is read
        as the decimal it prints as), for `framefleet.media.sampling.pick_frames`."""
        origin = _exact(start)
        return tuple(Fraction(t, NS) - origin for t in self.times_ns)

    def end_seconds(self, start: Fraction | float | int) -> Fraction:
        """`end_ns` in exact seconds relative to ``start`` (``end_of_last`` of the rule)."""
        return Fraction(self.end_ns, NS) - _exact(start)

    def truncation_error(self) -> TruncatedBagError | None:
        """What to raise after the last frame when the bag was cut (None when it was not)."""
        if not self.truncated:
            return None
        return TruncatedBagError(
            f"{self.path!r} stops early ({self.stop_reason}); {self.topic!r} has "
            f"{self.count} messages before the cut"
        )


def _exact(value: Fraction | float | int) -> Fraction:
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


@dataclass(frozen=True, eq=False)
class BagImage:
    """One image message: compressed bytes as stored, or raw pixels converted to RGB."""

    position: int
    header_ns: int
    receive_ns: int
    encoding: str
    """``jpeg`` or ``png`` (``data`` holds the file's bytes), or the raw encoding it was
    converted from (``rgb`` holds the pixels)."""
    data: bytes
    """A compressed image's bytes, exactly as in the bag; empty for a raw image."""
    rgb: npt.NDArray[np.uint8] | None
    """A raw image's pixels, ``height x width x 3``; None for a compressed image."""
    width: int | None
    """None for a compressed image whose first bytes did not tell."""
    height: int | None

    @property
    def image_format(self) -> Literal["jpeg", "png"] | None:
        """The compressed format, None for a raw image."""
        if self.encoding == "jpeg":
            return "jpeg"
        if self.encoding == "png":
            return "png"
        return None

    def to_rgb(
        self, *, at_least: tuple[int, int] | None = None, max_pixels: int | None = None
    ) -> npt.NDArray[np.uint8]:
        """The pixels as ``height x width x 3`` RGB (decoding a compressed image with Pillow).

        Args:
            at_least: (width, height) the caller will shrink to: a JPEG is then decoded at the
                smallest of 1/1, 1/2, 1/4, 1/8 of its size that is not smaller (libjpeg's DCT
                scaling: several times faster than decoding in full and shrinking); the result
                still needs resizing to the exact size. Ignored for PNG and raw images.
            max_pixels: refuse a compressed image whose header declares more pixels than
                this, before decoding it (None: only Pillow's own limit, ~179 MP).

        Raises:
            InvalidBagError: compressed bytes that do not decode, or declare too many pixels.
        """
        if self.rgb is not None:
            return self.rgb
        try:
            with Image.open(io.BytesIO(self.data)) as image:
                width, height = image.size  # the header's: nothing decoded yet
                if max_pixels is not None and width * height > max_pixels:
                    raise InvalidBagError(
                        f"message {self.position} ({self.encoding}) declares a "
                        f"{width}x{height} image, more than {max_pixels / 1e6:.1f} MP "
                        "(max_frame_pixels)"
                    )
                if at_least is not None and image.format == "JPEG":
                    image.draft("RGB", at_least)
                return np.asarray(image.convert("RGB"))
        except Image.DecompressionBombError as e:  # a plain Exception: not caught below
            raise InvalidBagError(
                f"message {self.position} ({self.encoding}) declares too large an image: {e}"
            ) from e
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise InvalidBagError(
                f"message {self.position} ({self.encoding}) does not decode: {e}"
            ) from e


def build_index(layout: Layout, raw: RawTopic, clock: Clock) -> TopicIndex:
    """A topic's messages in time order on ``clock`` (the module's timing rule).

    Raises:
        InvalidBagError: no messages, or unset header stamps with ``clock="header"``.
    """
    n = len(raw.locs)
    if n == 0:
        raise InvalidBagError(f"{layout.path!r}: topic {raw.name!r} has no messages")
    if clock == "header":
        assert raw.header_ns is not None
        unset = sum(1 for t in raw.header_ns if t <= 0)
        if unset:
            raise InvalidBagError(
                f"{layout.path!r}: {unset} of {n} messages of {raw.name!r} have no header stamp "
                "(0: the publisher never set it); use the receive clock (--bag-time receive)"
            )
        times = raw.header_ns
    else:
        times = raw.receive_ns
    order = sorted(range(n), key=lambda i: times[i])  # stable: equal times keep receive order
    reordered = 0
    latest = times[0]
    for t in times:
        if t < latest:
            reordered += 1
        latest = max(latest, t)
    ordered = [times[i] for i in order]
    steps = [b - a for a, b in itertools.pairwise(ordered) if b > a]
    end = ordered[-1] + (statistics.median_low(steps) if steps else 1)
    return TopicIndex(
        path=layout.path,
        topic=raw.name,
        msg_type=raw.msg_type,
        clock=clock,
        times_ns=tuple(ordered),
        positions=tuple(order),
        receive_ns=tuple(raw.receive_ns[i] for i in order),
        header_ns=None if raw.header_ns is None else tuple(raw.header_ns[i] for i in order),
        encodings=tuple(None if raw.encodings is None else raw.encodings[i] for i in order),
        sizes=tuple(None if raw.sizes is None else raw.sizes[i] for i in order),
        end_ns=end,
        reordered=reordered,
        truncated=layout.truncated,
        stop_reason=layout.stop_reason,
    )


def topic_info(layout: Layout, raw: RawTopic) -> TopicInfo:
    """The summary of a topic whose headers were read."""
    assert raw.header_ns is not None
    assert raw.encodings is not None
    assert raw.sizes is not None
    n = len(raw.locs)
    first, last = min(raw.header_ns), max(raw.header_ns)
    size = raw.sizes[0]
    return TopicInfo(
        topic=raw.name,
        msg_type=raw.msg_type,
        md5sum=raw.md5sum,
        count=n,
        first_header_ns=first,
        last_header_ns=last,
        first_receive_ns=raw.receive_ns[0],
        last_receive_ns=raw.receive_ns[-1],
        frequency=_rate(n, last - first),
        receive_frequency=_rate(n, raw.receive_ns[-1] - raw.receive_ns[0]),
        encodings=tuple(dict.fromkeys(raw.encodings)),
        width=None if size is None else size[0],
        height=None if size is None else size[1],
        unset_stamps=sum(1 for t in raw.header_ns if t <= 0),
        truncated=layout.truncated,
        stop_reason=layout.stop_reason,
    )


def _rate(count: int, span_ns: int) -> float | None:
    return (count - 1) * NS / span_ns if count > 1 and span_ns > 0 else None
