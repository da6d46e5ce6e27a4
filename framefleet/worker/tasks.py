"""The tasks, thin: a segment (message -> `SegmentSpec` -> `process_segment` -> report), and
finalizing a complete job.

Its only decisions are which errors are worth another try:

- permanent (`MediaError`: missing, corrupt or truncated video, bad timestamps; `ConfigError`: a
  malformed message; `OutputError`: unwritable output; the soft time limit): failed at once,
  with the message kept for ``framefleet status``;
- retryable (any other `OSError`, e.g. an NFS hiccup, and Redis being unreachable): retried with
  exponential backoff while deliveries remain;
- the process dying (killed, out of memory, a crash in native code): nothing runs, but the message
  was not acknowledged, so it comes back (at once if only the pool process died, after the
  visibility timeout if the whole worker did). Every delivery is counted in Redis when the task
  starts, so a segment that kills its worker every time is failed after ``max_attempts``;
- the result store out of reach for longer than the reporter waits (`StoreUnreachableError`):
  the message goes back to the queue (``Reject(requeue=True)``), nothing is recorded failed.

The delivery that completes a job does not write its manifest and exports: that can take far
longer than a segment's time limit. It sends a ``finalize_job`` task (`hand_off_finalize`), with
its own limits (`FINALIZE_LIMITS`), acknowledged on receipt: Redis would hand a long one out
again after the visibility timeout, to run twice at once. Finalizing is idempotent, and a job
that a lost finalizer leaves behind is finalized by the next ``status`` or follower.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from celery import Celery, Task
from celery.exceptions import Reject, SoftTimeLimitExceeded

from framefleet.errors import ConfigError, FramefleetError, MediaError, MessageError, OutputError
from framefleet.jobs.broker import FINALIZE_LIMITS, FINALIZE_TASK_NAME
from framefleet.jobs.connection import REDIS_DOWN
from framefleet.jobs.leases import hand_off_finalize
from framefleet.jobs.limits import visibility_timeout
from framefleet.jobs.message import TASK_NAME, SegmentMessage
from framefleet.jobs.store import GAVE_UP
from framefleet.media.pipeline import process_segment
from framefleet.worker import hooks
from framefleet.worker.lease import LeaseKeeper, LeaseLostError
from framefleet.worker.report import StoreUnreachableError, new_token

log = logging.getLogger(__name__)

PERMANENT = (MediaError, ConfigError, OutputError)
RETRYABLE = (OSError, *REDIS_DOWN)


class SegmentFailedError(Exception):
    """Raised by the task after a failed segment was recorded, so that Celery logs the task as
    failed ("raised expected"), not as succeeded, and acknowledges its message."""


def register_tasks(app: Celery) -> Any:
    """Register the segment task and the finalize task on ``app``; returns the segment task."""

    @app.task(  # type: ignore[untyped-decorator]
        bind=True,
        name=TASK_NAME,
        shared=False,  # this app only: a shared task would be added to every later app too
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        max_retries=None,
        typing=False,
        throws=(SegmentFailedError,),
    )
    def extract_segment(task: Task, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return run_segment(task, message)
        except StoreUnreachableError as e:
            log.error("%s; the message goes back to the queue", e)
            raise Reject(str(e), requeue=True) from e

    @app.task(  # type: ignore[untyped-decorator]
        name=FINALIZE_TASK_NAME,
        shared=False,
        acks_late=False,  # see the module docstring
        ignore_result=True,
        typing=False,
        soft_time_limit=FINALIZE_LIMITS.soft_seconds,
        time_limit=FINALIZE_LIMITS.hard_seconds,
    )
    def finalize_job(job_id: str) -> dict[str, Any]:
        return run_finalize(str(job_id))

    return extract_segment


def run_segment(task: Task, raw: dict[str, Any]) -> dict[str, Any]:
    """Run one delivery of a segment message; returns a small summary for the worker's log."""
    settings = hooks.settings()
    try:
        message = SegmentMessage.from_dict(raw)
    except MessageError as e:
        log.error("dropping a malformed segment message: %s", e)
        raise SegmentFailedError(f"malformed segment message: {e}") from e
    reporter = hooks.reporter()
    token = new_token(str(task.request.id))
    delivery = reporter.begin(
        message,
        worker=str(task.request.hostname),
        token=token,
        lease_seconds=settings.lease_seconds,
    )
    where = f"job {message.job_id} segment {message.segment_id}"
    if delivery.unknown_job:
        log.warning("%s: the job is not in the result store (expired?); dropped", where)
        return {"status": "unknown-job"}
    if delivery.already_done:
        log.info("%s: already done (a repeated delivery); nothing to do", where)
        _finalize_if_behind(message.job_id)  # the report that completed it may have been lost
        return {"status": "duplicate"}
    if delivery.held_elsewhere:
        log.info("%s: running elsewhere under a live lease (a repeated delivery); dropped", where)
        return {"status": "duplicate"}
    if delivery.already_failed:
        log.info("%s: failed and not retried (a stale delivery); dropped", where)
        return {"status": "stale"}
    if delivery.attempt > settings.max_attempts:
        return _fail(message, GAVE_UP % (delivery.attempt - 1), token=token)
    keeper = LeaseKeeper(
        reporter,
        message,
        token=token,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
    )
    try:
        with keeper:
            result = process_segment(
                message.spec,
                decode_threads=hooks.decode_threads(),
                force=message.force,
                max_frame_pixels=settings.max_frame_pixels,
                on_image=lambda _: keeper.check(),
            )
        keeper.check()
    except LeaseLostError as e:
        log.warning("%s; stopping here", e)
        return {"status": "lease-lost"}
    except SoftTimeLimitExceeded:
        limit = task.request.timelimit[1] if task.request.timelimit else None
        return _fail(
            message,
            f"took longer than its soft time limit ({limit} s): the video may be much larger "
            "than its length suggests; raise time_limit_factor or use shorter segments",
            token=token,
        )
    except PERMANENT as e:
        return _fail(message, str(e), token=token)
    except RETRYABLE as e:
        if delivery.attempt >= settings.max_attempts:
            error = f"{type(e).__name__}: {e} (after {delivery.attempt} attempts)"
            return _fail(message, error, token=token)
        countdown = min(2.0**delivery.attempt, visibility_timeout(settings) / 4, 60.0)
        log.warning("%s: %s; retrying in %.0f s", where, e, countdown)
        reporter.release(message, token=token)
        raise task.retry(exc=e, countdown=countdown) from e
    counted = reporter.done(message, result, token=token)
    if counted == 2:
        _finalize(message.job_id)
    elif counted == 0:
        _finalize_if_behind(message.job_id)
    log.info(
        "%s: %s images (%s) in %.2f s",
        where,
        result.images_written,
        "already complete" if result.skipped else "written",
        result.wall_seconds,
    )
    return {"status": "done", "images": result.images_written, "skipped": result.skipped}


def _fail(message: SegmentMessage, error: str, *, token: str) -> NoReturn:
    log.error("job %s segment %s failed: %s", message.job_id, message.segment_id, error)
    if hooks.reporter().failed(message, error, token=token) == 2:
        _finalize(message.job_id)
    raise SegmentFailedError(f"job {message.job_id} segment {message.segment_id}: {error}")


def _finalize(job_id: str) -> None:
    """Hand the complete job to a ``finalize_job`` task (a problem there is logged)."""
    hand_off_finalize(hooks.reporter().store, hooks.settings(), job_id)


def _finalize_if_behind(job_id: str) -> None:
    """Finalize a complete job whose manifest is out of date (a report that completed it was
    counted but its answer lost, so nobody was told to)."""
    try:
        job = hooks.reporter().store.job(job_id)
    except (FramefleetError, *REDIS_DOWN) as e:
        log.warning("job %s: cannot tell whether its manifest is up to date: %s", job_id, e)
        return
    if job.complete and (job.manifest_done != job.done or not job.manifest):
        _finalize(job_id)


def run_finalize(job_id: str) -> dict[str, Any]:
    """Write a complete job's manifest and exports (idempotent); problems are logged."""
    retry = f"`framefleet status {job_id}` finalizes it"
    try:
        job = hooks.reporter().finalize(job_id)
    except StoreUnreachableError as e:
        log.error("job %s not finalized: %s; %s", job_id, e, retry)
        return {"status": "store-unreachable"}
    except SoftTimeLimitExceeded:
        limit = FINALIZE_LIMITS.soft_seconds
        log.error(
            "job %s: finalizing took longer than %s s and was stopped; %s", job_id, limit, retry
        )
        return {"status": "timeout"}
    except FramefleetError as e:
        log.error("job %s is complete but its manifest could not be written: %s", job_id, e)
        return {"status": "failed"}
    if not job.complete:
        log.info("job %s is not complete (retried since?): nothing to finalize", job_id)
        return {"status": "incomplete"}
    log.info("job %s complete: %s done, %s failed; %s", job_id, job.done, job.failed, job.manifest)
    return {"status": "done", "manifest": job.manifest}
