"""Ingest never stops at a bad file: 2,000 sidecars with 50 hostile ones, refused batches,
foreign exceptions, replaced data files, second sidecars, data outside the root."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event

import framefleet.catalog.ingest as ingest_module
import framefleet.catalog.sidecar as sidecar_module
import framefleet.catalog.store as store_module
from framefleet.catalog import Catalog, ingest_paths
from framefleet.cli import main

GOOD: dict[str, Any] = {"record_id": "r", "contents": {"camera/front": {"tags": ["camera"]}}}


def _with(**fields: Any) -> dict[str, Any]:
    return GOOD | fields


HOSTILE: list[Any] = [
    _with(start_timestamp=10**399),
    b'{"record_id": ' + b"[" * 100_000,
    _with(record_id="r\ud800"),
    _with(contents={"c": {"tags": ["\udfff"]}}),
    _with(description="a\x00b"),
    _with(path="x\x00y"),
    _with(count=2**63),
    _with(count=2**31),
    _with(count=-1),
    _with(start_timestamp=1e300),
    _with(start_timestamp=-5),
    _with(start_timestamp=float("nan")),
    _with(end_timestamp=float("inf")),
    _with(contents={"c": {"tags": [1, 2]}}),
    _with(contents="c", tags="x"),
    _with(record_id="r" * 300),
    _with(description="d" * 70_000),
    b'{"count": ' + b"7" * 5000 + b"}",
    b'{"record_id": "\xff\xfe"}',
    b"{oops",
    b"[1, 2]",
    b"",
    _with(contents={}),
    _with(contents={"": {}}),
    _with(contents={"a\nb": {}}),
    _with(record_id="a\nb"),
    _with(frequency="fast"),
    _with(frequency=1e300),
    _with(start_timestamp=20.0, end_timestamp=10.0),
    _with(contents={"c": {"msg_md5sum": "\x00"}}),
    _with(path=123),
    _with(path="p" * 5000),
    _with(record_id=None),
    _with(record_id=5),
    _with(contents="c", tags=[f"t{i}" for i in range(1001)]),
    _with(contents={f"c{i}": None for i in range(10_001)}),
    "fifo",
    b"{" + b" " * (1024 * 1024) + b"}",
    _with(msg_type="a\tb"),
    _with(type="t" * 300),
    _with(**{"content-type": ["video/mp4"]}),
    _with(contents={"c": 5}),
    _with(contents={"c": {"count": 1.5}}),
    _with(contents={"c": {"frequency": -1}}),
    _with(database_id={}),
    _with(sub_record_id=True),
    _with(contents={"c": {"tags": ["t" * 256]}}),
    "duplicate",
    "no data file",
    _with(record_id=""),
]


def _hostile_tree(root: Path, *, files: int = 2000, every: int = 40) -> set[Path]:
    """``files`` sidecars with their data files; every ``every``-th one hostile (a different way
    each). Returns the hostile sidecars."""
    assert len(HOSTILE) == files // every
    root.mkdir()
    bad: set[Path] = set()
    for i in range(files):
        sidecar = root / f"f{i:04d}.bin.json"
        if i % every != every // 2:
            (root / f"f{i:04d}.bin").write_bytes(b"")
            sidecar.write_text(json.dumps(_with(record_id=f"r{i // 4}")))
            continue
        bad.add(sidecar)
        kind = HOSTILE[i // every]
        if kind != "no data file":
            (root / f"f{i:04d}.bin").write_bytes(b"")
        if kind == "fifo":
            os.mkfifo(sidecar)
        elif kind == "duplicate":
            sidecar.write_text(json.dumps(_with(path=str(root / "f0000.bin"))))
        elif kind == "no data file":
            sidecar.write_text(json.dumps(GOOD))
        elif isinstance(kind, bytes):
            sidecar.write_bytes(kind)
        else:
            sidecar.write_text(json.dumps(kind))
    return bad


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("FRAMEFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("FRAMEFLEET_CONFIG", raising=False)
    return CliRunner()


def test_two_thousand_sidecars_fifty_hostile(run: CliRunner, db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    bad = _hostile_tree(root)
    result = run.invoke(main, ["catalog", "add", "--db", db_url, str(root)])
    assert result.exit_code == 1, result.output
    assert result.stdout == "1950 added, 0 updated, 0 unchanged, 50 failed\n"
    failures = result.stderr.splitlines()
    assert len(failures) == 50
    reported = set()
    for line in failures:
        assert line.startswith(f"failed: {root}/f") and line.isprintable(), line
        reported.add(Path(line.removeprefix("failed: ").split(": ", 1)[0]))
    assert reported == bad
    with Catalog(db_url, create=False) as cat:
        assert len(cat.query()) == 1950
        assert len(cat.query(record_id="r0")) == 4

    again = run.invoke(main, ["catalog", "add", "--db", db_url, str(root)])
    assert (again.exit_code, again.stdout) == (1, "0 added, 0 updated, 1950 unchanged, 50 failed\n")


def test_hostile_reasons(catalog: Catalog, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _hostile_tree(root, files=len(HOSTILE) * 2, every=2)
    report = ingest_paths(catalog, [root])
    reasons = {path.name: message for path, message in report.failed}
    assert (report.added, len(reasons)) == (len(HOSTILE), len(HOSTILE))
    expected = {
        1: r"'start_timestamp' 1000+\.\.\. \(400 digits\) is out of range",
        3: r"not valid JSON: nested too deeply$",
        5: r"'record_id' is not valid Unicode",
        13: r"'count' 9223372036854775808 is out of range \(allowed: 0 to 2147483647\)$",
        15: r"'count' 2147483648 is out of range \(allowed: 0 to 2147483647\)$",
        73: r": not a regular file$",
        95: r"f0000\.bin is already described by .*f0000\.bin\.json; skipped",
        97: r"'path': data file not found \(looked for '.*f0097\.bin'\)$",
    }
    for number, pattern in expected.items():
        with pytest.raises(AssertionError, match=pattern):
            raise AssertionError(reasons[f"f{number:04d}.bin.json"])


@dataclass
class _Info:
    duration_seconds: float = 1.0
    fps: float = 30.0
    width: int = 64
    height: int = 48
    frame_count: int = 30


def test_foreign_exceptions_are_reported_with_their_type(catalog: Catalog, tmp_path: Path) -> None:
    for name in ("a.mp4", "b.mp4", "c.mp4", "d.mp4"):
        (tmp_path / name).write_bytes(b"x")

    def probe(path: Path) -> Any:
        if path.name == "b.mp4":
            raise ZeroDivisionError("division by zero\nin the probe")
        if path.name == "c.mp4":
            return _Info(frame_count=2**40)  # absurd: refused before the database sees it
        if path.name == "d.mp4":
            return _Info(fps=float("nan"))
        return _Info()

    report = ingest_paths(catalog, [tmp_path], probe=probe, start_timestamp=0)
    assert report.added == 1
    assert report.failed == [
        (
            tmp_path / "b.mp4",
            f"{tmp_path / 'b.mp4'}: ZeroDivisionError: division by zero in the probe",
        ),
        (
            tmp_path / "c.mp4",
            f"{tmp_path / 'c.mp4'}: frame_count is out of range (allowed: 0 to 2147483647)",
        ),
        (tmp_path / "d.mp4", f"{tmp_path / 'd.mp4'}: fps is not a finite number"),
    ]


def test_a_refused_batch_is_written_file_by_file(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the checks switched off, the database itself refuses the bad values: only their files
    fail, the rest of the batch goes in."""
    for module in (ingest_module, store_module, sidecar_module):
        monkeypatch.setattr(module, "check_entry", lambda entry: None)
    monkeypatch.setattr(sidecar_module, "text_problem", lambda *a, **k: None)
    monkeypatch.setattr(sidecar_module, "number_problem", lambda *a, **k: None)
    bad = {"f03.bin.json": _with(record_id="r\ud800"), "f07.bin.json": _with(count=2**63)}
    for i in range(10):
        (tmp_path / f"f{i:02d}.bin").write_bytes(b"")
        document = bad.get(f"f{i:02d}.bin.json", _with(record_id=f"r{i}"))
        (tmp_path / f"f{i:02d}.bin.json").write_text(json.dumps(document))
    report = ingest_paths(catalog, [tmp_path])
    assert report.added == 8
    assert [path.name for path, _ in report.failed] == ["f03.bin.json", "f07.bin.json"]
    for _, message in report.failed:
        assert "refused a value" in message and "\n" not in message
    assert len(catalog.query()) == 8


def test_a_replaced_data_file_is_updated_and_an_unchanged_tree_writes_nothing(
    catalog: Catalog, tmp_path: Path
) -> None:
    (tmp_path / "a.bin").write_bytes(b"first")
    (tmp_path / "a.bin.json").write_text(json.dumps(GOOD))
    assert ingest_paths(catalog, [tmp_path]).added == 1
    written: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            written.append(statement)

    event.listen(catalog._engine, "before_cursor_execute", remember)
    report = ingest_paths(catalog, [tmp_path])
    assert (report.unchanged, written) == (1, [])
    (tmp_path / "a.bin").write_bytes(b"replaced video, same sidecar")
    report = ingest_paths(catalog, [tmp_path])
    assert (report.updated, report.unchanged) == (1, 0)
    assert written


def test_a_second_sidecar_is_refused_until_the_first_is_gone(
    catalog: Catalog, tmp_path: Path
) -> None:
    data = tmp_path / "a.bin"
    data.write_bytes(b"")
    first, second = tmp_path / "a.bin.json", tmp_path / "copy.json"
    first.write_text(json.dumps(_with(record_id="first")))
    second.write_text(json.dumps(_with(record_id="second", path=str(data))))
    assert ingest_paths(catalog, [first]).added == 1

    report = ingest_paths(catalog, [second])  # a later run, the second sidecar alone
    assert report.failed == [
        (
            second,
            f"{second}: {data} is already described by {first}; skipped "
            "(remove one of the two sidecars)",
        )
    ]
    assert next(catalog.query())["record_id"] == "first"  # not relabelled

    first.rename(tmp_path / "moved-away.txt")
    report = ingest_paths(catalog, [second])
    assert (report.updated, report.failed) == (1, [])
    assert report.warnings == [
        (
            second,
            f"{second}: {data} was described by {first}, which no longer exists; "
            "this sidecar takes over",
        )
    ]
    assert next(catalog.query())["record_id"] == "second"

    first.write_text(json.dumps(_with(record_id="first", path=str(data))))  # back again
    assert [m for _, m in ingest_paths(catalog, [first]).failed] == [
        f"{first}: {data} is already described by {second}; skipped "
        "(remove one of the two sidecars)"
    ]
    (tmp_path / "b.bin").write_bytes(b"")
    second.write_text(json.dumps(_with(record_id="second", path=str(tmp_path / "b.bin"))))
    report = ingest_paths(catalog, [first])  # the second now describes another file
    assert report.warnings == [
        (
            first,
            f"{first}: {data} was described by {second}, which now describes another file; "
            "this sidecar takes over",
        )
    ]


def test_a_bare_video_described_elsewhere_is_left_alone(catalog: Catalog, tmp_path: Path) -> None:
    video = tmp_path / "records" / "cam.mp4"
    video.parent.mkdir()
    video.write_bytes(b"x")
    sidecar = tmp_path / "meta" / "cam.json"
    sidecar.parent.mkdir()
    sidecar.write_text(json.dumps(_with(path=str(video))))
    ingest_paths(catalog, [sidecar])
    calls: list[Path] = []
    report = ingest_paths(catalog, [video.parent], probe=lambda p: calls.append(p) or _Info())
    assert (report.unchanged, report.failed, calls) == (1, [], [])
    assert next(catalog.query())["record_id"] == "r"


def test_data_outside_the_root_warns_or_is_refused(
    catalog: Catalog, tmp_path: Path, run: CliRunner
) -> None:
    outside = tmp_path / "elsewhere" / "x.bin"
    outside.parent.mkdir()
    outside.write_bytes(b"")
    root = tmp_path / "root"
    root.mkdir()
    (root / "x.json").write_text(json.dumps(_with(path=str(outside))))
    sidecar = root / "x.json"

    refused = ingest_paths(catalog, [root], confine=True)
    assert refused.failed == [
        (
            sidecar,
            f"{sidecar}: data file {outside} is outside the dataset root {root}; "
            "refused (--confine)",
        )
    ]
    report = ingest_paths(catalog, [root])
    assert report.added == 1
    assert report.warnings == [
        (sidecar, f"{sidecar}: data file {outside} is outside the dataset root {root}")
    ]
    catalog.set_base_dir(tmp_path)  # inside the base directory: fine
    assert ingest_paths(catalog, [root], confine=True).failed == []

    db = ["catalog", "add", "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    result = run.invoke(main, [*db, "--confine", str(root)])
    assert result.exit_code == 1
    assert result.stderr.endswith("refused (--confine)\n")
    result = run.invoke(main, [*db, str(root)])
    assert (result.exit_code, result.stdout) == (
        0,
        "1 added, 0 updated, 0 unchanged, 0 failed, 1 warning\n",
    )


def test_hostile_camera_csvs_fail_their_video_alone(catalog: Catalog, tmp_path: Path) -> None:
    csvs = {
        "inf": "1489728491000,1,1,1\ninf,1,1,0\n",
        "huge": "1489728491000,1,1,1\n1e1000000000,1,1,0\n",
        "equal": "1489728491000,1,1,1\n1489728491000,1,1,0\n",
        "bytes": "1489728491000,1,1,1\n\udcff,1,1,0\n",
        "good": "1489728491000,1,1,1\n1489728491033,1,1,0\n",
    }
    for stem, text in csvs.items():
        (tmp_path / f"{stem}.mp4").write_bytes(b"x")
        (tmp_path / f"{stem}_timestamps.csv").write_bytes(text.encode("utf-8", "surrogateescape"))
    report = ingest_paths(catalog, [tmp_path], probe=lambda p: _Info(frame_count=2))
    assert report.added == 2  # the good video and its CSV
    reasons = {path.name: message for path, message in report.failed}
    assert set(reasons) == {"inf.mp4", "huge.mp4", "equal.mp4", "bytes.mp4"}
    assert reasons["inf.mp4"].endswith(
        "inf_timestamps.csv' row 2: 'inf' is not an epoch time "
        "in milliseconds (expected rows 'epoch_ms, byte_offset, "
        "size, is_keyframe', e.g. '1489728491000,24,1,1')"
    )
    assert "huge_timestamps.csv' row 2: '1e1000000000' is not an epoch time" in reasons["huge.mp4"]
    assert "all 2 rows have the same time 1489728491000 ms" in reasons["equal.mp4"]
    assert "bytes_timestamps.csv' row 2: not UTF-8 text (byte 0xff" in reasons["bytes.mp4"]


def test_bad_options_are_config_errors(catalog: Catalog, tmp_path: Path, run: CliRunner) -> None:
    from framefleet.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^start_timestamp must be epoch seconds from 0 to"):
        ingest_paths(catalog, [tmp_path], start_timestamp=float("nan"))
    with pytest.raises(ConfigError, match=r"^batch_size must be >= 1, got 0$"):
        ingest_paths(catalog, [tmp_path], batch_size=0)
    with pytest.raises(ConfigError, match=r"^record_id 'a\\x00' contains a NUL character$"):
        ingest_paths(catalog, [tmp_path], record_id="a\x00")
    db = ["catalog", "add", "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    result = run.invoke(main, [*db, "--start-timestamp", "inf", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: start_timestamp must be epoch seconds from 0 to ")
    assert result.stderr.count("\n") == 1


def test_a_tree_copied_elsewhere_is_not_a_second_description(
    catalog: Catalog, tmp_path: Path
) -> None:
    tree = tmp_path / "a"
    tree.mkdir()
    (tree / "x.bin").write_bytes(b"")
    (tree / "x.bin.json").write_text(json.dumps(GOOD))
    ingest_paths(catalog, [tree])
    copy = tmp_path / "b"
    shutil.copytree(tree, copy)
    report = ingest_paths(catalog, [copy])  # another data file: its own row
    assert (report.added, report.failed) == (1, [])
    assert len(catalog.query()) == 2
