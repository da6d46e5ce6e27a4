"""``framefleet extract``: images from every camera of the catalog that matches a query.

It parses arguments and prints; the work is `framefleet.producer.api`. The job id comes first on
stdout, progress goes to stderr (a bar on a terminal, plain lines otherwise), and the exit status
is 1 when a segment failed. `wait_and_report` is shared with ``status --wait``, ``retry`` and the
demo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import click

from framefleet.commands._common import (
    EPOCH,
    FiniteFloat,
    bag_time_option,
    broker_option,
    check_times_options,
    image_options,
    is_terminal,
    output_options,
    times_options,
)
from framefleet.commands.progress import JobProgress, format_duration
from framefleet.commands.state import cli_state
from framefleet.config import Settings
from framefleet.errors import NothingToDoError
from framefleet.jobs.connection import redis_errors
from framefleet.jobs.state import JobStatus
from framefleet.producer import api
from framefleet.producer.backends import Job, LocalJob
from framefleet.producer.local import default_workers


@click.command("extract")
@click.option("--where", default=None, metavar="EXPR", help='Catalog filter: tags like "%cam%".')
@click.option("--tag", "tags", multiple=True, metavar="T", help="Required tag (repeatable).")
@click.option("--record-id", default=None, metavar="GLOB", help="Record id glob, e.g. 016_*.")
@click.option("--content", default=None, metavar="GLOB", help="Content glob, e.g. camera/*.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output.")
@image_options
@times_options
@click.option(
    "--sync",
    is_flag=True,
    help="Cameras of a record share one grid (anchored at the record's start) and the job "
    "writes framesets: {out}/_framesets/{record}.jsonl.",
)
@click.option("--anchor", type=EPOCH, default=None, help="--sync: the grid's anchor, epoch s.")
@click.option(
    "--max-skew",
    type=FiniteFloat(min=0, max=1e9),
    default=None,
    metavar="MS",
    help="--sync: a frameset whose camera's frame is older than this is incomplete.",
)
@click.option(
    "--export",
    "exports",
    type=click.Choice(["parquet", "webdataset"]),
    multiple=True,
    help="Training-ready exports when the job completes (repeatable): {out}/_jobs/{job}.parquet, "
    "{out}/_exports/{job}/shard-NNNNNN.tar.",
)
@click.option(
    "--shard-size",
    type=click.IntRange(1, 10_000_000),
    default=1000,
    show_default=True,
    help="Images per WebDataset shard.",
)
@click.option(
    "--register",
    is_flag=True,
    help="Add the images to the catalog when the job completes (tags: the video's, "
    "extracted, the spec's).",
)
@bag_time_option
@click.option(
    "--segment-seconds",
    type=FiniteFloat(min=0, max=86400, min_open=True),
    default=None,
    help="Segment length (default: the segment_seconds setting, 10).",
)
@click.option("--wait", is_flag=True, help="Follow the job until it completes (queue mode).")
@click.option(
    "--force",
    is_flag=True,
    help="Redo segments whose manifest exists; replace images another spec wrote.",
)
@click.option("--allow-empty", is_flag=True, help="No matching video is not an error.")
@click.option("--local", is_flag=True, help="Run here in a process pool; no Redis needed.")
@click.option("--workers", type=click.IntRange(1, 1024), default=None, help="--local processes.")
@click.option("--db", default=None, metavar="URL", help="Catalog URL ($FRAMEFLEET_DATABASE_URL).")
@broker_option
@click.pass_context
def extract(
    ctx: click.Context,
    /,
    where: str | None,
    tags: tuple[str, ...],
    record_id: str | None,
    content: str | None,
    out_dir: str,
    segment_seconds: float | None,
    wait: bool,
    force: bool,
    allow_empty: bool,
    local: bool,
    workers: int | None,
    db: str | None,
    broker: str | None,
    at_times: str | None,
    times_column: str | None,
    max_gap: float | None,
    sync: bool,
    anchor: float | None,
    max_skew: float | None,
    bag_time: Literal["header", "receive"],
    exports: tuple[str, ...],
    shard_size: int,
    register: bool,
    **image: Any,
) -> None:
    """Images from every video in the catalog that matches, split into segments.

    Queue mode enqueues one message per segment for `framefleet worker`s; --local runs them
    here. Output: {out}/{record_id}/{content}/{record_id}-{timestamp}.jpg, a manifest per
    segment under {out}/_manifests and one per job at {out}/_jobs/{job_id}.jsonl.
    """
    if workers is not None and not local:
        raise click.UsageError("--workers applies to --local runs; workers scale the queue")
    check_times_options(ctx, at_times, times_column, max_gap)
    for flag, value in (("--anchor", anchor), ("--max-skew", max_skew)):
        if value is not None and not sync:
            raise click.UsageError(f"{flag} applies to --sync")
    if register and not (wait or local):
        raise click.UsageError(
            "--register needs --wait (or --local): images are registered when the job "
            "completes; or run `framefleet register JOB` then"
        )
    settings = cli_state(ctx).settings(
        database_url=db, broker_url=broker, segment_seconds=segment_seconds
    )
    try:
        with redis_errors(settings.effective_results_url):
            job = api.submit(
                where,
                catalog=settings.database_url,
                out=out_dir,
                tags=tags,
                record_id=record_id,
                content=content,
                backend="local" if local else "celery",
                workers=workers,
                force=force,
                settings=settings,
                on_created=click.echo,
                at_times=at_times,
                times_column=times_column,
                max_gap_ms=max_gap,
                sync=sync,
                anchor=anchor,
                max_skew_ms=max_skew,
                bag_time=bag_time,
                exports=exports,
                shard_size=shard_size,
                register=register,
                **output_options(image),
            )
    except NothingToDoError as e:
        if not allow_empty:
            raise NothingToDoError(f"{e}, or pass --allow-empty") from e
        click.echo(f"{str(e).split(';')[0]}; nothing to do")
        return
    plan = job.plan
    assert plan is not None
    if not plan.pending and not plan.failed:
        status = job.wait()  # writes the job manifest of what is already there
        click.echo(
            f"nothing to do: all {len(plan.segments)} segment(s) of {plan.videos} video(s) are "
            f"already complete under {out_dir} (--force redoes them)"
        )
        if register:
            _register(status, settings)
        return
    if isinstance(job, LocalJob):
        click.echo(
            f"running {len(plan.pending)} segment(s) of {plan.videos} video(s) in "
            f"{workers or default_workers()} process(es) ({plan.skipped} already complete, "
            "skipped)"
        )
        code = wait_and_report(job)
        if register:
            _register(job.status(), settings)
        ctx.exit(code)
    rate = job.enqueued / job.enqueue_seconds if job.enqueue_seconds else 0
    click.echo(
        f"enqueued {job.enqueued} segment(s) of {plan.videos} video(s) "
        f"({plan.skipped} already complete, skipped) in {job.enqueue_seconds:.2f} s"
        + (f" ({rate:,.0f}/s)" if job.enqueued >= 1000 else "")
    )
    if not wait:
        click.echo(f"follow it with: framefleet status {job.job_id} --wait")
        return
    code = wait_and_report(job)
    if register:
        _register(job.status(), settings)
    ctx.exit(code)


def _register(status: JobStatus, settings: Settings) -> None:
    report = api.register(status, catalog=settings.database_url, settings=settings)
    click.echo(f"catalog: {report.summary()}")


def wait_and_report(job: Job) -> int:
    """Follow a job to its end, print the summary; the exit status (1: a segment failed)."""
    first = job.status()
    with JobProgress(job_id=job.job_id, total=first.total, live=is_terminal()) as progress:
        final = job.wait(
            on_update=lambda j, waiting: progress.update(
                done=j.done, failed=j.failed, images=j.images, final=j.complete, waiting=waiting
            ),
            on_note=progress.note,
        )
    _summary(final)
    for segment in job.failed_segments():
        click.echo("  " + segment.describe())
    return 1 if final.failed else 0


def _summary(job: JobStatus) -> None:
    if job.total == 0:
        click.echo(
            f"job {job.job_id}: nothing to do, all {job.skipped} segment(s) were already complete"
        )
    else:
        click.echo(
            f"job {job.job_id} {job.state}: {job.done}/{job.total} segment(s) done, {job.failed} "
            f"failed, {job.skipped} skipped; {job.images} images ({job.bytes / 1e6:.1f} MB) "
            f"in {format_duration(job.elapsed_seconds())}"
        )
    if job.manifest:
        click.echo(f"manifest: {job.manifest} ({job.manifest_images} images)")
    if job.failed:
        click.echo(f"{job.failed} segment(s) failed:")


COMMANDS: Sequence[click.Command] = [extract]
