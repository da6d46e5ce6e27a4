"""A decoded frame to an image file: resize in swscale, encode with Pillow, write atomically.

Resizing happens in swscale (``VideoFrame.reformat``) straight from the decoder's YUV, for kept
frames only: ~1 ms at 1080p to a quarter, where ``to_image()`` and a Pillow resize of the full
frame cost 20-50 ms. Files are written to a temporary name and renamed, so a reader (or a worker
killed mid-write) never leaves a half-written image under the final name.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
from av.video.reformatter import VideoReformatter
from PIL import Image

from framefleet.errors import ConfigError, OutputError

ImageFormat = Literal["jpeg", "png", "webp"]
IMAGE_FORMATS: tuple[ImageFormat, ...] = ("jpeg", "png", "webp")
EXTENSIONS: dict[ImageFormat, str] = {"jpeg": "jpg", "png": "png", "webp": "webp"}


@dataclass(frozen=True, kw_only=True)
class Resize:
    """How to size output images; at most one of ``rate`` and ``max_side_px``, or width/height.

    ``width`` or ``height`` alone keeps the aspect ratio; both together force that size.
    Nothing set keeps the source size.
    """

    rate: float | None = None
    max_side_px: int | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        given = [
            n
            for n, v in (
                ("--resize (resize_rate)", self.rate),
                ("--max-side (max_side_px)", self.max_side_px),
            )
            if v is not None
        ]
        if self.width is not None or self.height is not None:
            given.append("--width/--height")
        if len(given) > 1:
            raise ConfigError(f"choose one way to resize; got {' and '.join(given)}")
        if self.rate is not None and not (
            isinstance(self.rate, int | float)
            and not isinstance(self.rate, bool)
            and 0 < self.rate <= 16
        ):
            raise ConfigError(f"--resize (resize_rate) must be > 0 and <= 16, got {self.rate!r}")
        for name, value in (
            ("max_side_px", self.max_side_px),
            ("width", self.width),
            ("height", self.height),
        ):
            if value is not None and not (
                isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 16384
            ):
                raise ConfigError(
                    f"{name} must be a whole number of pixels in 1..16384, got {value!r}"
                )

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        """The output size for a ``width`` x ``height`` source (never below 1 px)."""
        if self.rate is not None:
            w, h = width * self.rate, height * self.rate
        elif self.max_side_px is not None:
            scale = self.max_side_px / max(width, height)
            w, h = width * scale, height * scale
        elif self.width is not None and self.height is not None:
            w, h = self.width, self.height
        elif self.width is not None:
            w, h = self.width, height * self.width / width
        elif self.height is not None:
            w, h = width * self.height / height, self.height
        else:
            w, h = width, height
        return max(1, round(w)), max(1, round(h))


def frame_to_rgb(
    frame: av.VideoFrame, size: tuple[int, int], *, reformatter: VideoReformatter | None = None
) -> av.VideoFrame:
    """Resize and convert to RGB in one swscale pass (area averaging when shrinking).

    ``reformatter``: one to reuse across frames of one size (it keeps its scaler set up), used
    by one thread at a time; None: a new one.
    """
    width, height = size
    scaler = reformatter or VideoReformatter()
    if (width, height) == (frame.width, frame.height):
        return scaler.reformat(frame, format="rgb24")
    shrink = width < frame.width or height < frame.height
    return scaler.reformat(
        frame,
        width=width,
        height=height,
        format="rgb24",
        interpolation="AREA" if shrink else "BICUBIC",
    )


def encode_image(rgb: av.VideoFrame, *, image_format: ImageFormat, quality: int) -> bytes:
    """Encode an RGB frame as JPEG, PNG or WebP bytes."""
    image: Image.Image = rgb.to_image()  # type: ignore[no-untyped-call]
    buffer = io.BytesIO()
    if image_format == "jpeg":
        image.save(buffer, format="JPEG", quality=quality)
    elif image_format == "webp":
        image.save(buffer, format="WEBP", quality=quality)
    else:
        image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


_umask_lock = threading.Lock()
_umask: int | None = None


def _file_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give: 0666 less the process umask."""
    global _umask
    if _umask is None:
        with _umask_lock:
            if _umask is None:
                _umask = _read_umask()
    return 0o666 & ~_umask


def _read_umask() -> int:
    try:  # Linux tells it without changing it
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)  # elsewhere it can only be read by setting it
    os.umask(current)
    return current


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename.

    The file gets the permissions a normal write would (0666 less the umask), not the 0600 of
    the temporary file.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"cannot write to {str(path.parent)!r}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _file_mode())
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing anything that would land outside ``root``.

    Raises:
        OutputError: the name is absolute or climbs out of the root (``..``, symlinks).
    """
    if os.path.isabs(relative):
        raise OutputError(f"output name {relative!r} is absolute; names must be relative to --out")
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise OutputError(f"output name {relative!r} escapes the output root {str(base)!r}")
    return target
