"""Follow a job live from Redis until it completes, riding out Redis restarts.

Polling a hash every half second costs Redis nothing and survives what a subscription would
not: a restarted Redis (``--wait`` just reconnects on the next poll), a follower started after
the job finished, several followers at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from framefleet.producer.manifest import finalize_job
from framefleet.producer.status import JobStatus
from framefleet.producer.store import JobStore

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
"""Errors that mean "Redis is not answering right now" (includes "still loading its data")."""


def follow_job(
    store: JobStore,
    job_id: str,
    *,
    on_update: Callable[[JobStatus], None],
    on_disconnect: Callable[[Exception], None] | None = None,
    interval_seconds: float = 0.5,
    timeout_seconds: float | None = None,
) -> JobStatus:
    """Poll the job until it is complete, then make sure its manifest exists; return its status.

    Args:
        on_update: called with every snapshot (progress display).
        on_disconnect: called each time Redis does not answer; polling goes on regardless.
        timeout_seconds: give up (TimeoutError) after this long; None waits for ever.

    Raises:
        JobNotFoundError: the job does not exist (or expired).
        TimeoutError: the job did not complete within ``timeout_seconds``.
    """
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    backoff = interval_seconds
    while True:
        try:
            job = store.job(job_id)
            on_update(job)
            if job.complete:
                job = finalize_job(store, job_id)
                on_update(job)
                return job
            backoff = interval_seconds
        except REDIS_DOWN as e:
            if on_disconnect is not None:
                on_disconnect(e)
            backoff = min(5.0, backoff * 2)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not complete within {timeout_seconds:g} s")
        time.sleep(backoff)
