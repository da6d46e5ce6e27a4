"""The deployment the container test runs: the compose stack, its job store, its checks.

`start_stack` builds and starts it: the engine (started when none answers), the base-image
stand-ins, recordings generated in a temp dir with their expected images (a local reference
run), ``docker-compose build``, ``up -d --scale worker=3`` with a unique project name, the
containers running as 4242:4343, a non-default POSTGRES_PASSWORD, and an override file with the
test-only knobs (the test's rules mounted over configs/rules.toml, a faster watcher poll and
worker healthcheck). `Stack` reads Redis from the host, at the redis container's address, with
framefleet's own JobStore, and holds the checks the scenario asserts.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from framefleet.jobs import JobStatus, JobStore
from tests.deploy.engine import (
    REPO,
    Compose,
    Engine,
    docker,
    docker_env,
    ensure_standins,
    iter_files,
    wait_for,
)
from tests.deploy.recordings import make_recordings

UID, GID = 4242, 4343
WORKERS = 3
RECORDING_SECONDS = 40
RECOVERY_BOUND_SECONDS = 30
RULE = "e2e-front-center"
FRONT = 'tags like "%front%" and tags like "%center%"'
REAR = 'tags like "%rear%"'
IMAGE_OPTIONS = ["--fps", "2", "--resize", "0.25", "--format", "jpeg", "--quality", "90"]
RULES_TOML = f"""
[[rules]]
name = "{RULE}"
where = '{FRONT}'
out = "/data/out/watch"
fps = "2"
resize = 0.25
format = "jpeg"
quality = 90
mode = "exact"
segment_seconds = 10
"""
WATCH_COMMAND = ["watch", "/data/recordings", "--rules", "/app/configs/rules.toml"]
PEAK_RSS_SCRIPT = """
for f in /proc/[0-9]*/status; do
  [ "$f" = /proc/$$/status ] || grep -H VmHWM "$f" 2>/dev/null
done
true
"""
"""Peak RSS of every process in a container but this shell: tini, Celery's main, the pool
process, a running healthcheck (the glob is expanded before grep starts)."""
FRAMEFLEET = str(Path(sys.executable).with_name("framefleet"))


@dataclass
class Stack:
    compose: Compose
    root: Path
    out: Path
    recordings: Path
    reference: Path
    engine: Engine
    measured: dict[str, float] = field(default_factory=dict)
    jobs: dict[str, list[str]] = field(default_factory=dict)
    """Test step -> the job ids it ran."""
    _store: JobStore | None = None

    @property
    def password(self) -> str:
        return self.compose.env["POSTGRES_PASSWORD"]

    @property
    def flower_port(self) -> int:
        return int(self.compose.env["FLOWER_PORT"])

    # --- the job store, read from the host ------------------------------------------------------

    def store(self) -> JobStore:
        """framefleet's JobStore on the redis container's current address."""
        if self._store is None:
            (redis_container,) = self.compose.containers("redis")
            url = f"redis://{self.compose.ip(redis_container)}:6379/0"
            self._store = JobStore.from_url(url, ttl_seconds=3600)
        return self._store

    def read(self, what: Any) -> Any:
        """``what(store)``, or None while Redis does not answer (it is being restarted)."""
        try:
            return what(self.store())
        except (redis.ConnectionError, redis.TimeoutError, ValueError):
            self.close_store()
            return None

    def close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def job(self, job_id: str) -> JobStatus | None:
        status: JobStatus | None = self.read(lambda s: s.job(job_id))
        return status

    # --- containers -----------------------------------------------------------------------------

    def workers(self) -> dict[str, str]:
        """Celery hostname -> container id, for the running worker containers."""
        return {f"celery@{self.compose.hostname(c)}": c for c in self.compose.containers("worker")}

    def healthy(self) -> bool:
        c = self.compose
        workers = c.containers("worker")
        migrate = c.containers("migrate", all=True)
        if len(workers) != WORKERS or not migrate:
            return False
        exit_code = c.inspect(migrate[0])["State"]["ExitCode"]
        if c.health(migrate[0]) == "exited" and exit_code != 0:
            raise AssertionError(f"migrate exited with {exit_code}:\n{c.logs()[-3000:]}")
        services = [*workers, *c.containers("redis"), *c.containers("postgres")]
        return (
            len(services) == WORKERS + 2
            and all(c.health(s) == "healthy" for s in services)
            and c.health(migrate[0]) == "exited"
            and [c.health(w) for w in c.containers("watcher")] == ["running"]
        )


def stack_compose(root: Path) -> Compose:
    """The test's compose project: a unique name, the override file, the environment."""
    rules = root / "rules.toml"
    rules.write_text(RULES_TOML)
    override = root / "override.yml"  # JSON is YAML
    override.write_text(json.dumps(_override(rules), indent=2))
    (root / "empty.env").write_text("")
    keep = ("FRAMEFLEET_", "POSTGRES_", "COMPOSE_", "FLOWER_")
    env = docker_env({k: v for k, v in os.environ.items() if not k.startswith(keep)})
    env.update(
        FRAMEFLEET_RECORDINGS=str(root / "recordings"),
        FRAMEFLEET_OUT=str(root / "out"),
        FRAMEFLEET_UID=str(UID),
        FRAMEFLEET_GID=str(GID),
        POSTGRES_PASSWORD="e2e-" + secrets.token_hex(12),
        FLOWER_PORT=str(_free_port()),
    )
    return Compose(
        project=f"ffe2e{os.getpid()}{secrets.token_hex(3)}",
        env=env,
        files=(REPO / "docker-compose.yml", override),
        env_file=root / "empty.env",
    )


def start_stack(root: Path, engine: Engine, compose: Compose) -> Stack:
    """Stand-ins, recordings, reference images, build, ``up``; returns once all are healthy.

    The caller runs ``compose.down()`` afterwards, also when this raises.
    """
    measured = {"dockerd_start_s": engine.start_seconds, "standins_s": ensure_standins()}
    recordings, out, reference = root / "recordings", root / "out", root / "reference"
    recordings.mkdir()
    out.mkdir()
    os.chown(out, UID, GID)
    staging = make_recordings(root / "staging", seconds=RECORDING_SECONDS)
    _reference_run(staging, reference)
    t0 = time.monotonic()
    compose.run("build", timeout=1200, profiles=("flower", "cli"))
    measured["build_s"] = time.monotonic() - t0
    size = docker("image", "inspect", "--format", "{{.Size}}", "framefleet:local")
    measured["image_mb"] = int(size) / 1e6
    t0 = time.monotonic()
    compose.run("up", "--detach", "--scale", f"worker={WORKERS}", timeout=600)
    stack = Stack(compose, root, out, recordings, reference, engine)
    wait_for(stack.healthy, timeout=180, interval=0.5, what="every service to be healthy")
    measured["start_to_healthy_s"] = time.monotonic() - t0
    stack.measured.update(measured)
    # The watcher only sees recordings that appear after it started.
    staging.rename(recordings / "records")
    return stack


def _override(rules: Path) -> dict[str, Any]:
    """Test-only knobs: the test's rules, a faster watcher and worker healthcheck."""
    return {
        "services": {
            "watcher": {
                "command": [*WATCH_COMMAND, "--interval", "1", "--settle", "2"],
                "volumes": [f"{rules}:/app/configs/rules.toml:ro"],
            },
            "worker": {"healthcheck": {"interval": "5s", "start_period": "60s"}},
        }
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reference_run(records: Path, reference: Path) -> None:
    """The expected images: ``extract --local`` over a SQLite catalog of the same recordings."""
    reference.mkdir()
    db = f"sqlite:///{reference / 'catalog.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEFLEET_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    commands = [
        ["catalog", "--db", db, "add", str(records)],
        ["extract", "--db", db, "--local", "--where", FRONT, "--out", str(reference / "watch"),
         "--segment-seconds", "10", *IMAGE_OPTIONS],
        ["extract", "--db", db, "--local", "--where", REAR, "--out", str(reference / "cli"),
         "--segment-seconds", "10", *IMAGE_OPTIONS],
    ]  # fmt: skip
    for args in commands:
        result = subprocess.run(
            [FRAMEFLEET, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, f"framefleet {args}: {result.stdout}\n{result.stderr}"


# --- checks ---------------------------------------------------------------------------------


def images(root: Path) -> list[str]:
    """Image paths under ``root``, relative, outside the manifest folders (_manifests, _jobs)."""
    return [
        str(p.relative_to(root))
        for p in iter_files(root)
        if not p.relative_to(root).parts[0].startswith("_")
    ]


def assert_exact(stack: Stack, job_ids: list[str], name: str) -> int:
    """Every expected image exactly once: in the job manifests, on disk, as the reference has."""
    out, expected = stack.out / name, images(stack.reference / name)
    on_disk = images(out)
    assert not [p for p in on_disk if Path(p).name.startswith(".")], "temp files left"
    lines: list[dict[str, Any]] = []
    for job_id in job_ids:
        job = stack.job(job_id)
        assert job is not None and job.complete, job
        assert job.failed == 0, stack.read(lambda s, j=job_id: s.failed_segments(j))
        assert job.manifest, f"job {job_id} has no manifest"
        manifest = out / Path(job.manifest).relative_to(f"/data/out/{name}")
        lines += [json.loads(line) for line in manifest.read_text().splitlines() if line]
    listed = [line["path"] for line in lines]
    duplicates = sorted({p for p in listed if listed.count(p) > 1})
    assert not duplicates, f"images listed more than once: {duplicates[:5]}"
    assert sorted(listed) == on_disk, "job manifests and files on disk differ"
    missing, extra = sorted(set(expected) - set(on_disk)), sorted(set(on_disk) - set(expected))
    assert not missing and not extra, f"missing {missing[:5]}, unexpected {extra[:5]}"
    for line in lines:
        assert (out / line["path"]).stat().st_size == line["bytes"], line
    return len(on_disk)


def segment_workers(stack: Stack, job_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for job_id in job_ids:
        states = stack.read(lambda s, j=job_id: s.segments(j, list(s.segment_states(j))))
        found |= {segment.worker for segment in states if segment.state == "done"}
    return found


def kill_mid_segment(stack: Stack, *, attempts: int = 3) -> tuple[str, int, str, float]:
    """``docker kill`` the worker of a segment that has just started; (job, segment, worker, t).

    A segment is taken when it shows up as running between two polls 50 ms apart, so most of it
    is still ahead. Should it still end before the kill (it lasts a second or two), the killed
    container is started again and the next fresh segment is taken.
    """
    for _ in range(attempts):
        workers = stack.workers()
        seen: set[tuple[str, int, int]] | None = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            running = {}
            for job_id in jobs_where(stack, lambda q: q.get("rule") == RULE):
                for seg in stack.read(lambda s, j=job_id: s.running_segments(j)) or []:
                    running[(job_id, seg.segment_id, seg.attempts)] = seg
            fresh = [
                (key, seg)
                for key, seg in running.items()
                if seen is not None and key not in seen and seg.worker in workers
            ]
            if fresh:
                (job_id, segment_id, _), segment = fresh[0]
                docker("kill", workers[segment.worker])
                killed_at = time.monotonic()
                break
            seen = (seen or set()) | set(running)
            time.sleep(0.05)
        else:
            pytest.fail("no segment started within 90 s; is the watcher's job too short?")
        (after,) = stack.read(lambda s, j=job_id, i=segment_id: s.segments(j, [i]))
        if after.state == "running":
            return job_id, segment_id, segment.worker, killed_at
        print(f"the kill of {segment.worker} landed after its segment ended ({after}); again")
        docker("start", workers[segment.worker])
        wait_for(stack.healthy, timeout=120, interval=0.5, what="3 healthy workers again")
    pytest.fail(f"no kill landed mid-segment in {attempts} attempts: segments are too short")


def jobs_where(stack: Stack, predicate: Any) -> list[str]:
    jobs = stack.read(lambda s: s.recent_jobs(50)) or []
    return sorted(j.job_id for j in jobs if predicate(j.spec.get("query", {})))
