"""Synthetic recordings: H.264 clips made with PyAV and pydtk-style camera timestamp CSVs.

Used by the demo and the tests. Every frame differs from its neighbours (a moving gradient plus a
per-frame block pattern), so picking the wrong frame shows in the pixels. ``content="camera"``
makes the benchmark's camera-like frames instead (`camera_frames`: colour bars, texture, a slow
pan, a moving box, sensor noise the encoder must pay for): what lossy shortcuts such as skipping
the deblocking filter are judged on, since the default pattern's hard edges everywhere are their
worst case.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

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
    bitrate_kbps: int | None = None
    """Rate-controlled like a camera (VBV at this rate) instead of ``crf``."""
    content: Literal["pattern", "camera"] = "pattern"


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
        ]
        if spec.bitrate_kbps is None:
            params.append(f"crf={spec.crf}")
        else:
            kbps = spec.bitrate_kbps
            params += [f"bitrate={kbps}", f"vbv-maxrate={kbps}", f"vbv-bufsize={2 * kbps}"]
        if spec.bframes == 0:
            params.append("b-adapt=0")
        stream.options = {"x264-params": ":".join(params), "preset": "veryfast"}
        stream.codec_context.time_base = Fraction(1, 1000) if spec.vfr_steps_ms else 1 / fps
        t_ms = 0
        camera = camera_frames(spec.frames, spec.width, spec.height)
        for i in range(spec.frames):
            if spec.content == "camera":
                frame = av.VideoFrame.from_ndarray(next(camera), format="yuv420p")
            else:
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


_PAN = 96
"""Margin (px) of the camera content's precomputed planes: room for the pan and the noise."""


def camera_frames(count: int, width: int, height: int) -> Iterator[npt.NDArray[np.uint8]]:
    """Camera-like yuv420p frames, one ``(height * 3 / 2, width)`` array each (reused: copy to
    keep one). Colour bars, a gradient and fixed texture seen through a slow circular pan (motion
    compensation works), noise that does not move with it (what the encoder must pay for), and
    a box crossing the frame; testsrc2-like. The benchmark's seed workload is made of these.
    """
    rng = np.random.default_rng(2)
    y_plane, u_plane, v_plane = _planes(width, height, rng)
    noise = rng.integers(-10, 11, size=(height + 2 * _PAN, width + 2 * _PAN), dtype=np.int16)
    out = np.empty((height * 3 // 2, width), dtype=np.uint8)
    ch, cw = height // 2, width // 2
    for i in range(count):
        dx = int(_PAN + (_PAN - 2) * np.cos(i / 90))
        dy = int(_PAN + (_PAN - 2) * np.sin(i / 70))
        dx, dy = dx & ~1, dy & ~1
        y = y_plane[dy : dy + height, dx : dx + width].astype(np.int16)
        nx, ny = (i * 7919) % (2 * _PAN), (i * 104729) % (2 * _PAN)
        y += noise[ny : ny + height, nx : nx + width]
        _moving_box(y, i, width, height)
        np.clip(y, 0, 255, out=y)
        out[:height] = y
        chroma = out[height:].reshape(2, ch, cw)
        chroma[0] = u_plane[dy // 2 : dy // 2 + ch, dx // 2 : dx // 2 + cw]
        chroma[1] = v_plane[dy // 2 : dy // 2 + ch, dx // 2 : dx // 2 + cw]
        yield out


U8 = npt.NDArray[np.uint8]


def _planes(width: int, height: int, rng: np.random.Generator) -> tuple[U8, U8, U8]:
    """Y, U, V backgrounds larger than a frame: bars, a gradient and fixed texture."""
    h, w = height + 2 * _PAN, width + 2 * _PAN
    yy, xx = np.mgrid[0:h, 0:w]
    bars = (xx * 8 // w) % 8
    luma = np.array([235, 210, 170, 145, 106, 81, 41, 16], dtype=np.int16)[bars]
    luma = luma * 0.6 + (yy * 80 // h) + 20 * np.sin(xx / 23.0) * np.cos(yy / 17.0)
    luma += rng.normal(0, 12, size=(h, w))
    y = np.clip(luma, 0, 255).astype(np.uint8)
    cy, cx = yy[::2, ::2], xx[::2, ::2]
    cbars = bars[::2, ::2]
    u_tab = np.array([128, 16, 166, 54, 202, 90, 240, 128], dtype=np.int16)
    v_tab = np.array([128, 146, 16, 34, 222, 240, 110, 128], dtype=np.int16)
    u = np.clip(u_tab[cbars] + (cy * 30 // h) - 15, 0, 255).astype(np.uint8)
    v = np.clip(v_tab[cbars] + (cx * 30 // w) - 15, 0, 255).astype(np.uint8)
    return y, u, v


def _moving_box(y: npt.NDArray[np.int16], i: int, width: int, height: int) -> None:
    """A box crossing the frame with a frame-dependent shade (testsrc2's moving square)."""
    size = height // 6
    bx = (i * 12) % (width - size)
    by = (height - size) // 2 + int((height // 4) * np.sin(i / 25))
    y[by : by + size, bx : bx + size] = (i * 37) % 256
