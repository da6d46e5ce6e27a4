"""Planning a job from catalog rows: segments, the open tail, camera clocks, skipping done work."""

from __future__ import annotations

from pathlib import Path

import pytest

from framefleet.media.pipeline import process_segment
from framefleet.media.specs import OutputSpec
from framefleet.producer.plan import is_video_row, plan_job
from tests.queue.conftest import Recording, recording_row


def _output(tmp_path: Path) -> OutputSpec:
    return OutputSpec(out_dir=str(tmp_path / "out"), target_fps="2")


def test_segments_cover_each_recording_with_an_open_tail(
    small_recordings: list[Recording], tmp_path: Path
) -> None:
    rows = [r.row for r in small_recordings]
    plan = plan_job(reversed(rows), output=_output(tmp_path), segment_seconds=2.0)

    spans = [(s.spec.record_id, s.spec.start_seconds, s.spec.end_seconds) for s in plan.segments]
    assert spans == [
        ("r0", 0.0, 2.0), ("r0", 2.0, 4.0), ("r0", 4.0, None),
        ("r1", 0.0, 2.0), ("r1", 2.0, 4.0), ("r1", 4.0, None),
        ("r2", 0.0, 2.0), ("r2", 2.0, None),
    ]  # fmt: skip
    assert [s.segment_id for s in plan.segments] == list(range(8))
    assert plan.videos == 3 and plan.skipped == 0 and len(plan.pending) == 8


def test_segments_carry_the_camera_clock_and_recording_start(
    small_recordings: list[Recording], tmp_path: Path
) -> None:
    r1 = small_recordings[1]
    plan = plan_job([r1.row], output=_output(tmp_path), segment_seconds=10.0)

    (only,) = plan.segments
    assert only.spec.timestamps_path == r1.row["timestamps_path"]
    assert only.spec.start_timestamp == pytest.approx(1_489_728_570.957)
    assert only.spec.content == "camera/front-center"
    assert only.spec.end_seconds is None  # one segment: open-ended


def test_rows_that_are_not_videos_are_ignored(tmp_path: Path) -> None:
    csv = {"path": "/d/r/front_timestamps.csv", "content_type": "text/csv", "record_id": "r"}
    bag = {"path": "/d/r/can.bag", "data_type": "raw_data", "record_id": "r"}
    assert not is_video_row(csv) and not is_video_row(bag)
    assert is_video_row({"path": "/d/x.MP4"}) and is_video_row({"content_type": "video/mp4"})
    assert plan_job([csv, bag], output=_output(tmp_path), segment_seconds=2).segments == ()


def test_duration_falls_back_to_probing_then_to_one_open_segment(
    small_recordings: list[Recording], tmp_path: Path
) -> None:
    r2 = small_recordings[2]
    bare = {"path": str(r2.path), "record_id": "r2", "content_type": "video/mp4"}
    probed = plan_job([bare], output=_output(tmp_path), segment_seconds=2.0)
    assert [s.spec.end_seconds for s in probed.segments] == [2.0, None]  # 3.5 s, probed

    missing = {"path": str(tmp_path / "gone.mp4"), "record_id": "g", "content_type": "video/mp4"}
    (only,) = plan_job([missing], output=_output(tmp_path), segment_seconds=2.0).segments
    assert (only.spec.start_seconds, only.spec.end_seconds) == (0.0, None)


def test_segments_with_a_manifest_for_the_same_output_are_skipped_unless_forced(
    small_recordings: list[Recording], tmp_path: Path
) -> None:
    rows = [small_recordings[2].row]
    output = _output(tmp_path)
    first = plan_job(rows, output=output, segment_seconds=2.0)
    process_segment(first.segments[0].spec, decode_threads=1)

    again = plan_job(rows, output=output, segment_seconds=2.0)
    assert [s.skipped for s in again.segments] == [True, False]
    assert [s.segment_id for s in again.pending] == [1]

    forced = plan_job(rows, output=output, segment_seconds=2.0, force=True)
    assert not any(s.skipped for s in forced.segments)

    other = OutputSpec(out_dir=output.out_dir, target_fps="1")  # another spec: not the same work
    assert not any(s.skipped for s in plan_job(rows, output=other, segment_seconds=2.0).segments)


def test_duplicate_rows_of_one_file_and_content_plan_once(tmp_path: Path) -> None:
    row = recording_row(tmp_path / "a.mp4", "a", seconds=3.0, start=100.0)
    plan = plan_job([row, dict(row)], output=_output(tmp_path), segment_seconds=2.0)
    assert len(plan.segments) == 2
