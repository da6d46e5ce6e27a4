"""Rules files are outside input: any table, any value, any bytes give rules or one
`ConfigError`, and what is accepted is a rule the watcher can run (finite, bounded)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framefleet.config import load_settings
from framefleet.errors import ConfigError
from framefleet.jobs.limits import checked_limits
from framefleet.watch.rules import MAX_SEGMENT_SECONDS, Rule, load_rules, rule_from_table

KEYS = ["name", "where", "out", "fps", "mode", "resize", "max_side", "width", "height", "format",
        "quality", "name_template", "fast_decode", "segment_seconds", "bag_time", "export",
        "shard_size", "register", "surprise"]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["r", "2", "30000/1001", "jpeg", "exact", "header", "parquet", "o", "inf"]),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=2),
)
TABLES = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8).map(
    lambda t: {"name": "r", "out": "o", **t}
)


def _rule_or_error(table: dict[str, object]) -> Rule | str:
    try:
        return rule_from_table(table, default_segment_seconds=10)
    except ConfigError as e:
        return str(e)


@given(TABLES)
@settings(max_examples=400, deadline=None)
def test_any_rule_table_is_a_runnable_rule_or_one_config_error(table: dict[str, object]) -> None:
    rule = _rule_or_error(table)
    if isinstance(rule, str):  # one line, or a filter's caret under its line
        assert rule.startswith("rule "), rule
        assert rule.count("\n") in (0, 2), rule
        return
    assert math.isfinite(rule.segment_seconds)
    assert 0 < rule.segment_seconds <= MAX_SEGMENT_SECONDS
    checked_limits(load_settings(env={}), rule.segment_seconds)  # the time limits it derives


@pytest.mark.parametrize("value", [math.inf, math.nan, "ten", 0, -1, True, 10**9, [10]])
def test_bad_segment_seconds_are_refused_at_start_up(value: object) -> None:
    error = _rule_or_error({"name": "r", "out": "o", "segment_seconds": value})
    assert isinstance(error, str)
    assert error.startswith("rule 'r': segment_seconds must be a number of seconds in (0, 86400]")


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_rules_file_bytes_are_rules_or_one_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(data)
    try:
        rules, error = load_rules(path, default_segment_seconds=10), ""
    except ConfigError as e:
        rules, error = [], str(e)
    assert bool(error) != bool(rules)
    assert all(r.name for r in rules)


def test_the_shipped_rules_file_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    [rule] = load_rules(root / "configs" / "rules.toml", default_segment_seconds=10)
    assert (rule.name, rule.segment_seconds) == ("front-center-2fps", 10.0)
    assert rule.output.target_fps == "2"
