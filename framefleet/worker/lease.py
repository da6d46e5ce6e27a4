"""Holding a segment's lease while it runs: a thread renews it every ``heartbeat_seconds``.

If a renewal finds the lease gone (this worker was partitioned from Redis long enough for the
lease to expire and the segment to be handed to another worker), the segment is abandoned at the
next image: another delivery owns it now, and two writers would only waste work.

A renewal that fails for any other reason (Redis unreachable, read-only after a failover, out
of memory, even a bug) is logged and tried again at the next heartbeat: the thread must never
end silently, or the lease would run out under a segment still being worked on.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

import redis

from framefleet.jobs.message import SegmentMessage
from framefleet.worker.report import Reporter

log = logging.getLogger(__name__)


class LeaseLostError(Exception):
    """Raised inside a segment whose lease another delivery has taken over."""


class LeaseKeeper:
    """Renews a delivery's lease in the background while the ``with`` block runs."""

    def __init__(
        self,
        reporter: Reporter,
        message: SegmentMessage,
        *,
        token: str,
        lease_seconds: float,
        heartbeat_seconds: float,
    ) -> None:
        self.reporter = reporter
        self.message = message
        self.token = token
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="framefleet-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.heartbeat_seconds + 5)

    def check(self) -> None:
        """Raise `LeaseLostError` if another delivery took the segment over."""
        if self.lost:
            raise LeaseLostError(
                f"job {self.message.job_id} segment {self.message.segment_id}: its lease was "
                "taken over by another delivery"
            )

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                renewed = self.reporter.heartbeat(
                    self.message, token=self.token, lease_seconds=self.lease_seconds
                )
            except redis.RedisError as e:  # unreachable, READONLY, OOM...: Redis's to fix
                log.warning(
                    "could not renew the lease of job %s segment %s (%s: %s); retrying",
                    self.message.job_id,
                    self.message.segment_id,
                    type(e).__name__,
                    e,
                )
                continue
            except Exception:  # a bug here must not end the renewals for good
                log.exception("could not renew a lease; retrying")
                continue
            if not renewed:
                self.lost = True
                return
