"""What the command modules share: settings loading and terminal helpers."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from framefleet.config import Settings, load_settings


@dataclass
class CliState:
    """Carried on the Click context: the root options, settings loaded on first use."""

    config_path: str | None = None

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(config_path=self.config_path, overrides=overrides)


def is_terminal() -> bool:
    """True when stderr is a terminal: progress bars go there, never into piped output."""
    return sys.stderr.isatty()
