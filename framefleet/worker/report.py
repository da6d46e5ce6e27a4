"""The worker's side of the result store: report deliveries and outcomes, riding out Redis blips.

A segment's images are on disk before its report; a report that fails would leave the segment
"running" for ever, so each call is retried with backoff for up to ``retry_seconds`` (a Redis
restart takes a second or two). If Redis stays away longer, or the task's soft time limit comes
while the reporter waits for it, `StoreUnreachableError` reaches the task, which gives its
message back to the queue (never recording the segment failed: nothing is known to be wrong
with it); the next delivery finds the segment's manifest, if it was complete, and only reports.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded

from framefleet.jobs.connection import REDIS_DOWN
from framefleet.jobs.manifest import finalize_job
from framefleet.jobs.message import SegmentMessage
from framefleet.jobs.state import Delivery, JobStatus
from framefleet.jobs.store import JobStore
from framefleet.media.pipeline import SegmentResult

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreUnreachableError(Exception):
    """A report did not reach the result store: unreachable for the whole retry window, or
    until the task's soft time limit. The delivery should give its message back."""


class Reporter:
    """Reports one worker process's segments to the `JobStore`."""

    def __init__(self, store: JobStore, *, retry_seconds: float = 30.0) -> None:
        self.store = store
        self.retry_seconds = retry_seconds

    def close(self) -> None:
        self.store.close()

    def begin(
        self, message: SegmentMessage, *, worker: str, token: str, lease_seconds: float
    ) -> Delivery:
        """Count this delivery (the attempt number), mark the segment running, take its lease.

        When another delivery holds the lease but was made by a process of this worker that no
        longer exists (a pool process killed or crashed: Celery redelivers its message at
        once), the dead holder's lease is taken over instead of waited out.
        """
        job_id, segment_id = message.job_id, message.segment_id

        def begin(steal_from: str = "") -> Delivery:
            return self.store.begin(
                job_id,
                segment_id,
                worker=worker,
                pid=os.getpid(),
                token=token,
                lease_seconds=lease_seconds,
                steal_from=steal_from,
            )

        delivery = self._call(begin)
        if delivery.held_elsewhere:
            holder = self._call(lambda: self.store.lease_holder(job_id, segment_id))
            if holder is not None and holder[0] == worker and not _alive(holder[1], holder[2]):
                delivery = self._call(lambda: begin(holder[2]))
        return delivery

    def heartbeat(self, message: SegmentMessage, *, token: str, lease_seconds: float) -> bool:
        """Renew the lease (one try: the next heartbeat is the retry); False when it is lost."""
        return self.store.heartbeat(
            message.job_id, message.segment_id, token=token, lease_seconds=lease_seconds
        )

    def release(self, message: SegmentMessage, *, token: str) -> bool:
        """Give the segment back before a retry (its lease released, queued again)."""
        return self._call(
            lambda: self.store.release(message.job_id, message.segment_id, token=token)
        )

    def done(self, message: SegmentMessage, result: SegmentResult, *, token: str) -> int:
        """Count the segment done: 0 already counted, 1 counted, 2 the job is now complete
        (or its manifest must be written again)."""
        return self._call(
            lambda: self.store.finish(
                message.job_id,
                message.segment_id,
                images=result.images_written,
                bytes=sum(image.bytes for image in result.images),
                decode_seconds=result.decode_seconds,
                token=token,
            )
        )

    def failed(self, message: SegmentMessage, error: str, *, token: str) -> int:
        """Count the segment failed with ``error`` (returns as `done` does); nothing happens
        while a delivery other than ``token`` holds a live lease on it."""
        return self._call(
            lambda: self.store.fail(message.job_id, message.segment_id, error=error, token=token)
        )

    def token_of_task(self, message: SegmentMessage, task_id: str) -> str:
        """The token of the delivery of Celery task ``task_id`` if it holds the segment's lease
        ('' if another delivery does, or none): for reporting it from another process."""
        holder = self._call(lambda: self.store.lease_holder(message.job_id, message.segment_id))
        if holder is not None and task_of(holder[2]) == task_id:
            return holder[2]
        return ""

    def finalize(self, job_id: str) -> JobStatus:
        """Write the job manifest of a complete job (idempotent)."""
        return self._call(lambda: finalize_job(self.store, job_id))

    def _call(self, call: Callable[[], T]) -> T:
        """``call()``, retried while Redis does not answer.

        Raises:
            StoreUnreachableError: it did not answer within ``retry_seconds``, or the soft time
                limit came while waiting for it.
        """
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.2
        waiting = False
        while True:
            try:
                try:
                    return call()
                except REDIS_DOWN as e:
                    if time.monotonic() + delay > deadline:
                        raise StoreUnreachableError(
                            f"result store unreachable for {self.retry_seconds:g} s: {e}"
                        ) from e
                    log.warning("result store unreachable (%s); retrying in %.1f s", e, delay)
                    waiting = True
                    time.sleep(delay)
                    delay = min(5.0, delay * 2)
            except SoftTimeLimitExceeded as e:
                if not waiting:
                    raise  # the task's own time ran out: its caller's to handle
                raise StoreUnreachableError(
                    "result store unreachable until the task's soft time limit"
                ) from e


def _alive(pid: int, token: str) -> bool:
    """Whether the process of a delivery (made on this host) still exists.

    The token names the process it was made in (``pid:nonce:...``); a pid now reused by this
    very process, with another token, was an earlier process.
    """
    if pid == os.getpid():
        return token.startswith(delivery_prefix())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_nonce: dict[int, str] = {}


def delivery_prefix() -> str:
    """What every delivery token of this process starts with (pid and a nonce made in this
    process, so a forked child never shares its parent's)."""
    pid = os.getpid()
    if pid not in _nonce:
        _nonce.clear()
        _nonce[pid] = os.urandom(4).hex()
    return f"{pid}:{_nonce[pid]}:"


def new_token(task_id: str) -> str:
    """A token for one delivery of a segment, by the Celery task ``task_id``."""
    return f"{delivery_prefix()}{os.urandom(4).hex()}:{task_id}"


def task_of(token: str) -> str:
    """The Celery task id a delivery token was made for (see `new_token`)."""
    return token.split(":", 3)[3] if token.count(":") >= 3 else ""
