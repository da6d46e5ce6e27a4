"""Filters: any text and any number give results or a `QueryError`, on SQLite and PostgreSQL.

The query is run to the end (results materialised), so a value the database would refuse (a lone
surrogate, a NUL, an overflowing number) must have been caught before it got there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framefleet.catalog import Catalog, parse_query
from framefleet.catalog.query import MAX_QUERY_CHARS, MAX_TERMS
from framefleet.catalog.syntax import FIELDS, NUMBER_FIELDS
from framefleet.cli import main
from framefleet.errors import QueryError
from tests.catalog.conftest import BACKENDS, _reset_postgres
from tests.catalog.strategies import hostile_chars, hostile_text
from tests.catalog.test_query_semantics import BASE, ENTRIES


@pytest.fixture(scope="module", params=BACKENDS)
def small(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'c.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        _reset_postgres(url)
    with Catalog(url) as cat:
        cat.set_base_dir(BASE)
        cat.upsert(ENTRIES)
        yield cat


def _run(catalog: Catalog, **query: Any) -> list[dict[str, Any]] | QueryError:
    try:
        return list(catalog.query(**query))
    except QueryError as e:
        return e


def _readable(error: QueryError) -> None:
    """A message line, the query's line and the caret line: each printable, none too long."""
    lines = str(error).split("\n")
    assert len(lines) == 3, str(error)
    assert all(line.isprintable() and len(line) < 400 for line in lines), str(error)
    assert lines[2].strip(" ^") == "" and "^" in lines[2], str(error)


_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_soup = st.lists(
    st.one_of(
        st.sampled_from([*FIELDS, "and", "or", "not", "like", "in", "between", "(", ")", ",", "="]),
        st.sampled_from(["<", ">=", "!=", "'", '"', "%", "\\", "--", ";", "1", "-2.5e3", "1e999"]),
        hostile_text.map(lambda t: "'" + t.replace("'", "''") + "'"),
        st.integers().map(str),
    ),
    max_size=12,
).map(" ".join)


@given(text=st.one_of(st.text(hostile_chars, max_size=80), _soup))
@_SETTINGS
def test_any_text_gives_results_or_a_query_error(small: Catalog, text: str) -> None:
    outcome = _run(small, where=text)
    if isinstance(outcome, QueryError):
        _readable(outcome)


def _number_text(number: int | float) -> str:
    return str(number) if isinstance(number, int) else repr(number)


@given(
    field=st.sampled_from(NUMBER_FIELDS),
    op=st.sampled_from(["=", "<", ">=", "between", "in", "quoted"]),
    numbers=st.lists(
        st.one_of(
            st.integers(),
            st.integers(min_value=-(10**4000), max_value=10**4000),
            st.floats(),
            st.sampled_from([10**399, 2**63, 1e308, 5e-324, -0.0]),
        ),
        min_size=2,
        max_size=2,
    ),
)
@_SETTINGS
def test_any_number_gives_results_or_a_query_error(
    small: Catalog, field: str, op: str, numbers: list[int | float]
) -> None:
    a, b = (_number_text(n) for n in numbers)
    where = {
        "between": f"{field} between {a} and {b}",
        "in": f"{field} in ({a}, {b})",
        "quoted": f"{field} > '{a}'",
    }.get(op, f"{field} {op} {a}")
    outcome = _run(small, where=where)
    if isinstance(outcome, QueryError):
        _readable(outcome)


@given(
    option=st.sampled_from(["tags", "record_id", "content", "since", "until"]),
    value=st.one_of(hostile_text, st.integers(), st.floats()),
)
@_SETTINGS
def test_any_option_value_gives_results_or_a_query_error(
    small: Catalog, option: str, value: Any
) -> None:
    if option == "tags":
        value = [str(value)]
    elif option in ("record_id", "content"):
        value = str(value)
    try:
        list(small.query(**{option: value}))
    except QueryError as e:
        message = str(e)
        assert "\n" not in message and message.isprintable() and len(message) < 400, message


_FORTY_THOUSAND = " or ".join(f'tags like "%{i}%"' for i in range(40_000))
KILLERS = [
    ("duration > " + "9" * 400, r"number of 400 characters is too long \(at most 32; e\.g\."),
    ("duration > " + "9" * 5000, r"number of 5000 characters is too long"),
    ("record_id = '\ud800'", r"a string may not contain a lone surrogate \(not valid Unicode\)"),
    ("record_id = 'a\x00b'", r"a string may not contain a NUL character"),
    ("record_id = 'a'\x00", r"unexpected character '\\x00'"),
    ("duration > \u0661", r"unexpected character '\u0661'"),
    (_FORTY_THOUSAND, rf"filter is {len(_FORTY_THOUSAND)} characters long \(at most 100000\)"),
    (" or ".join(["duration > 1"] * 65), r"filter has more than 64 terms; use 'in \(\.\.\.\)'"),
    ("path in (" + ", ".join(["'a'"] * 1001) + ")", r"an 'in' list has more than 1000 values"),
    ("duration = 'x\ny'", r"duration is a number of seconds, found \"'x\\ny'\""),
]


@pytest.mark.parametrize(("query", "message"), KILLERS, ids=range(len(KILLERS)))
def test_known_killers_are_query_errors(small: Catalog, query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message) as info:
        list(small.query(query))
    _readable(info.value)


def test_caret_stays_under_the_error_on_a_long_line() -> None:
    query = ("record_id = '" + "x" * 50 + "' and ") * 20 + "bogus = 1"
    with pytest.raises(QueryError, match=r"^unknown field 'bogus'") as info:
        parse_query(query)
    _, line, caret = str(info.value).split("\n")
    assert line.startswith("  ...") and line.endswith("bogus = 1")
    assert line[caret.index("^") :].startswith("bogus")
    assert len(line) < 120


def test_option_limits() -> None:
    with Catalog("sqlite://") as cat:
        with pytest.raises(
            QueryError, match=rf"^{MAX_TERMS + 1} tags given \(at most {MAX_TERMS}\)$"
        ):
            cat.query(tags=["t"] * (MAX_TERMS + 1))
        with pytest.raises(QueryError, match=r"^record id glob 'a\\x00' contains a NUL character$"):
            cat.query(record_id="a\x00")
        with pytest.raises(QueryError, match=r"^content glob '\\ud800' is not valid Unicode"):
            cat.query(content="\ud800")
        with pytest.raises(
            QueryError,
            match=r"^since must be a finite number of seconds, got an integer of 401 digits$",
        ):
            cat.query(since=10**400)


def test_the_forty_thousand_term_filter_fails_at_once_from_the_cli(tmp_path: Any) -> None:
    assert len(_FORTY_THOUSAND) > MAX_QUERY_CHARS
    db = f"sqlite:///{tmp_path / 'c.db'}"
    result = CliRunner().invoke(main, ["catalog", "query", "--db", db, "--where", _FORTY_THOUSAND])
    assert result.exit_code == 1
    expected = f"error: filter is {len(_FORTY_THOUSAND)} characters long (at most 100000)\n"
    assert result.stderr.startswith(expected)
    assert len(result.stderr.splitlines()) == 3
    assert not (tmp_path / "c.db").exists()
