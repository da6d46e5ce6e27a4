"""The catalog's filter language: a tokenizer and a recursive-descent parser.

It reads pydtk-style filter strings such as
``tags like "%camera%" and record_id like "%016_%" and start_timestamp >= 1489728491``
into a small tree (`Expr`, see `framefleet.catalog.syntax`) that `framefleet.catalog.filters`
turns into SQLAlchemy expressions with
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
    NUMBER     := [-+]? digits [. digits] [e [-+] digits]   (ASCII digits)

Any text gives either a tree or a `QueryError`; the parser is bounded whatever the input: at most
`MAX_QUERY_CHARS` characters, `MAX_TERMS` predicates, `MAX_LIST_VALUES` values in one ``in``
list, `MAX_DEPTH` levels of parentheses and ``not``, numbers of at most `MAX_NUMBER_CHARS`
characters (so none overflows a float or an integer conversion), and strings of valid Unicode
without NUL (both would be refused by the database). Every message is one line, followed by the
query's line (non-printable characters shown as ``?``, long lines cut around the error) and a
caret under the offending token.

`framefleet.catalog.syntax.format_query` prints a tree back as text that parses to the same tree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from framefleet.catalog.syntax import (
    FIELDS,
    NUMBER_FIELDS,
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
from framefleet.catalog.times import to_epoch_seconds
from framefleet.errors import QueryError

MAX_QUERY_CHARS = 100_000
"""Longest filter text (a list of a thousand paths fits)."""
MAX_TERMS = 64
"""Most predicates in one filter, and most ``tags`` options: a database evaluates a tag test
joined by ``or`` once per row, so each costs time on every row."""
MAX_LIST_VALUES = 1000
"""Most values in one ``in (...)`` list."""
MAX_DEPTH = 64
"""Nesting limit for parentheses and ``not``: deeper is an error, not a stack overflow."""
MAX_NUMBER_CHARS = 32
"""Longest number literal: enough for every float's repr, short of any overflow."""

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


_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = ("<=", ">=", "!=", "<>", "==", "=", "<", ">")
_KEYWORDS = frozenset({"and", "or", "not", "like", "in", "between"})


_BEFORE, _AFTER = 60, 40  # characters of the query's line shown around the error
_SHOWN = 40  # characters of a token shown in a message, and most carets under one


def _error(query: str, message: str, start: int, end: int | None = None) -> QueryError:
    """A `QueryError`: the message, the query's line and carets under ``[start, end)``.

    The message is made one line (non-printable characters escaped); the line is cut to a window
    around the error, with each non-printable character shown as ``?`` so the caret stays aligned.
    """
    end = start + 1 if end is None or end <= start else min(end, start + _SHOWN)
    line_start = query.rfind("\n", 0, start) + 1
    line_end = query.find("\n", start)
    line_end = len(query) if line_end == -1 else line_end
    shown_start = max(line_start, start - _BEFORE)
    shown_end = min(line_end, max(end, start + 1) + _AFTER)
    line = "".join(c if c.isprintable() else "?" for c in query[shown_start:shown_end])
    prefix = "..." if shown_start > line_start else ""
    suffix = "..." if shown_end < line_end else ""
    carets = max(1, min(end, shown_end + 1) - start)
    caret = " " * (len(prefix) + start - shown_start) + "^" * carets
    return QueryError(f"{_printable(message)}\n  {prefix}{line}{suffix}\n  {caret}")


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def tokenize(query: str) -> list[Token]:
    """Split ``query`` into tokens, ending with an ``end`` token.

    Raises:
        QueryError: a character that belongs to no token, or an unterminated string.
    """
    tokens: list[Token] = []
    i, n = 0, len(query)
    if n > MAX_QUERY_CHARS:
        raise _error(
            query, f"filter is {n} characters long (at most {MAX_QUERY_CHARS})", MAX_QUERY_CHARS
        )
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
            if not text.isascii() and not _is_unicode(text):
                raise _error(
                    query, "a string may not contain a lone surrogate (not valid Unicode)", i, k + 1
                )
            tokens.append(Token("string", query[i : k + 1], i, text))
            i = k + 1
        elif (m := _NUMBER.match(query, i)) is not None:
            text = m.group()
            if len(text) > MAX_NUMBER_CHARS:
                raise _error(
                    query,
                    f"number of {len(text)} characters is too long "
                    f"(at most {MAX_NUMBER_CHARS}; e.g. 1489728491.5 or 1.5e9)",
                    i,
                    m.end(),
                )
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


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.pos = 0
        self.depth = 0
        self.terms = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.pos]

    def error(self, message: str, token: Token | None = None) -> QueryError:
        token = token or self.token
        return _error(self.query, message, token.start, token.end)

    def describe(self, token: Token) -> str:
        if token.kind == "end":
            return "the end of the query"
        text = token.text
        return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")

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
            raise self.error(f"unknown field {self.describe(token)} (allowed: {', '.join(FIELDS)})")
        self.advance()
        if self.at("("):
            raise self.error("function calls are not allowed")
        return name

    def predicate(self) -> Expr:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.error(
                f"filter has more than {MAX_TERMS} terms; "
                "use 'in (...)' for a list of values, or split it into several queries"
            )
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
                if len(values) == MAX_LIST_VALUES:
                    raise self.error(f"an 'in' list has more than {MAX_LIST_VALUES} values")
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
                raise self.error(f"duration is a number of seconds, found {self.describe(token)}")
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
