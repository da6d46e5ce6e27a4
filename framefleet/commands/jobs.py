"""``framefleet extract | status | retry | worker``: jobs over the catalog, on the queue or local.

These commands parse arguments and print; the work is `framefleet.producer.api` (extract) and
`framefleet.producer.backends` (status, retry). The job id comes first on stdout, progress
goes to stderr (a bar on a terminal, plain lines otherwise), and the exit status is 1 when a
segment failed. Local jobs and queued jobs answer ``status`` and ``retry`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import click

from framefleet.commands._common import (
    EPOCH,
    CliState,
    FiniteFloat,
    check_times_options,
    image_options,
    is_terminal,
    output_options,
    times_options,
)
from framefleet.commands.progress import JobProgress, format_duration
from framefleet.config import Settings
from framefleet.errors import NothingToDoError, QueueError
from framefleet.jobs.connection import redis_errors
from framefleet.jobs.message import DEFAULT_QUEUE
from framefleet.jobs.state import JobStatus
from framefleet.jobs.store import JobStore
from framefleet.producer import api
from framefleet.producer.backends import Job, LocalJob, QueuedJob, open_job
from framefleet.producer.local import default_workers
from framefleet.producer.registry import local_jobs


def _state(ctx: click.Context) -> CliState:
    return ctx.find_object(CliState) or CliState()


def _broker_option(command: Any) -> Any:
    return click.option(
        "--broker",
        default=None,
        metavar="URL",
        help="Redis URL of the broker and job store (default: $FRAMEFLEET_BROKER_URL).",
    )(command)


def _out_option(command: Any) -> Any:
    return click.option(
        "--out",
        "out_dir",
        default=None,
        type=click.Path(file_okay=False),
        help="The output root of a local job (found by its id alone when run on this host).",
    )(command)


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
@click.option(
    "--bag-time",
    type=click.Choice(["header", "receive"]),
    default="header",
    show_default=True,
    help="The clock of bag topics: their messages' header stamps, or receive times.",
)
@click.option(
    "--segment-seconds",
    type=click.FloatRange(min=0, max=86400, min_open=True),
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
@_broker_option
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
    settings = _state(ctx).settings(
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


@click.command("register")
@click.argument("job_id")
@click.option("--db", default=None, metavar="URL", help="Catalog URL ($FRAMEFLEET_DATABASE_URL).")
@_out_option
@_broker_option
@click.pass_context
def register(
    ctx: click.Context, job_id: str, db: str | None, out_dir: str | None, broker: str | None
) -> None:
    """Add the images of JOB_ID (submitted with --register or --export) to the catalog, once it
    is complete (waits for it); registering again adds nothing."""
    settings = _state(ctx).settings(database_url=db, broker_url=broker)
    with redis_errors(settings.effective_results_url):
        report = api.register(job_id, settings=settings, out=out_dir)
    click.echo(f"job {job_id}: {report.summary()}")


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


@click.command("status")
@click.argument("job_id", required=False)
@click.option("--wait", is_flag=True, help="Follow the job until it completes.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@_out_option
@_broker_option
@click.pass_context
def status(
    ctx: click.Context,
    job_id: str | None,
    wait: bool,
    limit: int,
    out_dir: str | None,
    broker: str | None,
) -> None:
    """One job in detail (JOB_ID, queued or local), or the most recent jobs."""
    settings = _state(ctx).settings(broker_url=broker)
    with redis_errors(settings.effective_results_url):
        if job_id is None:
            _recent(settings, limit)
            return
        job = open_job(job_id, settings=settings, out_dir=out_dir)
        if wait:
            ctx.exit(wait_and_report(job))
        snapshot = job.status()
        if snapshot.complete:
            snapshot = job.wait()  # writes the job manifest if it is missing or out of date
        _detail(job, snapshot, settings)


def _recent(settings: Settings, limit: int) -> None:
    jobs = [job.status() for job in local_jobs(settings=settings, limit=limit)]
    note = ""
    try:
        with redis_errors(settings.effective_results_url):
            store = JobStore.from_url(
                settings.effective_results_url, ttl_seconds=settings.result_ttl_seconds
            )
            try:
                jobs += store.recent_jobs(limit)
            finally:
                store.close()
    except QueueError as e:
        if not jobs:
            raise
        note = f"(queued jobs not shown: {e})"
    jobs = sorted(jobs, key=lambda j: j.created, reverse=True)[:limit]
    if not jobs:
        click.echo("no jobs in the result store or on this host")
        return
    click.echo(
        f"{'JOB':<30} {'STATE':<8} {'DONE':>7} {'FAILED':>6} {'TOTAL':>7} {'IMAGES':>9}  CREATED"
    )
    for job in jobs:
        created = datetime.fromtimestamp(job.created).isoformat(sep=" ", timespec="seconds")
        click.echo(
            f"{job.job_id:<30} {job.state:<8} {job.done:>7} {job.failed:>6} {job.total:>7} "
            f"{job.images:>9}  {created}"
        )
    if note:
        click.echo(note)


def _detail(job: Job, snapshot: JobStatus, settings: Settings) -> None:
    output = snapshot.spec.get("output", {})
    click.echo(f"job {snapshot.job_id}: {snapshot.state} ({snapshot.mode})")
    click.echo(
        f"  output: {snapshot.out_dir} ({output.get('target_fps')} fps, {output.get('mode')}, "
        f"{output.get('image_format')}); segments of {snapshot.spec.get('segment_seconds')} s"
    )
    query = {k: v for k, v in snapshot.spec.get("query", {}).items() if v}
    click.echo(f"  query: {query or 'everything'}; {snapshot.videos} video(s)")
    click.echo(
        f"  segments: {snapshot.done} done, {snapshot.failed} failed, {snapshot.remaining} to "
        f"go, of {snapshot.total} ({snapshot.skipped} skipped, complete before the job)"
    )
    click.echo(
        f"  images: {snapshot.images} ({snapshot.bytes / 1e6:.1f} MB), "
        f"decode {snapshot.decode_seconds:.1f} s"
    )
    created = datetime.fromtimestamp(snapshot.created).isoformat(sep=" ", timespec="seconds")
    click.echo(f"  created {created}; elapsed {format_duration(snapshot.elapsed_seconds())}")
    if snapshot.manifest:
        click.echo(f"  manifest: {snapshot.manifest}")
    if not snapshot.complete:
        running = job.running_segments()
        for segment in running[:20]:
            click.echo("  " + segment.describe())
        if len(running) > 20:
            click.echo(f"  ... and {len(running) - 20} more running")
        if isinstance(job, QueuedJob):
            click.echo(
                f"  {len(job.workers_alive())} worker(s) alive on queue {snapshot.queue!r}; a "
                "dead worker's segment returns to the queue within "
                f"{settings.lease_seconds + settings.heartbeat_seconds:g} s"
            )
    failed = job.failed_segments()
    if failed:
        click.echo(
            f"  {len(failed)} failed segment(s); `framefleet retry {snapshot.job_id}` reruns them:"
        )
        for segment in failed:
            click.echo("    " + segment.describe())


@click.command("retry")
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Follow the job until it completes (local: always).")
@_out_option
@_broker_option
@click.pass_context
def retry(
    ctx: click.Context, job_id: str, wait: bool, out_dir: str | None, broker: str | None
) -> None:
    """Run the failed segments of JOB_ID again (their attempt counts start over)."""
    settings = _state(ctx).settings(broker_url=broker)
    with redis_errors(settings.effective_results_url):
        job = open_job(job_id, settings=settings, out_dir=out_dir)
        count = job.retry()
        if not count:
            click.echo(f"job {job_id} has no failed segments")
            return
        verb = "running" if isinstance(job, LocalJob) else "re-enqueued"
        click.echo(f"{verb} {count} failed segment(s) of job {job_id}")
        if wait or isinstance(job, LocalJob):  # a local job runs only while we are here
            ctx.exit(wait_and_report(job))


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
@_broker_option
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

    settings = _state(ctx).settings(broker_url=broker, worker_concurrency=concurrency)
    run_worker(
        settings,
        concurrency=settings.worker_concurrency or None,
        hostname=hostname,
        queues=[q for q in queues.split(",") if q],
        loglevel=loglevel,
        extra_args=ctx.args,
    )


COMMANDS: Sequence[click.Command] = [extract, status, retry, register, worker]
