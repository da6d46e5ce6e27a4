"""Who owns an output root's image names, under change and concurrency: a stale segment never
touches a newer version's images, a takeover stops the previous owner's running segments and
removes every image of it (listed or not, never another owner's), concurrent takeovers are
serialised, and owner records are written like any other file."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

import framefleet.media.images as images
from framefleet.errors import MediaError, OutputConflictError, OutputError
from framefleet.media.ownership import claim_names, owner_path, pattern_of, read_owner
from framefleet.media.pipeline import ImageRecord, SegmentResult, process_segment
from framefleet.media.specs import OutputSpec, SegmentSpec, source_version
from tests.clips import ClipSpec, make_clip

_OUTPUT_FIELDS = {f.name for f in dataclasses.fields(OutputSpec)}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clip")
    return make_clip(directory / "c.mp4", ClipSpec(width=64, height=48, frames=60, gop=15))


@pytest.fixture
def video(clip: Path, tmp_path: Path) -> Path:
    """A copy of the clip that a test may change."""
    copy = tmp_path / "v.mp4"
    shutil.copy(clip, copy)
    return copy


def _spec(video: Path, out: Path, **fields: Any) -> SegmentSpec:
    """A spec planned now (``source_version`` of the file as it is) unless told otherwise."""
    output = {k: v for k, v in fields.items() if k in _OUTPUT_FIELDS}
    spec = {k: v for k, v in fields.items() if k not in _OUTPUT_FIELDS}
    spec.setdefault("start_timestamp", 1000.0)
    spec.setdefault("source_version", source_version(str(video)))
    return SegmentSpec(
        video_path=str(video),
        record_id=spec.pop("record_id", "r"),
        content=spec.pop("content", "cam"),
        output=OutputSpec(out_dir=str(out), **output),
        **spec,
    )


def _touch(video: Path) -> None:
    """A new version of the file: the same bytes, a later mtime."""
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def _files(out: Path) -> dict[str, bytes]:
    """Every image and manifest under ``out`` (owner records and locks left out)."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and "_owners" not in p.parts and "_index" not in p.parts
    }


def _images(out: Path) -> set[str]:
    return {name for name in _files(out) if not name.startswith("_")}


def _manifests_match_disk(out: Path) -> set[str]:
    """Every manifest line names a file of exactly its size; the listed paths."""
    listed = set()
    for manifest in [*out.glob("_manifests/**/*.jsonl"), *out.glob("_jobs/*.jsonl")]:
        if not manifest.is_file():
            continue
        for line in manifest.read_text().splitlines():
            row = json.loads(line)
            assert (out / row["path"]).stat().st_size == row["bytes"], (manifest, row["path"])
            listed.add(row["path"])
    return listed


# --- finding 1: versions ---------------------------------------------------------------------


def test_a_stale_segment_never_touches_the_newer_versions_images(video: Path, tmp_path: Path):
    out = tmp_path / "out"
    v1 = _spec(video, out, target_fps="5")
    process_segment(v1)
    _touch(video)
    v2 = _spec(video, out, target_fps="5")
    assert v2.identity != v1.identity
    assert process_segment(v2).images  # the version on disk replaces its older self by itself
    before = _files(out)
    assert any(name.endswith(f".{v2.identity}.jsonl") for name in before)

    for force in (False, True):  # a V1 segment still queued, then a forced retry of it
        with pytest.raises(MediaError, match="changed since the job was planned"):
            process_segment(v1, force=force, takeover=force)
        assert _files(out) == before
    assert read_owner(owner_path(out.resolve(), pattern_of(v2))).identity == v2.identity  # type: ignore[union-attr]
    assert process_segment(v2).skipped  # still its owner, still complete
    assert _manifests_match_disk(out) == _images(out)


def test_an_older_owner_record_without_a_version_is_replaced_by_the_files_on_disk(
    video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    v1 = _spec(video, out)
    process_segment(v1)
    record = owner_path(out.resolve(), pattern_of(v1))
    old = json.loads(record.read_text())
    del old["version"], old["timestamps_path"]  # as written before versions were kept
    record.write_text(json.dumps(old) + "\n")
    _touch(video)
    v2 = _spec(video, out)
    assert claim_names(out.resolve(), v2)  # taken over by itself
    assert read_owner(record).version == source_version(str(video))  # type: ignore[union-attr]


@pytest.mark.parametrize("other", [{"start_timestamp": 1000.5}, {"grid_anchor": 999.75}])
def test_specs_of_one_version_that_differ_otherwise_conflict_both_ways(
    video: Path, tmp_path: Path, other: dict[str, Any]
) -> None:
    out = tmp_path / "out"
    a = _spec(video, out)
    b = _spec(video, out, **other)
    process_segment(a)
    with pytest.raises(OutputConflictError, match="Nothing was overwritten"):
        process_segment(b)
    replaced = process_segment(b, takeover=True)  # asked: --force
    with pytest.raises(OutputConflictError, match="Nothing was overwritten"):
        process_segment(a)  # and never back by itself
    assert _manifests_match_disk(out) == {i.path for i in replaced.images} == _images(out)


# --- finding 2: a takeover stops the running owner and removes all of it ----------------------


def test_a_takeover_stops_the_segment_that_owned_the_names(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = _spec(clip, out, target_fps="10", quality=90)
    b = _spec(clip, out, target_fps="10", quality=50)
    took_over: list[SegmentResult] = []

    def meanwhile(record: ImageRecord) -> None:  # B --force runs while A is writing
        if not took_over:
            took_over.append(process_segment(b, force=True, takeover=True))

    with pytest.raises(OutputConflictError, match=r"taken over by record 'r'.*quality=50"):
        process_segment(a, on_image=meanwhile)
    (result,) = took_over
    assert len(result.images) == 20
    assert _manifests_match_disk(out) == {i.path for i in result.images} == _images(out)
    assert not list(out.glob(f"_manifests/**/*.{a.identity}.jsonl"))


@pytest.mark.parametrize(
    "template",
    [
        "{record_id}/{content}/{record_id}-{timestamp:.3f}.{ext}",
        "{record_id}/{grid_time:017.3f}/{content}.{ext}",  # a time in a folder's name
        "{content}_{frame:6}.{ext}",  # padded with spaces, straight under the root
    ],
)
def test_a_takeover_removes_the_images_of_a_crashed_segment(
    clip: Path, tmp_path: Path, template: str
) -> None:
    out = tmp_path / "out"
    a = _spec(clip, out, target_fps="10", name_template=template)

    class Killed(Exception):
        pass

    written: list[ImageRecord] = []

    def crash(record: ImageRecord) -> None:
        written.append(record)
        if len(written) == 3:
            raise Killed

    with pytest.raises(Killed):
        process_segment(a, on_image=crash)
    assert len(_images(out)) >= 3 and not _manifests_match_disk(out)  # listed nowhere
    b = _spec(clip, out, target_fps="1", quality=50, name_template=template)
    replaced = process_segment(b, takeover=True)
    assert _manifests_match_disk(out) == {i.path for i in replaced.images} == _images(out)


def test_a_takeover_never_removes_names_another_owner_holds(clip: Path, tmp_path: Path):
    out = tmp_path / "out"
    template = "{content}/{record_id}{timestamp:.3f}.{ext}"  # r's names match "r1"'s pattern
    neighbour = process_segment(_spec(clip, out, record_id="r1", name_template=template))
    process_segment(_spec(clip, out, name_template=template))
    replaced = process_segment(
        _spec(clip, out, name_template=template, quality=50), force=True, takeover=True
    )
    theirs, ours = {i.path for i in neighbour.images}, {i.path for i in replaced.images}
    assert theirs and ours and not theirs & ours
    assert _manifests_match_disk(out) == theirs | ours == _images(out)


# --- finding 3: concurrent takeovers ---------------------------------------------------------


def test_a_manifest_that_cannot_be_read_does_not_stop_a_takeover(clip: Path, tmp_path: Path):
    out = tmp_path / "out"
    a = _spec(clip, out)
    process_segment(a)
    folder = next(out.glob("_manifests/*/*"))
    (folder / f"9.0-end.{a.identity}.jsonl").mkdir()  # vanished or unreadable: not a file
    b = process_segment(_spec(clip, out, quality=50), takeover=True)
    assert _manifests_match_disk(out) == {i.path for i in b.images} == _images(out)


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_takeovers_leave_one_owner_and_true_manifests(
    clip: Path, tmp_path: Path, round_: int
) -> None:
    out = tmp_path / "out"
    specs = [_spec(clip, out, target_fps="10", quality=q) for q in (40, 55, 70, 85)]
    start = threading.Barrier(len(specs))
    outcomes: list[object] = [None] * len(specs)

    def run(k: int) -> None:
        start.wait()
        try:
            outcomes[k] = process_segment(specs[k], force=True, takeover=True)
        except BaseException as e:  # every outcome is checked below
            outcomes[k] = e

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(specs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for outcome in outcomes:
        assert isinstance(outcome, SegmentResult | OutputConflictError), outcome
    owner = read_owner(owner_path(out.resolve(), pattern_of(specs[0])))
    assert owner is not None
    (winner,) = [s for s in specs if s.identity == owner.identity]
    manifests = [p.name for p in out.glob("_manifests/*/*/*.jsonl")]
    assert manifests == [Path(winner.manifest_name).name]
    assert _manifests_match_disk(out) == _images(out)


# --- finding 4: owner records like any other file --------------------------------------------


@pytest.mark.parametrize("hard_links", [True, False])
def test_owner_records_get_the_permissions_of_a_normal_write(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hard_links: bool
) -> None:
    if not hard_links:  # a file system without them (vfat, some network mounts)

        def no_link(src: object, dst: object, **kwargs: object) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    spec = _spec(clip, tmp_path / "out")
    old = os.umask(0o027)
    try:
        images._umask = None  # read again under this umask
        assert claim_names((tmp_path / "out").resolve(), spec) is False
    finally:
        os.umask(old)
        images._umask = None
    record = owner_path((tmp_path / "out").resolve(), pattern_of(spec))
    assert stat.S_IMODE(record.stat().st_mode) == 0o640
    assert read_owner(record).identity == spec.identity  # type: ignore[union-attr]
    assert not [p for p in record.parent.iterdir() if p.name.endswith(".tmp")]


def test_an_owner_record_left_empty_is_an_error_that_says_what_to_do(clip: Path, tmp_path: Path):
    spec = _spec(clip, tmp_path / "out")
    record = owner_path((tmp_path / "out").resolve(), pattern_of(spec))
    record.parent.mkdir(parents=True)
    record.write_bytes(b"")
    with pytest.raises(
        OutputError, match=r"unreadable \(it is empty\); delete it and re-run with --force"
    ):
        process_segment(spec)
