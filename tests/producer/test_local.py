"""Local mode and the extract command's edges: no Redis anywhere in this file."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from framefleet.cli import main
from framefleet.config import load_settings
from framefleet.jobs.local_store import LocalJobStore
from framefleet.media.specs import OutputSpec
from framefleet.producer.backends import submit_plan
from framefleet.producer.local import INTERRUPTED
from framefleet.producer.plan import plan_job
from tests.clips import ClipSpec, make_clip
from tests.servers import FRAMEFLEET, Recording, manifest_lines, recording_row, wait_for

NO_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    for name in ("FRAMEFLEET_CONFIG", "FRAMEFLEET_DATABASE_URL", "FRAMEFLEET_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FRAMEFLEET_BROKER_URL", NO_REDIS)
    return CliRunner()


def _local(rows, out: Path, *, workers: int, job_id: str | None = None):
    """Plan ``rows`` and run them as a local job; the job's final status."""
    output = OutputSpec(out_dir=str(out))
    plan = plan_job(rows, output=output, segment_seconds=2.0)
    job = submit_plan(
        plan,
        backend="local",
        settings=load_settings(env={}),
        output=output,
        segment_seconds=2.0,
        job_id=job_id,
        workers=workers,
    )
    updates: list[tuple[int, int]] = []
    status = job.wait(on_update=lambda s, _: updates.append((s.done, s.failed)))
    return job, status, updates


def test_local_run_fails_only_the_broken_video_and_writes_the_job_manifest(
    small_recordings: list[Recording], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    rows = [small_recordings[2].row, recording_row(tmp_path / "gone.mp4", "gone", seconds=3.0)]

    job, status, updates = _local(rows, out, workers=2, job_id="local-test")

    assert (status.total, status.done, status.images) == (4, 2, 7)  # r2: 3.5 s at 2 fps
    failed = job.failed_segments()
    assert [s.segment_id for s in failed] == [0, 1]  # "gone" sorts first
    assert all("video not found" in (s.error or "") for s in failed)
    assert updates[-1] == (2, 2) and len(updates) >= 4
    assert status.manifest == str(out / "_jobs" / "local-test.jsonl")
    assert len(manifest_lines(status.manifest)) == status.manifest_images == 7
    assert (out / "_jobs" / "local-test.sqlite").is_file()  # the job's state, for status/retry

    _, second, _ = _local(rows, out, workers=1)
    assert second.skipped == 2 and second.total == 2  # the done segments are not redone
    assert second.manifest_images == 7  # ... but still listed


def test_extract_local_through_the_cli(
    cli: CliRunner, small_recordings: list[Recording], tmp_path: Path
) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'c.db'}"]
    added = cli.invoke(main, ["catalog", *db, "add", str(small_recordings[0].path)])
    assert added.exit_code == 0, added.output
    out = tmp_path / "out"

    result = cli.invoke(main, ["extract", *db, "--out", str(out), "--local", "--workers", "1"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("local-")
    assert "running 1 segment(s) of 1 video(s) in 1 process(es)" in result.stdout
    assert f"job {lines[0]} done: 1/1 segment(s) done, 0 failed, 0 skipped; 10 images" in (
        result.stdout
    )
    assert f"manifest: {out}/_jobs/{lines[0]}.jsonl (10 images)" in result.stdout
    assert f"job {lines[0]}: 1/1 segments (0 failed), 10 images" in result.stderr  # plain lines


def test_nothing_to_do_is_an_error_unless_allowed(
    cli: CliRunner, small_recordings: list[Recording], tmp_path: Path
) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'c.db'}"]
    cli.invoke(main, ["catalog", *db, "add", str(small_recordings[0].path)])
    args = ["extract", *db, "--out", str(tmp_path / "o"), "--record-id", "nope*"]

    refused = cli.invoke(main, args)
    assert refused.exit_code == 1
    assert "no video in the catalog" in refused.stderr
    assert "record_id='nope*'" in refused.stderr and "--allow-empty" in refused.stderr

    allowed = cli.invoke(main, [*args, "--allow-empty"])
    assert allowed.exit_code == 0 and "nothing to do" in allowed.stdout


def test_workers_without_local_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(main, ["extract", "--out", str(tmp_path), "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers applies to --local runs" in result.stderr


def test_queue_commands_name_the_unreachable_redis(cli: CliRunner) -> None:
    result = cli.invoke(main, ["status"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot use Redis at {NO_REDIS}: ")
    assert "is it running there" in result.stderr


def test_a_job_whose_segments_are_all_complete_is_a_clean_no_op(
    cli: CliRunner, small_recordings: list[Recording], tmp_path: Path
) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'c.db'}"]
    cli.invoke(main, ["catalog", *db, "add", str(small_recordings[0].path)])
    args = ["extract", *db, "--out", str(tmp_path / "out"), "--local", "--workers", "2"]
    first = cli.invoke(main, args)
    assert first.exit_code == 0, first.output

    again = cli.invoke(main, args)
    assert again.exit_code == 0, again.output
    job_id, summary = again.stdout.splitlines()
    assert job_id.startswith("local-")
    assert summary == (
        f"nothing to do: all 1 segment(s) of 1 video(s) are already complete under "
        f"{tmp_path / 'out'} (--force redoes them)"
    )
    manifest = tmp_path / "out" / "_jobs" / f"{job_id}.jsonl"
    assert len(manifest_lines(manifest)) == 10  # it lists what is there


def test_record_ids_that_sanitise_alike_never_share_images(
    small_recordings: list[Recording], tmp_path: Path
) -> None:
    video = small_recordings[2].path  # 3.5 s: 7 images each
    rows = [
        recording_row(video, "drive 1", seconds=3.5, start=100.0),
        {**recording_row(video, "drive/1", seconds=3.5, start=100.0), "contents": "video"},
    ]
    out = tmp_path / "out"
    _, status, _ = _local(rows, out, workers=2)

    assert status.images == 14 and not status.failed
    paths = [line["path"] for line in manifest_lines(status.manifest)]
    assert len(paths) == len(set(paths)) == 14
    assert len([p for p in out.rglob("*.jpg")]) == 14


def test_ctrl_c_leaves_no_segment_running_and_retry_finishes_the_job(tmp_path: Path) -> None:
    video = make_clip(tmp_path / "long.mp4", ClipSpec(frames=900, gop=30))  # 30 s, 30 segments
    db = f"sqlite:///{tmp_path / 'c.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEFLEET_")}
    env |= {"FRAMEFLEET_STATE_DIR": str(tmp_path / "state"), "FRAMEFLEET_BROKER_URL": NO_REDIS}
    run = [FRAMEFLEET]
    subprocess.run([*run, "catalog", "--db", db, "add", str(video)], env=env, check=True)
    out = tmp_path / "out"
    extract = subprocess.Popen(
        [*run, "extract", "--db", db, "--out", str(out), "--local", "--workers", "1",
         "--fps", "30", "--segment-seconds", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert extract.stdout is not None
    job_id = extract.stdout.readline().strip()  # the job id comes first
    state = out / "_jobs" / f"{job_id}.sqlite"

    def done_so_far() -> int:
        store = LocalJobStore.open(out, job_id)
        try:
            return store.job(job_id).done
        finally:
            store.close()

    wait_for(lambda: state.is_file() and done_so_far() >= 2, timeout=60, what="two segments")
    os.killpg(extract.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    extract.communicate(timeout=60)
    assert extract.returncode != 0

    store = LocalJobStore.open(out, job_id)
    try:
        job = store.job(job_id)
        assert store.running_segments(job_id) == []
        assert job.done >= 2 and job.done + job.failed == job.total == 30
        assert {s.error for s in store.failed_segments(job_id)} == {INTERRUPTED}
    finally:
        store.close()

    retried = subprocess.run(
        [*run, "retry", job_id, "--out", str(out)], env=env, capture_output=True, text=True
    )
    assert retried.returncode == 0, retried.stdout + retried.stderr
    status = subprocess.run(
        [*run, "status", job_id, "--out", str(out)], env=env, capture_output=True, text=True
    )
    store = LocalJobStore.open(out, job_id)
    try:
        job = store.job(job_id)
        assert (job.done, job.failed, job.images) == (30, 0, 900), status.stdout
    finally:
        store.close()
    assert len(manifest_lines(job.manifest)) == 900
