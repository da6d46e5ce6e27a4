"""CLI command modules, one per area, loaded only when their command runs.

Importing every module would import the media engine, SQLAlchemy, Celery and Redis on every
start (~0.8 s of CPU): too much for ``framefleet health``, which a healthcheck runs every 15 s.
"""

from __future__ import annotations

import importlib

import click

# Command name -> the module (in this package) whose COMMANDS list holds it.
COMMAND_MODULES = {
    "catalog": "catalog",
    "demo": "demo",
    "extract": "jobs",
    "extract-file": "media",
    "health": "health",
    "register": "status",
    "retry": "status",
    "status": "status",
    "watch": "watch",
    "worker": "worker",
}


def load_command(name: str) -> click.Command | None:
    """The command called ``name``, its module imported now; None for an unknown name."""
    module = COMMAND_MODULES.get(name)
    if module is None:
        return None
    commands: list[click.Command] = importlib.import_module(f"{__name__}.{module}").COMMANDS
    return next(command for command in commands if command.name == name)
