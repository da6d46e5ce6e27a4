"""Framesets of synchronised cameras: per record and grid time, every camera's frame shown then.

A ``--sync`` job samples each camera of a record on one grid anchored at the record's start
(`framefleet.media.sampling`). Every image line says the first grid time it stands for and for
how many consecutive grid times it is shown (``grid_count``), so when the job completes the
framesets follow from the segment manifests alone, whatever the segmentation:

    {out}/_framesets/{record}.jsonl
    {"grid_time": 1489728491.5, "complete": true,
     "cameras": {"camera/front": {"path": "...", "timestamp": 1489728491.467, "skew_ms": 33.0},
                 "camera/rear": null}}

``skew_ms`` is how long before the grid time the frame was shown (>= 0). A frameset is
incomplete when a camera has no frame then (before its first frame, after its last) or its
frame is more than ``max_skew_ms`` old (a stalled camera, a dropped-frame hole).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from framefleet.media.images import inside, write_atomic
from framefleet.media.manifest import read_manifest
from framefleet.media.naming import FRAMESETS_DIR, path_safe
from framefleet.media.sampling import parse_fps
from framefleet.media.specs import SegmentSpec
from framefleet.media.timing import exact


def assemble_framesets(
    out_dir: str | Path,
    specs: Iterable[SegmentSpec],
    *,
    target_fps: str,
    max_skew_ms: float | None = None,
) -> list[Path]:
    """Write the frameset manifest of every record among ``specs`` (complete segments of a
    synchronised job); returns the files written."""
    root = Path(out_dir)
    fps = parse_fps(target_fps)
    by_record: dict[str, list[SegmentSpec]] = defaultdict(list)
    for spec in specs:
        by_record[spec.record_id].append(spec)
    written = []
    for record_id, record_specs in sorted(by_record.items()):
        lines = _framesets(root, record_specs, fps=fps, max_skew_ms=max_skew_ms)
        path = inside(root, f"{FRAMESETS_DIR}/{path_safe(record_id)}.jsonl")
        write_atomic(
            path, "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines).encode()
        )
        written.append(path)
    return written


def _framesets(
    root: Path, specs: Sequence[SegmentSpec], *, fps: Fraction, max_skew_ms: float | None
) -> list[dict[str, Any]]:
    anchors = {spec.grid_anchor for spec in specs}
    anchor = exact(min(a for a in anchors if a is not None)) if anchors - {None} else Fraction(0)
    cameras = sorted({spec.content for spec in specs})
    shown: dict[int, dict[str, tuple[str, float]]] = defaultdict(dict)
    for spec in specs:
        for image in read_manifest(inside(root, spec.manifest_name)):
            first = round((exact(image.grid_time) - anchor) * fps)
            for k in range(first, first + image.grid_count):
                shown[k][spec.content] = (image.path, image.timestamp)
    lines = []
    for k in sorted(shown):
        grid = anchor + Fraction(k) / fps
        row: dict[str, dict[str, Any] | None] = {}
        complete = True
        for camera in cameras:
            entry = shown[k].get(camera)
            if entry is None:
                row[camera], complete = None, False
                continue
            skew = (grid - exact(entry[1])) * 1000
            if max_skew_ms is not None and skew > exact(max_skew_ms):
                complete = False
            row[camera] = {"path": entry[0], "timestamp": entry[1], "skew_ms": float(skew)}
        lines.append({"grid_time": float(grid), "complete": complete, "cameras": row})
    return lines
