"""The catalog's filter language: a tokenizer, a recursive-descent parser and its syntax tree.

It reads pydtk-style filter strings such as
``tags like "%camera%" and record_id like "%016_%" and start_timestamp >= 1489728491``
into a small tree (`Expr`) that `framefleet.catalog.filters` turns into SQLAlchemy expressions with
bound parameters. Nothing of the text ever becomes SQL: only whitelisted field names map to
columns, and every literal is a parameter. Anything else (``;``, ``--``, a sub-select, a function
call, an unknown field) is a `QueryError` that shows the query with a caret under the token, and is
raised before any database is touched.

Grammar (keywords and field names are case-insensitive)::

    query      := or_expr EOF
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | predicate
    predicate  := FIELD ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") value
                | FIELD ["not"] "like" STRING
                | FIELD ["not"] "in" "(" value ("," value)* ")"
                | FIELD ["not"] "between" value "and" value
    value      := STRING | NUMBER
    STRING     := '...' or "..." (the quote doubled inside stands for itself)
    NUMBER     := [-+]? digits [. digits] [e [-+] digits]

`format_query` prints a tree back as text that parses to the same tree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

from framefleet.catalog.times import to_epoch_seconds
from framefleet.errors import QueryError

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

MAX_DEPTH = 64
"""Nesting limit for parentheses and ``not``: deeper is an error, not a stack overflow."""

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

TokenKind = Literal["word", "string", "number", "op", "(", ")", ",", "end"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    """The token as written (for a string: with its quotes)."""
    start: int
    value: Value = ""
    """A string's content or a number's value; a word in lower case."""

    @property
    def end(self) -> int:
        return self.start + max(len(self.text), 1)


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = ("<=", ">=", "!=", "<>", "==", "=", "<", ">")
_KEYWORDS = frozenset({"and", "or", "not", "like", "in", "between"})


def _error(query: str, message: str, start: int, end: int | None = None) -> QueryError:
    """A `QueryError` showing the (first line of the) query with carets under ``[start, end)``."""
    end = start + 1 if end is None or end <= start else end
    line_start = query.rfind("\n", 0, start) + 1
    line_end = query.find("\n", start)
    line_end = len(query) if line_end == -1 else line_end
    line = query[line_start:line_end].replace("\t", " ")
    caret = " " * (start - line_start) + "^" * max(1, min(end, line_end + 1) - start)
    return QueryError(f"{message}\n  {line}\n  {caret}")


def tokenize(query: str) -> list[Token]:
    """Split ``query`` into tokens, ending with an ``end`` token.

    Raises:
        QueryError: a character that belongs to no token, or an unterminated string.
    """
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c in " \t\r\n":
            i += 1
        elif c in "'\"":
            j, chars = i + 1, []
            while True:
                k = query.find(c, j)
                if k == -1:
                    raise _error(query, f"unterminated string (no closing {c})", i, n)
                chars.append(query[j:k])
                if query.startswith(c, k + 1):  # a doubled quote stands for itself
                    chars.append(c)
                    j = k + 2
                    continue
                break
            text = "".join(chars)
            if "\x00" in text:
                raise _error(query, "a string may not contain a NUL character", i, k + 1)
            tokens.append(Token("string", query[i : k + 1], i, text))
            i = k + 1
        elif (m := _NUMBER.match(query, i)) is not None:
            text = m.group()
            if m.end() < n and (query[m.end()].isalnum() or query[m.end()] in "_."):
                raise _error(query, f"malformed number {query[i : m.end() + 1]!r}", i, m.end() + 1)
            value: Value = float(text) if any(ch in text for ch in ".eE") else int(text)
            if isinstance(value, float) and not math.isfinite(value):
                raise _error(query, f"number {text!r} is out of range", i, m.end())
            tokens.append(Token("number", text, i, value))
            i = m.end()
        elif (m := _WORD.match(query, i)) is not None:
            tokens.append(Token("word", m.group(), i, m.group().lower()))
            i = m.end()
        elif c in "(),":
            tokens.append(Token(c, c, i))  # type: ignore[arg-type]
            i += 1
        else:
            op = next((o for o in _OPS if query.startswith(o, i)), None)
            if op is None:
                hint = ""
                if c == ";" or query.startswith("--", i):
                    hint = " (a filter is one expression: no statements, no comments)"
                raise _error(query, f"unexpected character {c!r}{hint}", i)
            tokens.append(Token("op", op, i, {"==": "=", "<>": "!="}.get(op, op)))
            i += len(op)
    tokens.append(Token("end", "", n))
    return tokens


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.pos = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.pos]

    def error(self, message: str, token: Token | None = None) -> QueryError:
        token = token or self.token
        return _error(self.query, message, token.start, token.end)

    def describe(self, token: Token) -> str:
        return "the end of the query" if token.kind == "end" else repr(token.text)

    def at(self, kind: TokenKind) -> bool:
        return self.token.kind == kind

    def advance(self) -> Token:
        token = self.token
        self.pos += 1
        return token

    def is_keyword(self, word: str) -> bool:
        return self.at("word") and self.token.value == word

    def expect(self, kind: TokenKind, what: str) -> Token:
        if self.token.kind != kind:
            raise self.error(f"expected {what}, found {self.describe(self.token)}")
        return self.advance()

    def parse(self) -> Expr:
        if self.at("end"):
            raise self.error('empty filter (expected e.g. record_id = "...")')
        expr = self.or_expr()
        if not self.at("end"):
            expected = "'and', 'or' or ')'" if self.depth == 0 else "'and', 'or'"
            if self.at(")"):
                raise self.error("unbalanced ')': no '(' to close")
            raise self.error(f"expected {expected} or the end, found {self.describe(self.token)}")
        return expr

    def or_expr(self) -> Expr:
        operands = [self.and_expr()]
        while self.is_keyword("or"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Expr:
        operands = [self.not_expr()]
        while self.is_keyword("and"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"filter nested deeper than {MAX_DEPTH} levels")

    def not_expr(self) -> Expr:
        if self.is_keyword("not"):
            self.advance()
            self.nested()
            operand = self.not_expr()
            self.depth -= 1
            return Not(operand)
        if self.at("("):
            opening = self.advance()
            self.nested()
            expr = self.or_expr()
            if not self.at(")"):
                if self.at("end"):
                    raise self.error("unbalanced '(': no ')' closes it", opening)
                raise self.error(f"expected 'and', 'or' or ')', found {self.describe(self.token)}")
            self.advance()
            self.depth -= 1
            return expr
        return self.predicate()

    def field(self) -> str:
        token = self.token
        if token.kind != "word" or token.value in _KEYWORDS:
            raise self.error(f"expected a field name, found {self.describe(token)}")
        name = str(token.value)
        if name not in FIELDS:
            raise self.error(f"unknown field {token.text!r} (allowed: {', '.join(FIELDS)})")
        self.advance()
        if self.at("("):
            raise self.error("function calls are not allowed")
        return name

    def predicate(self) -> Expr:
        field = self.field()
        token = self.token
        if token.kind == "op":
            if field == "tags" and token.value not in ("=", "!="):
                raise self.error("tags take only =, !=, like, not like, in and not in", token)
            self.advance()
            return Compare(field, token.value, self.value(field))  # type: ignore[arg-type]
        negated = False
        if self.is_keyword("not"):
            self.advance()
            negated = True
        if self.is_keyword("like"):
            if field in NUMBER_FIELDS:
                raise self.error(f"{field} is a number: 'like' needs a text field")
            self.advance()
            pattern = self.token
            if pattern.kind != "string":
                raise self.error(f"'like' needs a quoted pattern, found {self.describe(pattern)}")
            text = str(pattern.value)
            if (len(text) - len(text.rstrip("\\"))) % 2:
                raise self.error("a like pattern may not end with a lone \\ (write \\\\)")
            self.advance()
            return Like(field, str(pattern.value), negated)
        if self.is_keyword("in"):
            self.advance()
            self.expect("(", "'(' after 'in'")
            values = [self.value(field)]
            while self.at(","):
                self.advance()
                values.append(self.value(field))
            self.expect(")", "',' or ')' in the list")
            return In(field, tuple(values), negated)
        if self.is_keyword("between"):
            if field == "tags":
                raise self.error("tags take only =, !=, like, not like, in and not in")
            self.advance()
            low = self.value(field)
            if not self.is_keyword("and"):
                raise self.error(f"expected 'and' in 'between', found {self.describe(self.token)}")
            self.advance()
            return Between(field, low, self.value(field), negated)
        expected = (
            "'like', 'in' or 'between'"
            if negated
            else "an operator (= != < <= > >= like in between)"
        )
        raise self.error(f"expected {expected} after {field!r}, found {self.describe(self.token)}")

    def value(self, field: str) -> Value:
        """A literal for ``field``: text for text fields; a number (or, for the timestamps, an
        ISO time string) for number fields."""
        token = self.token
        if token.kind not in ("string", "number"):
            what = "a sub-select" if token.value == "select" else self.describe(token)
            raise self.error(f"expected a quoted string or a number, found {what}")
        if field in TEXT_FIELDS and token.kind == "number":
            raise self.error(f'{field} is text: quote the value, e.g. {field} = "{token.text}"')
        if field in NUMBER_FIELDS and token.kind == "string":
            if field == "duration":
                raise self.error(f"duration is a number of seconds, found {token.text}")
            try:
                to_epoch_seconds(str(token.value), name=field)
            except QueryError as e:
                raise self.error(str(e)) from None
        self.advance()
        return token.value


def parse_query(query: str) -> Expr:
    """Parse a filter string into its syntax tree.

    Raises:
        QueryError: the query does not parse or names a field not in `FIELDS`; the message shows
            the query with a caret under the offending token.
    """
    return _Parser(query).parse()


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
