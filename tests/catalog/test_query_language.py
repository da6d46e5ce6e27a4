"""The filter language: parsing, printing, errors with carets, and property tests."""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from framefleet.catalog import Catalog, format_query, parse_query
from framefleet.catalog.query import (
    FIELDS,
    NUMBER_FIELDS,
    And,
    Between,
    Compare,
    Expr,
    In,
    Like,
    Not,
    Or,
    tokenize,
)
from framefleet.errors import QueryError
from tests.catalog.strategies import filter_exprs

SEED_QUERY = (
    'tags like "%camera%" and tags like "%image%" and tags like "%front%" and '
    'tags like "%center%" and record_id like "%016_00000000030000000240%"'
)


def test_seed_query_parses_to_five_likes() -> None:
    expr = parse_query(SEED_QUERY)
    assert expr == And(
        (
            Like("tags", "%camera%"),
            Like("tags", "%image%"),
            Like("tags", "%front%"),
            Like("tags", "%center%"),
            Like("record_id", "%016_00000000030000000240%"),
        )
    )
    assert format_query(expr) == SEED_QUERY


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("record_id = 'a'", Compare("record_id", "=", "a")),
        ('record_id == "a"', Compare("record_id", "=", "a")),
        ("record_id <> 'a'", Compare("record_id", "!=", "a")),
        ("RECORD_ID Like 'a%'", Like("record_id", "a%")),
        ("path not like '%x'", Like("path", "%x", negated=True)),
        ("start_timestamp >= -1.5e3", Compare("start_timestamp", ">=", -1500.0)),
        ("duration < 10", Compare("duration", "<", 10)),
        ("contents in ('a', \"b\")", In("contents", ("a", "b"))),
        ("tags not in ('a')", In("tags", ("a",), negated=True)),
        ("duration between 1 and 2", Between("duration", 1, 2)),
        ("duration not between 1 and 2", Between("duration", 1, 2, negated=True)),
        ("description = 'it''s'", Compare("description", "=", "it's")),
        ('description = "say ""hi"""', Compare("description", "=", 'say "hi"')),
        (
            "start_timestamp > '2017-03-17T05:28:11Z'",
            Compare("start_timestamp", ">", "2017-03-17T05:28:11Z"),
        ),
        (
            "not (tags = 'a' or tags = 'b') and duration > 1",
            And(
                (
                    Not(Or((Compare("tags", "=", "a"), Compare("tags", "=", "b")))),
                    Compare("duration", ">", 1),
                )
            ),
        ),
        (
            "tags = 'a' or tags = 'b' and tags = 'c'",
            Or(
                (
                    Compare("tags", "=", "a"),
                    And((Compare("tags", "=", "b"), Compare("tags", "=", "c"))),
                )
            ),
        ),
        ("not not duration > 1", Not(Not(Compare("duration", ">", 1)))),
    ],
)
def test_parse(query: str, expected: Expr) -> None:
    assert parse_query(query) == expected
    assert parse_query(format_query(expected)) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "foo = 1",
            r"unknown field 'foo' \(allowed: record_id, .*duration\)\n  foo = 1\n  \^\^\^$",
        ),
        ("", r"empty filter"),
        ("record_id = 'x'; DROP TABLE files", r"unexpected character ';' \(a filter is one"),
        ("record_id = 'x' --", r"unexpected character '-'.*no comments"),
        ("1=1 --", r"unexpected character '-'"),
        ("record_id = 'x' or 1=1", r"expected a field name, found '1'\n.*\n {21}\^$"),
        ("record_id in (select path from files)", r"found a sub-select\n.*\n {16}\^{6}$"),
        ("lower(record_id) = 'x'", r"unknown field 'lower'"),
        ("path('x') = 'x'", r"function calls are not allowed"),
        ("record_id = 16", r"record_id is text: quote the value, e\.g\. record_id = \"16\""),
        ("duration = 'long'", r"duration is a number of seconds"),
        ("start_timestamp > 'yesterday'", r"neither epoch seconds nor an ISO time"),
        ("duration like '1%'", r"duration is a number: 'like' needs a text field"),
        ("tags < 'a'", r"tags take only =, !=, like"),
        ("tags between 'a' and 'b'", r"tags take only"),
        ("record_id like 5", r"'like' needs a quoted pattern, found '5'"),
        ("(record_id = 'a'", r"unbalanced '\(': no '\)' closes it\n.*\n  \^$"),
        ("record_id = 'a')", r"unbalanced '\)'"),
        ("record_id = 'a", r"unterminated string \(no closing '\)"),
        ("record_id = 'a' record_id = 'b'", r"expected 'and', 'or'"),
        ("record_id", r"expected an operator .* found the end of the query"),
        ("record_id not = 'a'", r"expected 'like', 'in' or 'between' after 'record_id'"),
        ("duration between 1 or 2", r"expected 'and' in 'between'"),
        ("contents in ('a' 'b')", r"expected ',' or '\)' in the list"),
        ("duration > 1x", r"malformed number '1x'"),
        ("duration > 1e999", r"out of range"),
        ("record_id = 'a\x00'", r"NUL character"),
        ("(" * 100 + "duration > 1" + ")" * 100, r"nested deeper than 64 levels"),
        ("not " * 100 + "duration > 1", r"nested deeper than 64 levels"),
        ("record_id = 'a' and", r"expected a field name, found the end of the query"),
        ("record_id = `a`", r"unexpected character '`'"),
        ("path like 'a\\'", r"may not end with a lone \\"),
    ],
)
def test_errors_show_the_query_and_a_caret(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(query)


def test_caret_sits_under_the_token_on_its_line() -> None:
    with pytest.raises(QueryError) as info:
        parse_query("record_id = 'a'\n  and bogus = 1")
    assert str(info.value).splitlines()[1:] == ["    and bogus = 1", "        ^^^^^"]


def test_tokens_keep_their_positions() -> None:
    tokens = tokenize("tags like '%a%' and duration>=2")
    assert [(t.kind, t.text, t.start) for t in tokens] == [
        ("word", "tags", 0),
        ("word", "like", 5),
        ("string", "'%a%'", 10),
        ("word", "and", 16),
        ("word", "duration", 20),
        ("op", ">=", 28),
        ("number", "2", 30),
        ("end", "", 31),
    ]


# --- property tests --------------------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12
)
_numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
_exprs = filter_exprs(_text, _numbers, max_leaves=8)


@given(_exprs)
@settings(max_examples=300, deadline=None)
def test_print_then_parse_round_trips(expr: Expr) -> None:
    assert parse_query(format_query(expr)) == expr


@pytest.fixture(scope="module")
def guarded_catalog(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Catalog, list[str]]]:
    """A catalog that records every SQL statement it runs."""
    path = tmp_path_factory.mktemp("guard") / "c.db"
    with Catalog(f"sqlite:///{path}") as cat:
        executed: list[str] = []
        event.listen(cat._engine, "before_cursor_execute", lambda *args: executed.append(args[2]))
        yield cat, executed


_soup_tokens = st.sampled_from(
    [
        *FIELDS,
        *NUMBER_FIELDS,
        "and",
        "or",
        "not",
        "like",
        "in",
        "between",
        "select",
        "from",
        "(",
        ")",
        ",",
        "=",
        "!=",
        "<",
        ">=",
        ";",
        "--",
        "/*",
        "*/",
        "'x'",
        '"%a%"',
        "'",
        '"',
        "1",
        "-2.5e3",
        "1=1",
        "DROP TABLE files",
        "lower(",
        "*",
        "%",
        "\\",
        "\n",
        "union",
    ]
)


@given(st.one_of(st.text(max_size=60), st.lists(_soup_tokens, max_size=12).map(" ".join)))
@settings(max_examples=500, deadline=None)
def test_garbage_raises_only_query_error_and_never_reaches_the_database(
    guarded_catalog: tuple[Catalog, list[str]], query: str
) -> None:
    cat, executed = guarded_catalog
    executed.clear()
    try:
        cat.query(query)  # lazy: building the result must not run any SQL either
    except QueryError:
        pass
    else:
        if query.strip():  # blank means "no filter"
            expr = parse_query(query)
            assert parse_query(format_query(expr)) == expr
    assert executed == []


@pytest.mark.parametrize("ch", list(string.printable))
def test_a_lone_character_is_never_a_filter(ch: str) -> None:
    with pytest.raises(
        QueryError,
        match=r"^(empty filter|unexpected character|expected|unbal|unterm|unknown field)",
    ):
        parse_query(ch)


def test_a_query_that_does_not_parse_raises_before_touching_the_database(tmp_path: Path) -> None:
    with Catalog(f"sqlite:///{tmp_path / 'c.db'}") as cat:
        executed: list[str] = []
        event.listen(cat._engine, "before_cursor_execute", lambda *a: executed.append(a[2]))
        with pytest.raises(QueryError, match="unknown field 'foo'"):
            cat.query("foo = 1")
        assert executed == []
