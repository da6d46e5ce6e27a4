"""Planning a job from catalog rows: segments, the open tail, camera clocks, skipping done work."""

from __future__ import annotations

from pathlib import Path

import pytest

from framefleet.media.pipeline import process_segment
from framefleet.media.specs import OutputSpec
from framefleet.producer.plan import is_video_row, plan_job
from tests.servers import Recording, recording_row


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

    other = OutputSpec(out_dir=output.out_dir, target_fps="1")  # another spec, the same names
    refused = plan_job(rows, output=other, segment_seconds=2.0)
    (failed,) = refused.failed
    assert "Nothing was overwritten" in (failed.error or "") and not refused.pending
    replaced = plan_job(rows, output=other, segment_seconds=2.0, force=True)
    assert not replaced.failed and len(replaced.pending) == 2


def test_duplicate_rows_of_one_file_and_content_plan_once(tmp_path: Path) -> None:
    row = recording_row(tmp_path / "a.mp4", "a", seconds=3.0, start=100.0)
    plan = plan_job([row, dict(row)], output=_output(tmp_path), segment_seconds=2.0)
    assert len(plan.segments) == 2


def test_a_recording_that_cannot_be_planned_fails_alone(tmp_path: Path) -> None:
    good = recording_row(tmp_path / "a.mp4", "a", seconds=3.0, start=100.0)
    long_id = recording_row(tmp_path / "b.mp4", "b" * 300, seconds=3.0, start=100.0)
    absurd = recording_row(tmp_path / "c.mp4", "c", seconds=3.0, start=100.0)
    absurd["end_timestamp"] = 1e10
    template = OutputSpec(
        out_dir=str(tmp_path / "out"), name_template="{record_id}{record_id}{record_id}-{frame}"
    )
    plan = plan_job([good, long_id, absurd], output=template, segment_seconds=2.0)
    errors = {s.spec.record_id: s.error for s in plan.failed}
    assert set(errors) == {"b" * 300, "c"}
    assert "more than the 255 a file name may have" in (errors["b" * 300] or "")
    assert "more than 100000 segments" in (errors["c"] or "")
    assert [s.spec.record_id for s in plan.pending] == ["a", "a"]


def test_record_ids_that_sanitise_alike_get_their_own_names(tmp_path: Path) -> None:
    rows = [
        recording_row(tmp_path / "a.mp4", "drive 1", seconds=1.0, start=100.0),
        recording_row(tmp_path / "b.mp4", "drive/1", seconds=1.0, start=100.0),
    ]
    plan = plan_job(rows, output=_output(tmp_path), segment_seconds=2.0)
    assert not plan.failed and len(plan.pending) == 2


def test_two_files_of_one_record_and_content_are_refused_not_merged(tmp_path: Path) -> None:
    rows = [
        recording_row(tmp_path / "a.mp4", "r", seconds=1.0, start=100.0),
        recording_row(tmp_path / "b.mp4", "r", seconds=1.0, start=100.0),
    ]
    plan = plan_job(rows, output=_output(tmp_path), segment_seconds=2.0)
    (failed,) = plan.failed
    assert "would write the same image names as record 'r'" in (failed.error or "")
    assert failed.spec.video_path.endswith("b.mp4") and len(plan.pending) == 1
