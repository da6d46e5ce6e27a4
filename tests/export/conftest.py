"""Export fixtures: real jobs (a generated clip through the pipeline) and synthetic ones (tiny
images written with Pillow and manifest lines shaped like `ImageRecord`)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from framefleet.jobs.manifest import assemble_job_manifest
from framefleet.media.naming import DEFAULT_NAME_TEMPLATE, path_safe, render_name
from framefleet.media.pipeline import ImageRecord, process_segment
from framefleet.media.specs import OutputSpec, SegmentSpec
from tests.clips import ClipSpec, make_clip

T0 = 1489728491.0
FORMATS = {"jpeg": ("JPEG", "jpg"), "png": ("PNG", "png"), "webp": ("WEBP", "webp")}


@dataclass(frozen=True)
class Job:
    """A job's output root, its manifest, the manifest's lines, and the source rows."""

    out: Path
    manifest: Path
    lines: list[dict[str, Any]]
    sources: dict[tuple[str, str], dict[str, Any]]


def source_row(record_id: str, content: str, i: int = 0) -> dict[str, Any]:
    """A catalog query dict as `Catalog.query` gives it (only the fields exports read)."""
    return {
        "id": 100 + i,
        "path": f"/data/records/{record_id}/camera_{i:02d}.mp4",
        "timestamps_path": None if i % 2 else f"/data/records/{record_id}/c_timestamps.csv",
        "database_id": "fleet",
        "sub_record_id": None,
        "description": f"camera {i}",
        "data_type": "camera",
        "content_type": "video/mp4",
        "start_timestamp": T0,
        "end_timestamp": T0 + 80.0,
        "tags": ["camera", "front", "center"],
        "record_id": record_id,
        "contents": content,
        "fps": 30.0,
    }


def tiny_image(i: int, image_format: str = "jpeg") -> bytes:
    """A distinct 8x6 image per ``i``."""
    buffer = io.BytesIO()
    colour = (i * 37 % 256, i * 91 % 256, i * 13 % 256)
    Image.new("RGB", (8, 6), colour).save(buffer, format=FORMATS[image_format][0])
    return buffer.getvalue()


def write_job(
    out: Path,
    images: Sequence[tuple[str, str, float]],
    *,
    job_id: str = "job-1",
    image_format: str = "jpeg",
    extra: Callable[[int], dict[str, Any]] | None = None,
    missing: Sequence[dict[str, Any]] = (),
) -> Job:
    """Images ``(record_id, content, timestamp)`` named as the pipeline names them, and their
    job manifest (ImageRecord lines, plus ``extra(i)`` keys, plus ``missing`` lines at the end)."""
    ext = FORMATS[image_format][1]
    lines: list[dict[str, Any]] = []
    for i, (record_id, content, timestamp) in enumerate(images):
        name = render_name(
            DEFAULT_NAME_TEMPLATE,
            record_id=path_safe(record_id),
            content=path_safe(content),
            timestamp=timestamp,
            ext=ext,
        )
        data = tiny_image(i, image_format)
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
        record = ImageRecord(
            path=name,
            record_id=record_id,
            content=content,
            timestamp=timestamp,
            grid_time=timestamp,
            pts_seconds=timestamp - T0,
            width=8,
            height=6,
            bytes=len(data),
            spec="abc123",
        )
        lines.append(asdict(record) | (extra(i) if extra else {}))
    lines.extend(missing)
    manifest = out / "_jobs" / f"{job_id}.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    keys = sorted({(line["record_id"], line["content"]) for line in lines})
    sources = {key: source_row(*key, i) for i, key in enumerate(keys)}
    return Job(out, manifest, lines, sources)


def grid(record_id: str, content: str, n: int) -> list[tuple[str, str, float]]:
    return [(record_id, content, T0 + k / 2) for k in range(n)]


@pytest.fixture(scope="session")
def real_job(tmp_path_factory: pytest.TempPathFactory) -> Job:
    """Two recordings of a generated clip through the real pipeline, in two segments each, and
    the job manifest assembled from them (read-only for the tests)."""
    root = tmp_path_factory.mktemp("real")
    video = make_clip(root / "clip.mp4", ClipSpec(width=64, height=48, fps=30, frames=90, gop=15))
    out = root / "out"
    output = OutputSpec(out_dir=str(out), target_fps="4")
    specs = [
        SegmentSpec(
            video_path=str(video),
            record_id=record_id,
            content=content,
            start_timestamp=T0,
            start_seconds=start,
            end_seconds=end,
            output=output,
        )
        for record_id, content in [
            ("016_00000000030000000240", "camera/front-center"),
            ("drive 1.b/ü", "cam.front/left"),
        ]
        for start, end in [(0.0, 1.5), (1.5, None)]
    ]
    for spec in specs:
        process_segment(spec)
    manifest = assemble_job_manifest(out, "real-job", specs).path
    lines = [json.loads(t) for t in manifest.read_text().splitlines()]
    keys = sorted({(line["record_id"], line["content"]) for line in lines})
    return Job(out, manifest, lines, {key: source_row(*key, i) for i, key in enumerate(keys)})
