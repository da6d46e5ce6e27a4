"""Containers vs the host (issue 8): the seed workload through worker containers and host workers.

The seed workload (80 s, 1920x1080, 30 fps, GOP 30, ~15 Mbit/s; `_workload.seed_clip`) as one
job of 8 segments of 10 s, 2 fps, a quarter size, JPEG, submitted with the producer's API and
timed from the enqueue to the job's completion in Redis. Measured in one run:

1. the image: a ``--no-cache`` build (wheels downloaded again; the base image is there) and its
   size;
2. host baseline vs containers, with 1 and 2 workers of one process each, the same settings
   (configs/docker.toml) and no CPU limit on the containers beyond the host's cores
   (FRAMEFLEET_WORKER_CPUS = CPU count): host workers are ``framefleet worker`` processes on a
   host redis-server; containers are the compose file's ``redis`` and ``worker`` services on the
   engine. Runs alternate host / containers; the idle side is frozen meanwhile (SIGSTOP /
   ``docker pause``), so neither pays for the other's heartbeats and healthchecks;
3. 2 containers with the shipped limits (1 CPU each);
4. start-to-healthy: ``up -d --scale worker=N redis worker`` until Redis and every worker are
   healthy, with the shipped healthcheck (every 15 s);
5. recovery: a worker container ``docker kill``ed mid-segment; seconds until another worker has
   redone that segment.

Container overhead = container wall / host wall - 1 (best of ``--repeat``; target <= 5 %).
Needs root (or a running engine), docker-compose and redis-server; starts dockerd when none
answers and builds the base-image stand-ins when missing (tests/deploy/stack.py). Results go to
``bench/out/container_bench.json``. Run: ``.venv/bin/python bench/container_bench.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._workload import OUT_DIR, seed_clip  # noqa: E402
from framefleet.config import load_settings  # noqa: E402
from framefleet.jobs import JobStore  # noqa: E402
from framefleet.media.specs import OutputSpec  # noqa: E402
from framefleet.producer.plan import plan_job  # noqa: E402
from framefleet.producer.submit import submit_job  # noqa: E402
from tests.deploy.engine import (  # noqa: E402
    Compose,
    docker,
    docker_client,
    docker_env,
    ensure_engine,
    ensure_standins,
    wait_for,
)

SEGMENT_SECONDS = 10.0
RESULTS = OUT_DIR / "container_bench.json"
FRAMEFLEET = str(Path(sys.executable).with_name("framefleet"))
DOCKER_SETTINGS = ROOT / "configs" / "docker.toml"
IMAGE_UID = 10001  # the image's user: the containers write the output as it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clip_row(path: str) -> dict[str, Any]:
    """The seed clip as a catalog row (its length from the metadata: nothing is probed here)."""
    return {
        "path": path,
        "record_id": "seed",
        "contents": "camera/front-center",
        "content_type": "video/mp4",
        "start_timestamp": 1489728491.0,
        "end_timestamp": 1489728571.0,
    }


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def busy_cpu_seconds() -> float:
    """CPU time every process of the machine has used so far (idle and iowait excluded)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def process_group_cpu_seconds(groups: set[int]) -> float:
    """CPU time used so far by the live processes of these process groups."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) in groups:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def container_cpu_seconds(container: str) -> float:
    """CPU time used so far by a container's cgroup (v1 cpuacct, or v2 cpu.stat)."""
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    for v2 in (
        Path(f"/sys/fs/cgroup/system.slice/docker-{container}.scope/cpu.stat"),
        Path(f"/sys/fs/cgroup/docker/{container}/cpu.stat"),
    ):
        if v2.exists():
            usage = next(line for line in v2.read_text().splitlines() if line.startswith("usage"))
            return int(usage.split()[1]) / 1e6
    return float("nan")


def measured(ours: Callable[[], float], job: Callable[[], float]) -> dict[str, float]:
    """Run ``job`` (it returns its wall time); the CPU time it took, and what others used."""
    ours0, busy0 = ours(), busy_cpu_seconds()
    wall = job()
    cpu, busy = ours() - ours0, busy_cpu_seconds() - busy0
    return {"wall": wall, "cpu": cpu, "others": max(0.0, busy - cpu)}


def run_job(store: JobStore, *, video: str, out_dir: str) -> float:
    """Enqueue the seed job; seconds until it is complete (polled every 10 ms)."""
    spec = OutputSpec(out_dir=out_dir, target_fps="2", resize_rate=0.25, image_format="jpeg")
    settings = _settings(store)
    plan = plan_job([clip_row(video)], output=spec, segment_seconds=SEGMENT_SECONDS)
    t0 = time.perf_counter()
    submitted = submit_job(
        plan, store=store, settings=settings, output=spec, segment_seconds=SEGMENT_SECONDS
    )
    while not (job := store.job(submitted.job_id)).complete:
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    if job.failed or job.images != 160:
        errors = {s.error for s in store.failed_segments(job.job_id)}
        raise RuntimeError(f"job {job.job_id}: {job.failed} failed ({errors}), {job.images} images")
    return wall


def _settings(store: JobStore) -> Any:
    """The deployment's settings, with the broker that ``store`` talks to."""
    kwargs = store.client.connection_pool.connection_kwargs
    url = f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
    return load_settings(config_path=DOCKER_SETTINGS, env={"FRAMEFLEET_BROKER_URL": url})


# --- the host side ------------------------------------------------------------------------


class HostWorkers:
    """A redis-server and N ``framefleet worker`` processes (1 process each) on the host."""

    def __init__(self, workdir: Path, count: int) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, for the CPU accounting
        )  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEFLEET_")}
        env.update(
            FRAMEFLEET_CONFIG=str(DOCKER_SETTINGS),
            FRAMEFLEET_BROKER_URL=self.url,
            PYTHONPATH=str(ROOT),
        )
        self.logs = [workdir / f"host-worker-{i}.log" for i in range(count)]
        self.workers = []
        for i, log in enumerate(self.logs):
            with log.open("wb") as out:
                self.workers.append(
                    subprocess.Popen(
                        [FRAMEFLEET, "worker", "--concurrency", "1", "-n", f"host{i}@%h"],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        wait_for(
            lambda: all(" ready." in log.read_text() for log in self.logs),
            timeout=120,
            what="the host workers to be ready",
        )
        self.store = JobStore.from_url(self.url, ttl_seconds=3600)

    def cpu_seconds(self) -> float:
        """CPU time of the workers (all their processes) and redis-server."""
        return process_group_cpu_seconds({w.pid for w in self.workers} | {self.redis.pid})

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the workers (every process of theirs) while the containers run."""
        for worker in self.workers:
            os.killpg(worker.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for worker in self.workers:
                os.killpg(worker.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.store.close()
        for worker in self.workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            worker.wait(timeout=60)
        self.redis.terminate()
        self.redis.wait(timeout=10)


# --- the container side -------------------------------------------------------------------


class Containers:
    """The compose file's redis and worker services in a project of their own."""

    def __init__(self, workdir: Path, clip: Path) -> None:
        self.out = workdir / "out"
        self.out.mkdir()
        os.chown(self.out, IMAGE_UID, IMAGE_UID)
        (workdir / "empty.env").write_text("")
        keep = ("FRAMEFLEET_", "POSTGRES_", "COMPOSE_", "FLOWER_")
        env = docker_env({k: v for k, v in os.environ.items() if not k.startswith(keep)})
        env.update(FRAMEFLEET_RECORDINGS=str(clip.parent), FRAMEFLEET_OUT=str(self.out))
        self.compose = Compose(
            project=f"ffbench{secrets.token_hex(3)}", env=env, env_file=workdir / "empty.env"
        )
        self.video = f"/data/recordings/{clip.name}"
        self.store: JobStore | None = None

    def up(self, workers: int, *, cpus: str | None) -> float:
        """(Re)create redis and N workers; seconds until all are healthy."""
        if cpus is None:
            self.compose.env.pop("FRAMEFLEET_WORKER_CPUS", None)
        else:
            self.compose.env["FRAMEFLEET_WORKER_CPUS"] = cpus
        self.down()
        t0 = time.monotonic()
        self.compose.run("up", "--detach", "--scale", f"worker={workers}", "redis", "worker")

        def healthy() -> bool:
            ids = self.compose.containers("worker") + self.compose.containers("redis")
            states = [self.compose.health(c) for c in ids]
            return len(ids) == workers + 1 and states == ["healthy"] * len(ids)

        wait_for(healthy, timeout=180, interval=0.2, what=f"redis and {workers} healthy workers")
        seconds = time.monotonic() - t0
        (redis,) = self.compose.containers("redis")
        self.store = JobStore.from_url(f"redis://{self.compose.ip(redis)}:6379/0", ttl_seconds=3600)
        return seconds

    def cpu_seconds(self) -> float:
        """CPU time of the project's containers (redis and the workers)."""
        return sum(container_cpu_seconds(c) for c in self.compose.containers())

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """``docker pause`` the workers while the host runs."""
        workers = self.compose.containers("worker")
        for c in workers:
            docker("pause", c)
        try:
            yield
        finally:
            for c in workers:
                docker("unpause", c)

    def down(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        self.compose.down()


def measure_recovery(containers: Containers, run: int) -> dict[str, float]:
    """Kill the worker of a freshly started segment; seconds until another worker redid it."""
    store = containers.store
    assert store is not None
    spec = OutputSpec(out_dir=f"/data/out/kill-{run}", target_fps="2", resize_rate=0.25)
    settings = _settings(store)
    plan = plan_job([clip_row(containers.video)], output=spec, segment_seconds=SEGMENT_SECONDS)
    workers = {
        f"celery@{containers.compose.hostname(c)}": c
        for c in containers.compose.containers("worker")
    }
    job_id = submit_job(
        plan, store=store, settings=settings, output=spec, segment_seconds=SEGMENT_SECONDS
    ).job_id
    seen = {(s.segment_id, s.attempts) for s in store.running_segments(job_id)}
    while True:
        running = store.running_segments(job_id)
        fresh = [s for s in running if (s.segment_id, s.attempts) not in seen]
        if fresh and fresh[0].worker in workers:
            break
        seen |= {(s.segment_id, s.attempts) for s in running}
        if store.job(job_id).complete:
            raise RuntimeError("the job ended before a segment could be killed")
        time.sleep(0.05)
    victim = fresh[0]
    docker("kill", workers[str(victim.worker)])
    killed = time.perf_counter()
    (after,) = store.segments(job_id, [victim.segment_id])
    if after.state != "running":
        raise RuntimeError(f"the kill landed after the segment ended: {after}")

    def redone() -> Any:
        (segment,) = store.segments(job_id, [victim.segment_id])
        return segment.state == "done" and segment

    segment = wait_for(redone, timeout=300, interval=0.05, what="the killed segment to be redone")
    recovery = time.perf_counter() - killed
    wait_for(lambda: store.job(job_id).complete, timeout=300, what="the job to complete")
    job = store.job(job_id)
    return {
        "recovery_s": recovery,
        "job_after_kill_s": time.perf_counter() - killed,
        "redone_by_another": float(segment.worker != victim.worker),
        "failed": float(job.failed),
        "images": float(job.images),
    }


def build(context: Path) -> dict[str, float]:
    """A --no-cache build of the runtime image, then its size."""
    tag = f"framefleet:bench-{secrets.token_hex(3)}"
    t0 = time.monotonic()
    subprocess.run(
        [docker_client(), "build", "--no-cache", "--quiet", "--tag", tag, str(context)],
        env=docker_env(), check=True, capture_output=True, timeout=1800,
    )  # fmt: skip
    seconds = time.monotonic() - t0
    size = int(docker("image", "inspect", "--format", "{{.Size}}", tag)) / 1e6
    docker("rmi", tag)
    return {"build_no_cache_s": seconds, "image_mb": size}


# --- the run --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (best)")
    parser.add_argument("--skip-build", action="store_true", help="no --no-cache build")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("needs redis-server on PATH (apt-get install redis-server)")
    cpus = str(os.cpu_count() or 1)
    clip = seed_clip().resolve()  # mounted into the containers: no symlink
    results: dict[str, Any] = {"cpus": cpus, "clip": clip.name, "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="container-bench-") as tmp:
        work = Path(tmp)
        engine = ensure_engine(work / "engine")
        try:
            results["standins_s"] = ensure_standins()
            if not args.skip_build:
                results.update(build(ROOT))
                print(f"build --no-cache: {results['build_no_cache_s']:.1f} s, "
                      f"image {results['image_mb']:.0f} MB")  # fmt: skip
            containers = Containers(work, clip)
            containers.compose.run("build", "worker", timeout=1800)
            try:
                results.update(compare(work, clip, containers, cpus, args.repeat))
            finally:
                containers.down()
        finally:
            engine.stop()
    report(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {RESULTS}")


def compare(
    work: Path, clip: Path, containers: Containers, cpus: str, repeat: int
) -> dict[str, Any]:
    """Alternate host and container runs for 1 and 2 workers; then the shipped limits, a kill."""
    out: dict[str, Any] = {}
    run = 0
    for n in (1, 2):
        host = HostWorkers(work, n)
        try:
            out[f"healthy_{n}_s"] = containers.up(n, cpus=cpus)
            print(f"{n} worker(s): containers healthy {out[f'healthy_{n}_s']:.1f} s after `up`")
            store = containers.store
            assert store is not None
            out[f"host_{n}"], out[f"containers_{n}"] = [], []
            for _ in range(repeat):
                run += 1
                with containers.frozen():
                    job = partial(run_job, host.store, video=str(clip), out_dir=f"{work}/h{run}")
                    out[f"host_{n}"].append(measured(host.cpu_seconds, job))
                with host.frozen():
                    job = partial(
                        run_job, store, video=containers.video, out_dir=f"/data/out/{run}"
                    )
                    out[f"containers_{n}"].append(measured(containers.cpu_seconds, job))
                print(f"  host {_row(out[f'host_{n}'][-1])} | containers "
                      f"{_row(out[f'containers_{n}'][-1])}")  # fmt: skip
        finally:
            host.stop()
    # The shipped limits: 1 CPU per worker container.
    out["healthy_2_limited_s"] = containers.up(2, cpus=None)
    store = containers.store
    assert store is not None
    out["containers_2_limited"] = []
    for _ in range(repeat):
        run += 1
        job = partial(run_job, store, video=containers.video, out_dir=f"/data/out/limited-{run}")
        out["containers_2_limited"].append(measured(containers.cpu_seconds, job))
        print(f"  containers, 1 CPU each {_row(out['containers_2_limited'][-1])}")
    out["recovery"] = measure_recovery(containers, run)
    return out


def _row(m: dict[str, float]) -> str:
    return f"{m['wall']:6.2f} s wall, {m['cpu']:6.2f} CPU s, others {m['others']:5.2f} CPU s"


def report(r: dict[str, Any]) -> None:
    print(
        f"\n{r['clip']}, {r['cpus']} CPUs, {r['repeat']} runs each: the best wall time, the "
        "median CPU time of the job (workers and Redis), the median CPU time other processes "
        "used meanwhile"
    )
    rows = [
        ("host, 1 worker", "host_1"),
        ("containers, 1 worker", "containers_1"),
        ("host, 2 workers", "host_2"),
        ("containers, 2 workers", "containers_2"),
        ("containers, 2 workers, 1 CPU each", "containers_2_limited"),
    ]
    print(f"  {'':<36} {'wall s':>7} {'CPU s':>7} {'others':>7}")
    for label, key in rows:
        runs = r[key]
        wall = min(m["wall"] for m in runs)
        cpu = statistics.median(m["cpu"] for m in runs)
        others = statistics.median(m["others"] for m in runs)
        r[key + "_summary"] = {"wall": wall, "cpu": cpu, "others": others}
        print(f"  {label:<36} {wall:7.2f} {cpu:7.2f} {others:7.2f}")
    for n in (1, 2):
        host, cont = r[f"host_{n}_summary"], r[f"containers_{n}_summary"]
        r[f"overhead_{n}"] = {
            "wall": cont["wall"] / host["wall"] - 1,
            "cpu": cont["cpu"] / host["cpu"] - 1,
        }
        print(
            f"  container overhead, {n} worker(s): wall {r[f'overhead_{n}']['wall'] * 100:+.1f} %, "
            f"CPU {r[f'overhead_{n}']['cpu'] * 100:+.1f} % (target <= 5 %)"
        )
    limited = r["containers_2_limited_summary"]["wall"] / r["host_2_summary"]["wall"]
    print(f"  2 containers of 1 CPU vs 2 host workers: {limited:.2f}x the host's wall time")
    if "build_no_cache_s" in r:
        print(f"  build --no-cache {r['build_no_cache_s']:.1f} s; image {r['image_mb']:.0f} MB "
              "(target <= 400 MB)")  # fmt: skip
    print(
        f"  start to healthy: {r['healthy_1_s']:.1f} s (1 worker), {r['healthy_2_s']:.1f} s (2), "
        "healthcheck every 15 s"
    )
    rec = r["recovery"]
    print(
        f"  recovery after a docker kill: segment redone {rec['recovery_s']:.1f} s after the kill "
        f"(target <= 30 s); job complete {rec['job_after_kill_s']:.1f} s after it"
    )


if __name__ == "__main__":
    main()
