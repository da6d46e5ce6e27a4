"""Segment leases against a real redis-server: taken at the start, renewed by heartbeats, reaped
exactly once when they expire, and what a follower says while it waits."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from framefleet.config import Settings, replace
from framefleet.jobs.broker import FINALIZE_TASK_NAME, queue_lists
from framefleet.jobs.keys import LEASES, WORKER_QUEUES, WORKERS
from framefleet.jobs.leases import reap_expired_leases
from framefleet.jobs.manifest import finalize_job
from framefleet.jobs.message import DEFAULT_QUEUE, SegmentMessage
from framefleet.jobs.state import Reaped
from framefleet.jobs.store import JobStore
from framefleet.media.specs import OutputSpec, SegmentSpec
from framefleet.producer.follow import follow_job
from framefleet.producer.submit import job_spec
from framefleet.worker.lease import LeaseKeeper
from framefleet.worker.report import Reporter
from tests.servers import RedisServer, wait_for


def _job(
    store: JobStore, job_id: str = "j", count: int = 2, out: str = "/out"
) -> list[SegmentMessage]:
    output = OutputSpec(out_dir=out)
    messages = [
        SegmentMessage(
            job_id=job_id,
            segment_id=i,
            spec=SegmentSpec(video_path="/v.mp4", record_id="r", start_seconds=2.0 * i,
                             end_seconds=2.0 * i + 2, output=output),
        )
        for i in range(count)
    ]  # fmt: skip
    spec = job_spec(output, segment_seconds=2.0)
    store.create_job(job_id, out_dir=out, spec=spec, messages=messages)
    return messages


def _begin(store: JobStore, segment: int, token: str, *, lease: float = 30, **kw: str):
    return store.begin("j", segment, worker="w@h", pid=1, token=token, lease_seconds=lease, **kw)


def test_a_live_lease_makes_a_second_delivery_a_duplicate(store: JobStore) -> None:
    _job(store)
    first = _begin(store, 0, "a")
    assert first.run and first.attempt == 1
    second = _begin(store, 0, "b")
    assert second.held_elsewhere and not second.run and second.attempt == 1  # not counted

    assert store.heartbeat("j", 0, token="a", lease_seconds=30)
    assert not store.heartbeat("j", 0, token="b", lease_seconds=30)  # not the holder
    stolen = _begin(store, 0, "c", steal_from="a")  # its holder is known to be dead
    assert stolen.run and stolen.attempt == 2
    assert not store.heartbeat("j", 0, token="a", lease_seconds=30)  # the old holder stops

    store.finish("j", 0, images=1, bytes=1, decode_seconds=0, token="c")
    assert store.client.zcard(LEASES) == 0  # finishing releases the lease
    assert _begin(store, 0, "d").already_done


def test_an_expired_lease_is_reaped_exactly_once_by_many_reapers(
    store: JobStore, settings: Settings
) -> None:
    messages = _job(store)
    _begin(store, 0, "dead", lease=0.05)  # its worker dies: nobody renews it
    _begin(store, 1, "alive")
    time.sleep(0.1)  # let the short lease run out (time, not another process, is the subject)

    results: list[int] = []
    barrier = threading.Barrier(8)

    def reap() -> None:
        barrier.wait()
        results.append(len(reap_expired_leases(store, settings, settle_seconds=0)))

    threads = [threading.Thread(target=reap) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == [0] * 7 + [1]  # one reaper won, the others found nothing
    assert store.client.llen(DEFAULT_QUEUE) == 1  # one message again, at the urgent priority
    (seg0, seg1) = store.segments("j", [0, 1])
    assert (seg0.state, seg0.attempts) == ("queued", 1)
    assert seg1.state == "running"  # a live lease is left alone
    assert store.messages("j", [0]) == [messages[0]]
    again = _begin(store, 0, "next")
    assert again.run and again.attempt == 2  # the redelivery counts as an attempt


def test_a_segment_out_of_attempts_is_failed_by_the_reaper(
    store: JobStore, settings: Settings
) -> None:
    _job(store, count=1)
    limited = replace(settings, max_attempts=2)
    for attempt in (1, 2):
        assert _begin(store, 0, f"t{attempt}", lease=0.01).attempt == attempt
        time.sleep(0.05)
        (reaped,) = reap_expired_leases(store, limited, settle_seconds=0)
        assert (reaped.message is None) == (attempt == 2)
    job = store.job("j")
    assert job.complete and job.failed == 1
    (failed,) = store.failed_segments("j")
    assert failed.error is not None and failed.error.startswith("gave up after 2 deliveries")
    assert _begin(store, 0, "stale").already_failed  # a late delivery of it does nothing


def test_release_gives_the_segment_back(store: JobStore) -> None:
    _job(store)
    _begin(store, 0, "a")
    assert store.release("j", 0, token="a")
    assert not store.release("j", 0, token="a")
    assert store.segment_states("j")[0] == "queued" and store.client.zcard(LEASES) == 0
    assert _begin(store, 0, "b").run


def test_status_shows_the_worker_and_heartbeat_of_running_segments(store: JobStore) -> None:
    _job(store)
    _begin(store, 0, "a", lease=20)
    (running,) = store.running_segments("j")
    assert running.worker == "w@h" and running.heartbeat_age_seconds is not None
    assert 19 < (running.lease_expires_in or 0) <= 20
    assert "last heartbeat 0." in running.describe() and "lease expires in 2" in running.describe()


def test_the_follower_says_when_no_worker_listens_and_when_a_segment_is_lost(
    store: JobStore, settings: Settings, tmp_path: Path
) -> None:
    (message,) = _job(store, count=1, out=str(tmp_path))
    manifest = tmp_path / message.spec.manifest_name
    manifest.parent.mkdir(parents=True)
    manifest.write_text("")  # the segment's (empty) manifest, as a worker would leave it
    quick = replace(
        settings, heartbeat_seconds=0.05, lease_seconds=30, no_worker_notice_seconds=0.2
    )
    _begin(store, 0, "lost", lease=30)
    store.client.hset("framefleet:job:j:beat", "0", time.time() - 10)  # its worker went silent
    notes: list[str] = []
    waits: list[str | None] = []

    def on_update(job: object, waiting: str | None) -> None:
        waits.append(waiting)
        if notes and any(waits):
            store.finish("j", 0, images=1, bytes=1, decode_seconds=0)

    job = follow_job(
        store, "j", settings=quick, on_update=on_update, on_note=notes.append,
        interval_seconds=0.02, timeout_seconds=20,
    )  # fmt: skip
    assert job.complete and job.manifest
    (note,) = notes  # said once
    assert note.startswith("no worker consuming queue 'framefleet' has sent a heartbeat for ")
    assert note.endswith(
        " s (0 alive); start one with `framefleet worker` (same --broker); still waiting"
    )
    lost = [w for w in waits if w]
    assert lost and lost[0] in (
        "waiting for 1 lost segment(s) (lease expires in 30 s)",
        "waiting for 1 lost segment(s) (lease expires in 29 s)",
    )


def test_a_worker_heartbeat_marks_it_alive_on_its_queues(store: JobStore) -> None:
    store.register_worker("w1@h", ["framefleet", "other"])
    store.register_worker("w2@h", ["other"])
    assert store.workers_alive(queue="framefleet", within_seconds=5) == ["w1@h"]
    assert store.workers_alive(queue="other", within_seconds=5) == ["w1@h", "w2@h"]
    assert store.workers_alive(queue="nobody", within_seconds=5) == []


def _manifests(messages: list[SegmentMessage], out: Path) -> None:
    """Each segment's manifest (one image line), as its worker would leave it."""
    for message in messages:
        path = out / message.spec.manifest_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'{{"path": "img-{message.segment_id}.jpg"}}\n')


def test_a_segment_finished_after_its_job_finished_asks_for_the_manifest_again(
    store: JobStore, tmp_path: Path
) -> None:
    """The reaper fails a slow segment on its last attempt, completing the job; its worker,
    alive after all, then finishes it: the manifest written without it must be written again."""
    messages = _job(store, out=str(tmp_path))
    _manifests(messages, tmp_path)
    _begin(store, 0, "a")
    assert store.finish("j", 0, images=1, bytes=1, decode_seconds=0, token="a") == 1
    _begin(store, 1, "slow", lease=0.05)
    time.sleep(0.1)  # its lease runs out (time, not another process, is the subject)
    (reaped,) = store.reap_expired(max_attempts=1)
    assert reaped.completed_job
    assert finalize_job(store, "j").manifest_done == 1

    assert store.finish("j", 1, images=1, bytes=1, decode_seconds=0, token="slow") == 2
    job = finalize_job(store, "j")
    assert (job.done, job.failed, job.manifest_done) == (2, 0, 2)
    assert len(Path(job.manifest or "").read_text().splitlines()) == 2


def test_a_stale_delivery_neither_fails_nor_stalls_the_live_one(store: JobStore) -> None:
    """D1 hangs, its lease is reaped and D2 takes the segment; D1's failure (its time limit)
    changes nothing, and D1 finishing after all counts the segment done and stops D2."""
    _job(store, count=1)
    _begin(store, 0, "d1", lease=0.05)
    time.sleep(0.1)  # D1's lease runs out (time, not another process, is the subject)
    (reaped,) = store.reap_expired(max_attempts=3)
    assert reaped.message is not None
    assert _begin(store, 0, "d2").run

    assert store.fail("j", 0, error="soft time limit", token="d1") == 0
    (segment,) = store.segments("j", [0])
    assert (segment.state, segment.error) == ("running", None)
    assert store.heartbeat("j", 0, token="d2", lease_seconds=30)  # D2 works on

    assert store.finish("j", 0, images=3, bytes=30, decode_seconds=1, token="d1") == 2
    assert store.segment_states("j") == {0: "done"}
    assert not store.heartbeat("j", 0, token="d2", lease_seconds=30)  # D2 stops...
    assert store.client.zcard(LEASES) == 0  # ...and its lease is gone with it
    assert store.finish("j", 0, images=3, bytes=30, decode_seconds=1, token="d2") == 0
    assert store.fail("j", 0, error="late", token="d2") == 0
    job = store.job("j")
    assert (job.done, job.failed, job.images) == (1, 0, 3)


def test_an_owner_failing_its_own_segment_or_a_dead_holders_is_counted(store: JobStore) -> None:
    _job(store)
    _begin(store, 0, "mine")
    assert store.fail("j", 0, error="bad video", token="mine") == 1
    _begin(store, 1, "dead", lease=0.05)
    time.sleep(0.1)  # its lease runs out: no live delivery to protect
    assert store.fail("j", 1, error="hard time limit") == 2
    assert store.client.zcard(LEASES) == 0
    assert [s.error for s in store.failed_segments("j")] == ["bad video", "hard time limit"]


def test_leases_run_on_redis_clock_whatever_the_hosts_clocks_say(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose clock runs an hour behind takes a lease; a reaper whose clock runs an hour
    ahead looks at it: both go by Redis's clock, so the lease is alive for both."""
    _job(store)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)
    assert _begin(store, 0, "behind", lease=30).run
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    assert store.reap_expired(max_attempts=3) == []
    (segment,) = store.segments("j", [0])
    assert segment.state == "running" and 28 < (segment.lease_expires_in or 0) <= 30
    assert segment.heartbeat_age_seconds is not None and segment.heartbeat_age_seconds < 2
    assert store.heartbeat("j", 0, token="behind", lease_seconds=30)
    store.register_worker("w@h", ["framefleet"])
    assert store.workers_alive(queue="framefleet", within_seconds=5) == ["w@h"]


def test_workers_silent_for_a_day_are_forgotten(store: JobStore) -> None:
    store.register_worker("old@h", ["framefleet"])
    store.register_worker("recent@h", ["framefleet"])
    now = store.server_time()
    store.client.zadd(WORKERS, {"old@h": now - 25 * 3600, "recent@h": now - 23 * 3600})
    store.register_worker("new@h", ["other"])
    assert set(store.client.zrange(WORKERS, 0, -1)) == {"recent@h", "new@h"}
    assert set(store.client.hkeys(WORKER_QUEUES)) == {"recent@h", "new@h"}


@pytest.fixture
def reaper_store(settings: Settings) -> Iterator[JobStore]:
    """A second client, as a reaper in another process has."""
    own = JobStore.from_url(settings.effective_results_url, ttl_seconds=3600)
    try:
        yield own
    finally:
        own.close()


def test_a_reaper_reaps_nothing_in_its_first_lease_period(
    store: JobStore, reaper_store: JobStore, settings: Settings
) -> None:
    """A process that starts does not know whether Redis was just away: its live workers may
    not have renewed yet."""
    quick = replace(settings, lease_seconds=0.5, heartbeat_seconds=0.1)
    _job(store)
    _begin(store, 0, "dead", lease=0.01)
    time.sleep(0.05)  # its lease runs out (time, not another process, is the subject)
    assert reap_expired_leases(reaper_store, quick) == []
    wait_for(lambda: reap_expired_leases(reaper_store, quick), timeout=5, what="the reap")
    assert store.segment_states("j")[0] == "queued"


def test_after_an_outage_longer_than_a_lease_live_workers_renew_before_anyone_reaps(
    redis_server: RedisServer, store: JobStore, reaper_store: JobStore, settings: Settings
) -> None:
    """Redis is away for longer than a lease, so every lease has run out when it is back; the
    reaper that saw it go waits one lease period, the live worker renews in it, nothing is
    handed out again."""
    quick = replace(settings, lease_seconds=1.0, heartbeat_seconds=0.25)
    (message, _) = _job(store)
    reaper_store.client.ping()
    wait_for(lambda: reaper_store.connected_for() >= 1.0, timeout=5, what="the first period")
    assert _begin(store, 0, "live", lease=1.0).run
    keeper = LeaseKeeper(
        Reporter(store), message, token="live", lease_seconds=1.0, heartbeat_seconds=0.25
    )
    with keeper:
        assert reap_expired_leases(reaper_store, quick) == []  # alive; the reaper is settled
        redis_server.stop(signal.SIGTERM)  # its AOF keeps the lease
        with pytest.raises(redis.ConnectionError):
            reap_expired_leases(reaper_store, quick)
        time.sleep(1.2)  # the outage outlasts the lease (time, not another process, is the subject)
        redis_server.start()

        assert reap_expired_leases(reaper_store, quick) == []  # expired, but the reaper waits
        wait_for(lambda: reaper_store.connected_for() >= 1.0, timeout=5, what="the settle period")
        assert reap_expired_leases(reaper_store, quick) == []  # renewed in the meantime
        keeper.check()  # the worker still holds its segment
    (segment,) = store.segments("j", [0])
    assert (segment.state, segment.attempts) == ("running", 1)


def test_a_lease_keeper_rides_out_redis_refusing_writes(
    store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Out of memory (or READONLY after a failover) is not "unreachable", but the keeper must
    still log it and renew once Redis takes writes again, not end without a word."""
    (message, _) = _job(store)
    assert _begin(store, 0, "t", lease=2.0).run
    keeper = LeaseKeeper(
        Reporter(store), message, token="t", lease_seconds=2.0, heartbeat_seconds=0.05
    )

    def expiry() -> float:
        return float(store.client.hget("framefleet:job:j:lease", "0") or 0)

    caplog.set_level(logging.WARNING, logger="framefleet.worker.lease")
    with keeper:
        store.client.config_set("maxmemory", "1")  # every write is refused: OOM
        try:
            wait_for(lambda: "OutOfMemoryError" in caplog.text, timeout=5, what="a refused renewal")
            refused_at = expiry()
        finally:
            store.client.config_set("maxmemory", "0")
        wait_for(lambda: expiry() > refused_at, timeout=5, what="renewals to resume")
        keeper.check()  # still the holder


def _queued_tasks(store: JobStore) -> list[tuple[str, list[object]]]:
    """(task name, args) of every message waiting in the default queue's lists."""
    found = []
    for key in queue_lists():
        for raw in store.client.lrange(key, 0, -1):
            envelope = json.loads(raw)
            args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
            found.append((envelope["headers"]["task"], args))
    return found


def test_a_reap_that_completes_a_job_hands_its_finalization_to_a_worker(
    store: JobStore, settings: Settings, tmp_path: Path
) -> None:
    """The worker's reaper is its heartbeat thread: a long finalization there would stop the
    heartbeat (and the health check). Here the job manifest would wait on a segment manifest
    that is a FIFO nobody writes; the reap must not wait with it."""
    messages = _job(store, out=str(tmp_path))
    fifo = tmp_path / messages[0].spec.manifest_name
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    _begin(store, 0, "a")
    store.finish("j", 0, images=1, bytes=1, decode_seconds=0, token="a")
    _begin(store, 1, "dead", lease=0.01)
    time.sleep(0.05)  # its lease runs out (time, not another process, is the subject)

    results: list[list[Reaped]] = []
    reaper = threading.Thread(
        target=lambda: results.append(
            reap_expired_leases(store, replace(settings, max_attempts=1), settle_seconds=0)
        )
    )
    reaper.start()
    reaper.join(timeout=10)
    if reaper.is_alive():  # stuck reading the FIFO: let it go before failing
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(writer)
        reaper.join()
        pytest.fail("the reaper finalized the job itself, in the heartbeat thread")
    ((reaped,),) = results
    assert reaped.completed_job
    assert _queued_tasks(store) == [(FINALIZE_TASK_NAME, ["j"])]
    assert store.job("j").manifest is None  # a worker writes it
