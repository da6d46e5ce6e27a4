"""Raw image pixels to RGB, against a plain per-pixel reference written independently here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framefleet.media.bags.pixels import PixelError, raw_to_rgb
from tests.bags import RAW_ENCODINGS, RefMessage, bayer_mosaic, picture, raw_pixels

_COLOUR = {"r": 0, "g": 1, "b": 2}


def expected_rgb(m: RefMessage) -> np.ndarray:
    """RGB of a raw message from its fields, pixel by pixel (the reference)."""
    bpp = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 2}.get(m.encoding, 1)
    rows = [m.data[y * m.step : y * m.step + m.width * bpp] for y in range(m.height)]
    out = np.zeros((m.height, m.width, 3), np.uint8)
    for y in range(m.height):
        for x in range(m.width):
            px = rows[y][x * bpp : (x + 1) * bpp]
            if m.encoding in ("rgb8", "rgba8"):
                out[y, x] = (px[0], px[1], px[2])
            elif m.encoding in ("bgr8", "bgra8"):
                out[y, x] = (px[2], px[1], px[0])
            elif m.encoding == "mono8":
                out[y, x] = (px[0],) * 3
            elif m.encoding == "mono16":
                v = int.from_bytes(px, "big" if m.is_bigendian else "little")
                out[y, x] = (round(v * 255 / 65535),) * 3
    if m.encoding.startswith("bayer_"):
        mosaic = np.array([list(r) for r in rows], np.int64)
        return _reference_debayer(mosaic, m.encoding[6:10])
    return out


def _reference_debayer(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """Each missing colour: the mean of the nearest samples of it (edge neighbours first, else
    the diagonal ones), borders mirrored; rounded half up."""
    h, w = mosaic.shape

    def colour(y: int, x: int) -> int:
        return _COLOUR[pattern[(y % 2) * 2 + (x % 2)]]

    def at(y: int, x: int) -> tuple[int, int]:
        y = -y if y < 0 else (2 * (h - 1) - y if y >= h else y)
        x = -x if x < 0 else (2 * (w - 1) - x if x >= w else x)
        return y, x

    out = np.zeros((h, w, 3), np.uint8)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                if colour(y, x) == c:
                    out[y, x, c] = mosaic[y, x]
                    continue
                for ring in (
                    ((-1, 0), (1, 0), (0, -1), (0, 1)),
                    ((-1, -1), (-1, 1), (1, -1), (1, 1)),
                ):
                    values = [
                        mosaic[at(y + dy, x + dx)] for dy, dx in ring if colour(y + dy, x + dx) == c
                    ]
                    if values:
                        out[y, x, c] = (sum(values) * (4 // len(values)) + 2) // 4
                        break
    return out


def _message(rgb: np.ndarray, encoding: str, pad: int, bigendian: bool) -> RefMessage:
    data, step = raw_pixels(rgb, encoding, pad=pad, bigendian=bigendian)
    h, w, _ = rgb.shape
    return RefMessage("/x", 0, 0, encoding, data, w, h, step, bigendian)


@settings(max_examples=60, deadline=None)
@given(
    encoding=st.sampled_from(RAW_ENCODINGS),
    width=st.integers(2, 9),
    height=st.integers(2, 7),
    pad=st.integers(0, 5),
    bigendian=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_raw_to_rgb_matches_the_reference(
    encoding: str, width: int, height: int, pad: int, bigendian: bool, seed: int
) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    m = _message(rgb, encoding, pad, bigendian)
    got = raw_to_rgb(
        m.data, encoding=encoding, width=width, height=height, step=m.step, is_bigendian=bigendian
    )
    np.testing.assert_array_equal(got, expected_rgb(m))
    if encoding in ("rgb8", "bgr8", "rgba8", "bgra8"):
        np.testing.assert_array_equal(got, rgb)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_debayer_keeps_samples_and_flat_colours(pattern: str) -> None:
    rgb = picture(3, 10, 8)
    mosaic = bayer_mosaic(rgb, pattern)
    got = raw_to_rgb(
        mosaic.tobytes(),
        encoding=f"bayer_{pattern}8",
        width=10,
        height=8,
        step=10,
        is_bigendian=False,
    )
    for i, letter in enumerate(pattern):
        dy, dx = divmod(i, 2)
        channel = _COLOUR[letter]
        np.testing.assert_array_equal(got[dy::2, dx::2, channel], rgb[dy::2, dx::2, channel])
    flat = np.empty((6, 8, 3), np.uint8)
    flat[:] = (200, 120, 40)
    got = raw_to_rgb(
        bayer_mosaic(flat, pattern).tobytes(),
        encoding=f"bayer_{pattern}8",
        width=8,
        height=6,
        step=8,
        is_bigendian=False,
    )
    assert (got == (200, 120, 40)).all()


def test_mono16_scaling_and_aliases() -> None:
    values = np.array([[0, 257, 65535, 32768]], dtype="<u2")
    got = raw_to_rgb(
        values.tobytes(), encoding="16UC1", width=4, height=1, step=8, is_bigendian=False
    )
    assert got[0, :, 0].tolist() == [0, 1, 255, 128]
    big = values.astype(">u2").tobytes()
    assert (
        raw_to_rgb(big, encoding="mono16", width=4, height=1, step=8, is_bigendian=True) == got
    ).all()
    assert raw_to_rgb(
        b"\x07", encoding="8UC1", width=1, height=1, step=1, is_bigendian=False
    ).tolist() == [[[7, 7, 7]]]


def test_bad_raw_images_say_what_is_wrong() -> None:
    with pytest.raises(PixelError, match=r"'yuv422' is not supported \(supported: rgb8"):
        raw_to_rgb(b"\0" * 8, encoding="yuv422", width=2, height=2, step=4, is_bigendian=False)
    with pytest.raises(PixelError, match="step 5 is shorter than a row"):
        raw_to_rgb(b"\0" * 12, encoding="rgb8", width=2, height=2, step=5, is_bigendian=False)
    with pytest.raises(PixelError, match="needs 12 bytes, has 11"):
        raw_to_rgb(b"\0" * 11, encoding="rgb8", width=2, height=2, step=6, is_bigendian=False)
    with pytest.raises(PixelError, match="at least 2x2"):
        raw_to_rgb(b"\0" * 3, encoding="bayer_rggb8", width=3, height=1, step=3, is_bigendian=False)
