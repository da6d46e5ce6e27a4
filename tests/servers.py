"""Real servers for the tests: a redis-server on a free port, Celery worker processes, clips.

`RedisServer` runs ``redis-server`` in a temp dir (AOF on, fsync every second, as in production)
so a test can stop and restart it with its data. `Workers` starts ``celery -A framefleet.worker
worker`` (or ``framefleet worker``) as subprocesses, each in its own process group so a test can
SIGKILL a whole worker (main process and pool children at once, as when a container dies).
Workers and producer read the same `QUEUE_ENV`: short time limits and a 15 s visibility timeout,
leases of 4 s renewed every second, so a dead worker's segment comes back within
`LEASE_REQUEUE_BOUND_SECONDS` (6 s; the visibility timeout, `REQUEUE_BOUND_SECONDS`, is the net).

Without ``redis-server`` the tests that need it are skipped with the reason; with ``CI`` set they
fail instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from framefleet.config import Settings, load_settings
from framefleet.jobs.limits import requeue_bound_seconds
from framefleet.jobs.state import JobStatus
from framefleet.jobs.store import JobStore
from framefleet.media.specs import OutputSpec
from framefleet.producer.plan import Plan, plan_job
from framefleet.producer.submit import Submitted, submit_job
from tests.clips import ClipSpec, camera_times_ms, make_clip, write_timestamps_csv

REDIS_SERVER = shutil.which("redis-server")
ROOT = Path(__file__).resolve().parents[2]
FRAMEFLEET = str(Path(sys.executable).with_name("framefleet"))
"""The console script installed beside this Python (``framefleet ...``)."""

# Shared by workers and producer. 2 s segments: soft limit 2 + 4 * 2 = 10 s (a slow segment takes
# ~1 s alone, 2-4 s with three workers on two busy cores), hard 13 s; visibility timeout 15 s
# > 13 s; kombu's restore sweep then runs every second.
SEGMENT_SECONDS = 2.0
QUEUE_ENV = {
    "FRAMEFLEET_SEGMENT_SECONDS": str(SEGMENT_SECONDS),
    "FRAMEFLEET_TIME_LIMIT_FACTOR": "4",
    "FRAMEFLEET_VISIBILITY_TIMEOUT_SECONDS": "15",
    "FRAMEFLEET_MAX_ATTEMPTS": "3",
    "FRAMEFLEET_DECODE_THREADS": "1",
    "FRAMEFLEET_RESULT_TTL_SECONDS": "3600",
    "FRAMEFLEET_LEASE_SECONDS": "4",
    "FRAMEFLEET_HEARTBEAT_SECONDS": "1",
}
REQUEUE_BOUND_SECONDS = requeue_bound_seconds(load_settings(env=QUEUE_ENV))  # 19 s
"""How long Redis's visibility timeout takes to hand back a dead worker's message (the
safety net behind leases)."""
LEASE_REQUEUE_BOUND_SECONDS = 4 + 1 + 1
"""A dead worker's segment is re-enqueued once its lease (4 s) has expired and the next
heartbeat of a live worker (every 1 s) reaps it; 1 s slack."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    condition: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


class RedisServer:
    """A redis-server process this test owns: start, stop (gracefully or not), restart."""

    def __init__(self, directory: Path) -> None:
        assert REDIS_SERVER is not None
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._ping, timeout=10, what=f"redis-server on port {self.port}")

    def _ping(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: Redis flushes its AOF and exits; SIGKILL: as a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on a free port, AOF on, data under the test's temp dir."""
    if REDIS_SERVER is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI is set, so the queue tests must run")
        pytest.skip(reason)
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


def queue_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a worker or CLI subprocess talking to the test's Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEFLEET_")}
    env.update(QUEUE_ENV, FRAMEFLEET_BROKER_URL=redis_url, PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@dataclass
class Worker:
    """One worker: a main process (the leader of its own process group) and its pool."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def hostname(self) -> str:
        return f"{self.name}@{socket.gethostname()}"

    def ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"worker {self.name} exited early:\n{self.log.read_text()[-3000:]}")
        return " ready." in self.log.read_text()

    def kill_all(self) -> None:
        """SIGKILL the main process and every pool child at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []


@dataclass
class Workers:
    """Starts workers against one Redis and kills what is left at the end of the test."""

    redis_url: str
    directory: Path
    started: list[Worker] = field(default_factory=list)

    def start(
        self, name: str, *, concurrency: int = 1, cli: bool = False, wait: bool = True
    ) -> Worker:
        common = ["--without-mingle", "--without-gossip", "--without-heartbeat"]
        if cli:
            command = [FRAMEFLEET, "worker", "-c", str(concurrency), "-n", f"{name}@%h"]
            command += ["--", *common]
        else:
            command = [sys.executable, "-m", "celery", "-A", "framefleet.worker", "worker"]
            command += ["-c", str(concurrency), "-n", f"{name}@%h", "-Q", "framefleet"]
            command += ["--loglevel=INFO", *common]
        log = self.directory / f"worker-{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                env=queue_env(self.redis_url),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches the pool too
                cwd=self.directory,
            )
        worker = Worker(name, process, log)
        self.started.append(worker)
        if wait:
            wait_for(worker.ready, timeout=60, interval=0.1, what=f"worker {name} to be ready")
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.process.poll() is None:
                worker.kill_all()


@pytest.fixture
def workers(redis_server: RedisServer, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(redis_server.url, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


@dataclass
class Rig:
    """Everything a queue test uses: the Redis, the workers, the job store, the settings."""

    redis: RedisServer
    workers: Workers
    store: JobStore
    settings: Settings

    def submit(self, rows: Sequence[Mapping[str, Any]], out: Path, **output: Any) -> str:
        """Plan and enqueue a job over ``rows`` into ``out``; its id."""
        return submit(rows, out, store=self.store, settings=self.settings, **output).job_id


@pytest.fixture
def rig(redis_server: RedisServer, workers: Workers, store: JobStore, settings: Settings) -> Rig:
    return Rig(redis_server, workers, store, settings)


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    """The producer's settings: the same limits as the workers, the test's Redis."""
    return load_settings(env={**QUEUE_ENV, "FRAMEFLEET_BROKER_URL": redis_server.url})


@pytest.fixture
def store(settings: Settings) -> Iterator[JobStore]:
    job_store = JobStore.from_url(settings.effective_results_url, ttl_seconds=3600)
    try:
        yield job_store
    finally:
        job_store.close()


# --- media -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    """A generated recording and its catalog-shaped row."""

    path: Path
    row: dict[str, Any]


def recording_row(
    path: Path,
    record_id: str,
    *,
    seconds: float,
    start: float | None = None,
    timestamps: Path | None = None,
    content: str = "camera/front-center",
) -> dict[str, Any]:
    """A row shaped like ``Catalog.query`` output."""
    return {
        "id": abs(hash(str(path))) % 10**6,
        "record_id": record_id,
        "sub_record_id": None,
        "path": str(path),
        "content_type": "video/mp4",
        "data_type": "raw_data",
        "contents": content,
        "start_timestamp": start,
        "end_timestamp": None if start is None else start + seconds,
        "duration_seconds": seconds,
        "timestamps_path": None if timestamps is None else str(timestamps),
        "tags": ["camera"],
    }


@pytest.fixture(scope="session")
def small_recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Recording]:
    """Three tiny recordings (160x96, 30 fps): 5 s, 6 s with a camera clock, 3.5 s."""
    root = tmp_path_factory.mktemp("small")
    out = []
    specs = [("r0", 150, None), ("r1", 180, 1_489_728_570_957), ("r2", 105, None)]
    for record_id, frames, start_ms in specs:
        path = make_clip(root / f"{record_id}.mp4", ClipSpec(frames=frames, gop=30))
        csv = None
        if start_ms is not None:
            csv = write_timestamps_csv(
                root / f"{record_id}_timestamps.csv", camera_times_ms(start_ms, frames)
            )
        start = None if start_ms is None else start_ms / 1000
        out.append(
            Recording(
                path,
                recording_row(path, record_id, seconds=frames / 30, start=start, timestamps=csv),
            )
        )
    return out


@pytest.fixture(scope="session")
def slow_recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Recording]:
    """Two 640x360 recordings of 8 s: with every frame as PNG, a 2 s segment takes ~1 s."""
    root = tmp_path_factory.mktemp("slow")
    out = []
    for record_id in ("s0", "s1"):
        path = make_clip(root / f"{record_id}.mp4", ClipSpec(width=640, height=360, frames=240))
        out.append(Recording(path, recording_row(path, record_id, seconds=8.0, start=1000.0)))
    return out


SLOW_OUTPUT = {"target_fps": "30", "image_format": "png"}


def submit(
    rows: Sequence[Mapping[str, Any]],
    out_dir: Path,
    *,
    store: JobStore,
    settings: Settings,
    force: bool = False,
    **output: Any,
) -> Submitted:
    """Plan and enqueue a job over ``rows`` (the producer's API, as the CLI calls it)."""
    spec = OutputSpec(out_dir=str(out_dir), **output)
    plan = plan_job(rows, output=spec, segment_seconds=SEGMENT_SECONDS, force=force)
    return submit_job(
        plan,
        store=store,
        settings=settings,
        output=spec,
        segment_seconds=SEGMENT_SECONDS,
        force=force,
    )


def planned(rows: Sequence[Mapping[str, Any]], out_dir: Path, **output: Any) -> Plan:
    spec = OutputSpec(out_dir=str(out_dir), **output)
    return plan_job(rows, output=spec, segment_seconds=SEGMENT_SECONDS)


def wait_complete(store: JobStore, job_id: str, *, timeout: float = 90) -> JobStatus:
    job: JobStatus = wait_for(
        lambda: (j := store.job(job_id)).complete and j.manifest and j,
        timeout=timeout,
        interval=0.1,
        what=f"job {job_id} to complete",
    )
    return job


# --- checking outputs ------------------------------------------------------------------------


def image_files(out_dir: Path) -> dict[str, bytes]:
    """Every image under ``out_dir`` (relative path -> bytes), each decoded fully by Pillow."""
    from PIL import Image

    found = {}
    for path in sorted(out_dir.rglob("*")):
        if path.suffix.lower() in {".jpg", ".png", ".webp"} and not path.name.startswith("."):
            with Image.open(path) as image:
                image.load()  # raises on a truncated or corrupt file
            found[str(path.relative_to(out_dir))] = path.read_bytes()
    return found


def manifest_lines(path: str | Path | None) -> list[dict[str, Any]]:
    import json

    assert path is not None, "the job has no manifest"
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


def run_cli(
    args: Sequence[str], *, redis_url: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """``framefleet ARGS`` as a subprocess against the test's Redis."""
    return subprocess.run(
        [FRAMEFLEET, *args],
        env=queue_env(redis_url, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
