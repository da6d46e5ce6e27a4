"""One job, two backends: a local process pool or Celery workers on Redis, behind one handle.

`submit_plan` records a planned job in its store (a SQLite file under ``{out}/_jobs`` for a
local job, Redis for a queued one), starts it, and returns a `Job`: ``status()``, ``wait()``,
``failed_segments()``, ``retry()`` mean the same for both, over one state model
(`framefleet.jobs.state`), one attempt rule and the same manifests. `open_job` finds a job again
by its id (``framefleet status`` / ``retry``): local jobs through the registry of
`framefleet.producer.registry`, queued ones in Redis.
"""

from __future__ import annotations

import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from framefleet.config import Settings
from framefleet.errors import ConfigError, JobNotFoundError, JobTimeoutError
from framefleet.jobs.connection import redis_errors
from framefleet.jobs.local_store import LocalJobStore
from framefleet.jobs.message import DEFAULT_QUEUE, SegmentMessage
from framefleet.jobs.state import JobStatus, SegmentState
from framefleet.jobs.store import JobStore
from framefleet.media.specs import OutputSpec
from framefleet.producer.follow import Update, follow_job
from framefleet.producer.local import run_local
from framefleet.producer.plan import Plan
from framefleet.producer.registry import find_local_job, remember_local_job
from framefleet.producer.submit import new_job_id, record_job, retry_job, submit_job

T = TypeVar("T")
Backend = Literal["local", "celery"]
BACKENDS: tuple[Backend, ...] = ("local", "celery")


class Job(ABC):
    """A submitted job. ``plan`` is None for a job found again by its id."""

    def __init__(self, job_id: str, *, plan: Plan | None = None) -> None:
        self.job_id = job_id
        self.plan = plan
        self.enqueued = 0
        self.enqueue_seconds = 0.0

    @abstractmethod
    def status(self) -> JobStatus:
        """The job's current snapshot."""

    @abstractmethod
    def failed_segments(self) -> list[SegmentState]:
        """The failed segments, with their errors."""

    @abstractmethod
    def running_segments(self) -> list[SegmentState]:
        """The segments running now, with their workers."""

    @abstractmethod
    def wait(
        self,
        *,
        on_update: Update | None = None,
        on_note: Callable[[str], None] | None = None,
        timeout_seconds: float | None = None,
    ) -> JobStatus:
        """Block until the job is complete (its manifest written); return its final status.

        Args:
            on_update: called with each snapshot and what the job is waiting for, if anything.
            on_note: called with lines worth saying once (no worker listens, Redis is away).

        Raises:
            JobTimeoutError: not complete within ``timeout_seconds``.
        """

    @abstractmethod
    def retry(self) -> int:
        """Run the failed segments again (their attempts start over); how many."""


class QueuedJob(Job):
    """A job on the queue, for Celery workers; its state in Redis."""

    def __init__(
        self, job_id: str, *, store: JobStore, settings: Settings, plan: Plan | None = None
    ) -> None:
        super().__init__(job_id, plan=plan)
        self.store = store
        self.settings = settings

    def status(self) -> JobStatus:
        with redis_errors(self.settings.effective_results_url):
            return self.store.job(self.job_id)

    def failed_segments(self) -> list[SegmentState]:
        with redis_errors(self.settings.effective_results_url):
            return self.store.failed_segments(self.job_id)

    def running_segments(self) -> list[SegmentState]:
        with redis_errors(self.settings.effective_results_url):
            return self.store.running_segments(self.job_id)

    def workers_alive(self) -> list[str]:
        queue_name = self.status().queue
        within = 3 * self.settings.heartbeat_seconds
        with redis_errors(self.settings.effective_results_url):
            return self.store.workers_alive(queue=queue_name, within_seconds=within)

    def wait(
        self,
        *,
        on_update: Update | None = None,
        on_note: Callable[[str], None] | None = None,
        timeout_seconds: float | None = None,
    ) -> JobStatus:
        return follow_job(
            self.store,
            self.job_id,
            settings=self.settings,
            on_update=on_update or (lambda job, waiting: None),
            on_note=on_note,
            on_disconnect=(lambda e: on_note(f"Redis unreachable ({e}); retrying"))
            if on_note
            else None,
            timeout_seconds=timeout_seconds,
        )

    def retry(self) -> int:
        with redis_errors(self.settings.effective_results_url):
            return len(retry_job(self.store, self.job_id, settings=self.settings))


class LocalJob(Job):
    """A job run by a process pool on this machine; its state in ``{out}/_jobs``.

    It runs in a background thread from `start`; `wait` relays its updates to the caller.
    """

    def __init__(
        self,
        job_id: str,
        *,
        out_dir: str,
        settings: Settings,
        workers: int | None = None,
        plan: Plan | None = None,
    ) -> None:
        super().__init__(job_id, plan=plan)
        self.out_dir = out_dir
        self.settings = settings
        self.workers = workers
        self._updates: queue.Queue[JobStatus | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()

    def _store(self) -> LocalJobStore:
        return LocalJobStore.open(self.out_dir, self.job_id)

    def _read(self, read: Callable[[LocalJobStore], T]) -> T:
        """One read of the job's state file (a connection per call: threads may ask)."""
        store = self._store()
        try:
            return read(store)
        finally:
            store.close()

    def status(self) -> JobStatus:
        return self._read(lambda store: store.job(self.job_id))

    def failed_segments(self) -> list[SegmentState]:
        return self._read(lambda store: store.failed_segments(self.job_id))

    def running_segments(self) -> list[SegmentState]:
        return self._read(lambda store: store.running_segments(self.job_id))

    def start(self, messages: list[SegmentMessage]) -> None:
        """Run ``messages`` (segments of this job) in the background."""

        def run() -> None:
            store = self._store()
            try:
                run_local(
                    store,
                    self.job_id,
                    messages,
                    workers=self.workers,
                    decode_threads=self.settings.decode_threads or None,
                    max_attempts=self.settings.max_attempts,
                    max_frame_pixels=self.settings.max_frame_pixels,
                    on_update=self._updates.put,
                    stop=self._stop,
                )
            except BaseException as e:  # handed to the thread that waits
                self._error = e
            finally:
                store.close()
                self._updates.put(None)

        self._thread = threading.Thread(target=run, name=f"framefleet-{self.job_id}", daemon=True)
        self._thread.start()

    def wait(
        self,
        *,
        on_update: Update | None = None,
        on_note: Callable[[str], None] | None = None,
        timeout_seconds: float | None = None,
    ) -> JobStatus:
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        while self._thread is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                update = self._updates.get(timeout=left)
            except KeyboardInterrupt:
                # Ctrl-C: the runner stops feeding the pool and marks what was not done
                # failed ("interrupted"), so `framefleet retry` runs it; then we go.
                self._stop.set()
                self._thread.join()
                raise
            except queue.Empty as e:
                raise JobTimeoutError(
                    f"job {self.job_id} did not complete within {timeout_seconds:g} s"
                ) from e
            if update is None:
                self._thread.join()
                self._thread = None
                if self._error is not None:
                    raise self._error
                break
            if on_update is not None:
                on_update(update, None)
        final = self.status()
        if on_update is not None:
            on_update(final, None)
        return final

    def retry(self) -> int:
        messages = self._read(lambda store: store.reset_failed(self.job_id))
        if messages:
            self.start(messages)
        return len(messages)


def submit_plan(
    plan: Plan,
    *,
    backend: Backend,
    settings: Settings,
    output: OutputSpec,
    segment_seconds: float,
    force: bool = False,
    query: Mapping[str, Any] | None = None,
    job_id: str | None = None,
    workers: int | None = None,
    queue_name: str = DEFAULT_QUEUE,
    store: JobStore | None = None,
    on_created: Callable[[str], None] | None = None,
) -> Job:
    """Record ``plan`` as a job of ``backend`` and start it; see the module docstring.

    Args:
        workers: local processes (default: one per CPU); queued jobs scale by workers instead.
        store: the job store to record a queued job in (a long-running caller's own client).
        on_created: called with the job id once the job is recorded, before any work starts.

    Raises:
        ConfigError: an unknown backend, or time limits the visibility timeout cannot cover.
        QueueError: Redis cannot be reached (celery).
        OutputError: the local job's state cannot be written under the output root.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "celery":
        store = store or JobStore.from_url(
            settings.effective_results_url, ttl_seconds=settings.result_ttl_seconds
        )
        with redis_errors(settings.effective_results_url):
            submitted = submit_job(
                plan,
                store=store,
                settings=settings,
                output=output,
                segment_seconds=segment_seconds,
                force=force,
                query=query,
                job_id=job_id,
                queue=queue_name,
                on_created=on_created,
            )
        queued = QueuedJob(submitted.job_id, store=store, settings=settings, plan=plan)
        queued.enqueued, queued.enqueue_seconds = submitted.enqueued, submitted.enqueue_seconds
        return queued
    job_id = job_id or new_job_id(local=True)
    state = LocalJobStore.open(output.out_dir, job_id, create=True)
    try:
        messages = record_job(
            state,
            plan,
            job_id=job_id,
            output=output,
            segment_seconds=segment_seconds,
            force=force,
            query=query,
            queue="local",
        )
    finally:
        state.close()
    remember_local_job(job_id, output.out_dir, settings=settings)
    if on_created is not None:
        on_created(job_id)
    local = LocalJob(job_id, out_dir=output.out_dir, settings=settings, workers=workers, plan=plan)
    local.enqueued = len(plan.pending)
    local.start([messages[s.segment_id] for s in plan.pending])
    return local


def open_job(job_id: str, *, settings: Settings, out_dir: str | None = None) -> Job:
    """A job found again by its id: a local job (by ``out_dir``, else the registry) or a
    queued one in Redis.

    Raises:
        JobNotFoundError: no such job.
    """
    local_dir = out_dir or find_local_job(job_id, settings=settings)
    if local_dir is not None and Path(local_dir, "_jobs").is_dir():
        try:
            local = LocalJob(job_id, out_dir=str(local_dir), settings=settings)
            local.status()
            return local
        except JobNotFoundError:
            if out_dir is not None:
                raise
    if job_id.startswith("local-"):
        raise JobNotFoundError(
            f"local job {job_id!r} is not known here: pass --out DIR (the job's output root)"
        )
    store = JobStore.from_url(
        settings.effective_results_url, ttl_seconds=settings.result_ttl_seconds
    )
    queued = QueuedJob(job_id, store=store, settings=settings)
    try:
        queued.status()
    except BaseException:
        store.close()
        raise
    return queued
