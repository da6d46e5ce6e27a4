"""A watcher running for real (a process, Redis, a worker) meets a folder of hostile files, then
a good folder: it stays alive and the good folder is extracted; the same after a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from framefleet.jobs.store import JobStore
from tests.clips import ClipSpec, make_clip
from tests.servers import FRAMEFLEET, RedisServer, Workers, queue_env, wait_for
from tests.watch.test_watcher import _recording

BIG = "1" + "0" * 400


def _hostile_folder(folder: Path, tmp_path: Path) -> int:
    """Sidecars, CSVs and videos that have each broken something once; returns how many."""
    folder.mkdir(parents=True)
    video = make_clip(tmp_path / "ok.mp4", ClipSpec(frames=30))
    (folder / "v.mp4").write_bytes(video.read_bytes())
    base = {"record_id": "hostile", "path": "v.mp4", "contents": "camera/front"}
    sidecars = {
        "huge_start": {**base, "start_timestamp": "@BIG@"},
        "huge_count": {**base, "count": 2**63},
        "surrogate": {**base, "record_id": "@SURROGATE@"},
        "nul": {**base, "record_id": "a\u0000b"},
        "nul_path": {**base, "path": "v\u0000.mp4"},
        "tags": {**base, "contents": {"camera/front": {"tags": [1, None, {"x": 1}]}}},
        "nan": {**base, "end_timestamp": "@NAN@"},
        "list": [1, 2, 3],
        "outside": {**base, "path": "/etc/passwd"},
    }
    count = 0
    for name, meta in sidecars.items():
        text = (
            json.dumps(meta)
            .replace('"@BIG@"', BIG)
            .replace('"@SURROGATE@"', '"\\ud800"')
            .replace('"@NAN@"', "NaN")
        )
        (folder / f"{name}.json").write_text(text)
        count += 1
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "latin1.json").write_bytes(b'{"record_id": "\xff\xfe"}')
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("not a video\n" * 100)
    (folder / "cut.mp4").write_bytes(video.read_bytes()[:500])
    for name, rows in (("inf", "inf,0,0,1\n"), ("huge", "1e1000000000,0,0,1\n")):
        clip = folder / f"{name}.mp4"
        clip.write_bytes(video.read_bytes())
        (folder / f"{name}_timestamps.csv").write_text(rows * 30)
    (folder / "bytes_timestamps.csv").write_bytes(b"\xff\xfe\x00\x01" * 40)
    (folder / "bytes.mp4").write_bytes(video.read_bytes())
    return count + 9


@pytest.fixture
def watcher_process(tmp_path: Path, redis_server: RedisServer) -> Iterator[list]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)


def _start_watcher(root: Path, tmp_path: Path, redis: RedisServer, processes: list):
    log = tmp_path / f"watcher-{len(processes)}.log"
    args = ["watch", str(root), "--interval", "0.2", "--settle", "0.5"]
    args += ["--out", str(tmp_path / "out"), "--where", 'tags like "%front%"', "--name", "front"]
    args += ["--db", f"sqlite:///{tmp_path / 'catalog.db'}", "--resize", "0.5"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [FRAMEFLEET, *args],
            env=queue_env(redis.url),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    processes.append(process)
    return process, log


def _extracted(out: Path, record_id: str) -> int:
    return len(list((out / record_id).rglob("*.jpg"))) if (out / record_id).exists() else 0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_hostile_folders_never_stop_the_watcher(
    tmp_path: Path,
    redis_server: RedisServer,
    workers: Workers,
    store: JobStore,
    watcher_process: list,
) -> None:
    workers.start("w1")
    root = tmp_path / "root"
    root.mkdir()
    process, log = _start_watcher(root, tmp_path, redis_server, watcher_process)
    _hostile_folder(root / "hostile" / "data", tmp_path)
    wait_for(
        lambda: "skipped" in log.read_text() and "latin1.json" in log.read_text(),
        timeout=60,
        what="the hostile folder to be ingested",
    )
    _recording(root / "good1" / "data", "good1")
    out = tmp_path / "out"
    wait_for(lambda: _extracted(out, "good1") == 6, timeout=90, what="good1 extracted")
    assert process.poll() is None, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text, text[-5000:]
    for name in ("huge_start.json", "surrogate.json", "deep.json", "nul.json", "inf.mp4"):
        assert name in text, f"{name} is not reported:\n{text[-5000:]}"

    process.send_signal(signal.SIGTERM)  # and again, from a fresh start
    process.wait(timeout=20)
    process, log = _start_watcher(root, tmp_path, redis_server, watcher_process)
    _recording(root / "good2" / "data", "good2")
    wait_for(lambda: _extracted(out, "good2") == 6, timeout=90, what="good2 extracted")
    assert process.poll() is None, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    assert _extracted(out, "good1") == 6  # nothing of the first run was redone or lost
    assert os.path.isdir(out / "_jobs")
