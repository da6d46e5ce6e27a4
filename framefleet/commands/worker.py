"""``framefleet worker``: a Celery worker for extraction segments."""

from __future__ import annotations

from collections.abc import Sequence

import click

from framefleet.commands._common import broker_option
from framefleet.commands.state import cli_state
from framefleet.jobs.message import DEFAULT_QUEUE


@click.command(
    "worker",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None, help="Processes.")
@click.option("--hostname", "-n", default=None, help="Node name, e.g. w1@%h.")
@click.option(
    "--queues", "-Q", default=DEFAULT_QUEUE, show_default=True, help="Comma-separated queues."
)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@broker_option
@click.pass_context
def worker(
    ctx: click.Context,
    concurrency: int | None,
    hostname: str | None,
    queues: str,
    loglevel: str,
    broker: str | None,
) -> None:
    """Run a Celery worker for extraction segments (extra options go to `celery worker`)."""
    from framefleet.worker import run_worker

    settings = cli_state(ctx).settings(broker_url=broker, worker_concurrency=concurrency)
    run_worker(
        settings,
        concurrency=settings.worker_concurrency or None,
        hostname=hostname,
        queues=[q for q in queues.split(",") if q],
        loglevel=loglevel,
        extra_args=ctx.args,
    )


COMMANDS: Sequence[click.Command] = [worker]
