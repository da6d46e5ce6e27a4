"""``retry``: it reruns what failed while running, never a recording that could not be planned
(its message is only a stand-in, with no start time, timestamps, topic or grid), and says how
to plan that one again. Queued jobs against a real redis-server; local jobs in their SQLite."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from framefleet.config import Settings
from framefleet.jobs.broker import queue_lists
from framefleet.jobs.local_store import LocalJobStore
from framefleet.jobs.message import SegmentMessage
from framefleet.jobs.store import NOT_PLANNED, JobStore, not_planned
from framefleet.media.specs import OutputSpec, SegmentSpec
from tests.servers import RedisServer, recording_row, run_cli, submit


def _queued_segment_ids(store: JobStore) -> list[int]:
    """Segment ids of the messages waiting in the queue (kombu's envelope, Celery's body)."""
    ids = []
    for key in queue_lists():
        for raw in store.client.lrange(key, 0, -1):
            args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
            ids.append(int(args[0]["segment_id"]))
    return sorted(ids)


def test_retry_reruns_run_failures_and_names_recordings_to_plan_again(
    redis_server: RedisServer, store: JobStore, settings: Settings, tmp_path: Path
) -> None:
    rows = [  # two files of one record and content: the second cannot be planned
        recording_row(tmp_path / "a.mp4", "r", seconds=1.0, start=100.0),
        recording_row(tmp_path / "b.mp4", "r", seconds=1.0, start=100.0),
    ]
    submitted = submit(rows, tmp_path / "out", store=store, settings=settings)
    job_id = submitted.job_id
    (planned,) = submitted.plan.pending
    (unplanned,) = store.failed_segments(job_id)
    assert unplanned.error is not None and unplanned.error.startswith(NOT_PLANNED)
    assert "would write the same image names" in unplanned.error
    store.client.delete(*queue_lists())  # as if a worker had taken it...
    store.fail(job_id, planned.segment_id, error="video not found")  # ...and failed it

    retried = run_cli(["retry", job_id], redis_url=redis_server.url)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.splitlines() == [
        f"1 segment(s) of job {job_id} could not be planned and are not retried; re-run the "
        "extract to plan r again",
        f"re-enqueued 1 failed segment(s) of job {job_id}",
    ]
    assert _queued_segment_ids(store) == [planned.segment_id]  # never the stand-in
    assert store.segment_states(job_id) == {
        planned.segment_id: "queued",
        unplanned.segment_id: "failed",
    }

    store.client.delete(*queue_lists())
    again = run_cli(["retry", job_id], redis_url=redis_server.url)
    assert again.returncode == 1, "the job can only fail while that recording is not planned"
    assert again.stdout.splitlines() == [
        f"1 segment(s) of job {job_id} could not be planned and are not retried; re-run the "
        "extract to plan r again"
    ]
    assert _queued_segment_ids(store) == []


def test_a_local_job_keeps_its_unplanned_segments_failed_too(tmp_path: Path) -> None:
    output = OutputSpec(out_dir=str(tmp_path))
    messages = [
        SegmentMessage(
            job_id="j",
            segment_id=i,
            spec=SegmentSpec(video_path=f"/v{i}.mp4", record_id="r", output=output),
        )
        for i in range(2)
    ]
    store = LocalJobStore.open(tmp_path, "j", create=True)
    try:
        store.create_job("j", out_dir=str(tmp_path), spec={}, messages=messages, failed={1: "x"})
        store.begin("j", 0, worker="w", pid=1)
        store.fail("j", 0, error="video not found")
        assert store.reset_failed("j") == [messages[0]]
        (failed,) = store.failed_segments("j")
        assert failed.segment_id == 1 and not_planned(failed.error)
        assert (store.job("j").failed, store.segment_states("j")) == (1, {0: "queued", 1: "failed"})
        assert store.reset_failed("j") == []
    finally:
        store.close()
