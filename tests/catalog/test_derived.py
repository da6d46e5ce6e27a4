"""Images back in the catalog (issue 11 item 3), on SQLite and PostgreSQL: the rows' shape, the
filter language, idempotence, replacement, unregistering, cascades, and that registered images
are never taken for videos or timestamps CSVs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import framefleet.catalog.derived as derived_module
from framefleet.catalog import Catalog
from framefleet.catalog.derived import (
    EXTRACTED_TAG,
    register_images,
    source_rows_for,
    unregister_source,
)
from framefleet.catalog.entries import ContentEntry, FileEntry
from framefleet.catalog.kinds import is_video
from framefleet.errors import CatalogError, ConfigError, FramefleetError, OutputError

T0 = 1489728491.0
RECORD = "016_00000000030000000240"
FRONT, REAR = "camera/front-center", "camera/rear-center"


def video(base: Path, record_id: str, content: str, *, key: str = "v1") -> FileEntry:
    name = content.split("/")[1]
    return FileEntry(
        path=base / "records" / record_id / f"{name}.mp4",
        record_id=record_id,
        contents=(ContentEntry(name=content, tags=("camera", *name.split("-"))),),
        source_key=key,
        database_id="Driving Behavior Database",
        data_type="raw_data",
        content_type="video/mp4",
        start_timestamp=T0,
        end_timestamp=T0 + 80,
    )


def write_manifest(
    out: Path,
    images: Sequence[tuple[str, str, float]],
    *,
    job_id: str = "job-1",
    payload: bytes = b"\xff\xd8\xff jpeg",
    extra_lines: Sequence[dict[str, Any]] = (),
) -> Path:
    """Images (record, content, time) on disk under ``out`` and their job manifest."""
    lines = []
    for record_id, content, t in images:
        path = f"{record_id}/{content.replace('/', '%2F')}/{record_id}-{t:.3f}.jpg"
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(payload)
        lines.append(
            {
                "path": path,
                "record_id": record_id,
                "content": content,
                "timestamp": t,
                "grid_time": t,
                "pts_seconds": t - T0,
                "width": 480,
                "height": 270,
                "bytes": len(payload),
                "spec": "abc",
                "grid_count": 1,
            }
        )
    manifest = out / "_jobs" / f"{job_id}.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(line, sort_keys=True) + "\n" for line in [*lines, *extra_lines])
    manifest.write_text(text)
    return manifest


def grid(
    record_id: str, content: str, n: int, *, start: float = T0
) -> list[tuple[str, str, float]]:
    return [(record_id, content, start + k / 2) for k in range(n)]


@pytest.fixture
def setup(catalog: Catalog, tmp_path: Path) -> tuple[Catalog, Path, dict[tuple[str, str], Any]]:
    """A catalog with base directory ``tmp_path`` holding record 016's two cameras and another
    record's front camera; returns it, the base directory and the source rows."""
    catalog.set_base_dir(tmp_path)
    catalog.upsert(
        [
            video(tmp_path, RECORD, FRONT),
            video(tmp_path, RECORD, REAR),
            video(tmp_path, "017_x", FRONT),
        ]
    )
    videos = {(i["record_id"], i["contents"]): i["path"] for i in catalog.query()}
    return catalog, tmp_path, source_rows_for(catalog, videos)


def register(catalog: Catalog, manifest: Path, out: Path, sources: Any, **kw: Any):
    options = {"job_id": "job-1", "spec_tag": "fps2-q25-jpeg", "image_format": "jpeg"} | kw
    return register_images(catalog, manifest, out_root=out, source_rows=sources, **options)


def test_rows_are_pydtk_shaped_and_found_by_the_filter_language(setup) -> None:
    catalog, base, sources = setup
    out = base / "out"
    manifest = write_manifest(out, grid(RECORD, FRONT, 3) + grid("017_x", FRONT, 2))
    report = register(catalog, manifest, out, sources)
    assert (report.added, report.updated, report.unchanged, report.registered) == (5, 0, 0, 5)
    rows = list(catalog.query('tags like "%extracted%" and record_id like "%016%"'))
    assert len(rows) == 3
    first = rows[0]
    front = sources[(RECORD, FRONT)]
    assert {k: first[k] for k in ("record_id", "contents", "data_type", "content_type")} == {
        "record_id": RECORD,
        "contents": FRONT,
        "data_type": "derived",
        "content_type": "image/jpeg",
    }
    assert first["start_timestamp"] == first["end_timestamp"] == T0
    assert first["tags"] == ["camera", "front", "center", EXTRACTED_TAG, "fps2-q25-jpeg"]
    assert first["path"] == str(out / f"{RECORD}/camera%2Ffront-center/{RECORD}-{T0:.3f}.jpg")
    assert Path(first["path"]).is_file()
    assert (first["source_file_id"], first["job_id"]) == (front["id"], "job-1")
    assert (first["width"], first["height"], first["database_id"]) == (
        480,
        270,
        "Driving Behavior Database",
    )
    assert first["timestamps_path"] is None and first["fps"] is None
    assert front["source_file_id"] is None and front["job_id"] is None  # videos have neither
    # stored relative to the base directory, like every other row under it
    assert (
        catalog.query(
            f'path = "out/{RECORD}/camera%2Ffront-center/{RECORD}-{T0:.3f}.jpg"'
        ).__len__()
        == 1
    )
    assert len(catalog.query('data_type = "derived" and contents = "camera/front-center"')) == 5
    assert len(catalog.query("duration = 0 and start_timestamp >= 1489728491.5")) == 3
    assert len(catalog.query(tags=["fps2-q25-jpeg"], record_id="017*")) == 2


def test_a_rerun_adds_nothing(setup) -> None:
    catalog, base, sources = setup
    out = base / "out"
    manifest = write_manifest(out, grid(RECORD, FRONT, 4))
    register(catalog, manifest, out, sources)
    files = catalog.stats()["files"]
    again = register(catalog, manifest, out, sources)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)
    other_job = register(catalog, manifest, out, sources, job_id="job-2")  # nothing new: kept
    assert other_job.unchanged == 4
    assert {r["job_id"] for r in catalog.query(tags=[EXTRACTED_TAG])} == {"job-1"}
    assert catalog.stats()["files"] == files


def test_lines_without_an_image_are_counted_not_registered(setup) -> None:
    catalog, base, sources = setup
    missing = {"record_id": RECORD, "content": FRONT, "requested_time": T0 + 99, "missing": "gap"}
    manifest = write_manifest(base / "out", grid(RECORD, FRONT, 2), extra_lines=[missing])
    report = register(catalog, manifest, base / "out", sources)
    assert (report.added, report.without_image) == (2, 1)


def test_replace_removes_the_rows_of_an_earlier_extraction(setup) -> None:
    catalog, base, sources = setup
    out, other_out = base / "out", base / "elsewhere"
    register(catalog, write_manifest(out, grid(RECORD, FRONT, 4)), out, sources)
    register(catalog, write_manifest(out, grid(RECORD, REAR, 2), job_id="rear"), out, sources)
    register(
        catalog,
        write_manifest(out, grid(RECORD, FRONT, 2, start=T0 + 50), job_id="png"),
        out,
        sources,
        spec_tag="png-spec",
    )
    register(catalog, write_manifest(other_out, grid(RECORD, FRONT, 2)), other_out, sources)
    # The front video changed: the new job writes 3 images, two under the old names (new bytes)
    # and one new one, and knows about the front video only.
    new = write_manifest(
        out,
        [(RECORD, FRONT, T0 + 0.5), (RECORD, FRONT, T0 + 1.0), (RECORD, FRONT, T0 + 0.25)],
        job_id="job-2",
        payload=b"\xff\xd8\xff changed",
    )
    report = register(
        catalog, new, out, {(RECORD, FRONT): sources[(RECORD, FRONT)]}, job_id="job-2", replace=True
    )
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 2, 0, 2)
    ours = list(catalog.query(tags=["fps2-q25-jpeg"], content=FRONT, record_id=RECORD))
    assert sorted(
        (r["start_timestamp"], r["job_id"]) for r in ours if r["path"].startswith(str(out))
    ) == [
        (T0 + 0.25, "job-2"),
        (T0 + 0.5, "job-2"),
        (T0 + 1.0, "job-2"),
    ]
    assert len(catalog.query(tags=["png-spec"])) == 2  # another spec of the same video: kept
    assert len(catalog.query(tags=[EXTRACTED_TAG], content=REAR)) == 2  # another video: kept
    assert len([r for r in ours if r["path"].startswith(str(other_out))]) == 2  # another root: kept


def test_unregister_source(setup) -> None:
    catalog, base, sources = setup
    out = base / "out"
    front = sources[(RECORD, FRONT)]["id"]
    register(catalog, write_manifest(out, grid(RECORD, FRONT, 3)), out, sources)
    register(
        catalog,
        write_manifest(out, grid(RECORD, FRONT, 2, start=T0 + 9), job_id="b"),
        out,
        sources,
        spec_tag="b",
    )
    register(catalog, write_manifest(out, grid(RECORD, REAR, 2), job_id="c"), out, sources)
    assert unregister_source(catalog, front, spec_tag="b") == 2
    assert unregister_source(catalog, front, out_root=base / "nowhere") == 0
    assert unregister_source(catalog, front) == 3
    assert len(catalog.query(tags=[EXTRACTED_TAG])) == 2  # the rear camera's
    assert len(catalog.query(derived=False)) == 3  # the videos, untouched


def test_source_link_survives_reingest_and_cascades_on_remove(setup) -> None:
    catalog, base, sources = setup
    out = base / "out"
    register(catalog, write_manifest(out, grid(RECORD, FRONT, 3)), out, sources)
    front = sources[(RECORD, FRONT)]
    assert catalog.upsert([video(base, RECORD, FRONT, key="v2")]) == ["updated"]  # re-ingested
    assert {r["source_file_id"] for r in catalog.query(tags=[EXTRACTED_TAG])} == {front["id"]}
    assert catalog.remove([Path(front["path"])]) == 1
    assert len(catalog.query(tags=[EXTRACTED_TAG])) == 0  # ON DELETE CASCADE
    assert catalog.stats()["contents"] == 2  # and their contents went with them


def test_registered_images_are_not_videos_nor_timestamps(setup) -> None:
    catalog, base, sources = setup
    out = base / "out"
    register(catalog, write_manifest(out, grid(RECORD, FRONT, 3)), out, sources)
    # an image named like a video and one named like a camera CSV, as a template could make
    odd = FileEntry(
        path=base / "out/odd_timestamps.csv",
        record_id=RECORD,
        contents=(ContentEntry(name=FRONT, tags=("camera",)),),
        source_key="x",
        content_type="image/png",
        source_file_id=sources[(RECORD, FRONT)]["id"],
    )
    catalog.upsert([odd, FileEntry(**{**odd.__dict__, "path": base / "out/odd.mp4"})])
    assert not is_video("out/odd.mp4", "image/png") and is_video("out/odd.mp4", None)
    unclaimed = catalog.claims.unclaimed_videos(rule="r", where='tags like "%front%"')
    assert sorted(r["path"] for r in unclaimed) == sorted(
        str(base / "records" / r / "front-center.mp4") for r in (RECORD, "017_x")
    )
    (front,) = catalog.query(f'record_id = "{RECORD}" and contents = "{FRONT}"', derived=False)
    assert front["timestamps_path"] is None  # the image named *_timestamps.csv is not linked
    assert len(catalog.query('tags like "%front%"', derived=False)) == 2
    record = catalog.get_record(RECORD)
    assert record is not None and len(record["files"]) == 2
    with_images = catalog.get_record(RECORD, derived=True)
    assert with_images is not None and len(with_images["files"]) == 7


def test_everything_is_checked_before_anything_is_written(setup) -> None:
    catalog, base, sources = setup
    out = base / "out"
    manifest = write_manifest(out, grid(RECORD, FRONT, 3))
    gone = out / f"{RECORD}/camera%2Ffront-center/{RECORD}-{T0 + 1:.3f}.jpg"
    gone.unlink()
    with pytest.raises(
        OutputError,
        match=rf"image '{gone}' \(job manifest line 3\) is missing .*nothing was registered",
    ):
        register(catalog, manifest, out, sources)
    assert len(catalog.query(tags=[EXTRACTED_TAG])) == 0
    manifest = write_manifest(out, grid(RECORD, FRONT, 2) + grid("999_unknown", FRONT, 1))
    with pytest.raises(
        ConfigError,
        match=r"no source row for record '999_unknown' content 'camera/front-center' "
        r"\(job manifest line 3\)",
    ):
        register(catalog, manifest, out, sources)
    manifest = write_manifest(out, grid(RECORD, FRONT, 3))
    manifest.write_text(manifest.read_text() + manifest.read_text().splitlines()[0] + "\n")
    with pytest.raises(OutputError, match=r"lists image .* twice \(lines 1 and 4\)"):
        register(catalog, manifest, out, sources)
    manifest.write_text('{"record_id": "r", "content": "c", "path": "../../etc/passwd"}\n')
    with pytest.raises(OutputError, match="is not a plain relative name"):
        register(catalog, manifest, out, sources)
    manifest.write_text("[]\n")
    with pytest.raises(OutputError, match="line 1 is not an image line"):
        register(catalog, manifest, out, sources)
    assert len(catalog.query(tags=[EXTRACTED_TAG])) == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image_format": "gif"}, "image_format must be one of jpeg, png, webp, got 'gif'"),
        ({"spec_tag": ""}, "spec_tag '' is empty"),
        ({"spec_tag": "a\nb"}, "spec_tag 'a\\\\nb' contains a control character"),
        ({"job_id": 7}, "job_id 7 is not text"),
    ],
)
def test_bad_arguments(setup, options: dict[str, Any], message: str) -> None:
    catalog, base, sources = setup
    manifest = write_manifest(base / "out", grid(RECORD, FRONT, 1))
    with pytest.raises(ConfigError, match=message):
        register(catalog, manifest, base / "out", sources, **options)


def test_a_source_that_left_the_catalog(setup) -> None:
    catalog, base, sources = setup
    manifest = write_manifest(base / "out", grid(RECORD, FRONT, 1))
    catalog.remove([Path(sources[(RECORD, FRONT)]["path"])])
    with pytest.raises(
        CatalogError,
        match=r"the video of record '016_.*' content 'camera/front-center' \(row \d+\) is no "
        r"longer in the catalog",
    ):
        register(catalog, manifest, base / "out", sources)
    with pytest.raises(
        CatalogError,
        match=r"video '.*front-center.mp4' \(record '016_.*', content 'camera/front-center'\) "
        r"is not in catalog",
    ):
        source_rows_for(catalog, {(RECORD, FRONT): sources[(RECORD, FRONT)]["path"]})
    with pytest.raises(ConfigError, match=r"has no row id \('id': None\)"):
        register(catalog, manifest, base / "out", {(RECORD, FRONT): {"tags": []}})


def test_batches_and_png(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, base, sources = setup
    monkeypatch.setattr(derived_module, "BATCH_SIZE", 7)
    out = base / "out"
    manifest = write_manifest(out, grid(RECORD, FRONT, 30) + grid(RECORD, REAR, 23))
    report = register(catalog, manifest, out, sources, image_format="png")
    assert report.added == 53 and "registered 53 images" in report.summary()
    assert {r["content_type"] for r in catalog.query(tags=[EXTRACTED_TAG])} == {"image/png"}
    assert register(catalog, manifest, out, sources, image_format="png").unchanged == 53
    updated = register(catalog, manifest, out, sources, image_format="webp")
    assert updated.updated == 53


def test_two_processes_registering_the_same_job(setup, db_url: str) -> None:
    """Both saw the job complete: every image ends up registered once, whoever wrote it."""
    catalog, base, sources = setup
    out = base / "out"
    manifest = write_manifest(out, grid(RECORD, FRONT, 60) + grid(RECORD, REAR, 60))
    reports: list[Any] = []

    def run() -> None:
        with Catalog(db_url) as own:
            reports.append(register(own, manifest, out, sources))

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(run), pool.submit(run)]:
            future.result()
    assert sum(r.added for r in reports) == 120
    assert sum(r.unchanged for r in reports) == 120
    assert len(catalog.query(tags=[EXTRACTED_TAG])) == 120


HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.lists(st.integers(), max_size=2),
)


@given(
    field=st.sampled_from(["timestamp", "width", "height", "record_id", "content"]), value=HOSTILE
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_hand_edited_manifest_registers_fully_or_not_at_all(
    setup, field: str, value: object
) -> None:
    catalog, base, sources = setup
    out = base / "out-fuzz"
    manifest = write_manifest(out, grid(RECORD, FRONT, 3))
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    lines[-1][field] = value  # the last line, after the others would have been written
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = len(catalog.query(tags=[EXTRACTED_TAG]))
    try:
        report = register(catalog, manifest, out, sources, job_id="job-fuzz")
    except FramefleetError:
        assert len(catalog.query(tags=[EXTRACTED_TAG])) == before  # nothing was written
    else:
        assert report.added + report.unchanged + report.updated == 3
