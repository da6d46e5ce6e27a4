"""What a real worker does when things take longer than they should: the result store away for
longer than the reporter waits, and a job whose finalization outlasts a segment's time limit."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from framefleet.jobs.state import SegmentState
from tests.servers import (
    SLOW_OUTPUT,
    Recording,
    Rig,
    image_files,
    manifest_lines,
    wait_complete,
    wait_for,
)


def _running(rig: Rig, job_id: str) -> SegmentState | None:
    states = rig.store.segment_states(job_id)
    running = rig.store.segments(job_id, [i for i, s in states.items() if s == "running"])
    return running[0] if running else None


@pytest.mark.slow
def test_the_result_store_away_past_the_reporters_patience_gives_the_message_back(
    rig: Rig, slow_recordings: list[Recording], tmp_path: Path
) -> None:
    """Redis stops while a segment is being decoded: the segment's images are written but its
    report cannot be made for longer than the reporter waits. The delivery must not be counted
    a failure: its message goes back, and once Redis is back the segment is reported done."""
    worker = rig.workers.start("w1")
    out = tmp_path / "out"
    job_id = rig.submit([slow_recordings[0].row], out, **SLOW_OUTPUT)
    running = wait_for(lambda: _running(rig, job_id), timeout=60, interval=0.02, what="a segment")
    images = lambda: sum(1 for p in out.rglob("*.png") if not p.name.startswith("."))  # noqa: E731
    before = images()
    wait_for(lambda: images() > before, timeout=30, interval=0.01, what="its first image")

    rig.redis.stop(signal.SIGTERM)  # Redis writes its AOF (the lease, the message) and exits
    ended = ("Soft time limit", "raised unexpected", "reject requeue")  # however it gave up
    wait_for(
        lambda: any(line in worker.log.read_text() for line in ended),
        timeout=60,
        what="the task to give up on its report (the reporter waits 30 s for Redis)",
    )
    rig.redis.start()

    job = wait_complete(rig.store, job_id, timeout=90)
    assert (job.done, job.failed, job.images) == (4, 0, 8 * 30)
    (segment,) = rig.store.segments(job_id, [running.segment_id])
    assert segment.state == "done" and segment.error is None
    paths = [r["path"] for r in manifest_lines(job.manifest)]
    assert len(paths) == len(set(paths)) == 240
    assert sorted(image_files(out)) == sorted(paths)
    assert worker.process.poll() is None
