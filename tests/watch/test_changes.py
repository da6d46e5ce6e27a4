"""The watcher and files that change: a video cut short then completed, a video replaced under
the same name, a sidecar that arrives after its video. Each change is ingested again, enqueued
again, and replaces the earlier images; every manifest keeps describing the files on disk.

The watcher runs in-process with a real SQLite catalog; its jobs run in the local pool (the
queue path is covered by test_watcher.py), so each poll's extraction is complete when it returns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from framefleet.catalog import Catalog
from framefleet.config import load_settings
from framefleet.errors import JobNotFoundError
from framefleet.jobs.completion import Completion
from framefleet.media.specs import OutputSpec
from framefleet.producer.backends import submit_plan
from framefleet.producer.plan import plan_job
from framefleet.producer.registration import register_job
from framefleet.watch.rules import Rule, make_rule
from framefleet.watch.watcher import Watcher
from tests.clips import ClipSpec, camera_times_ms, make_clip

START_MS = 1_489_728_491_000


def _sidecar(path: Path, record_id: str, frames: int) -> None:
    clock = camera_times_ms(START_MS, frames)
    meta = {
        "record_id": record_id,
        "path": path.name,
        "start_timestamp": START_MS / 1000,
        "end_timestamp": clock[-1] / 1000,
        "content-type": "video/mp4",
        "contents": {"camera/front-center": {"tags": ["camera", "front"]}},
    }
    path.with_name(path.name + ".json").write_text(json.dumps(meta))


class Harness:
    """A watcher over ``root`` whose rule extracts at 2 fps into ``out``, locally (and, with
    ``register``, registers its images and exports Parquet)."""

    def __init__(self, tmp_path: Path, *, register: bool = False) -> None:
        self.root = tmp_path / "root"
        self.out = tmp_path / "out"
        self.root.mkdir()
        self.catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
        self.runs: list[Any] = []
        rule = make_rule(
            "front",
            where=None,
            output=OutputSpec(out_dir=str(self.out), target_fps="2"),
            segment_seconds=2.0,
            completion=Completion(register=register, exports=("parquet",) if register else ()),
        )
        self.watcher = Watcher(
            catalog=self.catalog,
            roots=[self.root],
            rules=[rule],
            submit=self._submit,
            settle_seconds=0,
            register=self._register,
        )

    def _register(self, job_id: str) -> bool:
        job = next(j for j in self.runs if j.job_id == job_id)
        register_job(self.catalog, job.status(), replace=True)
        return True

    def _submit(self, rule: Rule, rows: list[dict[str, Any]], job_id: str) -> int:
        plan = plan_job(
            rows,
            output=rule.output,
            segment_seconds=rule.segment_seconds,
            completion=rule.completion,
        )
        job = submit_plan(
            plan,
            backend="local",
            settings=load_settings(env={}),
            output=rule.output,
            segment_seconds=rule.segment_seconds,
            job_id=job_id,
            workers=1,
        )
        job.wait()
        self.runs.append(job)
        return len(plan.pending)

    def poll(self) -> Any:
        report = self.watcher.poll()
        assert not report.errors, report.errors
        return report

    def images(self) -> dict[str, int]:
        """Every image on disk -> its size; every manifest line matches one of them."""
        on_disk = {
            str(p.relative_to(self.out)): p.stat().st_size
            for p in self.out.rglob("*.jpg")
            if not p.name.startswith(".")
        }
        for manifest in [*self.out.glob("_manifests/**/*.jsonl"), *self.out.glob("_jobs/*.jsonl")]:
            for line in manifest.read_text().splitlines():
                row = json.loads(line)
                assert on_disk.get(row["path"]) == row["bytes"], (manifest, row["path"])
        return on_disk


@pytest.fixture
def harness(tmp_path: Path) -> Any:
    h = Harness(tmp_path)
    yield h
    h.catalog.close()


def test_a_video_cut_short_is_extracted_again_once_complete(
    harness: Harness, tmp_path: Path
) -> None:
    whole = make_clip(tmp_path / "whole.mp4", ClipSpec(frames=150, faststart=True))  # 5 s
    data = whole.read_bytes()
    folder = harness.root / "rec" / "data"
    folder.mkdir(parents=True)
    video = folder / "camera_01.mp4"
    video.write_bytes(data[: len(data) // 2])  # the copy paused half-way
    _sidecar(video, "rec", 150)

    harness.poll()
    (first,) = harness.runs
    assert first.status().failed and "truncated" in (first.failed_segments()[-1].error or "")
    partial = harness.images()
    assert 0 < len(partial) < 10

    video.write_bytes(data)  # the rest arrives
    harness.poll()
    assert len(harness.runs) == 2 and not harness.runs[1].status().failed
    complete = harness.images()
    assert len(complete) == 10  # 5 s at 2 fps, each image once, the partial run superseded
    assert harness.poll().enqueued == {}  # nothing changed: nothing enqueued


def test_a_video_replaced_under_the_same_name_replaces_its_images(
    harness: Harness, tmp_path: Path
) -> None:
    folder = harness.root / "rec" / "data"
    folder.mkdir(parents=True)
    video = make_clip(folder / "camera_01.mp4", ClipSpec(frames=120))  # 4 s
    _sidecar(video, "rec", 120)
    harness.poll()
    assert len(harness.images()) == 8

    make_clip(tmp_path / "other.mp4", ClipSpec(frames=60, width=96, height=64))  # 2 s
    video.write_bytes((tmp_path / "other.mp4").read_bytes())
    harness.poll()
    images = harness.images()
    assert len(images) == 4, images  # the 4 images past 2 s belonged to the old video: gone
    assert len(harness.runs) == 2 and not harness.runs[1].status().failed


def test_a_sidecar_arriving_after_its_video_corrects_the_recording(harness: Harness) -> None:
    folder = harness.root / "rec" / "data"
    folder.mkdir(parents=True)
    video = make_clip(folder / "camera_01.mp4", ClipSpec(frames=60))
    harness.poll()  # no sidecar yet: record id "camera_01", start 0
    assert {Path(p).parts[0] for p in harness.images()} == {"camera_01"}

    _sidecar(video, "016_real", 60)
    harness.poll()
    (row,) = [r for r in harness.catalog.query() if r["path"] == str(video)]
    assert row["record_id"] == "016_real" and row["start_timestamp"] == START_MS / 1000
    assert len(harness.runs) == 2 and not harness.runs[1].status().failed
    current = sorted(p for p in harness.images() if p.startswith("016_real/"))
    assert current == [
        f"016_real/camera%2Ffront-center/016_real-{START_MS / 1000 + k / 2:.3f}.jpg"
        for k in range(4)
    ]


def test_a_corrected_start_time_in_the_sidecar_replaces_the_images(harness: Harness) -> None:
    folder = harness.root / "rec" / "data"
    folder.mkdir(parents=True)
    video = make_clip(folder / "camera_01.mp4", ClipSpec(frames=60))  # 2 s, no camera clock
    sidecar = video.with_name(video.name + ".json")

    def write_sidecar(start: float) -> None:
        sidecar.write_text(
            json.dumps(
                {"record_id": "rec", "path": video.name, "start_timestamp": start,
                 "end_timestamp": start + 2, "contents": {"camera/front": {"tags": ["camera"]}}}
            )
        )  # fmt: skip

    write_sidecar(1_500_000_000.0)
    harness.poll()
    write_sidecar(1_500_000_100.0)  # the same video, its start time corrected
    harness.poll()
    assert len(harness.runs) == 2 and not harness.runs[1].status().failed
    assert sorted(harness.images()) == [
        f"rec/camera%2Ffront/rec-{1_500_000_100 + k / 2:.3f}.jpg" for k in range(4)
    ]  # the images of the wrong start time are gone, the manifests say so (images())


def test_a_rule_registers_its_images_and_a_changed_video_replaces_them(tmp_path: Path) -> None:
    harness = Harness(tmp_path, register=True)
    try:
        folder = harness.root / "rec" / "data"
        folder.mkdir(parents=True)
        video = make_clip(folder / "camera_01.mp4", ClipSpec(frames=120))  # 4 s: 8 images
        _sidecar(video, "rec", 120)
        harness.poll()  # extracts and registers (the local job is complete when submit returns)

        def registered() -> list[dict]:
            return list(harness.catalog.query('tags like "%extracted%"'))

        assert len(registered()) == 8
        assert (harness.out / "_jobs" / f"{harness.runs[0].job_id}.parquet").is_file()

        make_clip(tmp_path / "short.mp4", ClipSpec(frames=60))  # replaced by a 2 s video
        video.write_bytes((tmp_path / "short.mp4").read_bytes())
        harness.poll()
        rows = registered()
        assert len(rows) == 4, [r["path"] for r in rows]  # the older images' rows replaced
        assert {r["job_id"] for r in rows} == {harness.runs[1].job_id}
        assert all(Path(r["path"]).is_file() for r in rows)
    finally:
        harness.catalog.close()


def test_a_restarted_watcher_registers_what_its_predecessor_left(tmp_path: Path) -> None:
    harness = Harness(tmp_path, register=True)
    try:
        folder = harness.root / "rec" / "data"
        folder.mkdir(parents=True)
        _sidecar(make_clip(folder / "camera_01.mp4", ClipSpec(frames=120)), "rec", 120)
        harness.watcher.register = lambda job_id: False  # stopped before its job completed
        harness.poll()
        [job] = harness.runs

        def registered() -> list[dict]:
            return list(harness.catalog.query('tags like "%extracted%"'))

        def restarted(register: Any) -> Watcher:
            return Watcher(
                catalog=harness.catalog,
                roots=[harness.root],
                rules=harness.watcher.rules,
                submit=harness._submit,
                settle_seconds=0,
                register=register,
            )

        assert registered() == []

        def expired(job_id: str) -> bool:
            raise JobNotFoundError(f"job {job_id} not found (expired)")

        forgetful = restarted(expired)  # the job expired from Redis: said once, then dropped
        assert forgetful.poll().errors == [
            f"rule front: job {job.job_id} not registered: job {job.job_id} not found (expired)"
        ]
        assert forgetful.poll().errors == []

        assert restarted(harness._register).poll().errors == []
        assert len(registered()) == 8
        assert {r["job_id"] for r in registered()} == {job.job_id}
        assert harness.catalog.claims.unregistered_jobs(rule="front") == []
    finally:
        harness.catalog.close()
