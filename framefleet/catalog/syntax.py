"""The catalog filter language's syntax tree, and how a tree is printed back as text.

`framefleet.catalog.query` parses text into these nodes; `framefleet.catalog.filters` turns them
into SQL. ``parse_query(format_query(e)) == e`` for every tree the parser can produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

TEXT_FIELDS = (
    "record_id",
    "sub_record_id",
    "database_id",
    "description",
    "data_type",
    "path",
    "content_type",
    "contents",
    "tags",
)
NUMBER_FIELDS = ("start_timestamp", "end_timestamp", "duration")
FIELDS = TEXT_FIELDS + NUMBER_FIELDS
"""The fields a filter may name, and nothing else."""

CompareOp = Literal["=", "!=", "<", "<=", ">", ">="]
Value: TypeAlias = str | int | float


@dataclass(frozen=True)
class Compare:
    """``field op value``."""

    field: str
    op: CompareOp
    value: Value


@dataclass(frozen=True)
class Like:
    """``field [not] like pattern``: ``%`` any run, ``_`` one character, ``\\x`` a literal x."""

    field: str
    pattern: str
    negated: bool = False


@dataclass(frozen=True)
class In:
    """``field [not] in (v1, v2, ...)``."""

    field: str
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class Between:
    """``field [not] between low and high`` (both ends included, as in SQL)."""

    field: str
    low: Value
    high: Value
    negated: bool = False


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]


Expr: TypeAlias = Compare | Like | In | Between | Not | And | Or


def format_value(value: Value) -> str:
    """A literal as the filter language writes it (strings double-quoted)."""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return repr(value)


def format_query(expr: Expr) -> str:
    """Print a syntax tree as filter text; ``parse_query(format_query(e)) == e``."""
    match expr:
        case Compare(field, op, value):
            return f"{field} {op} {format_value(value)}"
        case Like(field, pattern, negated):
            return f"{field} {'not like' if negated else 'like'} {format_value(pattern)}"
        case In(field, values, negated):
            listed = ", ".join(format_value(v) for v in values)
            return f"{field} {'not in' if negated else 'in'} ({listed})"
        case Between(field, low, high, negated):
            keyword = "not between" if negated else "between"
            return f"{field} {keyword} {format_value(low)} and {format_value(high)}"
        case Not(operand):
            inner = format_query(operand)
            return f"not ({inner})" if isinstance(operand, And | Or) else f"not {inner}"
        case And(operands):
            return " and ".join(_grouped(o, (And, Or)) for o in operands)
        case Or(operands):
            return " or ".join(_grouped(o, (Or,)) for o in operands)
    raise TypeError(f"not a filter expression: {expr!r}")  # pragma: no cover


def _grouped(expr: Expr, kinds: tuple[type, ...]) -> str:
    text = format_query(expr)
    return f"({text})" if isinstance(expr, kinds) else text
