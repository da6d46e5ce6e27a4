"""The worker's side of the result store: report deliveries and outcomes, riding out Redis blips.

A segment's images are on disk before its report; a report that fails would leave the segment
"running" for ever, so each call is retried with backoff for up to ``retry_seconds`` (a Redis
restart takes a second or two). If Redis stays away longer, the error reaches the task, which
leaves the message unacknowledged: Redis hands it out again after the visibility timeout and the
rerun finds the segment's manifest and only reports.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TypeVar

from framefleet.media.pipeline import SegmentResult
from framefleet.producer.follow import REDIS_DOWN
from framefleet.producer.manifest import finalize_job
from framefleet.producer.messages import SegmentMessage
from framefleet.producer.status import JobStatus
from framefleet.producer.store import Delivery, JobStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class Reporter:
    """Reports one worker process's segments to the `JobStore`."""

    def __init__(self, store: JobStore, *, retry_seconds: float = 30.0) -> None:
        self.store = store
        self.retry_seconds = retry_seconds

    def close(self) -> None:
        self.store.close()

    def begin(self, message: SegmentMessage, *, worker: str) -> Delivery:
        """Count this delivery (the attempt number) and mark the segment running."""
        return self._call(
            lambda: self.store.begin(
                message.job_id, message.segment_id, worker=worker, pid=os.getpid()
            )
        )

    def done(self, message: SegmentMessage, result: SegmentResult) -> int:
        """Count the segment done: 0 already counted, 1 counted, 2 the job is now complete."""
        return self._call(
            lambda: self.store.finish(
                message.job_id,
                message.segment_id,
                images=result.images_written,
                bytes=sum(image.bytes for image in result.images),
                decode_seconds=result.decode_seconds,
            )
        )

    def failed(self, message: SegmentMessage, error: str) -> int:
        """Count the segment failed with ``error`` (returns as `done` does)."""
        return self._call(lambda: self.store.fail(message.job_id, message.segment_id, error=error))

    def finalize(self, job_id: str) -> JobStatus:
        """Write the job manifest of a complete job (idempotent)."""
        return self._call(lambda: finalize_job(self.store, job_id))

    def _call(self, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.2
        while True:
            try:
                return call()
            except REDIS_DOWN as e:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("result store unreachable (%s); retrying in %.1f s", e, delay)
                time.sleep(delay)
                delay = min(5.0, delay * 2)
