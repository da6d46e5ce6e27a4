"""A segment's manifest: one JSON line per image it made (and per requested time it could not
answer), written last and atomically, so a segment with a manifest is complete.

    {"path": "016/camera%2Ffront/016-1489728491.500.jpg", "record_id": "016",
     "content": "camera/front", "timestamp": 1489728491.467, "grid_time": 1489728491.5,
     "grid_count": 1, "pts_seconds": 0.467, "width": 480, "height": 270, "bytes": 24817,
     "spec": "3f9a1c0b2d4e5f60"}
    {"record_id": "016", "content": "camera/front", "requested_time": 1489728490.9,
     "missing": "before the first frame (shown from 0.000 ms)", "spec": "3f9a1c0b2d4e5f60"}

The job manifest (`framefleet.jobs.manifest`) is the concatenation of a job's segment manifests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from framefleet.errors import OutputError
from framefleet.media.images import write_atomic


@dataclass(frozen=True)
class ImageRecord:
    """One line of a manifest: an image and where in the recording it comes from."""

    path: str
    """Relative to the output root."""
    record_id: str
    content: str
    timestamp: float
    """The frame's own time (epoch seconds when the recording start is known)."""
    grid_time: float
    """The grid time the frame stands for (same clock)."""
    pts_seconds: float
    """The frame's position in the stream, seconds from its first frame."""
    width: int
    height: int
    bytes: int
    spec: str = ""
    """The identity of the spec that wrote the image (`SegmentSpec.identity`)."""
    grid_count: int = 1
    """How many consecutive grid times (``grid_time`` and the next ones) show this frame; for
    requested times, how many it answers."""
    requested_times: list[float] | None = None
    """With requested times (``--at-times``): every one this frame answers."""


@dataclass(frozen=True)
class MissingRecord:
    """A manifest line for a requested time no frame answers (``missing``: why)."""

    record_id: str
    content: str
    requested_time: float
    missing: str
    spec: str = ""


def write_manifest(
    path: Path, images: list[ImageRecord], missing: Sequence[MissingRecord] = ()
) -> None:
    """Write a manifest atomically: JSON lines, one per image, then one per missing requested
    time (those carry a ``missing`` key and no ``path``)."""
    records: list[dict[str, Any]] = [asdict(r) for r in images]
    records += [asdict(m) for m in missing]
    for record in records:
        if record.get("requested_times", ()) is None:
            del record["requested_times"]  # a grid's images: no such key, as before it existed
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    write_atomic(path, lines.encode("utf-8", "surrogatepass"))


def read_manifest(path: Path) -> list[ImageRecord]:
    """The image records of a manifest written by `write_manifest` (missing times left out)."""
    return read_manifest_lines(path)[0]


def read_manifest_lines(path: Path) -> tuple[list[ImageRecord], list[MissingRecord]]:
    """The image records and the missing requested times of a manifest.

    Raises:
        OutputError: the manifest is unreadable or not one of ours (delete it to redo).
    """
    images: list[ImageRecord] = []
    missing: list[MissingRecord] = []
    try:
        with path.open(encoding="utf-8", errors="surrogatepass") as f:
            for line in f:
                if not line.strip():
                    continue
                data = json.loads(line)
                if "missing" in data:
                    missing.append(MissingRecord(**data))
                else:
                    images.append(ImageRecord(**data))
    except (OSError, ValueError, TypeError) as e:
        raise OutputError(
            f"manifest {str(path)!r} is unreadable ({e}); delete it, or re-run with --force"
        ) from e
    return images, missing
