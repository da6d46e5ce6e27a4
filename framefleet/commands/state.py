"""The root options of one ``framefleet`` invocation, carried on the Click context.

Apart from `_common` (option helpers, which import the media engine) so that a cheap command,
``framefleet health``, loads nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from framefleet.config import Settings, load_settings


@dataclass
class CliState:
    """The root options; settings loaded when a command asks for them."""

    config_path: str | None = None

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(config_path=self.config_path, overrides=overrides)


def cli_state(ctx: click.Context) -> CliState:
    """The root options (settings) of this invocation."""
    return ctx.find_object(CliState) or CliState()
