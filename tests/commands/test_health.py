"""``framefleet health``: the worker's heartbeat file, as a container healthcheck reads it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from click.testing import CliRunner

from framefleet.cli import main


def test_the_health_command_reads_the_heartbeat_file(tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    args = ["health", "--heartbeat-file", str(beat)]
    missing = CliRunner().invoke(main, args)
    assert missing.exit_code == 1 and "no worker heartbeat at" in missing.output
    beat.touch()
    assert CliRunner().invoke(main, args).exit_code == 0
    old = time.time() - 60
    os.utime(beat, (old, old))
    stale = CliRunner().invoke(main, args)
    assert stale.exit_code == 1 and "the worker is hung or gone" in stale.output
