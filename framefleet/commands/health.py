"""``framefleet health``: is this container's worker alive? (a Docker healthcheck).

The worker touches its heartbeat file (setting ``heartbeat_file``) every ``heartbeat_seconds``
from a thread of its main process; a file older than three intervals means that process is
hung or gone. Cheap enough to run every few seconds: no Redis, no Celery, one ``stat``.
"""

from __future__ import annotations

import os
import time

import click

from framefleet.commands.state import CliState
from framefleet.errors import ConfigError, FramefleetError


class UnhealthyError(FramefleetError):
    """Raised when the worker's heartbeat file is missing or stale."""


@click.command("health")
@click.option(
    "--heartbeat-file",
    default=None,
    metavar="PATH",
    help="The worker's heartbeat file (default: the heartbeat_file setting).",
)
@click.pass_context
def health(ctx: click.Context, heartbeat_file: str | None) -> None:
    """Exit 0 when the worker's heartbeat is fresh, else 1 with the reason (healthchecks)."""
    settings = (ctx.find_object(CliState) or CliState()).settings()
    path = heartbeat_file or settings.heartbeat_file
    if not path:
        raise ConfigError(
            "no heartbeat file: set heartbeat_file (FRAMEFLEET_HEARTBEAT_FILE) for the worker "
            "and this check, or pass --heartbeat-file"
        )
    limit = 3 * settings.heartbeat_seconds
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError as e:
        raise UnhealthyError(f"no worker heartbeat at {path} ({e.strerror or e})") from e
    if age > limit:
        raise UnhealthyError(
            f"worker heartbeat at {path} is {age:.0f} s old (more than {limit:g} s): the worker "
            "is hung or gone"
        )
    click.echo(f"healthy: heartbeat {age:.1f} s ago")


COMMANDS = [health]
