"""What the command modules share: settings loading and terminal helpers."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from framefleet.config import Settings, load_settings
from framefleet.media.specs import DEFAULT_NAME_TEMPLATE, TEMPLATE_FIELDS, OutputSpec


@dataclass
class CliState:
    """Carried on the Click context: the root options, settings loaded on first use."""

    config_path: str | None = None

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(config_path=self.config_path, overrides=overrides)


def is_terminal() -> bool:
    """True when stderr is a terminal: progress bars go there, never into piped output."""
    return sys.stderr.isatty()


F = TypeVar("F", bound=Callable[..., Any])


def image_options(command: F) -> F:
    """The output options every extracting command shares (rate, mode, size, format, names).

    They arrive as keyword arguments ``fps, mode, resize, max_side, width, height, image_format,
    quality, name_template``; `output_spec_from` turns them into an `OutputSpec`.
    """
    options = [
        click.option(
            "--fps", default="2", show_default=True, help="Grid rate: 2, 0.5, 30000/1001."
        ),
        click.option(
            "--mode",
            type=click.Choice(["exact", "keyframes"]),
            default="exact",
            show_default=True,
            help="exact: the frame shown at each grid time; keyframes: keyframes only (fastest).",
        ),
        click.option("--resize", type=float, default=None, help="Scale factor, e.g. 0.25."),
        click.option("--max-side", type=int, default=None, help="Longest side in pixels."),
        click.option("--width", type=int, default=None, help="Width in pixels (keeps aspect)."),
        click.option("--height", type=int, default=None, help="Height in pixels (keeps aspect)."),
        click.option(
            "--format",
            "image_format",
            type=click.Choice(["jpeg", "png", "webp"]),
            default="jpeg",
            show_default=True,
        ),
        click.option(
            "--quality", type=int, default=90, show_default=True, help="JPEG/WebP 1..100."
        ),
        click.option(
            "--name-template",
            default=DEFAULT_NAME_TEMPLATE,
            show_default=True,
            help="Image path under --out; fields: " + ", ".join(TEMPLATE_FIELDS) + ".",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def output_spec_from(out_dir: str, image: dict[str, Any]) -> OutputSpec:
    """An `OutputSpec` from the keyword arguments `image_options` adds."""
    return OutputSpec(
        out_dir=str(out_dir),
        target_fps=str(image["fps"]),
        mode=image["mode"],
        resize_rate=image["resize"],
        max_side_px=image["max_side"],
        width=image["width"],
        height=image["height"],
        image_format=image["image_format"],
        quality=image["quality"],
        name_template=image["name_template"],
    )


@contextlib.contextmanager
def progress_bar(
    *, total: int | None, label: str, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when ``enabled`` (a terminal); yields ``advance(n)``."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)
