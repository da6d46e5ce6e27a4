"""A small dataset in the pydtk layout, generated: what ``framefleet demo`` runs the job on.

Three recordings with two cameras each, like pydtk's ``records/<record_id>/data/``: per camera an
H.264 mp4, its sidecar JSON (pydtk's nested ``contents`` form), a camera timestamps CSV with a
real camera's clock (33 ms steps, one 43 ms step a second) and the CSV's own sidecar. A fourth
recording is stored as a bag: its front camera is an image topic of an MCAP file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from framefleet.media.synthetic import ClipSpec, camera_times_ms, make_clip, write_timestamps_csv
from framefleet.media.synthetic_bag import write_jpeg_mcap

SEED_QUERY = (
    'tags like "%camera%" and tags like "%image%" and tags like "%front%" '
    'and tags like "%center%" and record_id like "%016_00000000030000000240%"'
)
"""The query of the notebook framefleet replaces, verbatim."""

RECORDS = (
    ("016_00000000030000000240", 1489728491.0),
    ("016_00000000030000000480", 1489728731.0),
    ("017_00000000010000000120", 1489815000.0),
)
BAG_RECORD = ("016_00000000030000000720", 1489728971.0)
BAG_TOPIC = "/camera/front_center/image/compressed"
BAG_QUERY = f'tags like "%camera%" and tags like "%front%" and record_id = "{BAG_RECORD[0]}"'
"""The same kind of question, for the recording stored as a bag."""

CAMERAS = (
    ("camera_01", "camera/front-center", ["camera", "front", "center", "image"]),
    ("camera_02", "camera/rear-center", ["camera", "rear", "center", "image"]),
)


@dataclass(frozen=True)
class DemoDataset:
    root: Path
    """The folder holding ``records/``."""
    videos: list[Path]


def make_demo_dataset(
    root: Path, *, seconds: int = 10, width: int = 480, height: int = 270
) -> DemoDataset:
    """Write the dataset under ``root/records`` (skipping files that already exist)."""
    fps = 30
    frames = seconds * fps
    videos: list[Path] = []
    for record_id, start in RECORDS:
        data = root / "records" / record_id / "data"
        data.mkdir(parents=True, exist_ok=True)
        for stem, content, tags in CAMERAS:
            video = data / f"{stem}.mp4"
            csv = data / f"{stem}_timestamps.csv"
            clock = camera_times_ms(round(start * 1000), frames)
            end = clock[-1] / 1000
            if not video.exists():
                tmp = video.with_name(f".{video.name}.partial.mp4")
                make_clip(tmp, ClipSpec(width=width, height=height, fps=fps, frames=frames, crf=28))
                tmp.rename(video)
            if not csv.exists():
                write_timestamps_csv(csv, clock)
            _sidecar(video, record_id, start, end, "video/mp4", content, tags)
            _sidecar(csv, record_id, start, end, "text/csv", content, [*tags[:-1], "timestamps"])
            videos.append(video)
    _bag_recording(root, seconds=seconds, width=width, height=height)
    return DemoDataset(root=root, videos=videos)


def _bag_recording(root: Path, *, seconds: int, width: int, height: int) -> Path:
    """The fourth recording: its front camera as JPEG messages of an MCAP file (pydtk's bags)."""
    record_id, start = BAG_RECORD
    data = root / "records" / record_id / "data"
    data.mkdir(parents=True, exist_ok=True)
    bag = data / "cameras.mcap"
    if not bag.exists():
        clock = camera_times_ms(round(start * 1000), seconds * 30)
        tmp = bag.with_name(f".{bag.name}.partial")
        write_jpeg_mcap(
            tmp, topic=BAG_TOPIC, stamps_ns=[ms * 1_000_000 for ms in clock], width=width,
            height=height,
        )  # fmt: skip
        tmp.rename(bag)
    sidecar = bag.with_name(bag.name + ".json")
    if not sidecar.exists():
        meta = {
            "description": "framefleet demo drive, cameras recorded as a bag",
            "database_id": "framefleet demo",
            "record_id": record_id,
            "type": "raw_data",
            "path": f"records/{record_id}/data/{bag.name}",
            "contents": {BAG_TOPIC: {"tags": ["camera", "front", "center", "image"]}},
        }
        sidecar.write_text(json.dumps(meta, indent=4) + "\n")
    return bag


def _sidecar(
    path: Path,
    record_id: str,
    start: float,
    end: float,
    content_type: str,
    content: str,
    tags: list[str],
) -> None:
    sidecar = path.with_name(path.name + ".json")
    if sidecar.exists():
        return
    meta = {
        "description": "framefleet demo drive",
        "database_id": "framefleet demo",
        "record_id": record_id,
        "type": "raw_data",
        "path": f"records/{record_id}/data/{path.name}",
        "start_timestamp": start,
        "end_timestamp": end,
        "content-type": content_type,
        "contents": {content: {"tags": tags}},
    }
    sidecar.write_text(json.dumps(meta, indent=4) + "\n")
