"""Benchmark workloads: H.264 clips shaped like the real camera, generated once and cached.

The seed workload mirrors ``pydtk-sample``'s camera: 1920x1080, 30 fps, libx264 at ~15 Mbit/s, I and
P frames only with a keyframe exactly every 30 frames. Its content is testsrc2-like (colour bars, a
gradient, a moving box, a slow pan) plus per-frame noise, so the encoder really spends the bitrate
and the decoder does realistic work (`framefleet.media.synthetic.camera_frames`, which the tests
use at a small size too). The B-frame variant keeps x264's defaults (``keyint=250``,
3 B-frames, scene cuts).

Clips are cached under ``bench/out/`` (git-ignored) with their parameters in the file name, written
to a temporary name and renamed, so an interrupted generation never leaves a bad cache entry.
Long clips are made by repeating an encoded clip's packets with shifted timestamps (no re-encode):
with closed 30-frame GOPs the result is a valid stream, and it takes seconds instead of minutes.

Usage from another benchmark::

    from bench._workload import seed_clip, looped_clip
    clip = seed_clip()                       # 80 s, 1080p, GOP 30, no B-frames
    bframes = seed_clip(bframes=True)        # x264 defaults: keyint 250, 3 B-frames
    long = looped_clip(clip, seconds=600)    # 10 min, same content, remuxed
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

from framefleet.media.synthetic import camera_frames

OUT_DIR = Path(__file__).resolve().parent / "out"
"""Where clips and benchmark outputs live (git-ignored)."""

WIDTH, HEIGHT, FPS = 1920, 1080, 30
BITRATE_KBPS = 15_000
RATE_PARAMS = f"bitrate={BITRATE_KBPS}:vbv-maxrate={BITRATE_KBPS}:vbv-bufsize={2 * BITRATE_KBPS}"
CAMERA_PARAMS = "keyint=30:min-keyint=30:scenecut=0:bframes=0"
"""I and P frames only, a keyframe exactly every 30 frames: the real camera's GOP."""


def seed_clip(
    path: Path | None = None,
    *,
    seconds: int = 80,
    bframes: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
    generate: bool = True,
    log: bool = True,
) -> Path:
    """The seed workload, encoded with PyAV if it is not cached yet; returns its path.

    Args:
        path: where to write it; default ``bench/out/seed-<params>.mp4``.
        seconds: clip length at 30 fps.
        bframes: False: the camera's GOP (``keyint=30``, no B-frames); True: x264's defaults.
        width: frame width (even).
        height: frame height (even).
        generate: False: raise FileNotFoundError instead of generating a missing clip.
        log: print a line when generating (it takes about a minute per 80 s of 1080p).
    """
    gop = "bf" if bframes else "gop30"
    path = path or OUT_DIR / f"seed-{width}x{height}-{FPS}fps-{seconds}s-{gop}.mp4"
    if path.is_file():
        return path
    _missing(path, generate)
    params = RATE_PARAMS if bframes else f"{CAMERA_PARAMS}:{RATE_PARAMS}"
    if log:
        print(f"generating {path.name} ({seconds} s, {width}x{height}, x264 {params}) ...")
    t0 = time.perf_counter()
    _atomic(path, lambda tmp: _encode(tmp, seconds * FPS, width, height, params))
    if log:
        mbps = path.stat().st_size * 8 / seconds / 1e6
        print(f"  done in {time.perf_counter() - t0:.1f} s, {mbps:.1f} Mbit/s")
    return path


def looped_clip(
    source: Path,
    *,
    seconds: int,
    path: Path | None = None,
    generate: bool = True,
    log: bool = True,
) -> Path:
    """``source`` repeated (packets copied, timestamps shifted) up to ``seconds``; returns its path.

    The cut falls on a keyframe when ``seconds`` is a whole number of GOPs of ``source`` (the
    seed clip's GOP is 1 s). ``source`` must start with a keyframe and have closed GOPs.
    ``generate=False`` raises FileNotFoundError instead of making a missing clip.
    """
    path = path or source.with_name(f"{source.stem}-looped-{seconds}s.mp4")
    if path.is_file():
        return path
    _missing(path, generate)
    if log:
        print(f"generating {path.name} (repeating {source.name} up to {seconds} s) ...")
    t0 = time.perf_counter()
    _atomic(path, lambda tmp: _loop(source, tmp, seconds))
    if log:
        print(f"  done in {time.perf_counter() - t0:.1f} s")
    return path


def _missing(path: Path, generate: bool) -> None:
    if not generate:
        raise FileNotFoundError(f"benchmark clip {str(path)!r} is missing; generate it first")


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` and rename ``tmp`` to ``path``; remove ``tmp`` on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _encode(path: Path, frames: int, width: int, height: int, x264_params: str) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "x264-params": x264_params}
        stream.codec_context.time_base = Fraction(1, FPS)
        for i, yuv in enumerate(camera_frames(frames, width, height)):
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _loop(source: Path, dest: Path, seconds: int) -> None:
    with av.open(str(source)) as src, av.open(str(dest), "w") as out:
        in_stream = src.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        time_base = in_stream.time_base
        assert time_base is not None
        limit = int(Fraction(seconds) / time_base)
        offset = 0
        while True:
            span = _copy_once(src, in_stream, out, out_stream, offset, limit)
            if span == 0:
                break
            offset += span


def _copy_once(
    src: av.container.InputContainer,
    in_stream: av.video.stream.VideoStream,
    out: av.container.OutputContainer,
    out_stream: av.video.stream.VideoStream,
    offset: int,
    limit: int,
) -> int:
    """Copy every packet of ``src`` shifted by ``offset``, stopping at pts ``limit``.

    Returns the span the copy covered (0 when the limit was already reached).
    """
    src.seek(0, stream=in_stream)
    end = offset
    for packet in src.demux(in_stream):
        if packet.dts is None or packet.pts is None:
            continue
        pts = packet.pts + offset
        if pts >= limit and packet.is_keyframe:
            return 0
        packet.pts, packet.dts = pts, packet.dts + offset
        end = max(end, pts + (packet.duration or 0))
        packet.stream = out_stream
        out.mux(packet)
    return end - offset
