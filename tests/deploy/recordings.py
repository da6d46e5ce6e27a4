"""Recordings for the container test: the demo dataset's pydtk layout with 1080p H.264 clips.

`framefleet.demo` lays out 3 recordings x 2 cameras (front-center, rear-center) with sidecars
and camera timestamp CSVs, and a fourth recording as an MCAP bag (a JPEG front camera); its
clips are encoded frame by frame, ~55 ms a 1080p frame here. So one GOP-aligned 2 s clip is
encoded (`framefleet.media.synthetic`) and its packets repeated up to the recording length
without re-encoding (closed 30-frame GOPs make that a valid stream), and every camera's mp4 is a
hard link to it; `make_demo_dataset` then writes only the CSVs, the sidecars and the bag. Three
40 s recordings take ~5 s instead of ~7 min.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av

from framefleet.demo import CAMERAS, RECORDS, make_demo_dataset
from framefleet.media.synthetic import ClipSpec, make_clip

FPS = 30
GOP = 30


def make_recordings(root: Path, *, seconds: int, width: int = 1920, height: int = 1080) -> Path:
    """The demo dataset under ``root/records`` with ``seconds``-long clips; returns that folder."""
    root.mkdir(parents=True, exist_ok=True)
    chunk = make_clip(
        root / "chunk.mp4",
        ClipSpec(width=width, height=height, fps=FPS, frames=2 * GOP, gop=GOP, crf=23),
    )
    looped = _loop(chunk, root / "looped.mp4", seconds=seconds)
    for record_id, _start in RECORDS:
        data = root / "records" / record_id / "data"
        data.mkdir(parents=True, exist_ok=True)
        for stem, _content, _tags in CAMERAS:
            os.link(looped, data / f"{stem}.mp4")
    make_demo_dataset(root, seconds=seconds, width=width, height=height)
    chunk.unlink()
    looped.unlink()
    return root / "records"


def _loop(source: Path, dest: Path, *, seconds: int) -> Path:
    """``source``'s packets repeated with shifted timestamps up to ``seconds`` (no re-encode)."""
    with av.open(str(source)) as src, av.open(str(dest), "w") as out:
        in_stream = src.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        time_base = in_stream.time_base
        assert time_base is not None
        limit = int(Fraction(seconds) / time_base)
        offset = 0
        while True:
            src.seek(0, stream=in_stream)
            end = offset
            for packet in src.demux(in_stream):
                if packet.pts is None or packet.dts is None:
                    continue  # the demuxer's flush packet
                pts = packet.pts + offset
                if pts >= limit:
                    return dest
                packet.pts, packet.dts = pts, packet.dts + offset
                end = max(end, pts + (packet.duration or 0))
                packet.stream = out_stream
                out.mux(packet)
            if end == offset:
                raise ValueError(f"{source} has no packets with timestamps")
            offset = end
