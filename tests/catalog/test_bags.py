"""Bags in the catalog: ROS1 bags, ROS2 bag folders (SQLite and MCAP storage) and MCAP files,
one query result per image topic, with and without sidecars, idempotent, through the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from framefleet.catalog import Catalog, ingest_paths
from framefleet.catalog.bags import BagTopicLike, seconds_not_before
from framefleet.catalog.discover import discover
from framefleet.catalog.kinds import is_bag, is_image_topic, is_video
from framefleet.cli import main
from framefleet.errors import ConfigError
from framefleet.media.bags import image_topics
from tests.bags import Msg, picture, write_mcap, write_ros1, write_ros2

T0 = 1_700_000_000 * 10**9 + 123_456_789
MS = 1_000_000


def camera(topic: str, n: int, *, kind: str = "jpeg", lag_ms: int = 30) -> list[Msg]:
    """``n`` messages at 10 Hz; received ``lag_ms`` after their header stamp."""
    return [
        Msg(topic, T0 + k * 100 * MS + lag_ms * MS, T0 + k * 100 * MS, kind, picture(k, 8, 6))
        for k in range(n)
    ]


IMU = [("/imu", T0 + k * 50 * MS) for k in range(4)]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A recordings tree with every kind of bag, a bag without images and a sidecar'd bag."""
    root = tmp_path / "records"
    (root / "r1").mkdir(parents=True)
    (root / "r2").mkdir()
    write_ros1(
        root / "r1" / "drive.bag",
        camera("/cam/front", 5) + camera("/cam/rear", 3, kind="png"),
        others=IMU,
    )
    write_ros2(root / "r1" / "drive2", camera("/cam/front", 4), others=IMU)
    write_ros2(root / "r2" / "drive3", camera("/cam/left", 6, kind="bgr8"), storage="mcap")
    (root / "r2" / "drive3.json").write_text(
        json.dumps(
            {
                "record_id": "rec_002",
                "description": "left camera",
                "contents": {"/cam/left": {"tags": ["camera", "left"]}, "/lidar": {}},
            }
        )
    )
    write_mcap(root / "r2" / "plain.mcap", camera("/cam/right", 2))
    write_ros1(root / "r2" / "noimage.bag", [], others=IMU)
    return root


class Counting:
    """`image_topics`, counting the bags it reads."""

    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, path: Path) -> Sequence[BagTopicLike]:
        self.calls.append(path)
        return image_topics(path)


def _rows(catalog: Catalog) -> dict[tuple[str, str], dict[str, object]]:
    return {(Path(str(r["path"])).name, str(r["contents"])): r for r in catalog.query()}


def test_discover_takes_bags_and_never_enters_ros2_folders(tree: Path) -> None:
    found, bad = discover([tree])
    names = sorted(p.relative_to(tree).as_posix() for p in found)
    assert names == [
        "r1/drive.bag",
        "r1/drive2",
        "r2/drive3.json",
        "r2/noimage.bag",
        "r2/plain.mcap",
    ]
    assert bad == []
    storage = next((tree / "r1" / "drive2").glob("*.db3"))
    assert discover([storage]) == ([tree / "r1" / "drive2"], [])
    assert discover([tree / "r2" / "drive3"]) == ([tree / "r2" / "drive3.json"], [])


def test_one_result_per_image_topic_pydtk_shaped(catalog: Catalog, tree: Path) -> None:
    reader = Counting()
    report = ingest_paths(catalog, [tree], bag_topics=reader)
    assert (report.added, report.failed[0][1][:0]) == (4, "")
    (failed,) = report.failed
    assert "noimage.bag" in failed[1]
    assert "has no image topic" in failed[1]
    assert "/imu (std_msgs/String)" in failed[1]
    assert any("'/lidar', not an image topic" in w for _, w in report.warnings)
    rows = _rows(catalog)
    assert sorted(rows) == [
        ("drive.bag", "/cam/front"),
        ("drive.bag", "/cam/rear"),
        ("drive2", "/cam/front"),
        ("drive3", "/cam/left"),
        ("plain.mcap", "/cam/right"),
    ]
    front = rows[("drive.bag", "/cam/front")]
    assert front["record_id"] == "drive"
    assert front["msg_type"] == "sensor_msgs/CompressedImage"
    assert front["msg_md5sum"] == "8f7a12909da2c9d3332d540a0977563f"
    assert front["count"] == 5
    assert front["frequency"] == pytest.approx(10.0)
    assert front["content_type"] == "application/x-rosbag"
    assert front["data_type"] == "raw_data"
    assert front["tags"] == ["camera", "image"]
    assert Fraction(repr(front["start_timestamp"])) >= Fraction(T0, 10**9)
    assert front["start_timestamp"] == pytest.approx(T0 / 1e9, abs=1e-6)
    assert front["end_timestamp"] == pytest.approx((T0 + 400 * MS) / 1e9, abs=1e-6)
    assert rows[("drive.bag", "/cam/rear")]["msg_type"] == "sensor_msgs/CompressedImage"
    ros2 = rows[("drive2", "/cam/front")]
    assert (ros2["record_id"], ros2["content_type"]) == ("drive2", "application/x-ros2bag")
    assert (ros2["msg_type"], ros2["msg_md5sum"]) == ("sensor_msgs/msg/CompressedImage", None)
    left = rows[("drive3", "/cam/left")]
    assert (left["record_id"], left["description"]) == ("rec_002", "left camera")
    assert left["tags"] == ["camera", "left"]
    assert left["msg_type"] == "sensor_msgs/msg/Image"
    assert left["count"] == 6
    assert rows[("plain.mcap", "/cam/right")]["content_type"] == "application/x-mcap"
    for row in rows.values():
        assert is_image_topic(row)
        assert is_bag(str(row["content_type"]))
        assert not is_video(str(row["path"]), str(row["content_type"]))

    reader.calls.clear()
    again = ingest_paths(catalog, [tree], bag_topics=reader)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)
    assert [p.name for p in reader.calls] == ["noimage.bag"]  # the bad one, read again


def test_receive_time_option_and_changes(catalog: Catalog, tree: Path) -> None:
    bag = tree / "r1" / "drive.bag"
    ingest_paths(catalog, [bag], bag_topics=image_topics)
    header_start = _rows(catalog)[("drive.bag", "/cam/front")]["start_timestamp"]
    report = ingest_paths(catalog, [bag], bag_topics=image_topics, bag_time="receive")
    assert report.updated == 1
    row = _rows(catalog)[("drive.bag", "/cam/front")]
    assert row["start_timestamp"] == pytest.approx(header_start + 0.030, abs=1e-6)  # type: ignore[operator]
    bag.unlink()
    write_ros1(bag, camera("/cam/front", 7))
    report = ingest_paths(catalog, [bag], bag_topics=image_topics, bag_time="receive")
    assert report.updated == 1
    assert _rows(catalog)[("drive.bag", "/cam/front")]["count"] == 7
    with pytest.raises(ConfigError, match="bag_time must be one of header, receive"):
        ingest_paths(catalog, [bag], bag_topics=image_topics, bag_time="camera")  # type: ignore[arg-type]


def test_unset_stamps_and_cut_bags_are_reported(catalog: Catalog, tmp_path: Path) -> None:
    unset = [Msg("/cam/a", T0 + k * MS, 0, "jpeg", picture(k)) for k in range(3)]
    bag = write_ros1(tmp_path / "a.bag", unset + camera("/cam/b", 3))
    report = ingest_paths(catalog, [bag], bag_topics=image_topics)
    assert report.added == 1
    assert any(
        "'/cam/a' skipped: 3 of 3 messages have no header stamp" in w for _, w in report.warnings
    )
    assert [r["contents"] for r in catalog.query()] == ["/cam/b"]
    report = ingest_paths(catalog, [bag], bag_topics=image_topics, bag_time="receive")
    assert sorted(r["contents"] for r in catalog.query()) == ["/cam/a", "/cam/b"]

    cut = write_ros1(tmp_path / "cut.bag", camera("/cam", 30), chunk_bytes=2000)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    report = ingest_paths(catalog, [cut], bag_topics=image_topics)
    assert report.added == 1
    assert any("stops early" in w and "byte" in w for _, w in report.warnings)


def test_without_a_bag_reader(catalog: Catalog, tree: Path) -> None:
    report = ingest_paths(catalog, [tree / "r1"])
    assert report.added == 0
    assert all("reading bags is off" in message for _, message in report.failed)


def test_seconds_not_before() -> None:
    for ns in (T0, 1_489_728_491_999_999_999, 1, 10**9, 253_402_300_799_999_999_999):
        value = seconds_not_before(ns)
        assert Fraction(repr(value)) >= Fraction(ns, 10**9)
        assert value == ns / 1e9 or value == pytest.approx(ns / 1e9, rel=1e-15)


def test_cli_bag_time(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAMEFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("FRAMEFLEET_CONFIG", raising=False)
    run = CliRunner()
    db = ["catalog", "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    bag = str(tree / "r1" / "drive.bag")
    result = run.invoke(main, [*db, "add", "--bag-time", "receive", bag])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "1 added, 0 updated, 0 unchanged, 0 failed"
    result = run.invoke(main, [*db, "query", "--where", 'contents = "/cam/front"', "--json"])
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["start_timestamp"] == pytest.approx((T0 + 30 * MS) / 1e9, abs=1e-6)
    result = run.invoke(main, [*db, "add", "--bag-time", "camera", bag])
    assert result.exit_code == 2
    assert "'camera' is not one of 'header', 'receive'" in result.output
