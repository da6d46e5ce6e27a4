"""Sidecars: any JSON value in any field, and any bytes, give a valid entry or a `MetadataError`.

"Valid" is proved by writing the entry to a real SQLite file and a real PostgreSQL database; the
error names the sidecar and the field, on one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framefleet.catalog import Catalog
from framefleet.catalog.entries import FileEntry
from framefleet.catalog.sidecar import read_sidecar
from framefleet.errors import MetadataError
from tests.catalog.conftest import BACKENDS, _reset_postgres
from tests.catalog.strategies import json_values

BASE: dict[str, Any] = {
    "record_id": "016_00000000030000000240",
    "description": "Driving Database",
    "database_id": "Driving Behavior Database",
    "type": "raw_data",
    "content-type": "video/mp4",
    "start_timestamp": 1489728491.0,
    "end_timestamp": 1489728570.957,
    "contents": {"camera/front-center": {"tags": ["camera", "front"], "count": 3}},
}
TOP_FIELDS = [
    "record_id",
    "description",
    "database_id",
    "sub_record_id",
    "type",
    "data_type",
    "content-type",
    "content_type",
    "path",
    "start_timestamp",
    "end_timestamp",
    "msg_type",
    "msg_md5sum",
    "count",
    "frequency",
    "contents",
    "tags",
]
CONTENT_FIELDS = ["tags", "msg_type", "msg_md5sum", "count", "frequency"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a data file ``a.bin`` whose sidecar the tests rewrite."""
    root = tmp_path_factory.mktemp("sidecars")
    (root / "a.bin").write_bytes(b"data")
    return root


@pytest.fixture(scope="module", params=BACKENDS)
def catalog(request: pytest.FixtureRequest, folder: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'fuzz.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        _reset_postgres(url)
    with Catalog(url) as cat:
        yield cat


def _outcome(sidecar: Path, catalog: Catalog) -> FileEntry | MetadataError:
    """The entry (written to the catalog and read back, to prove it valid) or the error."""
    try:
        entry = read_sidecar(sidecar)
    except MetadataError as e:
        _one_line(str(e), sidecar)
        return e
    assert catalog.upsert([entry])[0] in ("added", "updated", "unchanged")
    record = catalog.get_record(entry.record_id)
    assert record is not None
    assert str(entry.path) in [item["path"] for item in record["files"]]
    return entry


def _one_line(message: str, sidecar: Path) -> None:
    assert "\n" not in message and "\r" not in message, message
    assert message.isprintable(), message
    assert len(message) < 1000, message
    assert message.startswith(f"{sidecar}: "), message


def _write(folder: Path, document: Any) -> Path:
    sidecar = folder / "a.bin.json"
    sidecar.write_text(json.dumps(document))  # ASCII: lone surrogates become \ud800 escapes
    return sidecar


_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@given(field=st.sampled_from(TOP_FIELDS), value=json_values)
@_SETTINGS
def test_any_json_value_in_any_field(
    catalog: Catalog, folder: Path, field: str, value: Any
) -> None:
    outcome = _outcome(_write(folder, BASE | {field: value}), catalog)
    if isinstance(outcome, MetadataError):
        named = {field, "content_type" if field == "content-type" else field}
        if field in ("start_timestamp", "end_timestamp"):
            named |= {"start_timestamp", "end_timestamp"}
        assert any(name in str(outcome) for name in named), str(outcome)


@given(field=st.sampled_from(CONTENT_FIELDS), value=json_values, name=json_values)
@_SETTINGS
def test_any_json_value_in_any_content_field(
    catalog: Catalog, folder: Path, field: str, value: Any, name: Any
) -> None:
    contents = {str(name) if not isinstance(name, str) else name: {field: value}}
    outcome = _outcome(_write(folder, BASE | {"contents": contents}), catalog)
    if isinstance(outcome, MetadataError):
        assert "content" in str(outcome) or field in str(outcome), str(outcome)


@given(document=json_values)
@_SETTINGS
def test_any_json_document(catalog: Catalog, folder: Path, document: Any) -> None:
    _outcome(_write(folder, document), catalog)


@given(raw=st.one_of(st.binary(max_size=200), st.binary(max_size=40).map(lambda b: b'{"' + b)))
@_SETTINGS
def test_any_bytes(catalog: Catalog, folder: Path, raw: bytes) -> None:
    sidecar = folder / "a.bin.json"
    sidecar.write_bytes(raw)
    _outcome(sidecar, catalog)


KILLERS: list[tuple[str, bytes | dict[str, Any], str]] = [
    (
        "400-digit start",
        BASE | {"start_timestamp": 10**399},
        r"'start_timestamp' 1000+\.\.\. \(400 digits\) is out of range "
        r"\(allowed: 0 to 253402300800\)",
    ),
    ("deep nesting", b'{"record_id": ' + b"[" * 100_000, r"not valid JSON: nested too deeply$"),
    ("lone surrogate", BASE | {"record_id": "r\ud800"}, r"'record_id' is not valid Unicode"),
    ("NUL", BASE | {"description": "a\x00b"}, r"'description' contains a NUL character$"),
    ("NUL in path", BASE | {"path": "a.bin\x00x"}, r"'path' contains a NUL character$"),
    ("2^63", BASE | {"count": 2**63}, r"'count' 9223372036854775808 is out of range"),
    (
        "2^31",
        BASE | {"count": 2**31},
        r"'count' 2147483648 is out of range \(allowed: 0 to 2147483647\)",
    ),
    ("negative count", BASE | {"count": -1}, r"'count' -1 is out of range"),
    ("1e300", BASE | {"start_timestamp": 1e300}, r"'start_timestamp' 1e\+300 is out of range"),
    ("before 1970", BASE | {"start_timestamp": -5}, r"'start_timestamp' -5 is out of range"),
    ("NaN", BASE | {"end_timestamp": float("nan")}, r"'end_timestamp' NaN is not a finite number"),
    (
        "tags of numbers",
        BASE | {"contents": "c", "tags": [1]},
        r"'tags' must be a list of strings, got \[1\]",
    ),
    (
        "long record id",
        BASE | {"record_id": "r" * 256},
        r"'record_id' is 256 characters long \(at most 255\)",
    ),
    (
        "long description",
        BASE | {"description": "d" * 70_000},
        r"'description' is 70000 characters long \(at most 65536\)",
    ),
    (
        "5000 digits",
        b'{"count": ' + b"1" * 5000 + b"}",
        r"not valid JSON: a number has too many digits$",
    ),
    (
        "not UTF-8",
        b'\xff{"record_id": "r"}',
        r"not valid JSON: not UTF-8 text \(byte 0xff at offset 0\)$",
    ),
    ("newline in id", BASE | {"record_id": "a\nb"}, r"'record_id' contains a control character"),
    (
        "many tags",
        BASE | {"contents": "c", "tags": [f"t{i}" for i in range(1001)]},
        r"'tags' has 1001 tags \(at most 1000\)",
    ),
    (
        "long content name",
        BASE | {"contents": "c" * 300},
        r"'contents' has a content name \"c+\.\.\. that is 300 characters long",
    ),
    (
        "negative frequency",
        BASE | {"frequency": -1.0},
        r"'frequency' -1.0 is out of range \(allowed: 0 to 1000000000\)",
    ),
    ("alias", BASE | {"type": 5}, r"'type' must be a string, got 5$"),
    (
        "content not an object",
        BASE | {"contents": {"c": 5}},
        r"contents\['c'\] must be an object, got 5$",
    ),
    ("path elsewhere", BASE | {"path": 7}, r"'path' must be a string, got 7$"),
    ("too big", b" " * (1024 * 1024 + 1), r"larger than 1024 KiB: not a pydtk sidecar$"),
]


@pytest.mark.parametrize(
    ("document", "message"), [k[1:] for k in KILLERS], ids=[k[0] for k in KILLERS]
)
def test_known_killers_are_one_line_errors(
    tmp_path: Path, document: bytes | dict[str, Any], message: str
) -> None:
    (tmp_path / "a.bin").write_bytes(b"")
    sidecar = tmp_path / "a.bin.json"
    if isinstance(document, bytes):
        sidecar.write_bytes(document)
    else:
        sidecar.write_text(json.dumps(document))
    with pytest.raises(MetadataError, match=message) as info:
        read_sidecar(sidecar)
    _one_line(str(info.value), sidecar)


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a.bin.json")  # opening it for reading would block forever
    with pytest.raises(MetadataError, match=r"a.bin.json: not a regular file$"):
        read_sidecar(tmp_path / "a.bin.json")


def test_the_source_key_covers_the_data_file(tmp_path: Path) -> None:
    data = tmp_path / "a.bin"
    data.write_bytes(b"one")
    _write(tmp_path, BASE)
    first = read_sidecar(tmp_path / "a.bin.json")
    assert read_sidecar(tmp_path / "a.bin.json").source_key == first.source_key
    data.write_bytes(b"other")  # the video replaced under the same sidecar
    assert read_sidecar(tmp_path / "a.bin.json").source_key != first.source_key
    assert first.sidecar_path == tmp_path / "a.bin.json"
