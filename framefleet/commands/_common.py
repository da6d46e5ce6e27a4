"""What the command modules share: settings loading and terminal helpers."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from framefleet.media.specs import DEFAULT_NAME_TEMPLATE, TEMPLATE_FIELDS, OutputSpec


def is_terminal() -> bool:
    """True when stderr is a terminal: progress bars go there, never into piped output."""
    return sys.stderr.isatty()


F = TypeVar("F", bound=Callable[..., Any])


class FiniteFloat(click.ParamType):  # type: ignore[type-arg]
    """A float option that refuses nan, inf and out-of-range values with a one-line error.

    Click's FLOAT takes ``nan`` and ``inf``, which then travel into time arithmetic; here they
    stop at the command line.
    """

    name = "number"

    def __init__(
        self, *, min: float | None = None, max: float | None = None, min_open: bool = False
    ) -> None:
        self.min, self.max, self.min_open = min, max, min_open

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            number = value
        else:
            text = str(value).strip()
            try:
                number = float(text) if len(text) <= 64 else math.nan
            except ValueError:
                self.fail(f"{text[:40]!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{str(value)[:40]!r} is not a finite number", param, ctx)
        if self.min is not None and (number < self.min or (self.min_open and number == self.min)):
            self.fail(
                f"{number:g} must be {'>' if self.min_open else '>='} {self.min:g}", param, ctx
            )
        if self.max is not None and number > self.max:
            self.fail(f"{number:g} must be <= {self.max:g}", param, ctx)
        return number


EPOCH = FiniteFloat(min=-1e11, max=1e11)
"""Epoch seconds (or seconds), finite and within ±1e11."""
POSITIVE_SECONDS = FiniteFloat(min=0, max=1e9, min_open=True)
PIXELS = click.IntRange(1, 16384)


def image_options(command: F) -> F:
    """The output options every extracting command shares (rate, mode, size, format, names).

    They arrive as keyword arguments ``fps, mode, resize, max_side, width, height, image_format,
    quality, name_template, fast_decode``; `output_spec_from` turns them into an `OutputSpec`.
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
        click.option(
            "--resize",
            type=FiniteFloat(min=0, max=16, min_open=True),
            default=None,
            help="Scale factor, e.g. 0.25.",
        ),
        click.option("--max-side", type=PIXELS, default=None, help="Longest side in pixels."),
        click.option("--width", type=PIXELS, default=None, help="Width in pixels (keeps aspect)."),
        click.option(
            "--height", type=PIXELS, default=None, help="Height in pixels (keeps aspect)."
        ),
        click.option(
            "--format",
            "image_format",
            type=click.Choice(["jpeg", "png", "webp"]),
            default="jpeg",
            show_default=True,
        ),
        click.option(
            "--quality",
            type=click.IntRange(1, 100),
            default=90,
            show_default=True,
            help="JPEG/WebP 1..100.",
        ),
        click.option(
            "--name-template",
            default=DEFAULT_NAME_TEMPLATE,
            show_default=True,
            help="Image path under --out; fields: " + ", ".join(TEMPLATE_FIELDS) + ".",
        ),
        click.option(
            "--fast-decode",
            is_flag=True,
            help="Skip H.264's deblocking filter: 1.1-1.2x faster decoding; images not "
            "bit-exact (>= 43 dB PSNR at a quarter size on camera footage). Part of the "
            "output spec.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def output_options(image: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `framefleet.producer.api.submit` from those `image_options`
    adds.

    Raises:
        click.UsageError: two ways to resize were given (named by their flags).
    """
    given = [
        flag
        for flag, key in (("--resize", "resize"), ("--max-side", "max_side"))
        if image[key] is not None
    ]
    if image["width"] is not None or image["height"] is not None:
        given.append("--width/--height")
    if len(given) > 1:
        raise click.UsageError(f"choose one way to resize: {' or '.join(given)}, not both")
    return {
        "fps": str(image["fps"]),
        "mode": image["mode"],
        "resize": image["resize"],
        "max_side_px": image["max_side"],
        "width": image["width"],
        "height": image["height"],
        "image_format": image["image_format"],
        "quality": image["quality"],
        "name_template": image["name_template"],
        "fast_decode": bool(image.get("fast_decode")),
    }


def times_options(command: F) -> F:
    """``--at-times FILE``, ``--times-column NAME``, ``--max-gap MS``: frames at another
    sensor's times instead of on a grid. They arrive as ``at_times, times_column, max_gap``."""
    options = [
        click.option(
            "--at-times",
            default=None,
            metavar="FILE",
            help="Instead of --fps: epoch seconds, one per line or a CSV column ('-': stdin); "
            "for each, the frame shown then.",
        ),
        click.option(
            "--times-column",
            default=None,
            metavar="NAME",
            help="The column of --at-times holding the times (a CSV with a header).",
        ),
        click.option(
            "--max-gap",
            type=FiniteFloat(min=0, max=86_400_000),
            default=None,
            metavar="MS",
            help="With --at-times: a time whose frame is older than this is reported missing.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def check_times_options(
    ctx: click.Context, at_times: str | None, times_column: str | None, max_gap: float | None
) -> None:
    """``--at-times`` replaces ``--fps``; the other two need it.

    Raises:
        click.UsageError: naming the flags.
    """
    if at_times is None:
        for flag, value in (("--times-column", times_column), ("--max-gap", max_gap)):
            if value is not None:
                raise click.UsageError(f"{flag} applies to --at-times")
        return
    if ctx.get_parameter_source("fps") not in (None, click.core.ParameterSource.DEFAULT):
        raise click.UsageError("--at-times replaces --fps: give one of them")


def output_spec_from(out_dir: str, image: dict[str, Any], **extra: Any) -> OutputSpec:
    """An `OutputSpec` from the keyword arguments `image_options` adds (and ``extra`` fields)."""
    options = output_options(image)
    return OutputSpec(
        out_dir=str(out_dir),
        target_fps=options["fps"],
        mode=options["mode"],
        resize_rate=options["resize"],
        max_side_px=options["max_side_px"],
        width=options["width"],
        height=options["height"],
        image_format=options["image_format"],
        quality=options["quality"],
        name_template=options["name_template"],
        fast_decode=options["fast_decode"],
        **extra,
    )


def bag_time_option(command: F) -> F:
    """``--bag-time header|receive``: which clock times a bag topic's images."""
    return click.option(
        "--bag-time",
        type=click.Choice(["header", "receive"]),
        default="header",
        show_default=True,
        help="A bag topic's clock: its messages' header stamps, or when the recorder received "
        "them (for cameras that do not stamp their images).",
    )(command)


def broker_option(command: F) -> F:
    """``--broker URL``: the Redis of the broker and the job store."""
    return click.option(
        "--broker",
        default=None,
        metavar="URL",
        help="Redis URL of the broker and job store (default: $FRAMEFLEET_BROKER_URL).",
    )(command)


def out_option(command: F) -> F:
    """``--out DIR`` for commands that find a local job by its output root."""
    return click.option(
        "--out",
        "out_dir",
        default=None,
        type=click.Path(file_okay=False),
        help="The output root of a local job (found by its id alone when run on this host).",
    )(command)
