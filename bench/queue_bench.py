"""Distributed extraction: the seed workload via Redis + Celery vs a local pool vs ffmpeg.

One run, in this order, on the cached seed clip (80 s, 1920x1080, 30 fps, GOP 30, ~15 Mbit/s):

1. ffmpeg CLI: ``ffmpeg -i clip.mp4 -vf fps=2,scale=iw/4:-1 out/%04d.jpg``;
2. local mode: the job's 8 segments of 10 s in a process pool of 2 (the local backend);
3. queue mode: the same job enqueued to a throwaway redis-server and run by one Celery worker
   with 2 processes (started and ready before the clock starts), timed from the enqueue to the
   job's completion as recorded in Redis; also the time from the enqueue to the first image file;
4. the enqueue rate for 100,000 segment messages (job record + pipelined publish) into another
   throwaway Redis.

Targets (issue 4): queue ≥ 2.0x faster than ffmpeg end to end, queue overhead ≤ 10 % over the
local pool, first image < 1 s after the enqueue. Results are printed and written to
``bench/out/queue_bench.json``. Run: ``python bench/queue_bench.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._workload import OUT_DIR, seed_clip  # noqa: E402
from framefleet.config import load_settings  # noqa: E402
from framefleet.jobs.broker import publish_segments, queue_lists  # noqa: E402
from framefleet.jobs.limits import checked_limits  # noqa: E402
from framefleet.jobs.message import SegmentMessage  # noqa: E402
from framefleet.jobs.store import JobStore  # noqa: E402
from framefleet.media.naming import path_safe  # noqa: E402
from framefleet.media.specs import OutputSpec, SegmentSpec  # noqa: E402
from framefleet.producer.backends import submit_plan  # noqa: E402
from framefleet.producer.plan import plan_job  # noqa: E402
from framefleet.producer.submit import new_job_id, submit_job  # noqa: E402

SEGMENT_SECONDS = 10.0
WORKERS = 2
ENQUEUE_MESSAGES = 100_000
RESULTS = OUT_DIR / "queue_bench.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayRedis:
    """A redis-server on a free port with no persistence, in a temp dir."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def output_spec(out: Path) -> OutputSpec:
    return OutputSpec(out_dir=str(out), target_fps="2", resize_rate=0.25, image_format="jpeg")


def clip_row(clip: Path) -> dict[str, Any]:
    return {
        "path": str(clip),
        "record_id": "seed",
        "contents": "camera/front-center",
        "content_type": "video/mp4",
        "start_timestamp": 1489728491.0,
        "end_timestamp": 1489728571.0,
    }


def run_ffmpeg(clip: Path, out: Path) -> float:
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip),
         "-vf", "fps=2,scale=iw/4:-1", str(out / "%04d.jpg")],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - t0


def run_local_pool(clip: Path, out: Path) -> tuple[float, int]:
    spec = output_spec(out)
    t0 = time.perf_counter()
    plan = plan_job([clip_row(clip)], output=spec, segment_seconds=SEGMENT_SECONDS)
    job = submit_plan(
        plan,
        backend="local",
        settings=load_settings(env={}),
        output=spec,
        segment_seconds=SEGMENT_SECONDS,
        workers=WORKERS,
    )
    status = job.wait()
    wall = time.perf_counter() - t0
    assert not status.failed, job.failed_segments()
    return wall, status.images


def first_image_watch(directory: Path, started: float, found: dict[str, float]) -> None:
    """Poll for the first image under ``directory``; record seconds since ``started``."""
    deadline = started + 120
    while time.perf_counter() < deadline:
        if directory.is_dir() and any(p.suffix == ".jpg" for p in directory.iterdir()):
            found["first_image"] = time.perf_counter() - started
            return
        time.sleep(0.002)


def run_queue(clip: Path, out: Path, workdir: Path) -> dict[str, float]:
    redis = ThrowawayRedis(workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEFLEET_")}
    env.update(FRAMEFLEET_BROKER_URL=redis.url, PYTHONPATH=str(ROOT))
    log = (workdir / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "framefleet.worker", "worker", "-c", str(WORKERS),
         "--loglevel=WARNING", "--without-mingle", "--without-gossip", "--without-heartbeat",
         "-n", "bench@%h"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    settings = load_settings(env={"FRAMEFLEET_BROKER_URL": redis.url})
    store = JobStore.from_url(redis.url, ttl_seconds=3600)
    try:
        _wait_worker_ready(store)
        spec = output_spec(out)
        plan = plan_job([clip_row(clip)], output=spec, segment_seconds=SEGMENT_SECONDS)
        images_dir = out / path_safe("seed") / path_safe("camera/front-center")
        found: dict[str, float] = {}
        t0 = time.perf_counter()
        watcher = threading.Thread(target=first_image_watch, args=(images_dir, t0, found))
        watcher.start()
        submitted = submit_job(
            plan, store=store, settings=settings, output=spec, segment_seconds=SEGMENT_SECONDS
        )
        enqueued = time.perf_counter() - t0
        while not store.job(submitted.job_id).complete:
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        watcher.join()
        job = store.job(submitted.job_id)
        assert job.failed == 0, store.failed_segments(submitted.job_id)
        return {
            "wall": wall,
            "enqueue": enqueued,
            "first_image": found.get("first_image", float("nan")),
            "images": job.images,
        }
    finally:
        store.close()
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()
        redis.stop()


def _wait_worker_ready(store: JobStore) -> None:
    """Ready = a Celery worker answers on the broker (its pidbox queue is bound)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(k.startswith("_kombu.binding.framefleet") for k in store.client.keys("_kombu*")):
            time.sleep(1.0)  # the pool processes finish starting
            return
        time.sleep(0.1)
    raise RuntimeError("the Celery worker did not start")


def enqueue_rate(workdir: Path) -> dict[str, float]:
    redis = ThrowawayRedis(workdir)
    settings = load_settings(env={"FRAMEFLEET_BROKER_URL": redis.url})
    store = JobStore.from_url(redis.url, ttl_seconds=3600)
    try:
        output = output_spec(workdir / "out")
        job_id = new_job_id()
        t0 = time.perf_counter()
        messages = [
            SegmentMessage(
                job_id=job_id,
                segment_id=i,
                spec=SegmentSpec(
                    video_path=f"/data/records/{i // 8:06d}/camera_01.mp4",
                    record_id=f"{i // 8:06d}",
                    content="camera/front-center",
                    start_timestamp=1489728491.0,
                    timestamps_path=f"/data/records/{i // 8:06d}/camera_01_timestamps.csv",
                    start_seconds=(i % 8) * SEGMENT_SECONDS,
                    end_seconds=(i % 8 + 1) * SEGMENT_SECONDS if i % 8 < 7 else None,
                    output=output,
                ),
            )
            for i in range(ENQUEUE_MESSAGES)
        ]
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        store.create_job(job_id, out_dir=str(workdir), spec={}, messages=messages)
        record = time.perf_counter() - t1
        t2 = time.perf_counter()
        sent = publish_segments(
            settings.broker_url, messages, limits=checked_limits(settings, SEGMENT_SECONDS)
        )
        publish = time.perf_counter() - t2
        queued = sum(store.client.llen(name) for name in queue_lists())
        assert sent == ENQUEUE_MESSAGES == queued, (sent, queued)
        return {
            "messages": ENQUEUE_MESSAGES,
            "build_seconds": build,
            "record_seconds": record,
            "publish_seconds": publish,
            "publish_per_second": ENQUEUE_MESSAGES / publish,
            "record_and_publish_per_second": ENQUEUE_MESSAGES / (record + publish),
        }
    finally:
        store.close()
        redis.stop()


def main() -> None:
    if shutil.which("ffmpeg") is None or shutil.which("redis-server") is None:
        sys.exit("needs ffmpeg and redis-server on PATH (apt-get install ffmpeg redis-server)")
    clip = seed_clip()
    print(f"clip: {clip.name} ({clip.stat().st_size / 1e6:.0f} MB); {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp:
        work = Path(tmp)
        ffmpeg = run_ffmpeg(clip, work / "ffmpeg")
        ffmpeg_images = len(list((work / "ffmpeg").glob("*.jpg")))
        print(f"ffmpeg CLI:           {ffmpeg:6.2f} s  ({ffmpeg_images} images)")
        local, local_images = run_local_pool(clip, work / "local")
        print(f"local pool ({WORKERS} procs):  {local:6.2f} s  ({local_images} images)")
        (work / "q").mkdir()
        queue = run_queue(clip, work / "queue", work / "q")
        print(
            f"queue ({WORKERS} procs):       {queue['wall']:6.2f} s  "
            f"({queue['images']:.0f} images; enqueue {queue['enqueue'] * 1000:.0f} ms, "
            f"first image after {queue['first_image']:.2f} s)"
        )
        (work / "e").mkdir()
        rate = enqueue_rate(work / "e")
    overhead = queue["wall"] / local - 1
    print(f"queue vs ffmpeg:      {ffmpeg / queue['wall']:.2f}x faster (target >= 2.0x)")
    print(f"local vs ffmpeg:      {ffmpeg / local:.2f}x faster")
    print(f"queue overhead:       {overhead * 100:+.1f} % over the local pool (target <= 10 %)")
    print(f"first image:          {queue['first_image']:.2f} s after the enqueue (target < 1 s)")
    print(
        f"enqueue {rate['messages']:,} segments: publish {rate['publish_seconds']:.2f} s "
        f"({rate['publish_per_second']:,.0f}/s); with the job record "
        f"{rate['record_and_publish_per_second']:,.0f}/s (building the messages: "
        f"{rate['build_seconds']:.2f} s)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "ffmpeg_seconds": ffmpeg,
                "local_seconds": local,
                "queue": queue,
                "queue_overhead": overhead,
                "speedup_vs_ffmpeg": ffmpeg / queue["wall"],
                "enqueue": rate,
            },
            indent=2,
        )
    )
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
