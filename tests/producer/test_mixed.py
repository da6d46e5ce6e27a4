"""A record whose cameras are an mp4 and a bag's image topic: one catalog query, one ``--sync``
job, framesets that hold both, checked against the sources read independently."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

import framefleet
from framefleet.catalog import Catalog, ingest_paths
from framefleet.config import load_settings
from framefleet.media.bags import image_topics
from framefleet.media.probe import probe_video
from tests.bags import Msg, picture, reference_messages, write_ros1
from tests.clips import ClipSpec, make_clip
from tests.media.reference import decode_all

T0 = 1_489_728_491
FPS = Fraction(2)


@pytest.fixture
def record(tmp_path: Path) -> Path:
    data = tmp_path / "records" / "016" / "data"
    data.mkdir(parents=True)
    make_clip(data / "camera_01.mp4", ClipSpec(frames=90, fps=30))  # 3 s from T0
    (data / "camera_01.mp4.json").write_text(
        json.dumps(
            {"record_id": "016", "path": "camera_01.mp4", "start_timestamp": T0,
             "contents": {"camera/front": {"tags": ["camera", "front"]}}}
        )
    )  # fmt: skip
    start_ns = T0 * 10**9 + 400_000_000  # the bag camera starts 0.4 s later, at 10 Hz
    msgs = [
        Msg("/rear/compressed", start_ns + k * 10**8 + 3_000_000, start_ns + k * 10**8, "jpeg",
            picture(k, 32, 24))
        for k in range(25)
    ]  # fmt: skip
    bag = write_ros1(data / "rear.bag", msgs)
    (data / "rear.bag.json").write_text(
        json.dumps(
            {"record_id": "016", "path": "rear.bag",
             "contents": {"/rear/compressed": {"tags": ["camera", "rear"]}}}
        )
    )  # fmt: skip
    assert bag.is_file()
    return tmp_path


def test_a_synchronised_job_over_an_mp4_and_a_bag_topic(record: Path) -> None:
    url = f"sqlite:///{record / 'catalog.db'}"
    with Catalog(url) as catalog:
        report = ingest_paths(
            catalog, [record / "records"], probe=probe_video, bag_topics=image_topics
        )
        assert not report.failed, report.failed
        rows = list(catalog.query('tags like "%camera%"'))
        assert {r["contents"] for r in rows} == {"camera/front", "/rear/compressed"}

        status = framefleet.extract(
            'tags like "%camera%"',
            catalog=catalog,
            out=record / "out",
            fps=2,
            sync=True,
            max_skew_ms=150,
            segment_seconds=1,
            settings=load_settings(env={}),
        )
    assert status.state == "done" and status.images > 0
    lines = [
        json.loads(line)
        for line in (record / "out" / "_framesets" / "016.jsonl").read_text().splitlines()
    ]

    video, video_end = decode_all(record / "records" / "016" / "data" / "camera_01.mp4")
    bag = sorted(m.header_ns for m in reference_messages(record / "records/016/data/rear.bag")[
        "/rear/compressed"])  # fmt: skip
    bag_end = bag[-1] + 10**8
    for line in lines:
        grid = Fraction(str(line["grid_time"]))
        front = [f for f in video if T0 + f.seconds <= grid]
        expect_front = T0 + front[-1].seconds if front and grid < T0 + video_end else None
        rear = [t for t in bag if Fraction(t, 10**9) <= grid]
        expect_rear = Fraction(rear[-1], 10**9) if rear and grid * 10**9 < bag_end else None
        got = line["cameras"]
        for name, expected in (("camera/front", expect_front), ("/rear/compressed", expect_rear)):
            if expected is None:
                assert got[name] is None, line
            else:
                assert got[name]["timestamp"] == float(expected), line
        complete = all(
            v is not None and (grid - v) * 1000 <= 150 for v in (expect_front, expect_rear)
        )
        assert line["complete"] == complete
    assert not lines[0]["complete"] and any(line["complete"] for line in lines)
