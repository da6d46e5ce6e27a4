"""Hypothesis strategies the catalog tests share: filter syntax trees, and JSON values."""

from __future__ import annotations

from hypothesis import strategies as st

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
)


def _even_backslashes(text: str) -> bool:
    """A like pattern may not end with a lone backslash."""
    return (len(text) - len(text.rstrip("\\"))) % 2 == 0


def filter_exprs(
    texts: st.SearchStrategy[str], numbers: st.SearchStrategy[Value], *, max_leaves: int
) -> st.SearchStrategy[Expr]:
    """Every kind of filter tree over every field, with values for text and number fields."""

    @st.composite
    def leaves(draw: st.DrawFn) -> Expr:
        field = draw(st.sampled_from(FIELDS))
        values: st.SearchStrategy[Value] = texts if field in TEXT_FIELDS else numbers
        negated = draw(st.booleans())
        kinds = ["compare", "in"] + (["like"] if field in TEXT_FIELDS else [])
        kinds += [] if field == "tags" else ["between"]
        kind = draw(st.sampled_from(kinds))
        if kind == "compare":
            ops = ["=", "!="] if field == "tags" else ["=", "!=", "<", "<=", ">", ">="]
            return Compare(field, draw(st.sampled_from(ops)), draw(values))  # type: ignore[arg-type]
        if kind == "in":
            return In(field, tuple(draw(st.lists(values, min_size=1, max_size=3))), negated)
        if kind == "like":
            return Like(field, draw(texts.filter(_even_backslashes)), negated)
        return Between(field, draw(values), draw(values), negated)

    return st.recursive(
        leaves(),
        lambda kids: st.one_of(
            kids.map(Not),
            st.lists(kids, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
            st.lists(kids, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        ),
        max_leaves=max_leaves,
    )


hostile_chars = st.one_of(
    st.characters(exclude_categories=()),
    st.sampled_from(["\x00", "\ud800", "\udfff", "\n", "\r", "\x7f", "\u2028", "\ufeff", "'", '"']),
)
"""Any character, with the troublesome ones (NUL, lone surrogates, line breaks) made common."""
hostile_text = st.one_of(
    st.text(hostile_chars, max_size=20),
    st.text(hostile_chars, min_size=250, max_size=300),
)
"""Any text, some of it longer than a name column takes."""
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([2**31 - 1, 2**31, 2**63, -1, 0, 253_402_300_800, 1e300, -0.0, 1.5]),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
"""Any JSON scalar: huge integers, NaN and infinities, any text incl. NUL and lone surrogates."""
json_values = st.recursive(
    json_scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(hostile_text, kids, max_size=4)
    ),
    max_leaves=10,
)
"""Any JSON value (what ``json.loads`` can give)."""
