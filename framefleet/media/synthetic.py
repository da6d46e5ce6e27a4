"""Synthetic recordings: H.264 clips made with PyAV and pydtk-style camera timestamp CSVs.

Used by the demo and the tests. Every frame differs from its neighbours (a moving gradient plus a
per-frame block pattern), so picking the wrong frame shows in the pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ClipSpec:
    width: int = 160
    height: int = 96
    fps: Fraction | int | str = 30
    frames: int = 60
    gop: int = 30
    bframes: int = 0
    vfr_steps_ms: Sequence[int] | None = None
    """Variable frame rate: per-frame steps in ms, cycled (time base 1/1000)."""
    faststart: bool = False
    """Put the mp4 index first (as cameras that stream do), so a cut file stays readable."""
    crf: int = 18


@functools.lru_cache(maxsize=4)
def _grid(width: int, height: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    y, x = np.mgrid[0:height, 0:width].astype(np.int32)
    return y, x


def frame_image(i: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The RGB content of frame ``i``: deterministic and distinct from its neighbours."""
    y, x = _grid(width, height)
    r = (x * 3 + i * 5) % 256
    g = (y * 4 + i * 3) % 256
    b = ((x + y) * 2 + i * 11) % 256
    img = np.stack([r, g, b], axis=-1).astype(np.uint8)
    bx = (i * 7) % max(1, width - 16)
    img[4:20, bx : bx + 16] = (255, 255, 255) if i % 2 else (0, 0, 0)
    return img


def make_clip(path: Path, spec: ClipSpec | None = None) -> Path:
    """Encode a clip with libx264 to ``path`` (mp4) and return the path."""
    spec = spec or ClipSpec()
    fps = Fraction(spec.fps)
    options = {"movflags": "+faststart"} if spec.faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        params = [
            f"keyint={spec.gop}",
            f"min-keyint={spec.gop}",
            "scenecut=0",
            f"bframes={spec.bframes}",
            f"crf={spec.crf}",
        ]
        if spec.bframes == 0:
            params.append("b-adapt=0")
        stream.options = {"x264-params": ":".join(params), "preset": "veryfast"}
        stream.codec_context.time_base = Fraction(1, 1000) if spec.vfr_steps_ms else 1 / fps
        t_ms = 0
        for i in range(spec.frames):
            frame = av.VideoFrame.from_ndarray(frame_image(i, spec.width, spec.height), "rgb24")
            if spec.vfr_steps_ms:
                frame.pts = t_ms
                frame.time_base = Fraction(1, 1000)
                t_ms += spec.vfr_steps_ms[i % len(spec.vfr_steps_ms)]
            else:
                frame.pts = i
                frame.time_base = 1 / fps
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def camera_times_ms(start_ms: int, frames: int) -> list[int]:
    """A real camera's clock: 33 ms steps with a 43 ms step once per second (30 frames)."""
    times: list[int] = []
    t = start_ms
    for i in range(frames):
        times.append(t)
        t += 43 if i % 30 == 29 else 33
    return times


def write_timestamps_csv(path: Path, times_ms: Sequence[int], *, keyframe_every: int = 30) -> Path:
    """A pydtk camera timestamps CSV: ``epoch_ms, byte_offset, size, is_keyframe``, no header."""
    lines = [
        f"{t},{1000 + 5000 * i},5000,{1 if i % keyframe_every == 0 else 0}"
        for i, t in enumerate(times_ms)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path
