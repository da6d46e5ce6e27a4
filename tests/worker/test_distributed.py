"""Jobs through real Redis and real Celery worker processes: results, failures, duplicates."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from framefleet.catalog import Catalog
from framefleet.jobs.broker import publish_segments, queue_lists
from framefleet.jobs.limits import checked_limits
from framefleet.jobs.store import JobStore
from framefleet.media.pipeline import process_segment, read_manifest
from framefleet.media.specs import OutputSpec, SegmentSpec
from tests.servers import (
    FRAMEFLEET,
    SLOW_OUTPUT,
    Recording,
    Rig,
    image_files,
    manifest_lines,
    queue_env,
    recording_row,
    run_cli,
    submit,
    wait_complete,
    wait_for,
)


def test_a_job_over_several_recordings_with_two_workers_matches_local_mode(
    rig: Rig, small_recordings: list[Recording], tmp_path: Path
) -> None:
    """The whole CLI path: catalog add, two workers, extract --wait, status; then --local."""
    redis_server, workers, store = rig.redis, rig.workers, rig.store
    db = f"sqlite:///{tmp_path / 'catalog.db'}"
    env = {"FRAMEFLEET_DATABASE_URL": db}
    added = run_cli(["catalog", "add", str(small_recordings[0].path.parent)], **env, redis_url="")
    assert added.returncode == 0, added.stderr
    workers.start("w1", cli=True, wait=False)  # `framefleet worker`
    workers.start("w2", wait=False)  # `celery -A framefleet.worker worker`
    for w in workers.started:
        wait_for(w.ready, timeout=60, what=f"{w.name} ready")

    out = tmp_path / "queue"
    result = run_cli(
        ["extract", "--out", str(out), "--segment-seconds", "2", "--wait"],
        redis_url=redis_server.url,
        **env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = result.stdout.splitlines()[0]
    assert "enqueued 8 segment(s) of 3 video(s)" in result.stdout
    assert f"job {job_id} done: 8/8 segment(s) done, 0 failed" in result.stdout

    job = store.job(job_id)
    assert (job.total, job.done, job.failed, job.state) == (8, 8, 0, "done")
    assert {s.worker.split("@")[0] for s in store.segments(job_id, range(8)) if s.worker} == {
        "w1",
        "w2",
    }, "segments should spread over both workers"

    # Every expected image exactly once: the same as one unsplit pass over each recording.
    reference = tmp_path / "reference"
    expected = []
    with Catalog(db) as catalog:
        for row in sorted(catalog.query(), key=lambda r: r["record_id"]):
            if row["content_type"] != "video/mp4":
                continue
            spec = SegmentSpec(
                video_path=row["path"],
                record_id=row["record_id"],
                content=row["contents"],
                start_timestamp=row["start_timestamp"],
                timestamps_path=row["timestamps_path"],
                output=OutputSpec(out_dir=str(reference)),
            )
            expected += read_manifest(Path(process_segment(spec).manifest_path))
    images = image_files(out)
    assert images == image_files(reference)
    records = manifest_lines(job.manifest)
    assert [r["path"] for r in records] == [e.path for e in expected]
    assert len(records) == len(images) == job.images == len(expected)
    assert len({r["path"] for r in records}) == len(records) == job.images

    status = run_cli(["status", job_id], redis_url=redis_server.url)
    assert status.returncode == 0, status.stderr
    assert f"job {job_id}: done" in status.stdout
    assert "segments: 8 done, 0 failed, 0 to go, of 8" in status.stdout
    assert f"manifest: {job.manifest}" in status.stdout
    recent = run_cli(["status"], redis_url=redis_server.url)
    assert job_id in recent.stdout and "done" in recent.stdout

    # Local mode, same query and output spec: the same bytes and the same job manifest.
    local_out = tmp_path / "local"
    local = run_cli(
        ["extract", "--out", str(local_out), "--segment-seconds", "2", "--local"],
        redis_url="redis://127.0.0.1:1/0",  # nothing listens there: local mode needs no Redis
        **env,
    )
    assert local.returncode == 0, local.stdout + local.stderr
    local_id = local.stdout.splitlines()[0]
    assert local_id.startswith("local-")
    assert image_files(local_out) == images
    local_manifest = local_out / "_jobs" / f"{local_id}.jsonl"
    assert local_manifest.read_bytes() == Path(str(job.manifest)).read_bytes()
    segment_manifests = sorted(p.relative_to(out) for p in (out / "_manifests").rglob("*.jsonl"))
    assert segment_manifests == sorted(
        p.relative_to(local_out) for p in (local_out / "_manifests").rglob("*.jsonl")
    )


def test_corrupt_and_missing_videos_fail_visibly_and_retry_reruns_them(
    rig: Rig, small_recordings: list[Recording], tmp_path: Path
) -> None:
    redis_server, workers, store, settings = rig.redis, rig.workers, rig.store, rig.settings
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64)
    missing = tmp_path / "missing.mp4"
    rows = [
        small_recordings[0].row,  # 5 s: 3 segments
        recording_row(corrupt, "corrupt", seconds=3.0, start=100.0),  # 2 segments
        recording_row(missing, "missing", seconds=3.0, start=100.0),  # 2 segments
    ]
    workers.start("w1", concurrency=2)
    out = tmp_path / "out"
    submitted = submit(rows, out, store=store, settings=settings)
    job = wait_complete(store, submitted.job_id)
    assert (job.total, job.done, job.failed, job.state) == (7, 3, 4, "failed")
    assert len(manifest_lines(job.manifest)) == job.images == 10  # r0 only: 5 s at 2 fps

    status = run_cli(["status", submitted.job_id], redis_url=redis_server.url)
    assert status.returncode == 0, status.stderr
    assert "4 failed segment(s)" in status.stdout
    assert f"video not found: '{missing}'" in status.stdout
    assert f"cannot read '{corrupt}'" in status.stdout
    log = workers.started[0].log.read_text()
    assert log.count("raised expected: SegmentFailedError") == 4, log[-3000:]  # a failure...
    assert "'status': 'failed'" not in log  # ...never logged as "succeeded"
    waited = run_cli(["status", submitted.job_id, "--wait"], redis_url=redis_server.url)
    assert waited.returncode == 1 and "4 segment(s) failed:" in waited.stdout

    shutil.copy(small_recordings[2].path, missing)  # the missing file turns up (3.5 s)
    retried = run_cli(["retry", submitted.job_id, "--wait"], redis_url=redis_server.url)
    assert "re-enqueued 4 failed segment(s)" in retried.stdout
    assert retried.returncode == 1, "the corrupt video still fails"
    job = store.job(submitted.job_id)
    assert (job.done, job.failed) == (5, 2)
    assert [s.attempts for s in store.failed_segments(submitted.job_id)] == [1, 1]
    assert len(manifest_lines(job.manifest)) == job.images == 10 + 7  # missing.mp4: 3.5 s
    assert job.manifest_done == 5


def _queued(store: JobStore) -> int:
    return sum(store.client.llen(key) for key in queue_lists())


def test_the_same_message_delivered_twice_makes_no_duplicates(
    rig: Rig, small_recordings: list[Recording], tmp_path: Path
) -> None:
    workers, store, settings = rig.workers, rig.store, rig.settings
    rows = [r.row for r in small_recordings]
    out = tmp_path / "out"
    submitted = submit(rows, out, store=store, settings=settings)  # nobody consumes yet
    limits = checked_limits(settings, 2.0)
    again = publish_segments(settings.broker_url, store.messages(submitted.job_id), limits=limits)
    assert again == submitted.enqueued == 8
    assert _queued(store) == 16  # every segment queued twice

    workers.start("w1")
    workers.start("w2")
    job = wait_complete(store, submitted.job_id)
    wait_for(lambda: _queued(store) == 0, timeout=30, what="queue drained")
    assert (job.total, job.done, job.failed) == (8, 8, 0)
    records = manifest_lines(job.manifest)
    assert len(records) == len({r["path"] for r in records}) == job.images == len(image_files(out))
    images_before = image_files(out)

    # Once more after completion: the repeats find the segments done and change nothing.
    publish_segments(settings.broker_url, store.messages(submitted.job_id), limits=limits)
    wait_for(lambda: _queued(store) == 0, timeout=30, what="queue drained")
    wait_for(lambda: not store.client.hlen("unacked"), timeout=30, what="repeats acknowledged")
    after = store.job(submitted.job_id)
    assert (after.done, after.failed, after.images, after.bytes) == (
        job.done,
        job.failed,
        job.images,
        job.bytes,
    )
    assert image_files(out) == images_before
    assert all(s.attempts <= 2 for s in store.segments(submitted.job_id, range(8)))


@pytest.mark.slow
def test_restarting_redis_mid_job_the_workers_and_wait_reconnect(
    rig: Rig, slow_recordings: list[Recording], tmp_path: Path
) -> None:
    redis_server, workers, store, settings = rig.redis, rig.workers, rig.store, rig.settings
    workers.start("w1")
    workers.start("w2")
    out = tmp_path / "out"
    submitted = submit(
        [r.row for r in slow_recordings], out, store=store, settings=settings, **SLOW_OUTPUT
    )
    errors = tmp_path / "follower.err"
    with errors.open("w") as stderr_file:
        follower = subprocess.Popen(
            [FRAMEFLEET, "status", submitted.job_id, "--wait"],
            env=queue_env(redis_server.url),
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
        )
    try:
        wait_for(lambda: store.job(submitted.job_id).done >= 2, timeout=60, what="2 segments")
        wait_for(  # attached: it printed its first progress line
            lambda: f"job {submitted.job_id}: " in errors.read_text(),
            timeout=30,
            what="the follower to attach",
        )
        redis_server.stop(signal.SIGTERM)  # Redis writes its AOF and exits
        wait_for(
            lambda: "Redis unreachable" in errors.read_text() or follower.poll() is not None,
            timeout=30,
            what="the follower to notice that Redis is gone",
        )
        assert follower.poll() is None, errors.read_text()[-3000:]
        redis_server.start()
        stdout, _ = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.communicate()  # reaps it and closes its pipe, whatever happened
    stderr = errors.read_text()
    assert follower.returncode == 0, stdout + stderr
    assert "Redis unreachable" in stderr
    assert f"job {submitted.job_id} done: 8/8 segment(s) done, 0 failed" in stdout

    job = wait_complete(store, submitted.job_id)
    assert (job.done, job.failed, job.images) == (8, 0, 2 * 8 * 30)
    records = manifest_lines(job.manifest)
    assert len(records) == len({r["path"] for r in records}) == len(image_files(out)) == 480
    for worker in workers.started:
        assert worker.process.poll() is None, f"{worker.name} should have survived the restart"
