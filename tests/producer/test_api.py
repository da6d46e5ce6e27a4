"""The Python job API (`framefleet.extract` / `submit`) and local jobs found again by their id:
``status`` and ``retry`` work for them as for queued jobs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import framefleet
from framefleet.catalog import Catalog, ingest_paths
from framefleet.cli import main
from framefleet.config import Settings, load_settings
from framefleet.errors import ConfigError, NothingToDoError
from framefleet.media.probe import probe_video
from framefleet.producer.backends import LocalJob, QueuedJob, open_job
from tests.servers import Recording, Workers, manifest_lines


@pytest.fixture
def catalog_url(tmp_path: Path, small_recordings: list[Recording]) -> str:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    with Catalog(url) as catalog:
        report = ingest_paths(catalog, [small_recordings[0].path], probe=probe_video)
    assert report.added == 1
    return url


def test_extract_runs_a_query_to_images_in_a_local_pool(catalog_url: str, tmp_path: Path) -> None:
    seen: list[int] = []
    status = framefleet.extract(
        catalog=catalog_url,
        out=tmp_path / "out",
        fps=2,
        resize=0.5,
        segment_seconds=2,
        workers=2,
        progress=lambda s: seen.append(s.done),
        settings=load_settings(env={}),
    )
    assert (status.state, status.done, status.total, status.images) == ("done", 3, 3, 10)
    assert status.mode == "local" and status.manifest is not None
    assert len(manifest_lines(status.manifest)) == status.manifest_images == 10
    assert seen[-1] == 3 and len(seen) >= 3


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"backend": "spark"}, "backend must be one of local, celery, got 'spark'"),
        ({"workers": 0}, r"workers must be a whole number in 1\.\.1024, got 0"),
        ({"workers": 2, "backend": "celery"}, "workers applies to the local backend"),
        ({"segment_seconds": math.nan}, r"segment_seconds must be a number in \(0, 86400\]"),
        ({"fps": "abc"}, "fps must be a number such as 2"),
        ({"resize": 0.5, "max_side_px": 100}, r"choose one way to resize; got --resize"),
        ({"quality": 0}, r"quality must be a whole number in 1\.\.100"),
        ({"image_format": "gif"}, "image format must be one of jpeg, png, webp"),
    ],
)
def test_options_are_checked_at_the_call(
    catalog_url: str, tmp_path: Path, options: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        framefleet.submit(catalog=catalog_url, out=tmp_path / "out", **options)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()  # nothing started


def test_a_query_matching_nothing_says_so(catalog_url: str, tmp_path: Path) -> None:
    with pytest.raises(NothingToDoError, match=r"no video in the catalog .* matches \(where="):
        framefleet.submit('record_id = "nope"', catalog=catalog_url, out=tmp_path / "o")


def test_a_local_job_answers_status_and_retry_by_its_id(
    tmp_path: Path, small_recordings: list[Recording]
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(small_recordings[2].path, videos / "a.mp4")
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    with Catalog(url) as catalog:
        ingest_paths(catalog, [videos], probe=probe_video)
    (videos / "a.mp4").rename(tmp_path / "aside.mp4")  # the video goes missing after ingest
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["extract", "--db", url, "--out", str(out), "--local", "--segment-seconds", "2"]

    first = runner.invoke(main, args)
    assert first.exit_code == 1, first.output
    job_id = first.stdout.splitlines()[0]
    assert "video not found" in first.stdout

    status = runner.invoke(main, ["status", job_id])
    assert status.exit_code == 0, status.output
    assert f"job {job_id}: failed (local)" in status.stdout
    assert "2 failed segment(s)" in status.stdout and "video not found" in status.stdout
    listed = runner.invoke(main, ["status", "--broker", "redis://127.0.0.1:1/0"])
    assert job_id in listed.stdout and "queued jobs not shown" in listed.stdout

    (tmp_path / "aside.mp4").rename(videos / "a.mp4")  # back, unchanged: retry can run it
    retried = runner.invoke(main, ["retry", job_id])
    assert retried.exit_code == 0, retried.output
    assert f"running 2 failed segment(s) of job {job_id}" in retried.stdout
    assert f"job {job_id} done: 2/2 segment(s) done, 0 failed" in retried.stdout
    job = open_job(job_id, settings=load_settings(env={}), out_dir=str(out))
    assert isinstance(job, LocalJob) and job.status().manifest_images == 7


def test_the_same_api_submits_to_celery_workers(
    catalog_url: str, tmp_path: Path, settings: Settings, workers: Workers
) -> None:
    workers.start("w1")
    job = framefleet.submit(
        catalog=catalog_url, out=tmp_path / "out", backend="celery", settings=settings
    )
    assert isinstance(job, QueuedJob) and job.enqueued == 3  # 5 s in segments of 2 s
    status = job.wait(timeout_seconds=60)
    assert (status.state, status.images, status.mode) == ("done", 10, "queue")
    again = open_job(job.job_id, settings=settings)
    assert again.status().manifest == status.manifest


def test_extract_at_times_and_sync_through_the_cli(tmp_path: Path) -> None:
    from framefleet.media.synthetic import ClipSpec, make_clip

    videos = tmp_path / "videos"
    videos.mkdir()
    for name, content, start in (("front", "camera/front", 100.0), ("rear", "camera/rear", 100.3)):
        video = make_clip(videos / f"{name}.mp4", ClipSpec(frames=60))
        meta = {"record_id": "r", "path": f"{name}.mp4", "start_timestamp": start}
        (videos / f"{name}.mp4.json").write_text(json.dumps({**meta, "contents": content}))
        assert video.is_file()
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["catalog", "add", "--db", url, str(videos)]).exit_code == 0

    synced = runner.invoke(
        main,
        ["extract", "--db", url, "--out", str(tmp_path / "sync"), "--local", "--sync",
         "--max-skew", "40"],
    )  # fmt: skip
    assert synced.exit_code == 0, synced.output
    lines = (tmp_path / "sync" / "_framesets" / "r.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["grid_time"] == 100.0 and first["cameras"]["camera/rear"] is None
    assert not first["complete"] and json.loads(lines[1])["complete"]

    times = tmp_path / "lidar.txt"
    times.write_text("100.1\n100.45\n101.9\n")
    at = runner.invoke(
        main,
        ["extract", "--db", url, "--out", str(tmp_path / "at"), "--local", "--at-times",
         str(times), "--max-gap", "100"],
    )  # fmt: skip
    assert at.exit_code == 0, at.output
    manifest = manifest_lines(next((tmp_path / "at" / "_jobs").glob("*.jsonl")))
    answered = sorted(t for line in manifest for t in line.get("requested_times", []))
    assert answered == [100.1, 100.45, 100.45, 101.9, 101.9]  # rear: from 100.3 on
    assert [line["requested_time"] for line in manifest if "missing" in line] == [100.1]


def test_exports_and_registration_when_the_job_completes(tmp_path: Path, catalog_url: str):
    import tarfile

    import pyarrow.parquet as pq

    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["extract", "--db", catalog_url, "--out", str(out), "--local", "--export", "parquet",
         "--export", "webdataset", "--shard-size", "4", "--register"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job_id = result.stdout.splitlines()[0]
    lines = manifest_lines(out / "_jobs" / f"{job_id}.jsonl")
    table = pq.read_table(out / "_jobs" / f"{job_id}.parquet").to_pylist()
    assert [row["path"] for row in table] == [line["path"] for line in lines]
    assert all(row["source_tags"] == ["video"] for row in table)
    shards = sorted((out / "_exports" / job_id).glob("shard-*.tar"))
    assert len(shards) == 3  # 10 images, 4 a shard
    with tarfile.open(shards[0]) as tar:
        names = tar.getnames()
    assert len(names) == 8 and names[0].endswith(".jpg") and names[1].endswith(".json")
    assert "catalog: registered 10 images (0 updated, 0 unchanged" in result.stdout

    with Catalog(catalog_url) as catalog:
        rows = list(catalog.query('tags like "%extracted%"'))
        assert len(rows) == 10 and all(r["data_type"] == "derived" for r in rows)
        assert {tuple(r["tags"])[-1] for r in rows} == {"2fps-full-jpeg"}
    again = CliRunner().invoke(main, ["register", job_id, "--db", catalog_url])
    assert again.exit_code == 0, again.output
    assert "registered 0 images (0 updated, 10 unchanged" in again.output  # idempotent
