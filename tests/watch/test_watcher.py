"""The watcher against a real Redis and a real SQLite catalog: complete files only, exactly once
per (file, rule) across restarts and concurrent watchers, bad sidecars skipped, rows added by
other means enqueued, and the container topology (Redis + 3 workers + watcher) run on the host."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from framefleet.catalog import Catalog
from framefleet.config import Settings
from framefleet.jobs.store import JobStore
from framefleet.media.specs import OutputSpec
from framefleet.producer.plan import plan_job
from framefleet.producer.submit import submit_job
from framefleet.watch.rules import Rule, make_rule
from framefleet.watch.watcher import Watcher
from tests.clips import ClipSpec, camera_times_ms, make_clip, write_timestamps_csv
from tests.servers import (
    FRAMEFLEET,
    SEGMENT_SECONDS,
    RedisServer,
    Workers,
    queue_env,
    run_cli,
    wait_complete,
)

FRONT = 'tags like "%front%"'


def _recording(
    folder: Path, record_id: str, *, frames: int = 90, size: tuple[int, int] = (160, 96)
):
    """One camera of a recording in pydtk's layout: mp4, its sidecar, camera CSV and sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    start_ms = 1_489_728_491_000
    video = make_clip(
        folder / "camera_01.mp4", ClipSpec(width=size[0], height=size[1], frames=frames)
    )
    clock = camera_times_ms(start_ms, frames)
    csv = write_timestamps_csv(folder / "camera_01_timestamps.csv", clock)
    for path, content_type, tags in (
        (video, "video/mp4", ["camera", "front", "center", "image"]),
        (csv, "text/csv", ["camera", "front", "center", "timestamps"]),
    ):
        meta = {
            "record_id": record_id,
            "type": "raw_data",
            "path": path.name,
            "start_timestamp": start_ms / 1000,
            "end_timestamp": clock[-1] / 1000,
            "content-type": content_type,
            "contents": {"camera/front-center": {"tags": tags}},
        }
        path.with_name(path.name + ".json").write_text(json.dumps(meta))
    return video


@pytest.fixture
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three recordings (3 s each) in a staging folder, to be copied under a watched root."""
    staging = tmp_path_factory.mktemp("staging")
    for i in range(3):
        _recording(staging / f"rec{i}" / "data", f"rec{i}")
    return staging


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.db'}"


def _watch_once(root: Path, tmp_path: Path, redis: RedisServer, *extra: str):
    args = ["watch", str(root), "--once", "--settle", "0", "--out", str(tmp_path / "out")]
    args += ["--where", FRONT, "--name", "front", "--db", _db(tmp_path), *extra]
    return run_cli(args, redis_url=redis.url)


def _segments_per_video(store: JobStore) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in store.recent_jobs(100):
        for message in store.messages(job.job_id):
            counts[message.spec.video_path] = counts.get(message.spec.video_path, 0) + 1
    return counts


def test_a_growing_file_is_taken_only_once_complete(
    tmp_path: Path, recordings: Path, settings: Settings, store: JobStore
) -> None:
    root = tmp_path / "root"
    source = recordings / "rec0" / "data"
    target = root / "rec0" / "data"
    target.mkdir(parents=True)
    for name in ("camera_01.mp4.json", "camera_01_timestamps.csv", "camera_01_timestamps.csv.json"):
        shutil.copy(source / name, target / name)
    data = (source / "camera_01.mp4").read_bytes()
    copy_done = threading.Event()

    def slow_copy() -> None:  # six chunks, 0.3 s apart: a camera upload in progress
        with (target / "camera_01.mp4").open("wb") as f:
            for k in range(6):
                f.write(data[k * len(data) // 6 : (k + 1) * len(data) // 6])
                f.flush()
                time.sleep(0.3)
        copy_done.set()

    calls: list[tuple[float, list[dict[str, Any]]]] = []

    def submit(rule: Rule, rows: list[dict[str, Any]], job_id: str) -> int:
        calls.append((time.monotonic(), rows))
        plan = plan_job(rows, output=rule.output, segment_seconds=rule.segment_seconds)
        return submit_job(
            plan,
            store=store,
            settings=settings,
            output=rule.output,
            segment_seconds=rule.segment_seconds,
            job_id=job_id,
        ).enqueued

    rule = make_rule(
        "front",
        where=FRONT,
        output=OutputSpec(out_dir=str(tmp_path / "out")),
        segment_seconds=SEGMENT_SECONDS,
    )
    with Catalog(_db(tmp_path)) as catalog:
        watcher = Watcher(
            catalog=catalog, roots=[root], rules=[rule], submit=submit, settle_seconds=1.0
        )
        copier = threading.Thread(target=slow_copy)
        copier.start()
        while not copy_done.is_set():
            watcher.poll()
            assert not calls, "a recording was enqueued while its video was still growing"
            assert len(catalog.query(FRONT)) == 0, "a growing video was ingested"
            time.sleep(0.1)
        finished = time.monotonic()
        copier.join()
        deadline = finished + 10
        while not calls and time.monotonic() < deadline:
            watcher.poll()
            time.sleep(0.1)
        for _ in range(5):  # later polls change nothing
            watcher.poll()
    assert len(calls) == 1
    _, rows = calls[0]
    assert [r["record_id"] for r in rows] == ["rec0"]
    assert rows[0]["timestamps_path"].endswith("camera_01_timestamps.csv")
    assert sum(_segments_per_video(store).values()) == 2  # 3 s in 2 s segments


def test_restarting_the_watcher_re_enqueues_nothing(
    tmp_path: Path, recordings: Path, redis_server: RedisServer, store: JobStore
) -> None:
    root = tmp_path / "root"
    shutil.copytree(recordings, root)
    first = _watch_once(root, tmp_path, redis_server)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("picked up rec") == 3
    jobs = store.recent_jobs(100)
    assert len(jobs) == 1 and jobs[0].total == 6
    again = _watch_once(root, tmp_path, redis_server)
    assert again.returncode == 0, again.stderr
    assert "picked up" not in again.stderr
    assert len(store.recent_jobs(100)) == 1
    # A new recording after the restart is picked up, alone.
    _recording(root / "rec9" / "data", "rec9")
    third = _watch_once(root, tmp_path, redis_server)
    assert third.stderr.count("picked up") == 1 and "picked up rec9" in third.stderr


def test_two_watchers_enqueue_each_recording_once(
    tmp_path: Path, recordings: Path, redis_server: RedisServer, store: JobStore
) -> None:
    root = tmp_path / "root"
    shutil.copytree(recordings, root)
    for i in range(3, 8):
        _recording(root / f"rec{i}" / "data", f"rec{i}")
    args = ["watch", str(root), "--once", "--settle", "0", "--out", str(tmp_path / "out")]
    args += ["--where", FRONT, "--name", "front", "--db", _db(tmp_path)]
    with Catalog(_db(tmp_path)):
        pass  # schema in place, so both watchers race on claims, not on the first migration
    procs = [
        subprocess.Popen(
            [FRAMEFLEET, *args],
            env=queue_env(redis_server.url),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    logs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    picked = [line for log in logs for line in log.splitlines() if "picked up" in line]
    assert len(picked) == 8, picked
    assert _segments_per_video(store) == {
        str(root / f"rec{i}" / "data" / "camera_01.mp4"): 2 for i in range(8)
    }
    with Catalog(_db(tmp_path)) as catalog:
        claims = catalog.claims.of(rule="front")
    assert len(claims) == 8 and {c["state"] for c in claims} == {"enqueued"}


def test_a_broken_sidecar_is_reported_and_skipped(
    tmp_path: Path, recordings: Path, redis_server: RedisServer, store: JobStore
) -> None:
    root = tmp_path / "root"
    shutil.copytree(recordings / "rec0", root / "rec0")
    broken = root / "broken" / "data"
    broken.mkdir(parents=True)
    (broken / "camera_01.mp4.json").write_text('{"record_id": "broken", "path": ')
    result = _watch_once(root, tmp_path, redis_server)
    assert result.returncode == 1, result.stderr  # --once tells scripts something was skipped
    assert "skipped" in result.stderr and "camera_01.mp4.json" in result.stderr
    assert "1 job(s) enqueued, 0 folder(s) still settling, 1 problem(s)" in result.stderr
    assert "picked up rec0" in result.stderr
    assert len(store.recent_jobs(10)) == 1


def test_rows_added_by_other_means_are_enqueued(
    tmp_path: Path, recordings: Path, redis_server: RedisServer, store: JobStore
) -> None:
    added = run_cli(
        ["catalog", "--db", _db(tmp_path), "add", str(recordings / "rec1")],
        redis_url=redis_server.url,
    )
    assert added.returncode == 0, added.stderr
    empty_root = tmp_path / "empty"
    empty_root.mkdir()
    result = _watch_once(empty_root, tmp_path, redis_server)
    assert result.returncode == 0, result.stderr
    assert "picked up rec1" in result.stderr


@pytest.mark.slow
def test_container_topology_on_the_host_spreads_segments_over_workers(
    tmp_path: Path, redis_server: RedisServer, workers: Workers, store: JobStore
) -> None:
    """docker-compose.yml's topology, run here: Redis, three single-process workers with
    distinct hostnames, and a watcher; the segments of one job spread over all three."""
    root = tmp_path / "root"
    for i in range(2):
        _recording(root / f"big{i}" / "data", f"big{i}", frames=360, size=(640, 360))
    started = [workers.start(f"w{i}", concurrency=1, cli=True) for i in range(3)]
    result = _watch_once(root, tmp_path, redis_server, "--fps", "30", "--format", "png")
    assert result.returncode == 0, result.stderr
    (job,) = store.recent_jobs(10)
    final = wait_complete(store, job.job_id, timeout=180)
    assert final.done == final.total == 12 and final.failed == 0
    states = store.segments(job.job_id, list(range(final.total)))
    used = {s.worker for s in states}
    assert used == {w.hostname for w in started}, f"segments ran on {used}"
