"""The compose deployment end to end on a real Docker engine (marker ``docker``; issue 8).

One stack for the session (`stack`, see tests/deploy/stack.py): the image built from this
checkout, ``up -d --scale worker=3`` under a unique project name, recordings and output in a
temp dir bind-mounted as FRAMEFLEET_RECORDINGS / FRAMEFLEET_OUT, the containers running as
4242:4343, a non-default POSTGRES_PASSWORD. A generated override file mounts the test's rules
over configs/rules.toml and shortens the watcher's poll and the worker healthcheck's interval;
everything else is the shipped compose file. The tests run in order and share that stack:

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
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from framefleet.demo import BAG_RECORD, RECORDS
from tests.deploy.engine import docker, wait_for
from tests.deploy.stack import (
    GID,
    IMAGE_OPTIONS,
    PEAK_RSS_SCRIPT,
    REAR,
    RECOVERY_BOUND_SECONDS,
    RULE,
    UID,
    WORKERS,
    Stack,
    assert_exact,
    jobs_where,
    kill_mid_segment,
    segment_workers,
)

pytestmark = pytest.mark.docker


@pytest.mark.timeout(1500)  # a cold build: the stand-ins, then the image
def test_every_service_becomes_healthy(stack: Stack) -> None:
    assert stack.healthy()
    assert len(stack.workers()) == WORKERS, "worker hostnames must be distinct"
    print(f"start to healthy: {stack.measured['start_to_healthy_s']:.1f} s")


CAMERAS_OF_RULE = [*(record for record, _ in RECORDS), BAG_RECORD[0]]
"""The front cameras the watcher's rule matches: one per mp4 recording, and the bag's topic."""


@pytest.mark.timeout(420)
def test_a_watcher_job_completes_exactly_when_a_worker_is_killed_mid_segment(
    stack: Stack,
) -> None:
    wait_for(
        lambda: jobs_where(stack, lambda q: q.get("rule") == RULE),
        timeout=90,
        what=f"the watcher to enqueue rule {RULE}",
    )
    job_id, segment_id, hostname, killed_at = kill_mid_segment(stack)

    def redone() -> Any:
        segments = stack.read(lambda s: s.segments(job_id, [segment_id]))
        return segments and segments[0].state == "done" and segments[0]

    segment = wait_for(redone, timeout=300, what=f"segment {segment_id} to be redone")
    recovery = time.monotonic() - killed_at
    stack.measured["recovery_after_kill_s"] = recovery

    def all_done() -> list[str] | None:
        # The watcher may have split the 3 front cameras over several jobs (one per poll).
        jobs = jobs_where(stack, lambda q: q.get("rule") == RULE)
        statuses = [stack.job(j) for j in jobs]
        complete = all(s and s.complete and s.manifest for s in statuses)
        if complete and sum(s.videos for s in statuses if s) == len(CAMERAS_OF_RULE):
            return jobs
        return None

    rule_jobs = wait_for(all_done, timeout=120, what=f"the jobs of rule {RULE} to complete")
    stack.jobs["watch"] = rule_jobs
    images = assert_exact(stack, rule_jobs, "watch")
    print(f"watcher job(s) {rule_jobs}: {images} images; killed {hostname} mid-segment "
          f"{segment_id}; redone by {segment.worker} {recovery:.1f} s after the kill")  # fmt: skip
    assert segment.worker != hostname
    assert recovery <= RECOVERY_BOUND_SECONDS, (
        f"the killed worker's segment was redone {recovery:.0f} s after the kill, not within "
        f"{RECOVERY_BOUND_SECONDS} s (segment leases)"
    )


@pytest.mark.timeout(420)
def test_a_cli_job_completes_exactly_across_a_redis_restart(stack: Stack) -> None:
    # All 3 workers for this job: `up` starts the one killed above unless its restart policy did.
    stack.compose.run("up", "--detach", "--no-recreate", "--scale", f"worker={WORKERS}")
    wait_for(stack.healthy, timeout=120, interval=0.5, what="3 healthy workers again")
    log = stack.root / "cli-extract.log"
    extract = stack.compose.popen(
        "run", "--rm", "-T", "cli", "extract", "--where", REAR, "--out", "/data/out/cli",
        "--segment-seconds", "10", *IMAGE_OPTIONS, "--wait", log=log,
    )  # fmt: skip
    try:
        (job_id,) = wait_for(
            lambda: jobs_where(stack, lambda q: q.get("where") == REAR),
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
    images = assert_exact(stack, [job_id], "cli")
    print(f"cli job {job_id}: {images} images across a Redis restart")


def test_segments_spread_over_every_worker(stack: Stack) -> None:
    hostnames = set(stack.workers())
    assert len(hostnames) == WORKERS
    assert segment_workers(stack, stack.jobs["cli"]) == hostnames


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
