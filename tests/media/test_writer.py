"""Output overlapped with decoding: same images, errors where they were, bounded, threads joined."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from framefleet.errors import OutputError, TruncatedVideoError
from framefleet.media.pipeline import ImageRecord, process_segment
from framefleet.media.specs import OutputSpec, SegmentSpec
from framefleet.media.writer import OverlappedWriter
from tests.clips import ClipSpec, make_clip


class Stop(Exception):
    pass


def _spec(video: Path, out: Path, **output: object) -> SegmentSpec:
    return SegmentSpec(
        video_path=str(video),
        record_id="r",
        output=OutputSpec(out_dir=str(out), target_fps="10", **output),  # type: ignore[arg-type]
    )


def _writers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "framefleet-writer"]


def test_on_image_runs_in_the_callers_thread_in_order_after_each_write(tmp_path: Path) -> None:
    video = make_clip(tmp_path / "v.mp4", ClipSpec(frames=60, gop=15))
    seen: list[tuple[ImageRecord, bool, str]] = []

    def on_image(record: ImageRecord) -> None:
        on_disk = (tmp_path / "out" / record.path).is_file()
        seen.append((record, on_disk, threading.current_thread().name))

    result = process_segment(_spec(video, tmp_path / "out"), on_image=on_image)
    assert [r for r, _, _ in seen] == result.images and len(seen) == 20
    assert all(on_disk for _, on_disk, _ in seen)
    assert {name for _, _, name in seen} == {threading.current_thread().name}
    assert [r.grid_time for r in result.images] == sorted(r.grid_time for r in result.images)
    lines = Path(result.manifest_path).read_text().splitlines()
    assert [json.loads(line)["path"] for line in lines] == [r.path for r in result.images]
    assert not _writers()


def test_an_error_in_a_callback_stops_the_segment_and_the_writer(tmp_path: Path) -> None:
    video = make_clip(tmp_path / "v.mp4", ClipSpec(frames=60, gop=15))
    calls = 0

    def on_image(record: ImageRecord) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Stop("lease lost")

    with pytest.raises(Stop, match="lease lost"):
        process_segment(_spec(video, tmp_path / "out"), on_image=on_image)
    assert calls == 3
    assert not list((tmp_path / "out").rglob("*.jsonl")), "no manifest for a stopped segment"
    assert len(list((tmp_path / "out").rglob("*.jpg"))) <= 3 + 3  # queue depth + in hand
    assert not _writers()


def test_a_write_error_surfaces_as_before(tmp_path: Path) -> None:
    video = make_clip(tmp_path / "v.mp4", ClipSpec(frames=60, gop=15))
    out = tmp_path / "out"
    out.mkdir()
    (out / "r").write_text("a file where the record's directory should be")
    with pytest.raises(OutputError, match="cannot write to"):
        process_segment(_spec(video, out))
    with pytest.raises(OutputError, match="the same name"):
        process_segment(
            _spec(video, tmp_path / "o2", name_template="{record_id}-{timestamp:.0f}.jpg")
        )
    assert not list(tmp_path.rglob("*.jsonl"))
    assert not _writers()


def test_images_before_a_cut_are_all_written(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mp4", ClipSpec(frames=150, gop=15, faststart=True))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    reported: list[ImageRecord] = []
    with pytest.raises(TruncatedVideoError):
        process_segment(_spec(cut, tmp_path / "out"), on_image=reported.append)
    on_disk = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.jpg"))
    assert len(on_disk) >= 20
    assert sorted(Path(r.path) for r in reported) == on_disk, "every image written is reported"


def test_the_queue_is_bounded_and_results_come_back_in_order() -> None:
    release = threading.Event()
    started: list[int] = []

    def work(item: int) -> int:
        started.append(item)
        release.wait(5)
        return item * 10

    writer: OverlappedWriter[int, int] = OverlappedWriter(work, depth=2)
    results: list[int] = []
    with writer:
        for i in range(3):  # one in hand, two waiting
            results += writer.submit(i)
        blocked = threading.Thread(target=lambda: results.extend(writer.submit(3)))
        blocked.start()
        time.sleep(0.2)
        assert blocked.is_alive(), "a fourth frame must wait for room"
        assert started == [0]
        release.set()
        blocked.join(5)
        results += writer.close()
    assert results == [0, 10, 20, 30]


def test_a_writer_error_is_raised_in_the_caller_and_later_items_dropped() -> None:
    done: list[int] = []

    def work(item: int) -> int:
        if item == 2:
            raise OutputError("disk full")
        done.append(item)
        return item

    writer: OverlappedWriter[int, int] = OverlappedWriter(work, depth=1)
    with pytest.raises(OutputError, match="disk full"):  # noqa: PT012 - raised at a later submit
        for i in range(50):
            writer.submit(i)
    with pytest.raises(OutputError, match="disk full"):
        writer.close()
    assert done == [0, 1]
