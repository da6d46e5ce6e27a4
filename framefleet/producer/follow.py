"""Follow a job live from Redis until it completes, riding out Redis restarts, telling the truth.

Polling a hash every half second costs Redis nothing and survives what a subscription would
not: a restarted Redis (``--wait`` just reconnects on the next poll), a follower started after
the job finished, several followers at once. While it polls, the follower also reaps expired
leases (a killed worker's segment is re-enqueued without waiting for another worker to notice),
says when it waits for a lost segment, and says once when no worker consumes the job's queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from framefleet.config import Settings
from framefleet.errors import JobTimeoutError
from framefleet.jobs.connection import REDIS_DOWN
from framefleet.jobs.leases import Reaper
from framefleet.jobs.manifest import finalize_job
from framefleet.jobs.state import JobStatus
from framefleet.jobs.store import JobStore

Update = Callable[[JobStatus, str | None], None]
"""Called with every snapshot and what the job is waiting for (None: nothing in particular)."""


def follow_job(
    store: JobStore,
    job_id: str,
    *,
    settings: Settings,
    on_update: Update,
    on_note: Callable[[str], None] | None = None,
    on_disconnect: Callable[[Exception], None] | None = None,
    interval_seconds: float = 0.5,
    timeout_seconds: float | None = None,
) -> JobStatus:
    """Poll the job until it is complete, then make sure its manifest exists; return its status.

    Args:
        settings: heartbeat and lease intervals, the reaper's limits, the no-worker notice.
        on_update: called with every snapshot (progress display).
        on_note: called with a line worth saying once (no worker consumes the queue).
        on_disconnect: called each time Redis does not answer; polling goes on regardless.
        timeout_seconds: give up (`JobTimeoutError`) after this long; None waits for ever.

    Raises:
        JobNotFoundError: the job does not exist (or expired).
        JobTimeoutError: the job did not complete within ``timeout_seconds``.
    """
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    watch = _Watch(store, settings, on_note)
    backoff = interval_seconds
    while True:
        try:
            job = store.job(job_id)
            if job.complete:
                on_update(job, None)
                job = finalize_job(store, job_id)
                on_update(job, None)
                return job
            on_update(job, watch.waiting_for(job))
            backoff = interval_seconds
        except REDIS_DOWN as e:
            if on_disconnect is not None:
                on_disconnect(e)
            backoff = min(5.0, backoff * 2)
        if deadline is not None and time.monotonic() > deadline:
            raise JobTimeoutError(f"job {job_id} did not complete within {timeout_seconds:g} s")
        time.sleep(backoff)


class _Watch:
    """What a waiting job is waiting for; reaps leases on the way (throttled to heartbeats)."""

    def __init__(
        self, store: JobStore, settings: Settings, on_note: Callable[[str], None] | None
    ) -> None:
        self.store = store
        self.settings = settings
        self.on_note = on_note
        self.reaper = Reaper(store, settings)
        self.started = time.monotonic()
        self.last_worker_seen = self.started
        self.noted = False
        self.checked = 0.0
        self.waiting: str | None = None

    def waiting_for(self, job: JobStatus) -> str | None:
        now = time.monotonic()
        if now - self.checked < self.settings.heartbeat_seconds:
            return self.waiting
        self.checked = now
        self.reaper.maybe_reap()
        self._notice_workers(job, now)
        beat = self.settings.heartbeat_seconds
        lost = [
            s
            for s in self.store.running_segments(job.job_id)
            if s.heartbeat_age_seconds is not None and s.heartbeat_age_seconds > 2 * beat
        ]
        if lost:
            expires = min(max(0.0, s.lease_expires_in or 0.0) for s in lost)
            self.waiting = (
                f"waiting for {len(lost)} lost segment(s) (lease expires in {expires:.0f} s)"
            )
        else:
            self.waiting = None
        return self.waiting

    def _notice_workers(self, job: JobStatus, now: float) -> None:
        alive = self.store.workers_alive(
            queue=job.queue, within_seconds=3 * self.settings.heartbeat_seconds
        )
        if alive:
            self.last_worker_seen, self.noted = now, False
            return
        silent = now - self.last_worker_seen
        if not self.noted and silent >= self.settings.no_worker_notice_seconds:
            self.noted = True
            if self.on_note is not None:
                self.on_note(
                    f"no worker consuming queue {job.queue!r} has sent a heartbeat for "
                    f"{silent:.0f} s (0 alive); start one with `framefleet worker` "
                    f"(same --broker); still waiting"
                )
