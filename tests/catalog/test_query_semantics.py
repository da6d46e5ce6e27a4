"""What filters mean, checked against a plain-Python reference on SQLite and PostgreSQL.

Random filters (hypothesis) over a small catalog must select exactly the rows the reference
evaluator selects, on both backends: NULLs, `not`, `like` (case-insensitive, with escapes),
`in`, `between`, and "some tag matches" all behave the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framefleet.catalog import Catalog, parse_query
from framefleet.catalog.entries import ContentEntry, FileEntry
from framefleet.catalog.syntax import (
    FIELDS,
    TEXT_FIELDS,
    And,
    Between,
    Compare,
    Expr,
    In,
    Like,
    Not,
    Or,
    Value,
    format_query,
)
from framefleet.catalog.times import to_epoch_seconds
from tests.catalog.conftest import BACKENDS, _reset_postgres
from tests.catalog.strategies import filter_exprs

BASE = Path("/data/base")


def _entry(i: int, **fields: Any) -> FileEntry:
    contents = fields.pop("contents", (ContentEntry(name="camera/front", tags=("camera",)),))
    fields.setdefault("record_id", f"rec_{i:02d}")
    return FileEntry(path=BASE / f"f{i:02d}.dat", contents=contents, source_key=str(i), **fields)


ENTRIES = [
    _entry(
        0,
        record_id="016_a",
        description="Driving Database",
        database_id="db1",
        data_type="raw_data",
        content_type="video/mp4",
        start_timestamp=100.0,
        end_timestamp=180.0,
        contents=(ContentEntry(name="camera/front-center", tags=("camera", "front", "center")),),
    ),
    _entry(
        1,
        record_id="016_a",
        content_type="text/csv",
        start_timestamp=100.0,
        end_timestamp=180.0,
        contents=(ContentEntry(name="camera/front-center", tags=("camera", "timestamps")),),
    ),
    _entry(
        2,
        record_id="017_b",
        sub_record_id="x1",
        content_type="video/mp4",
        start_timestamp=200.0,
        end_timestamp=260.5,
        duration_seconds=59.5,
        contents=(
            ContentEntry(name="camera/rear", tags=("camera", "Rear")),
            ContentEntry(name="lidar/top", tags=()),
        ),
    ),
    _entry(3, record_id="a%b_c\\d", description="100% sure", start_timestamp=5.0),
    _entry(4, record_id="018_c", data_type="raw", end_timestamp=50.0),
    _entry(5, record_id="018_c", description="", contents=(ContentEntry(name="x", tags=("a_b",)),)),
]


def _rows() -> list[dict[str, Any]]:
    rows = []
    for e in ENTRIES:
        for c in e.contents:
            duration = e.duration_seconds
            if duration is None and e.start_timestamp is not None and e.end_timestamp is not None:
                duration = e.end_timestamp - e.start_timestamp
            row = {f: getattr(e, f, None) for f in FIELDS if f not in ("contents", "tags")}
            row.update(
                path=e.path.relative_to(BASE).as_posix(),
                contents=c.name,
                tags=list(c.tags),
                duration=duration,
                key=(str(e.path), c.name),
            )
            rows.append(row)
    return rows


ROWS = _rows()


def _like(value: str, pattern: str) -> bool:
    regex, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(regex), value, re.IGNORECASE | re.DOTALL) is not None


def _test(field: str, row: dict[str, Any], check: Any) -> bool:
    """Positive test: some tag matches (tags), or the value is present and matches."""
    if field == "tags":
        return any(check(t) for t in row["tags"])
    value = row[field]
    return value is not None and bool(check(value))


def _norm(field: str, value: Value) -> Value:
    """Literals as the catalog reads them: ISO times as epoch seconds, paths as stored."""
    if field in ("start_timestamp", "end_timestamp") and isinstance(value, str):
        return to_epoch_seconds(value)
    if field == "path" and isinstance(value, str) and value.startswith(f"{BASE}/"):
        return value[len(f"{BASE}/") :]
    return value


def evaluate(expr: Expr, row: dict[str, Any]) -> bool:
    """The reference meaning of a filter for one (file, content) row."""
    match expr:
        case Compare(field, op, v) if _norm(field, v) != v:
            return evaluate(Compare(field, op, _norm(field, v)), row)
        case In(field, values, negated) if field == "path":
            return (
                evaluate(In(field, tuple(_norm(field, v) for v in values), negated), row)
                if any(_norm(field, v) != v for v in values)
                else _test(field, row, lambda x: x in values) != negated
            )
        case Not(operand):
            return not evaluate(operand, row)
        case And(operands):
            return all(evaluate(o, row) for o in operands)
        case Or(operands):
            return any(evaluate(o, row) for o in operands)
        case Compare(field, "!=", v):
            return not _test(field, row, lambda x: x == v)
        case Compare(field, op, v):
            ops = {
                "=": lambda x: x == v,
                "<": lambda x: x < v,
                "<=": lambda x: x <= v,
                ">": lambda x: x > v,
                ">=": lambda x: x >= v,
            }
            return _test(field, row, ops[op])
        case Like(field, pattern, negated):
            return _test(field, row, lambda x: _like(x, pattern)) != negated
        case In(field, values, negated):
            return _test(field, row, lambda x: x in values) != negated
        case Between(field, low, high, negated):
            return _test(field, row, lambda x: low <= x <= high) != negated
    raise AssertionError(expr)


@pytest.fixture(scope="module", params=BACKENDS)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('semantics') / 'c.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        _reset_postgres(url)
    with Catalog(url) as cat:
        cat.set_base_dir(BASE)
        cat.upsert(ENTRIES)
        yield cat


def _keys(cat: Catalog, where: str) -> list[tuple[str, str]]:
    return sorted((item["path"], item["contents"]) for item in cat.query(where))


def _expected(where: str) -> list[tuple[str, str]]:
    expr = parse_query(where)
    return sorted(row["key"] for row in ROWS if evaluate(expr, row))


@pytest.mark.parametrize(
    ("where", "count"),
    [
        ('tags like "%camera%"', 5),
        ('tags like "%CAMERA%"', 5),
        ("tags = 'Camera'", 0),
        ("tags like 'rear'", 1),
        ("tags != 'camera'", 2),
        ("not tags like '%'", 1),
        ("tags like 'a\\_b'", 1),
        ("tags like 'a_b'", 1),
        ("record_id like '%\\%%'", 1),
        ("record_id like 'a\\%b\\_c\\\\d'", 1),
        ("description != 'Driving Database'", 6),
        ("description = ''", 1),
        ("sub_record_id != 'x1'", 5),
        ("not sub_record_id = 'x1'", 5),
        ("sub_record_id not in ('x1')", 5),
        ("start_timestamp < 150", 3),
        ("not start_timestamp < 150", 4),
        ("duration between 59.5 and 80", 4),
        ("duration = 59.5", 2),
        ("duration > 1e9", 0),
        ("end_timestamp not between 0 and 100", 6),
        ("contents in ('camera/rear', 'lidar/top')", 2),
        ("contents like 'camera/%' and not tags = 'timestamps'", 4),
        ("path = 'f02.dat'", 2),
        ("path = '/data/base/f02.dat'", 2),
        ("start_timestamp >= '1970-01-01T00:03:20Z'", 2),
        ("record_id = 'x' or record_id = '1=1'", 0),
        ("record_id = '016_a'' or ''1''=''1'", 0),
        ("description = '; DROP TABLE files; --'", 0),
    ],
)
def test_filter_meaning(filled: Catalog, where: str, count: int) -> None:
    assert len(_keys(filled, where)) == count
    assert _keys(filled, where) == _expected(where)


_vocabulary = sorted(
    {str(row[f]) for row in ROWS for f in TEXT_FIELDS if f != "tags" and row[f] is not None}
    | {t for row in ROWS for t in row["tags"]}
)
_texts = st.one_of(st.sampled_from(_vocabulary), st.text(alphabet="abc01_%\\/-", max_size=5))
_numbers = st.one_of(
    st.sampled_from([5, 50, 59.5, 60.5, 80, 100, 100.0, 180, 200, 260.5]),
    st.floats(min_value=-10, max_value=300, allow_nan=False),
)


_filters = filter_exprs(_texts, _numbers, max_leaves=6)


@given(expr=_filters)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_filters_match_the_reference(filled: Catalog, expr: Expr) -> None:
    where = format_query(expr)
    assert _keys(filled, where) == _expected(where)
