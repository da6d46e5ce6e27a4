"""``framefleet watch``'s numbers from the command line: a pass or a one-line error, never a
traceback, never a watcher that polls at nan or never settles; Redis down is a problem of the
pass, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framefleet.cli import main
from tests.strategies import HOSTILE_NUMBERS

NUMERIC_OPTIONS = ["--interval", "--settle", "--segment-seconds", "--fps", "--resize", "--quality"]


@given(st.lists(st.tuples(st.sampled_from(NUMERIC_OPTIONS), HOSTILE_NUMBERS), max_size=3))
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_watch_numbers_are_a_pass_or_one_line_error(
    tmp_path_factory: pytest.TempPathFactory, options: list[tuple[str, str]]
) -> None:
    work = tmp_path_factory.mktemp("watch")
    (work / "root").mkdir()
    args = ["watch", str(work / "root"), "--once", "--out", str(work / "out")]
    args += ["--db", f"sqlite:///{work / 'catalog.db'}", "--broker", "redis://127.0.0.1:9/0"]
    for flag, value in options:
        args += [flag, value]
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    if result.output.startswith("error: "):  # refused before watching
        assert result.exit_code in (1, 2), result.output
        assert result.output.count("\n") == 1, result.output
    else:  # accepted: one pass, whose only problem is the Redis nobody runs on port 9
        assert result.exit_code == 1, result.output
        assert "one pass: 0 folder(s) ingested, 0 job(s) enqueued" in result.output
        assert "1 problem(s)" in result.output


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--interval", "nan", "'nan' is not a finite number"),
        ("--interval", "0", "0 must be >= 0.01"),
        ("--settle", "inf", "'inf' is not a finite number"),
        ("--settle", "-1", "-1 must be >= 0"),
        ("--segment-seconds", "0", "0 must be > 0"),
    ],
)
def test_watch_refuses_numbers_that_would_spin_or_never_settle(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    result = CliRunner().invoke(main, ["watch", str(tmp_path), "--once", "--out", "o", flag, value])
    assert result.exit_code == 2
    assert result.output == f"error: Invalid value for '{flag}': {message}\n"
