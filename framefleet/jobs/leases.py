"""Reaping expired leases: a killed worker's segment goes back to the queue within seconds.

A worker holds a lease on each segment it runs and renews it every ``heartbeat_seconds``; a
worker that dies stops renewing. Whoever notices an expired lease first (every worker's
heartbeat thread, ``extract --wait`` / ``status --wait``, the watcher) reaps it: `JobStore`
re-queues the segment exactly once (or fails it when its attempts are used up) and the reaper
publishes its message again. The dead worker's own message, unacknowledged, still comes back
from Redis after the visibility timeout; by then the segment is done (or running under a live
lease) and that late delivery does nothing.

So a segment of a dead worker waits ``lease_seconds`` plus at most one heartbeat, not the
visibility timeout (15 + 3 s by default, against 138 s).

A reaper reaps nothing for one lease period after its store (re)connected to Redis
(`JobStore.connected_for`: the process started, or Redis was unreachable and is back). After an
outage longer than a lease every lease has run out, the live workers' too; reaping at once
would hand all their segments out again and make them drop their work. Waiting a lease period
gives every live worker a heartbeat or more to renew, so only the dead ones' leases are left.

A reap that completes a job (its last segment failed, out of attempts) does not write the job
manifest itself: the worker's reaper is its heartbeat thread, which a long finalization would
silence. It hands the job to a worker instead (`hand_off_finalize`: a ``finalize_job`` task on
the job's queue), as the worker that completes a job does.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import redis

from framefleet.config import Settings
from framefleet.errors import FramefleetError
from framefleet.jobs.broker import (
    URGENT_PRIORITY,
    publish_finalize,
    publish_segments,
)
from framefleet.jobs.limits import time_limits
from framefleet.jobs.message import SegmentMessage
from framefleet.jobs.state import Reaped
from framefleet.jobs.store import JobStore

log = logging.getLogger("framefleet.leases")


def reap_expired_leases(
    store: JobStore, settings: Settings, *, settle_seconds: float | None = None
) -> list[Reaped]:
    """Re-enqueue (or fail) every segment whose lease expired; returns what was reaped.

    Args:
        settle_seconds: reap nothing until the store has been connected this long (default:
            ``lease_seconds``; see the module docstring).
    """
    settle = settings.lease_seconds if settle_seconds is None else settle_seconds
    reaped = store.reap_expired(max_attempts=settings.max_attempts, settle_seconds=settle)
    requeued: dict[str, list[SegmentMessage]] = defaultdict(list)
    for item in reaped:
        if item.message is not None:
            requeued[item.job_id].append(item.message)
            log.warning(
                "job %s segment %s: its worker stopped renewing the lease; enqueued again",
                item.job_id,
                item.segment_id,
            )
        else:
            log.error(
                "job %s segment %s failed: its worker died in every attempt",
                item.job_id,
                item.segment_id,
            )
            if item.completed_job:
                hand_off_finalize(store, settings, item.job_id)
    for job_id, messages in requeued.items():
        try:
            job = store.job(job_id)
            length = float(job.spec.get("segment_seconds") or settings.segment_seconds)
            limits = time_limits(length, factor=settings.time_limit_factor)
            publish_segments(
                settings.broker_url,
                messages,
                limits=limits,
                queue=job.queue,
                priority=URGENT_PRIORITY,  # it is late already: before any new segment
            )
        except FramefleetError as e:
            # The segments stay "queued": the original messages still come back from Redis
            # after the visibility timeout, so nothing is lost, only later.
            log.error("job %s: could not enqueue reaped segments again: %s", job_id, e)
    return reaped


def hand_off_finalize(store: JobStore, settings: Settings, job_id: str) -> bool:
    """Have a worker finalize a complete job: a ``finalize_job`` task on the job's queue.

    Finalizing is idempotent, so a second finalizer (a follower, ``status``) does no harm. A
    hand-off that fails is logged: the next ``framefleet status JOB`` finalizes the job.
    """
    try:
        queue = store.job(job_id).queue
        publish_finalize(settings.broker_url, job_id, queue=queue)
    except (FramefleetError, redis.RedisError) as e:
        log.error(
            "job %s is complete but finalizing it could not be handed to a worker (%s); "
            "`framefleet status %s` finalizes it",
            job_id,
            e,
            job_id,
        )
        return False
    log.info("job %s complete: finalizing it on queue %r", job_id, queue)
    return True


class Reaper:
    """`reap_expired_leases` at most once per ``heartbeat_seconds`` (for polling loops)."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._last = 0.0

    def maybe_reap(self) -> list[Reaped]:
        now = time.monotonic()
        if now - self._last < self.settings.heartbeat_seconds:
            return []
        self._last = now
        return reap_expired_leases(self.store, self.settings)
