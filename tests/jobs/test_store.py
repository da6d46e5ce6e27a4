"""The Redis job store and the enqueue path, against a real redis-server (no workers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from framefleet.config import Settings
from framefleet.errors import JobNotFoundError
from framefleet.jobs.broker import publish_segments, queue_lists
from framefleet.jobs.keys import JOBS_INDEX, JobKeys
from framefleet.jobs.limits import TimeLimits
from framefleet.jobs.message import DEFAULT_QUEUE, TASK_NAME, SegmentMessage
from framefleet.jobs.store import NOT_PLANNED, JobStore, not_planned
from framefleet.media.specs import OutputSpec, SegmentSpec
from tests.servers import RedisServer


def _messages(job_id: str, count: int, out: str = "/out") -> list[SegmentMessage]:
    output = OutputSpec(out_dir=out)
    return [
        SegmentMessage(
            job_id=job_id,
            segment_id=i,
            spec=SegmentSpec(
                video_path=f"/data/r{i // 10}.mp4",
                record_id=f"r{i // 10}",
                start_seconds=float(i % 10) * 10,
                end_seconds=float(i % 10) * 10 + 10,
                output=output,
            ),
        )
        for i in range(count)
    ]


def _begin(store: JobStore, job_id: str, segment_id: int, *, worker: str, pid: int):
    """A delivery whose lease expired at once: the next delivery may take the segment."""
    return store.begin(
        job_id, segment_id, worker=worker, pid=pid, token=f"{worker}:{pid}", lease_seconds=-1
    )


def test_counters_move_once_per_segment_whatever_the_deliveries(store: JobStore) -> None:
    store.create_job("j", out_dir="/out", spec={}, messages=_messages("j", 3), videos=1)

    assert _begin(store, "j", 0, worker="w1", pid=11).attempt == 1
    assert _begin(store, "j", 0, worker="w2", pid=22).attempt == 2  # a second delivery
    assert store.finish("j", 0, images=4, bytes=400, decode_seconds=0.5) == 1
    assert store.finish("j", 0, images=4, bytes=400, decode_seconds=0.5) == 0  # counted once
    assert _begin(store, "j", 0, worker="w3", pid=33).already_done

    assert store.fail("j", 1, error="video not found: '/data/r0.mp4'") == 1
    assert store.fail("j", 1, error="again") == 0
    assert store.fail("j", 0, error="late failure of a done segment") == 0  # done stays done

    job = store.job("j")
    assert (job.done, job.failed, job.images, job.bytes, job.state) == (1, 1, 4, 400, "running")
    assert job.decode_seconds == pytest.approx(0.5)

    assert store.finish("j", 2, images=2, bytes=100, decode_seconds=0.1) == 2  # completes it
    finished = store.job("j")
    assert finished.complete and finished.state == "failed" and finished.finished is not None
    assert store.finish("j", 2, images=2, bytes=100, decode_seconds=0.1) == 0
    assert store.job("j").finished == finished.finished  # set once

    (failed,) = store.failed_segments("j")
    assert (failed.segment_id, failed.worker, failed.attempts) == (1, None, 0)
    assert failed.error == "again"
    assert "video not found" not in failed.describe() and "again" in failed.describe()
    (seg0,) = store.segments("j", [0])
    assert (seg0.state, seg0.attempts, seg0.worker, seg0.pid) == ("done", 2, "w2", 22)


def test_a_failed_segment_that_later_succeeds_moves_to_done(store: JobStore) -> None:
    store.create_job("j", out_dir="/out", spec={}, messages=_messages("j", 2))
    store.fail("j", 0, error="NFS hiccup")
    assert store.finish("j", 0, images=1, bytes=10, decode_seconds=0) == 1
    job = store.job("j")
    assert (job.done, job.failed) == (1, 0)
    assert store.failed_segments("j") == []


def test_retry_resets_failed_segments_and_reopens_the_job(store: JobStore) -> None:
    messages = _messages("j", 2)
    store.create_job("j", out_dir="/out", spec={}, messages=messages)
    _begin(store, "j", 0, worker="w", pid=1)
    _begin(store, "j", 0, worker="w", pid=1)
    store.fail("j", 0, error="boom")
    store.finish("j", 1, images=1, bytes=1, decode_seconds=0)
    assert store.job("j").complete

    assert store.reset_failed("j") == [messages[0]]
    job = store.job("j")
    assert (job.failed, job.finished, job.complete) == (0, None, False)
    (seg,) = store.segments("j", [0])
    assert (seg.state, seg.attempts, seg.error) == ("queued", 0, None)
    assert store.reset_failed("j") == []


def test_every_key_of_a_job_expires_and_the_index_forgets_expired_jobs(
    settings: Settings, redis_server: RedisServer
) -> None:
    short = JobStore.from_url(settings.effective_results_url, ttl_seconds=60)
    try:
        short.create_job("j", out_dir="/out", spec={}, messages=_messages("j", 2))
        _begin(short, "j", 0, worker="w", pid=1)
        short.fail("j", 1, error="x")
        short.finish("j", 0, images=1, bytes=1, decode_seconds=0)
        client = short.client
        existing = [k for k in JobKeys.of("j").own() if client.exists(k)]
        assert len(existing) == 10  # token and lease are released by finish/fail
        assert all(0 < int(client.ttl(k)) <= 60 for k in existing)

        short.create_job("k", out_dir="/out", spec={}, messages=_messages("k", 1))
        assert [j.job_id for j in short.recent_jobs()] == ["k", "j"]
        for key in JobKeys.of("j").own():
            client.delete(key)  # as if expired
        assert [j.job_id for j in short.recent_jobs()] == ["k"]
        assert client.zscore(JOBS_INDEX, "j") is None
        with pytest.raises(JobNotFoundError, match=r"job 'j' is not known.*framefleet status"):
            short.job("j")
        assert _begin(short, "j", 0, worker="w", pid=1).unknown_job
    finally:
        short.close()


def test_a_job_with_nothing_to_run_is_complete_at_once(store: JobStore) -> None:
    messages = _messages("j", 2)
    store.create_job("j", out_dir="/out", spec={}, messages=messages, skipped=[0, 1])
    job = store.job("j")
    assert (job.total, job.skipped, job.complete, job.state) == (0, 2, True, "done")
    assert store.segment_states("j") == {0: "skipped", 1: "skipped"}


def test_enqueue_publishes_every_message_in_batches(
    settings: Settings, store: JobStore, tmp_path: Path
) -> None:
    count = 2_500  # more than two batches; the rate is measured in bench/queue_bench.py
    messages = _messages("big", count, out=str(tmp_path))
    store.create_job("big", out_dir=str(tmp_path), spec={}, messages=messages)
    batches: list[int] = []

    sent = publish_segments(
        settings.broker_url,
        messages,
        limits=TimeLimits(5, 7),
        on_batch=lambda n: (batches.append(n), store.mark_enqueued("big", n)),
    )

    assert sent == count and store.job("big").enqueued == count and batches == [1000, 1000, 500]
    normal = queue_lists()[1]
    assert store.client.llen(normal) == count and store.client.llen(DEFAULT_QUEUE) == 0
    envelope = json.loads(store.client.lindex(normal, 0) or "{}")
    assert envelope["headers"]["task"] == TASK_NAME
    assert envelope["content-type"] == "application/json"
    assert envelope["properties"]["delivery_info"]["routing_key"] == DEFAULT_QUEUE


def test_enqueue_to_an_unreachable_broker_names_it(tmp_path: Path) -> None:
    from framefleet.errors import QueueError
    from tests.servers import free_port

    url = f"redis://user:secret@127.0.0.1:{free_port()}/0"
    with pytest.raises(
        QueueError, match=r"cannot publish to the broker at redis://user:\*\*\*@127"
    ):
        publish_segments(url, _messages("j", 1), limits=TimeLimits(5, 7))
    assert redis.Redis  # the client library is what the store speaks


def test_retry_leaves_segments_that_could_not_be_planned_failed(store: JobStore) -> None:
    """Their messages are stand-ins (no start time, timestamps, topic or grid): only planning
    them again can run them."""
    messages = _messages("j", 3)
    store.create_job("j", out_dir="/out", spec={}, messages=messages, failed={2: "name too long"})
    store.fail("j", 0, error="NFS hiccup")
    store.finish("j", 1, images=1, bytes=1, decode_seconds=0)
    assert store.job("j").complete

    assert store.reset_failed("j") == [messages[0]]
    (unplanned,) = store.failed_segments("j")
    assert unplanned.segment_id == 2 and not_planned(unplanned.error)
    assert unplanned.error == NOT_PLANNED + "name too long"
    job = store.job("j")
    assert (job.failed, job.complete) == (1, False)
    assert store.reset_failed("j") == []
    assert store.segment_states("j") == {0: "queued", 1: "done", 2: "failed"}
