"""Workers that die: the whole worker (container killed), one pool process, the same one each time.

The segments of the slow recordings take about a second each (every frame of a 640x360 clip as
PNG), so the test can see a segment start in Redis and kill its worker while it runs.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from framefleet.jobs.broker import queue_lists
from framefleet.jobs.state import SegmentState
from framefleet.jobs.store import JobStore
from tests.servers import (
    LEASE_REQUEUE_BOUND_SECONDS,
    SLOW_OUTPUT,
    Recording,
    Rig,
    image_files,
    manifest_lines,
    wait_complete,
    wait_for,
)

POOL_REQUEUE_BOUND_SECONDS = 5.0 + 1.0 + 1.0
"""A dead pool process is noticed at the latest by the pool's supervision tick (every 5 s in
Celery's prefork pool), then ``worker_lost_wait`` (1 s) passes before the message is rejected
and requeued; 1 s slack. Well below the 15 s visibility timeout: it is the requeue path."""
PICKUP_SLACK_SECONDS = 4.0
"""After the requeue, the surviving worker may first finish the segment it is running (~1-2 s)."""


def _newly_running(
    store: JobStore, job_id: str, *, seen: set[tuple[int, int]], on: str | None = None
) -> SegmentState | None:
    """A segment that started running since the last look (on worker ``on``, if given)."""
    states = store.segment_states(job_id)
    running = [i for i, state in states.items() if state == "running"]
    for segment in store.segments(job_id, running):
        key = (segment.segment_id, segment.attempts)
        if segment.state != "running" or key in seen:
            continue
        seen.add(key)
        if on is None or (segment.worker or "").startswith(on + "@"):
            return segment
    return None


def _images_on_disk(out: Path) -> Callable[[], int]:
    return lambda: sum(1 for p in out.rglob("*.png") if not p.name.startswith("."))


def _mid_segment(out: Path) -> None:
    """Wait until the segment that just started has written an image: it is well under way."""
    count = _images_on_disk(out)
    before = count()
    wait_for(lambda: count() > before, timeout=30, interval=0.01, what="an image of the segment")


def _queued_segments(store: JobStore) -> set[int]:
    """Segment ids of the messages waiting in the queue (kombu's envelope, Celery's body)."""
    ids = set()
    raws = [raw for key in queue_lists() for raw in store.client.lrange(key, 0, -1)]
    for raw in raws:
        envelope = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        ids.add(int(args[0]["segment_id"]))
    return ids


def _check_outputs(store: JobStore, job_id: str, out: Path, *, images: int) -> None:
    """Nothing missing, nothing twice, every image decodes."""
    job = wait_complete(store, job_id)
    assert (job.failed, job.images) == (0, images)
    records = manifest_lines(job.manifest)
    paths = [r["path"] for r in records]
    assert len(paths) == len(set(paths)) == images
    decoded = image_files(out)  # Pillow loads every file fully
    assert sorted(decoded) == sorted(paths)


def _slow_job(rig: Rig, rows: list[Recording], tmp_path: Path) -> tuple[str, Path]:
    out = tmp_path / "out"
    return rig.submit([r.row for r in rows], out, **SLOW_OUTPUT), out


def _victim(store: JobStore, job_id: str, *, on: str | None = None) -> SegmentState:
    """The next segment to start (on worker ``on``), ignoring those running already: they may
    be nearly done."""
    seen: set[tuple[int, int]] = set()
    _newly_running(store, job_id, seen=seen)
    victim: SegmentState = wait_for(
        lambda: _newly_running(store, job_id, seen=seen, on=on),
        timeout=60,
        interval=0.02,
        what=f"a segment to start{f' on {on}' if on else ''}",
    )
    return victim


@pytest.mark.slow
def test_sigkill_of_a_whole_worker_mid_segment_hands_its_segment_to_the_survivor(
    rig: Rig, slow_recordings: list[Recording], tmp_path: Path
) -> None:
    doomed = rig.workers.start("doomed")
    rig.workers.start("survivor")
    store = rig.store
    job_id, out = _slow_job(rig, slow_recordings, tmp_path)

    victim = _victim(store, job_id, on="doomed")
    doomed.kill_all()  # main process and pool child at once: nothing can give the message back
    (after,) = store.segments(job_id, [victim.segment_id])
    assert after.state == "running" and after.attempts == 1, "killed in the middle of it"

    def taken_over() -> bool:
        (s,) = store.segments(job_id, [victim.segment_id])
        return s.attempts == 2 and (s.worker or "").startswith("survivor@")

    wait_for(  # well before the visibility timeout (15 s): the lease brings it back
        taken_over,
        timeout=LEASE_REQUEUE_BOUND_SECONDS + PICKUP_SLACK_SECONDS,
        what=f"segment {victim.segment_id} to go to the survivor within "
        f"{LEASE_REQUEUE_BOUND_SECONDS} s (+{PICKUP_SLACK_SECONDS} s pickup), by its lease",
    )
    _check_outputs(store, job_id, out, images=2 * 8 * 30)
    (final,) = store.segments(job_id, [victim.segment_id])
    assert (final.state, final.attempts) == ("done", 2)


def test_sigkill_of_a_pool_process_requeues_its_segment_at_once(
    rig: Rig, slow_recordings: list[Recording], tmp_path: Path
) -> None:
    worker = rig.workers.start("w1")
    store = rig.store
    job_id, out = _slow_job(rig, slow_recordings[:1], tmp_path)

    victim = _victim(store, job_id)
    assert victim.pid in worker.children()
    _mid_segment(out)
    os.kill(victim.pid, signal.SIGKILL)  # only the pool process: the main process sees it die

    def back_in_queue() -> bool:
        (s,) = store.segments(job_id, [victim.segment_id])
        return victim.segment_id in _queued_segments(store) or s.attempts == 2

    wait_for(
        back_in_queue, timeout=POOL_REQUEUE_BOUND_SECONDS, what="the segment to return to the queue"
    )
    _check_outputs(store, job_id, out, images=8 * 30)
    assert worker.process.poll() is None


def test_a_segment_that_kills_its_worker_every_time_fails_after_the_attempt_limit(
    rig: Rig, slow_recordings: list[Recording], tmp_path: Path
) -> None:
    """Simulated from outside: each time segment 1 starts, its process is SIGKILLed."""
    worker = rig.workers.start("w1")
    store = rig.store
    job_id, out = _slow_job(rig, slow_recordings[:1], tmp_path)

    for attempt in (1, 2, 3):  # max_attempts = 3

        def started(attempt: int = attempt) -> SegmentState | None:
            (s,) = store.segments(job_id, [1])
            return s if s.state == "running" and s.attempts == attempt else None

        running = wait_for(started, timeout=30, interval=0.02, what=f"attempt {attempt}")
        assert running.pid is not None
        _mid_segment(out)
        os.kill(running.pid, signal.SIGKILL)

    job = wait_complete(store, job_id)
    assert (job.done, job.failed) == (3, 1)
    (failed,) = store.failed_segments(job_id)
    assert failed.segment_id == 1
    assert failed.error is not None
    assert failed.error.startswith("gave up after 3 deliveries: each time the process running")
    assert failed.attempts in (3, 4)  # failed by the reaper (3) or by a 4th delivery (4)
    assert len(manifest_lines(job.manifest)) == job.images == 3 * 60  # the other 3 segments
    assert worker.process.poll() is None
