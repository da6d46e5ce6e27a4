"""Parquet exports read back with pyarrow: every column of every manifest line, the sources, the
frameset manifests, determinism, atomicity, and the errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from framefleet.errors import ConfigError, OutputError
from framefleet.export import (
    IMAGE_COLUMNS,
    SOURCE_FIELDS,
    framesets_parquet_path,
    parquet_path,
    sources_by_content,
    write_parquet,
)
from framefleet.media.pipeline import ImageRecord
from tests.export.conftest import T0, Job, grid, source_row, write_job

pq = pytest.importorskip("pyarrow.parquet")


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def test_every_column_of_every_line_with_the_sources(real_job: Job, tmp_path: Path) -> None:
    target = write_parquet(real_job.manifest, tmp_path / "x.parquet", sources=real_job.sources)
    rows = read_rows(target)
    assert len(rows) == len(real_job.lines) == 2 * 12  # 3 s at 4 fps, two recordings
    for row, line in zip(rows, real_job.lines, strict=True):
        assert {k: row[k] for k in line} == line  # every key of the line, value for value
        source = real_job.sources[(line["record_id"], line["content"])]
        assert {f: row["source_" + f] for f in SOURCE_FIELDS} == {
            f: source[f] for f in SOURCE_FIELDS
        }
    names = pq.read_schema(target).names
    assert names[: len(IMAGE_COLUMNS)] == list(IMAGE_COLUMNS)
    assert names[-len(SOURCE_FIELDS) :] == ["source_" + f for f in SOURCE_FIELDS]
    assert set().union(*real_job.lines) <= set(names)
    assert set(IMAGE_COLUMNS) <= set(ImageRecord.__dataclass_fields__)  # no column renamed


def test_types_are_fixed_for_known_columns(real_job: Job, tmp_path: Path) -> None:
    schema = pq.read_schema(write_parquet(real_job.manifest, tmp_path / "x.parquet"))
    assert {n: str(schema.field(n).type) for n in ("path", "timestamp", "width", "bytes")} == {
        "path": "string",
        "timestamp": "double",
        "width": "int64",
        "bytes": "int64",
    }
    assert not any(n.startswith("source_") for n in schema.names)  # no sources given


def test_default_path_beside_the_manifest(real_job: Job, tmp_path: Path) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", 3), job_id="j 1")
    assert write_parquet(job.manifest) == tmp_path / "out/_jobs/j 1.parquet"
    assert parquet_path(job.manifest) == tmp_path / "out/_jobs/j 1.parquet"
    assert [r["path"] for r in read_rows(parquet_path(job.manifest))] == [
        line["path"] for line in job.lines
    ]


def test_requested_times_missing_lines_and_other_columns(tmp_path: Path) -> None:
    def extra(i: int) -> dict[str, Any]:
        odd: Any = "text" if i == 0 else {"a": i}  # mixed kinds: kept as JSON text
        return {"grid_count": i + 1, "requested_times": [T0 + i, T0 + i + 0.1], "odd": odd}

    missing = {
        "record_id": "r",
        "content": "c",
        "requested_time": T0 + 99,
        "missing": "after the last frame",
        "spec": "abc123",
    }
    job = write_job(tmp_path / "out", grid("r", "c", 3), extra=extra, missing=[missing])
    rows = read_rows(write_parquet(job.manifest))
    assert len(rows) == 4
    for row, line in zip(rows[:3], job.lines, strict=False):
        assert {k: row[k] for k in line if k != "odd"} == {
            k: v for k, v in line.items() if k != "odd"
        }
        assert row["requested_time"] is None and row["missing"] is None
    assert [json.loads(r["odd"]) for r in rows[:3]] == ["text", {"a": 1}, {"a": 2}]
    last = rows[3]
    assert {k: last[k] for k in missing} == missing
    assert last["path"] is None and last["timestamp"] is None and last["requested_times"] is None


def test_same_input_same_bytes_and_no_temporary_files(real_job: Job, tmp_path: Path) -> None:
    a = write_parquet(real_job.manifest, tmp_path / "a.parquet", sources=real_job.sources)
    first = a.read_bytes()
    write_parquet(real_job.manifest, a, sources=real_job.sources)  # rewritten in place
    b = write_parquet(real_job.manifest, tmp_path / "b.parquet", sources=real_job.sources)
    assert a.read_bytes() == first == b.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]


def test_framesets_as_a_second_file(tmp_path: Path) -> None:
    job = write_job(tmp_path / "out", grid("r", "front", 2) + grid("r", "rear", 2))
    framesets = tmp_path / "out/_framesets"
    framesets.mkdir()
    lines = [
        {
            "record_id": f"r{k}",
            "grid_time": T0 + k / 2,
            "complete": k != 1,
            "cameras": {
                "front": {"path": f"r/front/{k}.jpg", "timestamp": T0 + k / 2, "skew_ms": 0.0},
                "rear": None
                if k == 1
                else {"path": f"r/rear/{k}.jpg", "timestamp": T0, "skew_ms": 3.5},
            },
        }
        for k in range(2)
    ]
    for k, line in enumerate(lines):
        (framesets / f"r{k}.jsonl").write_text(json.dumps(line, sort_keys=True) + "\n")
    write_parquet(job.manifest, framesets=sorted(framesets.iterdir()))
    target = framesets_parquet_path(job.manifest)
    assert target == tmp_path / "out/_jobs/job-1.framesets.parquet"
    assert read_rows(target) == lines
    write_parquet(job.manifest, framesets=[])  # a job without framesets: an empty table
    assert read_rows(target) == []


def test_sources_from_catalog_rows_and_a_missing_one(tmp_path: Path) -> None:
    job = write_job(tmp_path / "out", grid("r", "front", 2) + grid("r", "rear", 1))
    rows = [source_row("r", "front", 1), source_row("r", "rear", 2)]
    sources = sources_by_content(rows)
    assert sorted(sources) == [("r", "front"), ("r", "rear")]
    assert [r["source_id"] for r in read_rows(write_parquet(job.manifest, sources=sources))] == [
        101,
        101,
        102,
    ]
    with pytest.raises(
        ConfigError, match=r"no source row for record 'r' content 'rear' \(job manifest line 3\)"
    ):
        write_parquet(job.manifest, sources=sources_by_content(rows[:1]))


def test_a_missing_image_is_an_error_naming_it(tmp_path: Path) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", 3))
    gone = job.out / job.lines[1]["path"]
    gone.unlink()
    with pytest.raises(OutputError, match=rf"image '{gone}' \(job manifest line 2\) is missing"):
        write_parquet(job.manifest)
    assert not parquet_path(job.manifest).exists()


def test_a_rewritten_image_is_an_error(tmp_path: Path) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", 2))
    (job.out / job.lines[0]["path"]).write_bytes(b"\xff\xd8\xff" + b"x" * 5)
    with pytest.raises(OutputError, match=r"has 8 bytes on disk, the manifest says \d+"):
        write_parquet(job.manifest)


def test_bad_manifests(tmp_path: Path) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", 1))
    for text, message in [
        ("{not json\n", "line 2 is not JSON"),
        ("[1]\n", "line 2 is not a JSON object"),
        ('{"record_id": "r"}\n', "line 2 has no content"),
        ('{"record_id": "r", "content": "c", "path": "../x.jpg"}\n', "not a plain relative name"),
        (
            '{"record_id": "r", "content": "c", "path": "/etc/passwd"}\n',
            "not a plain relative name",
        ),
        ('{"record_id": "r", "content": "c", "timestamp": "soon"}\n', "column 'timestamp' holds"),
    ]:
        bad = job.manifest.with_name("bad.jsonl")
        bad.write_text(job.manifest.read_text() + text)
        with pytest.raises(OutputError, match=message):
            write_parquet(bad)
    with pytest.raises(OutputError, match="cannot be read"):
        write_parquet(job.manifest.with_name("nope.jsonl"))
    elsewhere = tmp_path / "m.jsonl"
    elsewhere.write_text(job.manifest.read_text())
    with pytest.raises(ConfigError, match="pass out_root"):
        write_parquet(elsewhere)
    assert len(read_rows(write_parquet(elsewhere, out_root=job.out))) == 1


def test_without_pyarrow_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", 1))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(
        ConfigError,
        match=r"^writing Parquet needs pyarrow \(not installed\): "
        r"pip install 'framefleet\[parquet\]'$",
    ):
        write_parquet(job.manifest)


def test_without_pyarrow_a_parquet_job_is_refused_when_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from framefleet.jobs.completion import Completion
    from framefleet.watch.rules import load_rules

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    hint = r"--export parquet needs pyarrow \(not installed\): pip install 'framefleet\[parquet\]'"
    with pytest.raises(ConfigError, match=hint):
        Completion(exports=("parquet",))
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "r"\nout = "out"\nexport = "parquet"\n')
    with pytest.raises(ConfigError, match=hint):
        load_rules(rules, default_segment_seconds=10)
    assert Completion(exports=("webdataset",)).exports == ("webdataset",)
