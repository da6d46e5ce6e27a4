"""The one entry point, ``framefleet ...``: a root group over the command modules (lazily).

Every ``FramefleetError`` becomes one readable line on stderr and exit status 1; a bad option
or argument is one line too, with exit status 2 (Click's usage errors, without the usage
block). Tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from framefleet.commands import COMMAND_MODULES, load_command
from framefleet.commands.state import CliState
from framefleet.errors import FramefleetError


class _Group(click.Group):
    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as e:
            click.echo(f"error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FramefleetError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings file (default: $FRAMEFLEET_CONFIG).",
)
@click.version_option(package_name="framefleet")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """framefleet: turn driving recordings into images at fleet scale."""
    ctx.obj = CliState(config_path=config_path)
