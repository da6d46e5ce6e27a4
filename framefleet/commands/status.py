"""``framefleet status | retry | register``: a job found again by its id, queued or local.

They parse arguments and print; the work is `framefleet.producer.backends` (``open_job``) and
`framefleet.producer.api` (``register``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import click

from framefleet.commands._common import broker_option, out_option
from framefleet.commands.jobs import wait_and_report
from framefleet.commands.progress import format_duration
from framefleet.commands.state import cli_state
from framefleet.config import Settings
from framefleet.errors import QueueError
from framefleet.jobs.connection import redis_errors
from framefleet.jobs.state import JobStatus
from framefleet.jobs.store import JobStore, not_planned
from framefleet.producer import api
from framefleet.producer.backends import Job, LocalJob, QueuedJob, open_job
from framefleet.producer.registry import local_jobs


@click.command("status")
@click.argument("job_id", required=False)
@click.option("--wait", is_flag=True, help="Follow the job until it completes.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@out_option
@broker_option
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
    settings = cli_state(ctx).settings(broker_url=broker)
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
@out_option
@broker_option
@click.pass_context
def retry(
    ctx: click.Context, job_id: str, wait: bool, out_dir: str | None, broker: str | None
) -> None:
    """Run the failed segments of JOB_ID again (their attempt counts start over); those of
    recordings that could not be planned need the extract run again instead."""
    settings = cli_state(ctx).settings(broker_url=broker)
    with redis_errors(settings.effective_results_url):
        job = open_job(job_id, settings=settings, out_dir=out_dir)
        count = job.retry()
        unplanned = [s for s in job.failed_segments() if not_planned(s.error)]
        if unplanned:
            records = ", ".join(sorted({s.record_id for s in unplanned}))
            click.echo(
                f"{len(unplanned)} segment(s) of job {job_id} could not be planned and are not "
                f"retried; re-run the extract to plan {records} again"
            )
        if not count:
            if not unplanned:
                click.echo(f"job {job_id} has no failed segments")
            ctx.exit(1 if unplanned else 0)
        verb = "running" if isinstance(job, LocalJob) else "re-enqueued"
        click.echo(f"{verb} {count} failed segment(s) of job {job_id}")
        if wait or isinstance(job, LocalJob):  # a local job runs only while we are here
            ctx.exit(wait_and_report(job))


@click.command("register")
@click.argument("job_id")
@click.option("--db", default=None, metavar="URL", help="Catalog URL ($FRAMEFLEET_DATABASE_URL).")
@out_option
@broker_option
@click.pass_context
def register(
    ctx: click.Context, job_id: str, db: str | None, out_dir: str | None, broker: str | None
) -> None:
    """Add the images of JOB_ID (submitted with --register or --export) to the catalog, once it
    is complete (waits for it); registering again adds nothing."""
    settings = cli_state(ctx).settings(database_url=db, broker_url=broker)
    with redis_errors(settings.effective_results_url):
        report = api.register(job_id, settings=settings, out=out_dir)
    click.echo(f"job {job_id}: {report.summary()}")


COMMANDS: Sequence[click.Command] = [status, retry, register]
