"""An independent reference: decode every frame with plain PyAV and apply the rule by brute force.

It shares no code with framefleet's sampling or decoding: it walks the grid (not the frames),
and for each grid time looks for the last frame whose time is <= it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class RefFrame:
    seconds: Fraction
    """Time relative to the recording start."""
    rgb: np.ndarray
    key: bool


def decode_all(
    path: Path, *, clock_ms: Sequence[int] | None = None
) -> tuple[list[RefFrame], Fraction]:
    """Every frame in display order with its time (PTS from the first frame, or the CSV's),
    and when the last one stops being shown (its packet's duration; the CSV's last step)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = Fraction(stream.time_base)
        durations = {p.pts: p.duration for p in container.demux(stream) if p.size}
    with av.open(str(path)) as container:
        decoded = [
            (f.pts, f.to_ndarray(format="rgb24"), f.key_frame) for f in container.decode(video=0)
        ]
    decoded.sort(key=lambda x: x[0])
    if clock_ms is None:
        first, last = decoded[0][0], decoded[-1][0]
        frames = [RefFrame((pts - first) * tb, rgb, key) for pts, rgb, key in decoded]
        return frames, (last - first + durations[last]) * tb
    assert len(clock_ms) == len(decoded)
    frames = [
        RefFrame(Fraction(ms - clock_ms[0], 1000), rgb, key)
        for ms, (_, rgb, key) in zip(clock_ms, decoded, strict=True)
    ]
    return frames, Fraction(2 * clock_ms[-1] - clock_ms[-2] - clock_ms[0], 1000)


def expected_picks(
    frames: Sequence[RefFrame], *, fps: Fraction, end_of_last: Fraction
) -> list[tuple[Fraction, int]]:
    """(grid time, frame number) for each grid time at which a frame is shown, deduplicated."""
    picks: list[tuple[Fraction, int]] = []
    seen: set[int] = set()
    k = 0
    while True:
        g = Fraction(k) / fps
        if g >= end_of_last:
            return picks
        shown = None
        for n, f in enumerate(frames):
            if f.seconds <= g:
                shown = n
            else:
                break
        if shown is not None and shown not in seen:
            seen.add(shown)
            picks.append((g, shown))
        k += 1


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
