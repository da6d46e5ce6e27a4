"""Raw ``sensor_msgs/Image`` pixels to an RGB array, NumPy only.

Rows are ``step`` bytes apart (padding after ``width`` pixels is skipped). Encodings:

* ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``: channels reordered, alpha dropped (not blended).
* ``mono8`` (``8UC1``): grey, repeated in the three channels.
* ``mono16`` (``16UC1``): 16-bit grey in the byte order ``is_bigendian`` says, scaled linearly
  from the full 0..65535 range to 0..255 with rounding (``round(v * 255 / 65535)``); repeated.
* ``bayer_rggb8``, ``bayer_bggr8``, ``bayer_gbrg8``, ``bayer_grbg8``: demosaiced by bilinear
  interpolation: each missing colour is the mean of its nearest samples of that colour (the two
  or four neighbours in the 3x3 window; green from the four edge neighbours), with the sample
  itself kept where it was taken; rounded half up. Borders are mirrored without repeating the
  edge pixel, which keeps the colour pattern, so the edge is interpolated the same way.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RGB = npt.NDArray[np.uint8]

_ALIASES = {"8UC1": "mono8", "16UC1": "mono16"}
_BYTES_PER_PIXEL = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 2}
_BAYER = {
    # colour of the samples at (0, 0), (0, 1), (1, 0), (1, 1): 0 red, 1 green, 2 blue
    "bayer_rggb8": (0, 1, 1, 2),
    "bayer_bggr8": (2, 1, 1, 0),
    "bayer_gbrg8": (1, 2, 0, 1),
    "bayer_grbg8": (1, 0, 2, 1),
}
RAW_ENCODINGS = (*_BYTES_PER_PIXEL, *_BAYER)
"""The raw encodings `raw_to_rgb` converts (plus the aliases ``8UC1`` and ``16UC1``)."""

_RED_BLUE_KERNEL = ((1, 2, 1), (2, 4, 2), (1, 2, 1))
_GREEN_KERNEL = ((0, 1, 0), (1, 4, 1), (0, 1, 0))


class PixelError(ValueError):
    """The pixels do not fit their description (the text says how)."""


def supported(encoding: str) -> bool:
    return _ALIASES.get(encoding, encoding) in _BYTES_PER_PIXEL or encoding in _BAYER


def raw_to_rgb(
    data: bytes | memoryview,
    *,
    encoding: str,
    width: int,
    height: int,
    step: int,
    is_bigendian: bool,
) -> RGB:
    """An ``height x width x 3`` RGB array of a raw image's pixels (a new array).

    Raises:
        PixelError: an encoding not in `RAW_ENCODINGS`, a ``step`` shorter than a row, or fewer
            bytes than the rows need.
    """
    name = _ALIASES.get(encoding, encoding)
    bpp = 1 if name in _BAYER else _BYTES_PER_PIXEL.get(name)
    if bpp is None:
        raise PixelError(
            f"encoding {encoding!r} is not supported (supported: {', '.join(RAW_ENCODINGS)}, "
            "8UC1, 16UC1)"
        )
    if width <= 0 or height <= 0:
        raise PixelError(f"{encoding} image of {width}x{height} pixels has no pixels")
    row = width * bpp
    if step < row:
        raise PixelError(f"{encoding} {width}x{height}: step {step} is shorter than a row ({row})")
    needed = step * (height - 1) + row
    if len(data) < needed:
        raise PixelError(
            f"{encoding} {width}x{height} with step {step} needs {needed} bytes, has {len(data)}"
        )
    flat = np.frombuffer(data, dtype=np.uint8, count=min(len(data), step * height))
    if flat.size < step * height:  # the last row without its padding
        flat = np.concatenate([flat, np.zeros(step * height - flat.size, np.uint8)])
    rows = flat.reshape(height, step)[:, :row]
    if name in _BAYER:
        return _debayer(rows, _BAYER[name])
    if name == "mono16":
        grey16 = np.ascontiguousarray(rows).view(">u2" if is_bigendian else "<u2")
        scaled = (grey16.astype(np.uint32) * 255 + 32767) // 65535
        return np.repeat(scaled.astype(np.uint8)[:, :, None], 3, axis=2)
    pixels = rows.reshape(height, width, bpp)
    if name == "mono8":
        return np.repeat(pixels, 3, axis=2)
    if name in ("bgr8", "bgra8"):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def _debayer(mosaic: npt.NDArray[np.uint8], pattern: tuple[int, int, int, int]) -> RGB:
    """Bilinear demosaicing of a Bayer mosaic (see the module's docstring)."""
    height, width = mosaic.shape
    if height < 2 or width < 2:
        raise PixelError(f"a Bayer image needs at least 2x2 pixels, got {width}x{height}")
    colour = np.empty((height, width), np.uint8)
    colour[0::2, 0::2], colour[0::2, 1::2] = pattern[0], pattern[1]
    colour[1::2, 0::2], colour[1::2, 1::2] = pattern[2], pattern[3]
    values = mosaic.astype(np.int32)
    out = np.empty((height, width, 3), np.uint8)
    for channel in range(3):
        taken = np.where(colour == channel, values, 0)
        padded = np.pad(taken, 1, mode="reflect")  # keeps the 2x2 colour pattern at the border
        kernel = _GREEN_KERNEL if channel == 1 else _RED_BLUE_KERNEL
        total = np.zeros((height, width), np.int32)
        for dy in range(3):
            for dx in range(3):
                if kernel[dy][dx]:
                    total += kernel[dy][dx] * padded[dy : dy + height, dx : dx + width]
        out[:, :, channel] = (total + 2) // 4
    return out
