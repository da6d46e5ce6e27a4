"""``framefleet extract | status | retry | worker``: jobs over the catalog, on the queue or local.

``extract`` queries the catalog, plans segments and either enqueues them for Celery workers
(``--wait`` follows the job live from Redis) or, with ``--local``, runs them in a process pool
here. Either way the job id comes first on stdout, progress goes to stderr (a bar on a terminal,
plain lines otherwise), and the exit status is 1 when a segment failed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import click
import redis

from framefleet.commands._common import CliState, image_options, is_terminal, output_spec_from
from framefleet.commands.progress import JobProgress, format_duration
from framefleet.config import Settings, redact_url
from framefleet.errors import NothingToDoError, QueueError
from framefleet.jobs.manifest import finalize_job
from framefleet.jobs.message import DEFAULT_QUEUE
from framefleet.jobs.state import JobStatus
from framefleet.jobs.store import JobStore
from framefleet.media.specs import OutputSpec
from framefleet.producer.follow import follow_job
from framefleet.producer.local import default_workers, run_local
from framefleet.producer.plan import Plan, plan_job
from framefleet.producer.submit import new_job_id, retry_job, submit_job


def _state(ctx: click.Context) -> CliState:
    return ctx.find_object(CliState) or CliState()


@contextlib.contextmanager
def _job_store(settings: Settings) -> Iterator[JobStore]:
    """The result store, with "Redis does not answer" turned into a one-line error."""
    url = settings.effective_results_url
    store = JobStore.from_url(url, ttl_seconds=settings.result_ttl_seconds)
    try:
        yield store
    except redis.RedisError as e:
        raise QueueError(
            f"cannot use Redis at {redact_url(url)}: {e}; is it running there "
            "(--broker / FRAMEFLEET_BROKER_URL)?"
        ) from e
    finally:
        store.close()


def _broker_option(command: Any) -> Any:
    return click.option(
        "--broker",
        default=None,
        metavar="URL",
        help="Redis URL of the broker and job store (default: $FRAMEFLEET_BROKER_URL).",
    )(command)


@click.command("extract")
@click.option("--where", default=None, metavar="EXPR", help='Catalog filter: tags like "%cam%".')
@click.option("--tag", "tags", multiple=True, metavar="T", help="Required tag (repeatable).")
@click.option("--record-id", default=None, metavar="GLOB", help="Record id glob, e.g. 016_*.")
@click.option("--content", default=None, metavar="GLOB", help="Content glob, e.g. camera/*.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output.")
@image_options
@click.option(
    "--segment-seconds",
    type=float,
    default=None,
    help="Segment length (default: the segment_seconds setting, 10).",
)
@click.option("--wait", is_flag=True, help="Follow the job until it completes (queue mode).")
@click.option("--force", is_flag=True, help="Redo segments whose manifest already exists.")
@click.option("--allow-empty", is_flag=True, help="No matching video is not an error.")
@click.option("--local", is_flag=True, help="Run here in a process pool; no Redis needed.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="--local processes.")
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
    **image: Any,
) -> None:
    """Images from every video in the catalog that matches, split into segments.

    Queue mode enqueues one message per segment for `framefleet worker`s; --local runs them
    here. Output: {out}/{record_id}/{content}/{record_id}-{timestamp}.jpg, a manifest per
    segment under {out}/_manifests and one per job at {out}/_jobs/{job_id}.jsonl.
    """
    if workers is not None and not local:
        raise click.UsageError("--workers applies to --local runs; workers scale the queue")
    settings = _state(ctx).settings(
        database_url=db, broker_url=broker, segment_seconds=segment_seconds
    )
    output = output_spec_from(out_dir, image)
    query = {"where": where, "tags": list(tags), "record_id": record_id, "content": content}
    plan = _plan(settings, query, output=output, force=force)
    if not plan.segments:
        described = ", ".join(f"{k}={v!r}" for k, v in query.items() if v) or "no filter"
        message = (
            f"no video in the catalog {redact_url(settings.database_url)} matches ({described})"
        )
        if allow_empty:
            click.echo(f"{message}; nothing to do")
            return
        raise NothingToDoError(
            f"{message}; check the filter with `framefleet catalog query`, add recordings with "
            "`framefleet catalog add PATH`, or pass --allow-empty"
        )
    if not plan.pending and not plan.failed:
        click.echo(
            f"nothing to do: all {len(plan.segments)} segment(s) of {plan.videos} video(s) are "
            f"already complete under {output.out_dir} (--force redoes them)"
        )
        return
    if local:
        ctx.exit(_extract_local(plan, settings, output=output, workers=workers, force=force))
    with _job_store(settings) as store:
        submitted = submit_job(
            plan,
            store=store,
            settings=settings,
            output=output,
            segment_seconds=settings.segment_seconds,
            force=force,
            query=query,
            on_created=click.echo,
        )
        rate = submitted.enqueued / submitted.enqueue_seconds if submitted.enqueue_seconds else 0
        click.echo(
            f"enqueued {submitted.enqueued} segment(s) of {plan.videos} video(s) "
            f"({plan.skipped} already complete, skipped) in {submitted.enqueue_seconds:.2f} s"
            + (f" ({rate:,.0f}/s)" if submitted.enqueued >= 1000 else "")
        )
        if not wait:
            click.echo(f"follow it with: framefleet status {submitted.job_id} --wait")
            return
        ctx.exit(_wait(store, submitted.job_id, settings))


def _plan(settings: Settings, query: dict[str, Any], *, output: OutputSpec, force: bool) -> Plan:
    from framefleet.catalog import Catalog

    with Catalog(settings.database_url, migrate=False) as catalog:
        rows = catalog.query(
            query["where"],
            tags=query["tags"],
            record_id=query["record_id"],
            content=query["content"],
        )
        return plan_job(rows, output=output, segment_seconds=settings.segment_seconds, force=force)


def _extract_local(
    plan: Plan, settings: Settings, *, output: OutputSpec, workers: int | None, force: bool
) -> int:
    job_id = new_job_id(local=True)
    click.echo(job_id)
    workers = workers or default_workers()
    click.echo(
        f"running {len(plan.pending)} segment(s) of {plan.videos} video(s) in {workers} "
        f"process(es) ({plan.skipped} already complete, skipped)"
    )
    t0 = time.time()
    with JobProgress(job_id=job_id, total=len(plan.pending), live=is_terminal()) as progress:
        run = run_local(
            plan,
            job_id=job_id,
            out_dir=output.out_dir,
            workers=workers,
            decode_threads=settings.decode_threads or None,
            force=force,
            max_attempts=settings.max_attempts,
            max_frame_pixels=settings.max_frame_pixels,
            on_segment=lambda r: progress.update(
                done=r.done, failed=len(r.failed), images=r.images
            ),
        )
        progress.update(done=run.done, failed=len(run.failed), images=run.images, final=True)
    status = JobStatus(
        job_id=job_id,
        mode="local",
        out_dir=output.out_dir,
        segments=len(plan.segments),
        total=run.total,
        skipped=run.skipped,
        videos=plan.videos,
        done=run.done,
        failed=len(run.failed),
        images=run.images,
        bytes=run.bytes,
        created=t0,
        finished=time.time(),
        manifest=None if run.manifest is None else str(run.manifest.path),
    )
    _summary(status)
    for outcome in run.failed:
        spec = plan.segments[outcome.segment_id].spec
        end = "end" if spec.end_seconds is None else f"{spec.end_seconds:.3f}"
        click.echo(
            f"  segment {outcome.segment_id} ({spec.record_id} {spec.content} "
            f"[{spec.start_seconds:.3f}, {end}) s, {spec.video_path}): {outcome.error}"
        )
    return 1 if run.failed else 0


def _wait(store: JobStore, job_id: str, settings: Settings) -> int:
    """Follow a job to its end, print the summary; the exit status (1: a segment failed)."""
    first = store.job(job_id)
    with JobProgress(job_id=job_id, total=first.total, live=is_terminal()) as progress:
        job = follow_job(
            store,
            job_id,
            settings=settings,
            on_update=lambda j, waiting: progress.update(
                done=j.done, failed=j.failed, images=j.images, final=j.complete, waiting=waiting
            ),
            on_note=progress.note,
            on_disconnect=lambda e: progress.note(f"Redis unreachable ({e}); retrying"),
        )
    _summary(job)
    for segment in store.failed_segments(job_id):
        click.echo("  " + segment.describe())
    return 1 if job.failed else 0


def _summary(job: JobStatus) -> None:
    elapsed = job.elapsed_seconds()
    click.echo(
        f"job {job.job_id} {job.state}: {job.done}/{job.total} segment(s) done, {job.failed} "
        f"failed, {job.skipped} skipped; {job.images} images ({job.bytes / 1e6:.1f} MB) "
        f"in {format_duration(elapsed)}"
    )
    if job.manifest:
        click.echo(f"manifest: {job.manifest}")
    if job.failed:
        click.echo(f"{job.failed} segment(s) failed:")


@click.command("status")
@click.argument("job_id", required=False)
@click.option("--wait", is_flag=True, help="Follow the job until it completes.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@_broker_option
@click.pass_context
def status(
    ctx: click.Context, job_id: str | None, wait: bool, limit: int, broker: str | None
) -> None:
    """One job in detail (JOB_ID), or the most recent jobs."""
    settings = _state(ctx).settings(broker_url=broker)
    with _job_store(settings) as store:
        if job_id is None:
            _recent(store.recent_jobs(limit))
            return
        if wait:
            ctx.exit(_wait(store, job_id, settings))
        job = finalize_job(store, job_id)
        _detail(store, job, settings)


def _recent(jobs: Sequence[JobStatus]) -> None:
    if not jobs:
        click.echo("no jobs in the result store")
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


def _detail(store: JobStore, job: JobStatus, settings: Settings) -> None:
    output = job.spec.get("output", {})
    click.echo(f"job {job.job_id}: {job.state}")
    click.echo(
        f"  output: {job.out_dir} ({output.get('target_fps')} fps, {output.get('mode')}, "
        f"{output.get('image_format')}); segments of {job.spec.get('segment_seconds')} s"
    )
    query = {k: v for k, v in job.spec.get("query", {}).items() if v}
    click.echo(f"  query: {query or 'everything'}; {job.videos} video(s)")
    click.echo(
        f"  segments: {job.done} done, {job.failed} failed, {job.remaining} to go, of "
        f"{job.total} ({job.skipped} skipped, complete before the job)"
    )
    click.echo(
        f"  images: {job.images} ({job.bytes / 1e6:.1f} MB), decode {job.decode_seconds:.1f} s"
    )
    created = datetime.fromtimestamp(job.created).isoformat(sep=" ", timespec="seconds")
    click.echo(f"  created {created}; elapsed {format_duration(job.elapsed_seconds())}")
    if job.manifest:
        click.echo(f"  manifest: {job.manifest}")
    if not job.complete:
        running = store.running_segments(job.job_id)
        for segment in running[:20]:
            click.echo("  " + segment.describe())
        if len(running) > 20:
            click.echo(f"  ... and {len(running) - 20} more running")
        alive = store.workers_alive(queue=job.queue, within_seconds=3 * settings.heartbeat_seconds)
        click.echo(
            f"  {len(alive)} worker(s) alive on queue {job.queue!r}; a dead worker's segment "
            f"returns to the queue within {settings.lease_seconds + settings.heartbeat_seconds:g} s"
        )
    failed = store.failed_segments(job.job_id)
    if failed:
        click.echo(
            f"  {len(failed)} failed segment(s); `framefleet retry {job.job_id}` reruns them:"
        )
        for segment in failed:
            click.echo("    " + segment.describe())


@click.command("retry")
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Follow the job until it completes.")
@_broker_option
@click.pass_context
def retry(ctx: click.Context, job_id: str, wait: bool, broker: str | None) -> None:
    """Re-enqueue the failed segments of JOB_ID (their attempt counts start again)."""
    settings = _state(ctx).settings(broker_url=broker)
    with _job_store(settings) as store:
        messages = retry_job(store, job_id, settings=settings)
        if not messages:
            click.echo(f"job {job_id} has no failed segments")
            return
        click.echo(f"re-enqueued {len(messages)} failed segment(s) of job {job_id}")
        if wait:
            ctx.exit(_wait(store, job_id, settings))


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


COMMANDS = [extract, status, retry, worker]
