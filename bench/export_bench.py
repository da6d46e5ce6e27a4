"""Export benchmark: a job of N tiny images to Parquet and to WebDataset shards.

    python bench/export_bench.py [--images 100000] [--shard-size 1000] [--runs 3]

Generates a job shaped like a real one (records of 80 s, two cameras each, 2 fps: 160 images per
camera; names from the default template; a real JPEG of 8x6 pixels per image, ~300 bytes, so the
numbers measure the export's own cost, not disk bandwidth) and its job manifest, then prints the
best of ``--runs`` for:

- the image check alone (every image on disk, its size, no duplicates: both exports do it first);
- ``write_parquet`` with the source rows (one row per image plus 11 ``source_*`` columns);
- ``write_webdataset`` with the source rows (``--shard-size`` images per shard), and its peak
  memory growth (``ru_maxrss``: it streams images, so it stays flat).

The files go to a temporary directory (or ``--keep DIR``); ``make_job`` is shared with
``register_bench.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from PIL import Image

from framefleet.export import sources_by_content, write_parquet, write_webdataset
from framefleet.export.lines import check_images
from framefleet.media.naming import DEFAULT_NAME_TEMPLATE, path_safe, render_name
from framefleet.media.pipeline import ImageRecord

T0 = 1489728491.0
CAMERAS = [
    ("camera/front-center", ["camera", "front", "center", "image"]),
    ("camera/rear-center", ["camera", "rear", "center", "image"]),
]
PER_CAMERA = 160  # 80 s at 2 fps


def record_id(i: int) -> str:
    return f"{i:03d}_{30000000240 + i * 100:020d}"


def make_job(
    out: Path, images: int, *, job_id: str = "bench-job"
) -> tuple[Path, list[dict[str, Any]]]:
    """Write ``images`` tiny JPEGs and their job manifest under ``out``; return the manifest and
    the source rows (catalog-query-shaped dicts, one per record and camera)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (40, 90, 160)).save(buffer, format="JPEG")
    data = buffer.getvalue()
    lines: list[str] = []
    sources: list[dict[str, Any]] = []
    n = 0
    record = 0
    while n < images:
        rid = record_id(record)
        start = T0 + record * 100.0
        for content, tags in CAMERAS:
            folder = out / path_safe(rid) / path_safe(content)
            folder.mkdir(parents=True, exist_ok=True)
            sources.append(
                {
                    "id": len(sources) + 1,
                    "path": f"/data/records/{rid}/data/{content.split('/')[1]}.mp4",
                    "timestamps_path": None,
                    "database_id": "Driving Behavior Database",
                    "sub_record_id": None,
                    "description": "Driving Database",
                    "data_type": "raw_data",
                    "content_type": "video/mp4",
                    "start_timestamp": start,
                    "end_timestamp": start + 80.0,
                    "tags": tags,
                    "record_id": rid,
                    "contents": content,
                }
            )
            for k in range(min(PER_CAMERA, images - n)):
                t = start + k / 2
                name = render_name(
                    DEFAULT_NAME_TEMPLATE,
                    record_id=path_safe(rid),
                    content=path_safe(content),
                    timestamp=t,
                    ext="jpg",
                )
                (out / name).write_bytes(data)
                line = ImageRecord(name, rid, content, t, t, k / 2, 8, 6, len(data), "b1e2c3")
                lines.append(json.dumps(asdict(line), sort_keys=True) + "\n")
                n += 1
            if n == images:
                break
        record += 1
    manifest = out / "_jobs" / f"{job_id}.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("".join(lines))
    return manifest, sources


def best(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate here and keep it (reused when there)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        out = args.keep or Path(tmp) / "out"
        t = time.perf_counter()
        manifest, rows = make_job(out, args.images)
        elapsed = time.perf_counter() - t
        print(f"generated {args.images:,} images and their manifest in {elapsed:.1f} s")
        sources = sources_by_content(rows)
        n = args.images

        seconds = best(args.runs, lambda: check_images(manifest, out.resolve()))
        print(f"image check: {seconds:.2f} s = {n / seconds:,.0f} images/s")
        seconds = best(args.runs, lambda: write_parquet(manifest, sources=sources))
        size = manifest.with_suffix(".parquet").stat().st_size
        print(f"parquet: {seconds:.2f} s = {n / seconds:,.0f} images/s ({size / 1e6:.1f} MB)")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        shards: list[Path] = []

        def pack() -> None:
            shards[:] = write_webdataset(manifest, out, shard_size=args.shard_size, sources=sources)

        seconds = best(args.runs, pack)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        total = sum(s.stat().st_size for s in shards)
        print(
            f"webdataset: {seconds:.2f} s = {n / seconds:,.0f} images/s, {len(shards)} shards, "
            f"{total / 1e6:.0f} MB, peak RSS grew {grown / 1024:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
