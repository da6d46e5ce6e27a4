"""What a real worker does when things take longer than they should: the result store away for
longer than the reporter waits, and a job whose finalization outlasts a segment's time limit."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from framefleet.config import replace
from framefleet.jobs.limits import checked_limits
from framefleet.jobs.state import SegmentState
from tests.servers import (
    SEGMENT_SECONDS,
    SLOW_OUTPUT,
    Recording,
    Rig,
    image_files,
    manifest_lines,
    planned,
    submit,
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


def test_finalizing_a_job_is_not_bound_by_its_last_segments_time_limit(
    rig: Rig, small_recordings: list[Recording], tmp_path: Path
) -> None:
    """A big job's manifest and exports can take longer than a segment may; here the job
    manifest waits on a segment manifest that is a FIFO until the test writes it, well after
    the last segment's hard time limit. The job must still get its manifest."""
    quick = replace(rig.settings, time_limit_factor=1.0)  # 2 s segments: soft 4 s, hard 6 s
    limits = checked_limits(quick, SEGMENT_SECONDS)
    out = tmp_path / "out"
    row = small_recordings[0].row  # 5 s: 3 segments
    first = out / planned([row], out).segments[0].spec.manifest_name
    first.parent.mkdir(parents=True)
    first.write_text("")  # complete before the job: skipped, and in its manifest
    job_id = submit([row], out, store=rig.store, settings=quick).job_id
    assert rig.store.segment_states(job_id) == {0: "skipped", 1: "queued", 2: "queued"}
    first.unlink()
    os.mkfifo(first)  # the finalizer now waits for the test to write it

    rig.workers.start("w1")
    wait_for(
        lambda: (j := rig.store.job(job_id)).complete and j,
        timeout=60,
        what="the job's segments to be done",
    )
    time.sleep(
        limits.hard_seconds + 1
    )  # finalizing outlasts a segment's limits: time is the subject
    try:
        writer = os.open(first, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:  # ENXIO: nobody has it open to read any more
        pytest.fail(f"the job's finalizer was stopped by the segment's time limit ({e})")
    with os.fdopen(writer, "wb") as pipe:
        pipe.write(b'{"path": "before.jpg"}\n')

    job = wait_complete(rig.store, job_id, timeout=30)
    lines = manifest_lines(job.manifest)
    assert lines[0] == {"path": "before.jpg"} and len(lines) == 1 + job.images
    assert job.manifest_done == job.done == 2
