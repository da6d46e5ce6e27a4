"""Bag images and the frame-size guard: every image is checked against max_frame_pixels before
it is decoded, whichever clock indexed the topic, and an image that declares more pixels than
Pillow accepts is an InvalidBagError, never Pillow's own exception."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from framefleet.errors import InvalidBagError, InvalidVideoError
from framefleet.media.bags import BagImage
from framefleet.media.pipeline import process_segment
from framefleet.media.specs import OutputSpec, SegmentSpec
from tests.bags import Msg, encode, picture, write_mcap, write_ros1

T0_NS = 1_489_728_491_000_000_000
STEP_NS = 100_000_000


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _declared_png(width: int, height: int) -> bytes:
    """A few bytes of PNG whose header declares ``width`` x ``height`` RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _chunk(b"IEND", b"")
    )


BOMB = _declared_png(20_000, 10_000)  # 200 MP: past Pillow's own limit (~179 MP)


@dataclass
class _Declared(Msg):
    """A PNG message whose bytes are ``BOMB`` (written by the real bag writers)."""

    def payload(self) -> bytes:
        return BOMB


def _spec(bag: Path, topic: str, out: Path, **fields: object) -> SegmentSpec:
    return SegmentSpec(
        video_path=str(bag),
        record_id="drive",
        content=topic,
        topic=topic,
        start_timestamp=T0_NS / 10**9,
        bag_time="receive",  # headers are not read: the index holds no sizes
        output=OutputSpec(out_dir=str(out), **fields),  # type: ignore[arg-type]
    )


def _camera(topic: str, kind: str, count: int = 5) -> list[Msg]:
    return [
        Msg(topic, T0_NS + k * STEP_NS, T0_NS + k * STEP_NS, kind, picture(k, 32, 24))
        for k in range(count)
    ]


@pytest.mark.parametrize("kind", ["jpeg", "png", "rgb8"])
@pytest.mark.parametrize("as_stored", [True, False])
def test_images_over_max_frame_pixels_are_refused_with_the_receive_clock(
    tmp_path: Path, kind: str, as_stored: bool
) -> None:
    bag = write_ros1(tmp_path / "b.bag", _camera("/cam", kind))
    resize = {} if as_stored else {"resize_rate": 0.5}
    spec = _spec(bag, "/cam", tmp_path / "out", **resize)
    with pytest.raises(InvalidBagError, match=r"32x24 image .*more than max_frame_pixels"):
        process_segment(spec, max_frame_pixels=32 * 24 - 1)
    assert process_segment(spec, max_frame_pixels=32 * 24).images  # at the limit: fine


@pytest.mark.parametrize("bag_time", ["receive", "header"])
@pytest.mark.parametrize(
    ("max_frame_pixels", "match"),
    [
        (40_000_000, r"20000x10000 images?,? .*more than max_frame_pixels"),
        (10**12, r"message 0 \(png\) declares too large an image"),  # Pillow's limit is left
    ],
)
def test_an_image_declaring_more_than_pillow_allows_is_an_invalid_bag(
    tmp_path: Path, bag_time: str, max_frame_pixels: int, match: str
) -> None:
    msgs = [_Declared("/cam", T0_NS, T0_NS, "png", picture(0))]
    bag = write_mcap(tmp_path / "b.mcap", msgs)
    spec = _spec(bag, "/cam", tmp_path / "out", max_side_px=64)
    spec = SegmentSpec(**{**spec.__dict__, "bag_time": bag_time})
    with pytest.raises(InvalidVideoError, match=match):  # InvalidBagError is one
        process_segment(spec, max_frame_pixels=max_frame_pixels)


def _image(data: bytes) -> BagImage:
    return BagImage(
        position=3,
        header_ns=T0_NS,
        receive_ns=T0_NS,
        encoding="png",
        data=data,
        rgb=None,
        width=None,  # the first bytes did not tell
        height=None,
    )


def test_decoding_checks_the_declared_size_before_decoding() -> None:
    with pytest.raises(InvalidBagError, match=r"message 3 \(png\) declares too large an image"):
        _image(BOMB).to_rgb()
    small = _image(encode(picture(1, 32, 24), "png"))
    with pytest.raises(InvalidBagError, match=r"message 3 \(png\) declares a 32x24 image"):
        small.to_rgb(max_pixels=100)
    assert small.to_rgb(max_pixels=32 * 24).shape == (24, 32, 3)
