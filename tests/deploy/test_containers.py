"""The compose deployment end to end on a real Docker engine (marker ``docker``; issue 8).

One stack for the module (`stack`): the image built from this checkout, ``up -d --scale
worker=3`` under a unique project name, recordings and output in a temp dir bind-mounted as
FRAMEFLEET_RECORDINGS / FRAMEFLEET_OUT, the containers running as 4242:4343, a non-default
POSTGRES_PASSWORD. A generated override file mounts the test's rules over configs/rules.toml and
shortens the watcher's poll and the worker healthcheck's interval; everything else is the
shipped compose file. The tests run in order and share that stack:

1. every service is healthy (start-to-healthy time measured);
2. a job from the watcher's rules; one worker container ``docker kill``ed mid-segment: the job
   completes with every expected image exactly once, and the killed segment is redone by
   another worker within 30 s (segment leases; Redis's visibility timeout alone takes 138 s);
3. a job through ``docker-compose run --rm cli extract ... --wait``, ``docker-compose restart
   redis`` mid-job: it completes, exactly; its segments spread over all 3 workers;
4. outputs belong to FRAMEFLEET_UID/GID; Flower answers and lists the workers; the password is
   in no log; ``down -v`` leaves no container, volume or network of the project.

Redis is read from the host at the redis container's address with framefleet's own JobStore.
Expected images come from a local run (``framefleet extract --local`` over a SQLite catalog of
the same recordings). Without Docker the tests skip with the reason; with ``CI`` set they fail.
Measurements are printed (``pytest -rP`` shows them).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
import redis

from framefleet.demo import RECORDS
from framefleet.jobs import JobStatus, JobStore
from tests.deploy.recordings import make_recordings
from tests.deploy.stack import (
    REPO,
    Compose,
    DockerUnavailable,
    Engine,
    docker,
    docker_env,
    ensure_engine,
    ensure_standins,
    iter_files,
    wait_for,
)

pytestmark = pytest.mark.docker

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


def _missing(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the container tests must run")
    pytest.skip(reason)


@dataclass
class Stack:
    compose: Compose
    root: Path
    out: Path
    recordings: Path
    reference: Path
    password: str
    flower_port: int
    engine: Engine
    measured: dict[str, float] = field(default_factory=dict)
    jobs: dict[str, list[str]] = field(default_factory=dict)
    """Test step -> the job ids it ran."""
    _store: JobStore | None = None

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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Engine, stand-ins, recordings and their reference images, build, ``up``; ``down -v``."""
    root = tmp_path_factory.mktemp("containers")
    try:
        engine = ensure_engine(root / "engine")
    except DockerUnavailable as e:
        _missing(str(e))
    compose = None
    try:
        try:
            measured = {"dockerd_start_s": engine.start_seconds, "standins_s": ensure_standins()}
        except DockerUnavailable as e:
            _missing(str(e))
        recordings, out, reference = root / "recordings", root / "out", root / "reference"
        recordings.mkdir()
        out.mkdir()
        os.chown(out, UID, GID)
        staging = make_recordings(root / "staging", seconds=RECORDING_SECONDS)
        _reference_run(staging, reference)

        rules = root / "rules.toml"
        rules.write_text(RULES_TOML)
        override = root / "override.yml"  # JSON is YAML
        override.write_text(json.dumps(_override(rules), indent=2))
        (root / "empty.env").write_text("")
        password = "e2e-" + secrets.token_hex(12)
        flower_port = _free_port()
        keep = ("FRAMEFLEET_", "POSTGRES_", "COMPOSE_", "FLOWER_")
        env = docker_env({k: v for k, v in os.environ.items() if not k.startswith(keep)})
        env.update(
            FRAMEFLEET_RECORDINGS=str(recordings),
            FRAMEFLEET_OUT=str(out),
            FRAMEFLEET_UID=str(UID),
            FRAMEFLEET_GID=str(GID),
            POSTGRES_PASSWORD=password,
            FLOWER_PORT=str(flower_port),
        )
        compose = Compose(
            project=f"ffe2e{os.getpid()}{secrets.token_hex(3)}",
            env=env,
            files=(REPO / "docker-compose.yml", override),
            env_file=root / "empty.env",
        )
        t0 = time.monotonic()
        compose.run("build", timeout=1200, profiles=("flower", "cli"))
        measured["build_s"] = time.monotonic() - t0
        measured["image_mb"] = int(docker("image", "inspect", "--format", "{{.Size}}",
                                          "framefleet:local")) / 1e6  # fmt: skip
        t0 = time.monotonic()
        compose.run("up", "--detach", "--scale", f"worker={WORKERS}", timeout=600)
        stack = Stack(compose, root, out, recordings, reference, password, flower_port, engine)
        wait_for(stack.healthy, timeout=180, interval=0.5, what="every service to be healthy")
        measured["start_to_healthy_s"] = time.monotonic() - t0
        stack.measured.update(measured)
        # The watcher only sees recordings that appear after it started.
        staging.rename(recordings / "records")
        yield stack
        stack.close_store()
        print("measured:", json.dumps(stack.measured, indent=1))
    finally:
        try:
            if compose is not None:
                compose.down()
        finally:
            engine.stop()


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


def _images(root: Path) -> list[str]:
    """Image paths under ``root``, relative, outside the manifest folders (_manifests, _jobs)."""
    return [
        str(p.relative_to(root))
        for p in iter_files(root)
        if not p.relative_to(root).parts[0].startswith("_")
    ]


def _assert_exact(stack: Stack, job_ids: list[str], name: str) -> int:
    """Every expected image exactly once: in the job manifests, on disk, as the reference has."""
    out, expected = stack.out / name, _images(stack.reference / name)
    on_disk = _images(out)
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


def _segment_workers(stack: Stack, job_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for job_id in job_ids:
        states = stack.read(lambda s, j=job_id: s.segments(j, list(s.segment_states(j))))
        found |= {segment.worker for segment in states if segment.state == "done"}
    return found


def _kill_mid_segment(stack: Stack, *, attempts: int = 3) -> tuple[str, int, str, float]:
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
            for job_id in _jobs_where(stack, lambda q: q.get("rule") == RULE):
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


def _jobs_where(stack: Stack, predicate: Any) -> list[str]:
    jobs = stack.read(lambda s: s.recent_jobs(50)) or []
    return sorted(j.job_id for j in jobs if predicate(j.spec.get("query", {})))


# --- the scenario ---------------------------------------------------------------------------


@pytest.mark.timeout(1500)  # a cold build: the stand-ins, then the image
def test_every_service_becomes_healthy(stack: Stack) -> None:
    assert stack.healthy()
    assert len(stack.workers()) == WORKERS, "worker hostnames must be distinct"
    print(f"start to healthy: {stack.measured['start_to_healthy_s']:.1f} s")


@pytest.mark.timeout(420)
def test_a_watcher_job_completes_exactly_when_a_worker_is_killed_mid_segment(
    stack: Stack,
) -> None:
    wait_for(
        lambda: _jobs_where(stack, lambda q: q.get("rule") == RULE),
        timeout=90,
        what=f"the watcher to enqueue rule {RULE}",
    )
    job_id, segment_id, hostname, killed_at = _kill_mid_segment(stack)

    def redone() -> Any:
        segments = stack.read(lambda s: s.segments(job_id, [segment_id]))
        return segments and segments[0].state == "done" and segments[0]

    segment = wait_for(redone, timeout=300, what=f"segment {segment_id} to be redone")
    recovery = time.monotonic() - killed_at
    stack.measured["recovery_after_kill_s"] = recovery

    def all_done() -> list[str] | None:
        # The watcher may have split the 3 front cameras over several jobs (one per poll).
        jobs = _jobs_where(stack, lambda q: q.get("rule") == RULE)
        statuses = [stack.job(j) for j in jobs]
        complete = all(s and s.complete and s.manifest for s in statuses)
        if complete and sum(s.videos for s in statuses if s) == len(RECORDS):
            return jobs
        return None

    rule_jobs = wait_for(all_done, timeout=120, what=f"the jobs of rule {RULE} to complete")
    stack.jobs["watch"] = rule_jobs
    images = _assert_exact(stack, rule_jobs, "watch")
    print(f"watcher job(s) {rule_jobs}: {images} images; killed {hostname} mid-segment "
          f"{segment_id}; redone by {segment.worker} {recovery:.1f} s after the kill")  # fmt: skip
    assert segment.worker != hostname
    assert recovery <= RECOVERY_BOUND_SECONDS, (
        f"the killed worker's segment was redone {recovery:.0f} s after the kill, not within "
        f"{RECOVERY_BOUND_SECONDS} s (segment leases)"
    )


@pytest.mark.timeout(420)
def test_a_cli_job_completes_exactly_across_a_redis_restart(stack: Stack) -> None:
    # The worker killed above comes back (a restart policy does not restart a killed container).
    stack.compose.run("up", "--detach", "--no-recreate", "--scale", f"worker={WORKERS}")
    wait_for(stack.healthy, timeout=120, interval=0.5, what="3 healthy workers again")
    log = stack.root / "cli-extract.log"
    extract = stack.compose.popen(
        "run", "--rm", "-T", "cli", "extract", "--where", REAR, "--out", "/data/out/cli",
        "--segment-seconds", "10", *IMAGE_OPTIONS, "--wait", log=log,
    )  # fmt: skip
    try:
        (job_id,) = wait_for(
            lambda: _jobs_where(stack, lambda q: q.get("where") == REAR),
            timeout=120,
            what="the cli job to be enqueued",
        )
        wait_for(
            lambda: (j := stack.job(job_id)) and j.done >= 2,
            timeout=120,
            interval=0.05,
            what="two segments of the cli job to be done",
        )
        job = stack.job(job_id)
        assert job is not None and not job.complete, "the job ended before Redis was restarted"
        t0 = time.monotonic()
        stack.compose.run("restart", "redis")
        stack.measured["redis_restart_s"] = time.monotonic() - t0
        stack.close_store()
        returncode = extract.wait(timeout=300)
    finally:
        if extract.poll() is None:
            extract.kill()
            extract.wait()
    output = log.read_text()
    stack.compose.outputs.append(output)
    assert returncode == 0, output
    assert job_id in output
    stack.jobs["cli"] = [job_id]
    images = _assert_exact(stack, [job_id], "cli")
    print(f"cli job {job_id}: {images} images across a Redis restart")


def test_segments_spread_over_every_worker(stack: Stack) -> None:
    hostnames = set(stack.workers())
    assert len(hostnames) == WORKERS
    assert _segment_workers(stack, stack.jobs["cli"]) == hostnames


def test_workers_run_within_their_cpu_and_memory_limits(stack: Stack) -> None:
    """The compose limits are applied, and a worker's peak memory (after two 1080p jobs, its
    main process and its pool process: VmHWM, page cache excluded) stays well inside them."""
    peaks = []
    for container in stack.workers().values():
        host = stack.compose.inspect(container)["HostConfig"]
        assert host["NanoCpus"] == 1_000_000_000, host["NanoCpus"]
        assert host["Memory"] == 2**30, host["Memory"]
        status = docker("exec", container, "sh", "-c", PEAK_RSS_SCRIPT)
        peaks_kb = {line.split("/")[2]: int(line.split()[1]) for line in status.splitlines()}
        peak_kb = sum(peaks_kb.values())
        peaks.append(peak_kb / 1024)
        print(f"{container[:12]} peak RSS by pid (kB): {peaks_kb}")
        assert peak_kb * 1024 < host["Memory"] / 2, f"{container[:12]}: peak {peak_kb} kB"
    stack.measured["worker_peak_rss_mb"] = max(peaks)


def test_outputs_belong_to_the_configured_user(stack: Stack) -> None:
    paths = [stack.out, *stack.out.rglob("*")]
    assert len(paths) > 100
    wrong = [f"{p} {p.stat().st_uid}:{p.stat().st_gid}" for p in paths
             if (p.stat().st_uid, p.stat().st_gid) != (UID, GID)]  # fmt: skip
    assert not wrong, f"not owned by {UID}:{GID}: {wrong[:5]}"


@pytest.mark.timeout(300)
def test_flower_answers_and_lists_the_workers(stack: Stack) -> None:
    stack.compose.run("up", "--detach", "flower", profiles=("flower",))
    url = f"http://127.0.0.1:{stack.flower_port}"

    def workers_listed() -> set[str] | None:
        try:
            with urllib.request.urlopen(f"{url}/workers?json=1", timeout=5) as response:
                if response.status != 200:
                    return None
                data = json.load(response)
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            return None
        names = {row.get("hostname") for row in data.get("data", [])}
        return names if set(stack.workers()) <= names else None

    wait_for(workers_listed, timeout=120, interval=1, what=f"Flower at {url} to list the workers")
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200


def test_no_secret_in_any_log(stack: Stack) -> None:
    logs = stack.compose.logs() + "".join(stack.compose.outputs)
    assert "celery@" in logs, "the logs were not collected"
    leaks = [line for line in logs.splitlines() if stack.password in line]
    assert not leaks, f"the PostgreSQL password is in the logs: {leaks[:3]}"


def test_no_security_warning_for_an_arbitrary_user(stack: Stack) -> None:
    """4242:4343 has no passwd or group entry in the image: a non-root user, not "root"."""
    logs = stack.compose.logs()
    assert "SecurityWarning" not in logs, [
        line for line in logs.splitlines() if "SecurityWarning" in line
    ][:3]


@pytest.mark.timeout(300)
def test_down_leaves_nothing(stack: Stack) -> None:
    stack.close_store()
    stack.compose.down()
    left = stack.compose.leftovers()
    assert left == {"containers": [], "volumes": [], "networks": []}, left
