"""No secret reaches a log or a message: URLs with credentials are shown with ``***``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from framefleet.cli import main
from framefleet.config import redact_url

SECRET = "s3cr3t-p4ss"
PG = f"postgresql+psycopg://framefleet:{SECRET}@127.0.0.1:1/framefleet"
REDIS = f"redis://:{SECRET}@127.0.0.1:1/0"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (PG, "postgresql+psycopg://framefleet:***@127.0.0.1:1/framefleet"),
        (REDIS, "redis://:***@127.0.0.1:1/0"),
        ("redis://user@host:6379/0", "redis://user@host:6379/0"),
        ("sqlite:///framefleet.db", "sqlite:///framefleet.db"),
        ("redis://a:b:c@h/0", "redis://a:***@h/0"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "args",
    [
        ["catalog", "--db", PG, "stats"],
        ["catalog", "--db", PG, "add", "."],
        ["extract", "--db", PG, "--out", "out", "--broker", REDIS],
        ["status", "--broker", REDIS],
        ["status", "some-job", "--broker", REDIS],
        ["retry", "some-job", "--broker", REDIS],
        ["catalog", "--db", "post gres://u:" + SECRET + "@h/db", "stats"],
    ],
)
def test_failing_commands_never_print_the_password(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert SECRET not in result.output, result.output
    assert result.output.startswith("error: ")


def test_the_watcher_logs_its_catalog_without_the_password(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["watch", str(tmp_path), "--once", "--out", str(tmp_path / "o"), "--db", PG,
         "--broker", REDIS],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "framefleet:***@127.0.0.1:1/framefleet" in result.output
    assert SECRET not in result.output
