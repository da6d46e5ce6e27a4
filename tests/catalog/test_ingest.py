"""Ingest: the real pydtk sample, both sidecar forms, idempotence, bad files, bare videos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from framefleet.catalog import Catalog, discover, ingest_paths
from framefleet.errors import CatalogError, InvalidVideoError
from framefleet.media.probe import probe_video
from tests.catalog.test_query_language import SEED_QUERY
from tests.clips import ClipSpec, camera_times_ms, make_clip, write_timestamps_csv

RECORD = "016_00000000030000000240"


def _sidecar(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def seed_sample(tree: Path) -> dict[str, Any]:
    """The seed's sample dict: the real sidecar's values, flattened the way pydtk does."""
    video = tree / "record_016" / "data" / "camera_01.mp4"
    sidecar = _sidecar(video.with_name("camera_01.mp4.json"))
    ((content, info),) = sidecar["contents"].items()
    return {
        "description": sidecar["description"],
        "database_id": sidecar["database_id"],
        "record_id": sidecar["record_id"],
        "sub_record_id": None,
        "data_type": sidecar["type"],
        "path": str(video),
        "start_timestamp": sidecar["start_timestamp"],
        "end_timestamp": sidecar["end_timestamp"],
        "content_type": sidecar["content-type"],
        "contents": content,
        "msg_type": None,
        "msg_md5sum": None,
        "count": None,
        "frequency": None,
        "tags": info["tags"],
    }


def test_seed_query_gives_the_seed_sample(catalog: Catalog, pydtk_tree: Path) -> None:
    catalog.set_base_dir(pydtk_tree)
    report = ingest_paths(catalog, [pydtk_tree], probe=probe_video)
    assert (report.added, report.updated, report.unchanged, report.failed) == (3, 0, 0, [])

    result = catalog.query(SEED_QUERY)
    assert len(result) == 1
    item = next(result)
    expected = seed_sample(pydtk_tree)
    assert {k: item[k] for k in expected} == expected
    assert item["tags"] == ["camera", "front", "center", "image"]
    assert item["timestamps_path"] == str(pydtk_tree / "record_016/data/camera_01_timestamps.csv")
    assert isinstance(item["id"], int)
    assert {k: item[k] for k in ("duration_seconds", "fps", "width", "frame_count")} == {
        "duration_seconds": None,
        "fps": None,
        "width": None,
        "frame_count": None,
    }
    with pytest.raises(StopIteration):
        next(result)


def test_sample_sidecar_paths_fall_back_to_the_file_beside_them(
    catalog: Catalog, pydtk_tree: Path
) -> None:
    # pydtk paths ("test/records/movie_model_test/sample.mp4") name another root.
    ingest_paths(catalog, [pydtk_tree / "movie"])
    (item,) = catalog.query(record_id="movie_model_test")
    assert item["path"] == str(pydtk_tree / "movie" / "sample.mp4")
    assert (item["contents"], item["tags"], item["data_type"]) == ("video", [], "raw")
    assert item["database_id"] is None and item["start_timestamp"] is None


def test_paths_are_stored_relative_to_the_base_dir_and_resolved_on_read(
    db_url: str, pydtk_tree: Path, tmp_path: Path
) -> None:
    with Catalog(db_url) as cat:
        cat.set_base_dir(pydtk_tree)
        ingest_paths(cat, [pydtk_tree / "record_016"])
        with cat._engine.connect() as c:
            stored = sorted(r[0] for r in c.exec_driver_sql("SELECT path FROM files"))
        assert stored == [
            "record_016/data/camera_01.mp4",
            "record_016/data/camera_01_timestamps.csv",
        ]
    moved = tmp_path / "mounted-elsewhere"
    shutil.move(pydtk_tree, moved)
    with Catalog(db_url, base_dir=moved) as cat:
        paths = sorted(i["path"] for i in cat.query())
        assert paths == [
            str(moved / "record_016/data/camera_01.mp4"),
            str(moved / "record_016/data/camera_01_timestamps.csv"),
        ]
        (video,) = cat.query("content_type = 'video/mp4'")
        assert video["timestamps_path"] == str(moved / "record_016/data/camera_01_timestamps.csv")


def test_relative_sidecar_paths_are_looked_for_under_the_base_dir(
    catalog: Catalog, tmp_path: Path
) -> None:
    data = tmp_path / "root" / "records" / "r1" / "a.bin"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"x")
    sidecars = tmp_path / "sidecars"
    sidecars.mkdir()
    (sidecars / "meta.json").write_text(
        json.dumps({"record_id": "r1", "path": "records/r1/a.bin", "contents": "c"})
    )
    catalog.set_base_dir(tmp_path / "root")
    report = ingest_paths(catalog, [sidecars])
    assert report.added == 1, report.failed
    assert next(catalog.query())["path"] == str(data)


def test_a_different_base_dir_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    catalog.set_base_dir(tmp_path)
    catalog.set_base_dir(tmp_path)  # the same again is fine
    with pytest.raises(CatalogError, match=r"catalog base directory is '.*', not '.*other'"):
        catalog.set_base_dir(tmp_path / "other")


def test_flat_and_nested_forms_with_per_content_fields(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "a.bag").write_bytes(b"")
    (tmp_path / "b.csv").write_bytes(b"")
    (tmp_path / "a.bag.json").write_text(
        json.dumps(
            {
                "record_id": "r",
                "data_type": "raw_data",
                "content_type": "application/rosbag",
                "msg_type": "top/level",
                "count": 3,
                "contents": {
                    "/imu": {
                        "msg_type": "sensor_msgs/Imu",
                        "count": 599,
                        "frequency": 10.0,
                        "tags": ["imu", "imu", ""],
                    },
                    "/gps": {"tags": ["gps"]},
                },
            }
        )
    )
    (tmp_path / "b.csv.json").write_text(
        json.dumps({"record_id": "r", "contents": "table", "tags": ["t1", "t2"]})
    )
    report = ingest_paths(catalog, [tmp_path])
    assert report.added == 2, report.failed
    items = {i["contents"]: i for i in catalog.query(record_id="r")}
    assert set(items) == {"/imu", "/gps", "table"}
    imu, gps, table = items["/imu"], items["/gps"], items["table"]
    assert (imu["msg_type"], imu["count"], imu["frequency"], imu["tags"]) == (
        "sensor_msgs/Imu",
        599,
        10.0,
        ["imu"],
    )
    assert (gps["msg_type"], gps["count"], gps["tags"]) == ("top/level", 3, ["gps"])
    assert (imu["data_type"], imu["content_type"]) == ("raw_data", "application/rosbag")
    assert table["tags"] == ["t1", "t2"]


def test_adding_the_same_tree_twice_changes_nothing(catalog: Catalog, pydtk_tree: Path) -> None:
    first = ingest_paths(catalog, [pydtk_tree], probe=probe_video)
    before = list(catalog.query())
    second = ingest_paths(catalog, [pydtk_tree], probe=probe_video)
    assert (first.added, second.added, second.updated, second.unchanged) == (3, 0, 0, 3)
    assert list(catalog.query()) == before


def test_a_changed_sidecar_updates_its_row(catalog: Catalog, pydtk_tree: Path) -> None:
    ingest_paths(catalog, [pydtk_tree])
    sidecar = pydtk_tree / "record_016/data/camera_01.mp4.json"
    image = "content_type = 'video/mp4' and tags = 'image'"
    (before,) = catalog.query(image)
    data = _sidecar(sidecar)
    data["description"] = "changed"
    data["contents"]["camera/front-center"]["tags"] = ["camera", "night"]
    sidecar.write_text(json.dumps(data))

    report = ingest_paths(catalog, [pydtk_tree])
    assert (report.added, report.updated, report.unchanged) == (0, 1, 2)
    assert list(catalog.query(image)) == []
    (after,) = catalog.query(tags=["night"])
    assert (after["id"], after["description"], after["tags"]) == (
        before["id"],
        "changed",
        ["camera", "night"],
    )
    assert after["timestamps_path"] == before["timestamps_path"]  # still linked


BAD_SIDECARS = {
    "not-json.mp4.json": ("{nope", r"not valid JSON"),
    "list.mp4.json": ("[1, 2]", r"expected a JSON object, got list"),
    "no-record.mp4.json": ('{"contents": "c"}', r"'record_id' is missing"),
    "no-contents.mp4.json": ('{"record_id": "r"}', r"'contents' must be a content name"),
    "bad-tags.mp4.json": (
        '{"record_id": "r", "contents": {"c": {"tags": "x"}}}',
        r"'tags' must be a list",
    ),
    "bad-time.mp4.json": (
        '{"record_id": "r", "contents": "c", "start_timestamp": "noon"}',
        r"'start_timestamp' must be a number",
    ),
    "backwards.mp4.json": (
        '{"record_id": "r", "contents": "c", "start_timestamp": 2, "end_timestamp": 1}',
        r"end_timestamp 1.0 is before",
    ),
    "bad-count.mp4.json": (
        '{"record_id": "r", "contents": "c", "count": 1.5}',
        r"'count' must be an integer",
    ),
    "missing-data.json": (
        '{"record_id": "r", "contents": "c", "path": "/nowhere/x.mp4"}',
        r"'path': data file not found \(looked for '/nowhere/x.mp4', '.*missing-data'\)",
    ),
}


def test_bad_sidecars_are_reported_and_skipped(catalog: Catalog, pydtk_tree: Path) -> None:
    bad_dir = pydtk_tree / "bad"
    bad_dir.mkdir()
    for name, (text, _) in BAD_SIDECARS.items():
        (bad_dir / name).write_text(text)
        data = bad_dir / name.removesuffix(".json")
        if name != "missing-data.json":
            data.write_bytes(b"")
    report = ingest_paths(catalog, [pydtk_tree], probe=probe_video)
    assert report.added == 3
    failures = {path.name: message for path, message in report.failed}
    assert set(failures) == set(BAD_SIDECARS)
    for name, (_, pattern) in BAD_SIDECARS.items():
        assert str(bad_dir / name) in failures[name]
        with pytest.raises(AssertionError, match=pattern):
            raise AssertionError(failures[name])
    assert len(catalog.query(SEED_QUERY)) == 1


def test_two_sidecars_for_one_file(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"")
    for name in ("a.bin.json", "z-copy.json"):
        (tmp_path / name).write_text(
            json.dumps({"record_id": "r", "contents": "c", "path": str(tmp_path / "a.bin")})
        )
    report = ingest_paths(catalog, [tmp_path])
    assert report.added == 1
    ((path, message),) = report.failed
    assert path.name == "z-copy.json"
    assert message.endswith(f"a.bin is already described by {tmp_path / 'a.bin.json'}; skipped")


def test_a_bare_video_is_probed_and_linked_to_its_timestamps(
    catalog: Catalog, tmp_path: Path
) -> None:
    video = make_clip(tmp_path / "cam.mp4", ClipSpec(width=64, height=48, fps=30, frames=45))
    write_timestamps_csv(tmp_path / "cam_timestamps.csv", camera_times_ms(1_500_000_000_000, 45))
    report = ingest_paths(catalog, [tmp_path], probe=probe_video, database_id="fleet")
    assert (report.added, report.failed, report.warnings) == (2, [], [])
    (item,) = catalog.query(tags=["video"])
    assert item["path"] == str(video)
    assert (item["record_id"], item["contents"], item["database_id"]) == ("cam", "video", "fleet")
    assert (item["width"], item["height"], item["frame_count"], item["fps"]) == (64, 48, 45, 30.0)
    assert item["duration_seconds"] == pytest.approx(1.5)
    assert item["start_timestamp"] == 1_500_000_000.0
    assert item["timestamps_path"] == str(tmp_path / "cam_timestamps.csv")
    (csv,) = catalog.query(tags=["timestamps"])
    assert (csv["content_type"], csv["count"]) == ("text/csv", 45)

    calls: list[Path] = []
    again = ingest_paths(
        catalog, [tmp_path], probe=lambda p: calls.append(p) or probe_video(p), database_id="fleet"
    )
    assert (again.added, again.unchanged, calls) == (0, 2, [])  # unchanged: not even probed


def test_a_sidecar_in_another_folder_describes_its_video_whatever_the_walk_order(
    catalog: Catalog, tmp_path: Path
) -> None:
    videos, meta = tmp_path / "a-videos", tmp_path / "z-metadata"  # the videos are walked first
    videos.mkdir()
    meta.mkdir()
    video = make_clip(videos / "cam.mp4", ClipSpec(frames=30))
    sidecar = meta / "cam.json"
    sidecar.write_text(
        json.dumps(
            {"record_id": "016_x", "path": str(video), "contents": "camera/front",
             "start_timestamp": 1_500_000_000.0, "end_timestamp": 1_500_000_001.0}
        )
    )  # fmt: skip
    probed: list[Path] = []
    for run in range(2):  # and again: nothing fails, nothing changes
        report = ingest_paths(
            catalog, [tmp_path], probe=lambda p: probed.append(p) or probe_video(p)
        )
        assert report.failed == [], run
        assert (report.added, report.unchanged) == ((1, 0) if run == 0 else (0, 1))
        [row] = catalog.query()
        assert (row["record_id"], row["contents"], row["path"]) == (
            "016_x",
            "camera/front",
            str(video),
        )
    assert probed == []  # the bare video was never even probed


def test_a_bare_video_without_start_time_starts_at_zero_with_a_warning(
    catalog: Catalog, tmp_path: Path
) -> None:
    make_clip(tmp_path / "cam.mp4", ClipSpec(width=64, height=48, frames=30))
    report = ingest_paths(catalog, [tmp_path / "cam.mp4"], probe=probe_video, record_id="r9")
    ((_, warning),) = report.warnings
    assert warning.endswith("no start time (no --start-timestamp, no cam_timestamps.csv): using 0")
    (item,) = catalog.query()
    assert (item["record_id"], item["start_timestamp"]) == ("r9", 0.0)
    assert item["end_timestamp"] == pytest.approx(1.0)

    report = ingest_paths(catalog, [tmp_path], probe=probe_video, start_timestamp=100.0)
    assert report.updated == 1  # a different start is a different row
    assert next(catalog.query())["start_timestamp"] == 100.0


def test_a_video_that_does_not_decode_is_reported(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 10)
    make_clip(tmp_path / "good.mp4", ClipSpec(width=64, height=48, frames=10))
    report = ingest_paths(catalog, [tmp_path], probe=probe_video, start_timestamp=0)
    assert report.added == 1
    ((path, message),) = report.failed
    assert path.name == "broken.mp4" and "broken.mp4" in message

    def failing_probe(path: Path) -> Any:
        raise InvalidVideoError(f"{path}: cannot read")

    (tmp_path / "good.mp4").touch()
    report = ingest_paths(catalog, [tmp_path / "good.mp4"], probe=failing_probe)
    assert report.failed == [(tmp_path / "good.mp4", f"{tmp_path / 'good.mp4'}: cannot read")]


def test_without_a_probe_bare_videos_are_reported(catalog: Catalog, tmp_path: Path) -> None:
    make_clip(tmp_path / "cam.mp4", ClipSpec(width=64, height=48, frames=5))
    report = ingest_paths(catalog, [tmp_path])
    assert report.failed == [
        (
            tmp_path / "cam.mp4",
            f"{tmp_path / 'cam.mp4'}: no sidecar (cam.mp4.json), and probing is off",
        )
    ]


def test_discover(pydtk_tree: Path, tmp_path: Path) -> None:
    (pydtk_tree / ".hidden").mkdir()
    (pydtk_tree / ".hidden" / "x.json").write_text("{}")
    (pydtk_tree / "notes.txt").write_text("")
    found, bad = discover(
        [
            pydtk_tree,
            tmp_path / "missing",
            pydtk_tree / "notes.txt",
            pydtk_tree / "movie" / "sample.mp4",
        ]
    )
    assert [p.relative_to(pydtk_tree).as_posix() for p in found] == [
        "movie/sample.mp4.json",
        "record_016/data/camera_01.mp4.json",
        "record_016/data/camera_01_timestamps.csv.json",
    ]
    assert [(p.name, m) for p, m in bad] == [
        ("missing", f"{tmp_path / 'missing'}: no such file or directory"),
        (
            "notes.txt",
            f"{pydtk_tree / 'notes.txt'}: neither a pydtk sidecar (*.json) nor a video, "
            "and no sidecar",
        ),
    ]


def test_many_files_in_small_batches(catalog: Catalog, tmp_path: Path) -> None:
    for i in range(25):
        (tmp_path / f"f{i}.bin").write_bytes(b"")
        (tmp_path / f"f{i}.bin.json").write_text(
            json.dumps({"record_id": f"r{i % 3}", "contents": {"c": {"tags": [f"t{i}", "all"]}}})
        )
    seen: list[tuple[int, int]] = []
    report = ingest_paths(
        catalog, [tmp_path], batch_size=4, progress=lambda d, t: seen.append((d, t))
    )
    assert report.added == 25
    assert seen[-1] == (25, 25) and len(seen) == 25
    assert len(catalog.query(tags=["all"])) == 25
    assert len(catalog.query(record_id="r1")) == 8
