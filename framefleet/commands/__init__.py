"""CLI command modules, one per area; ``register_all`` adds them to the root group."""

from __future__ import annotations

import importlib

import click

# Each module exposes COMMANDS: a list of click commands or groups.
_MODULES = [
    "framefleet.commands.media",
    "framefleet.commands.demo",
    "framefleet.commands.catalog",
    "framefleet.commands.jobs",
    "framefleet.commands.status",
    "framefleet.commands.worker",
    "framefleet.commands.watch",
    "framefleet.commands.health",
]


def register_all(group: click.Group) -> None:
    for name in _MODULES:
        for command in importlib.import_module(name).COMMANDS:
            group.add_command(command)
