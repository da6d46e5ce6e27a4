"""Watch rules: a catalog filter plus what to make of matching videos.

A rules file (TOML) holds ``[[rules]]`` tables; one rule can also come from the same flags as
``framefleet extract``. A rule's ``name`` is part of the exactly-once claim key, so renaming a rule
makes it a new rule (every matching recording is enqueued again for it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framefleet.catalog import parse_query
from framefleet.config import read_toml
from framefleet.errors import ConfigError, QueryError
from framefleet.jobs.completion import Completion
from framefleet.media.specs import BagClock, OutputSpec

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_OUTPUT_KEYS = {
    "out": "out_dir",
    "fps": "target_fps",
    "mode": "mode",
    "resize": "resize_rate",
    "max_side": "max_side_px",
    "width": "width",
    "height": "height",
    "format": "image_format",
    "quality": "quality",
    "name_template": "name_template",
    "fast_decode": "fast_decode",
}


MAX_SEGMENT_SECONDS = 86400
"""A segment longer than a day is a typo (and its time limits would overflow)."""

_COMPLETION_KEYS = {"export": "exports", "shard_size": "shard_size", "register": "register"}


@dataclass(frozen=True)
class Rule:
    """Enqueue every catalog video matching ``where`` with this output spec."""

    name: str
    where: str | None
    output: OutputSpec
    segment_seconds: float
    completion: Completion = field(default_factory=Completion)
    """Exports and registration of the rule's jobs when they complete."""
    bag_time: BagClock = "header"


def make_rule(
    name: str,
    *,
    where: str | None,
    output: OutputSpec,
    segment_seconds: float,
    completion: Completion | None = None,
    bag_time: BagClock = "header",
) -> Rule:
    """A validated rule: its name is usable as a claim key, its filter parses now (so a typo
    fails at start-up, not at the first poll), its segments have a length."""
    label = f"rule {name!r}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"rule name must be 1-100 letters, digits, '.', '_' or '-', got {name!r}")
    if where is not None:
        if not isinstance(where, str):
            raise ConfigError(f"{label}: 'where' must be a string")
        try:
            parse_query(where)
        except QueryError as e:
            raise ConfigError(f"{label}: where: {e}") from e
    if (
        isinstance(segment_seconds, bool)
        or not isinstance(segment_seconds, int | float)
        or not 0 < segment_seconds <= MAX_SEGMENT_SECONDS  # false for nan too
    ):
        raise ConfigError(
            f"{label}: segment_seconds must be a number of seconds in (0, "
            f"{MAX_SEGMENT_SECONDS}], got {segment_seconds!r}"
        )
    if bag_time not in ("header", "receive"):
        raise ConfigError(f"{label}: bag_time must be header or receive, got {bag_time!r}")
    return Rule(
        name=name,
        where=where,
        output=output,
        segment_seconds=float(segment_seconds),
        completion=completion or Completion(),
        bag_time=bag_time,
    )


def rule_from_table(table: dict[str, Any], *, default_segment_seconds: float) -> Rule:
    """One rule from a ``[[rules]]`` table of a rules file."""
    known = {"name", "where", "segment_seconds", "bag_time", *_OUTPUT_KEYS, *_COMPLETION_KEYS}
    label = f"rule {table.get('name')!r}"
    unknown = set(table) - known
    if unknown:
        raise ConfigError(
            f"{label}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    if "out" not in table:
        raise ConfigError(f"{label}: 'out' (the output directory) is required")
    output = {_OUTPUT_KEYS[k]: v for k, v in table.items() if k in _OUTPUT_KEYS}
    output["out_dir"] = str(output["out_dir"])
    if "target_fps" in output:
        output["target_fps"] = str(output["target_fps"])
    completion = {_COMPLETION_KEYS[k]: v for k, v in table.items() if k in _COMPLETION_KEYS}
    if isinstance(completion.get("exports"), str):
        completion["exports"] = [completion["exports"]]
    try:
        spec = OutputSpec(**output)
        done = Completion(**completion)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{label}: {e}") from e
    except ConfigError as e:
        raise ConfigError(f"{label}: {e}") from e
    return make_rule(
        table.get("name"),  # type: ignore[arg-type]  # validated by make_rule
        where=table.get("where"),
        output=spec,
        segment_seconds=table.get("segment_seconds", default_segment_seconds),
        completion=done,
        bag_time=table.get("bag_time", "header"),
    )


def load_rules(path: str | Path, *, default_segment_seconds: float) -> list[Rule]:
    """All rules of a rules file (names unique, see `unique_rules`)."""
    data = read_toml(path, what="rules file")
    tables = data.get("rules")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"rules file {str(path)!r} has no [[rules]] tables")
    rules = [rule_from_table(t, default_segment_seconds=default_segment_seconds) for t in tables]
    return unique_rules(rules, where=f"rules file {str(path)!r}")


def unique_rules(rules: list[Rule], *, where: str = "the rules") -> list[Rule]:
    """``rules`` unchanged if their names are unique (a name is the claim key).

    Raises:
        ConfigError: naming the duplicates.
    """
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: duplicate rule name(s) {', '.join(duplicates)}")
    return rules
