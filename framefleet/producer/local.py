"""Local mode: run a recorded job's segments in a process pool on this machine, no Redis needed.

The same messages, the same `process_segment`, the same segment and job manifests as queue mode;
the job's state lives in its `LocalJobStore` (``{out}/_jobs/{job_id}.sqlite``) with the same
model, so ``framefleet status`` and ``retry`` read it like a queued job's. Processes come from
the ``forkserver`` context (``spawn`` where there is none): never a plain fork of a parent that
may hold decoder threads. With more than one process each decodes with one thread, which on a
machine with one process per core beats frame threads fighting over the same cores.

The pool is fed one segment per free process, so a segment is "running" exactly while it runs.
One attempt rule for both modes: a delivery counts an attempt when it begins; a segment whose
process died (a crash in native code, out of memory) is run again alone, and fails once it has
used ``max_attempts``.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from framefleet.cpus import whole_cpus
from framefleet.errors import FramefleetError
from framefleet.jobs.local_store import LocalJobStore
from framefleet.jobs.manifest import finalize_job
from framefleet.jobs.message import SegmentMessage
from framefleet.jobs.state import JobStatus
from framefleet.jobs.store import GAVE_UP
from framefleet.media.pipeline import DEFAULT_MAX_FRAME_PIXELS, process_segment
from framefleet.media.specs import SegmentSpec

OnUpdate = Callable[[JobStatus], None]


def default_workers() -> int:
    """One process per CPU this process may use (a container's CPU quota included)."""
    return whole_cpus()


def run_local(
    store: LocalJobStore,
    job_id: str,
    messages: Sequence[SegmentMessage],
    *,
    workers: int | None = None,
    decode_threads: int | None = None,
    max_attempts: int = 3,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    on_update: OnUpdate | None = None,
    stop: threading.Event | None = None,
) -> JobStatus:
    """Run ``messages`` (segments of the job recorded in ``store``), then write its manifest.

    Args:
        workers: processes (default: one per CPU).
        decode_threads: decoder threads per process (default: 1 with several processes, else 0).
        max_attempts: runs of a segment whose process died before it is failed.
        max_frame_pixels: refuse videos with larger frames.
        on_update: called with the job's status after every segment.
        stop: once set, no segment starts; those not done are failed as interrupted and
            `KeyboardInterrupt` is raised (the caller's Ctrl-C).

    Returns:
        The job's final status.
    """
    workers = workers or default_workers()
    if decode_threads is None:
        decode_threads = 1 if workers > 1 else 0
    run = _Run(store, job_id, (decode_threads, max_frame_pixels), on_update, stop)
    pending = list(messages)
    try:
        while pending and not run.stopped:
            lost, pending = run.pool(pending, workers)
            # A dead process broke the pool under every segment in flight: find the culprit by
            # running each of them alone, so only the segment that kills its process uses up
            # its attempts; then go on with the segments that had not started.
            for message in lost:
                while not run.stopped and run.pool([message], 1, max_attempts=max_attempts)[0]:
                    pass
        if run.stopped:
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        # Segments left running or queued would never run: failed, `framefleet retry` runs them.
        for segment_id, state in store.segment_states(job_id).items():
            if state in ("running", "queued"):
                store.fail(job_id, segment_id, error=INTERRUPTED)
        raise
    return finalize_job(store, job_id)


INTERRUPTED = "interrupted (Ctrl-C) before it was done; `framefleet retry JOB` runs it again"


class _Run:
    """One local run: feeds the pool, records every begin and outcome in the store."""

    def __init__(
        self,
        store: LocalJobStore,
        job_id: str,
        options: tuple[int, int],
        on_update: OnUpdate | None,
        stop: threading.Event | None,
    ) -> None:
        self.store = store
        self.stop = stop
        self.job_id = job_id
        self.options = options
        self.on_update = on_update
        self.worker = f"local@{socket.gethostname()}"

    @property
    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def pool(
        self, messages: list[SegmentMessage], workers: int, *, max_attempts: int | None = None
    ) -> tuple[list[SegmentMessage], list[SegmentMessage]]:
        """One pool's life over ``messages``; returns those in flight when a process died (the
        pool broke under them) and those not started then. With ``max_attempts``, a segment
        out of attempts is failed, not run."""
        lost: list[SegmentMessage] = []
        todo = iter(messages)
        with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
            running: dict[Future[dict[str, Any]], SegmentMessage] = {}
            self._feed(pool, todo, running, lost, workers, max_attempts)
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    message = running.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        lost.append(message)
                        continue
                    self._record(message, outcome)
                if not lost:
                    self._feed(pool, todo, running, lost, workers, max_attempts)
        return lost, list(todo)

    def _feed(
        self,
        pool: ProcessPoolExecutor,
        todo: Iterator[SegmentMessage],
        running: dict[Future[dict[str, Any]], SegmentMessage],
        lost: list[SegmentMessage],
        workers: int,
        max_attempts: int | None,
    ) -> None:
        while len(running) < workers and not lost and not self.stopped:
            message = next(todo, None)
            if message is None:
                return
            delivery = self.store.begin(
                self.job_id, message.segment_id, worker=self.worker, pid=os.getpid()
            )
            if not delivery.run:
                continue
            if max_attempts is not None and delivery.attempt > max_attempts:
                self._record(message, {"error": GAVE_UP % (delivery.attempt - 1)})
                continue
            try:
                future = pool.submit(_run_segment, message.to_dict(), message.force, *self.options)
            except BrokenProcessPool:  # a process died since the last result: begun, not run
                lost.append(message)
                return
            running[future] = message

    def _record(self, message: SegmentMessage, outcome: dict[str, Any]) -> None:
        if outcome.get("error"):
            self.store.fail(self.job_id, message.segment_id, error=outcome["error"])
        else:
            self.store.finish(
                self.job_id,
                message.segment_id,
                images=outcome["images"],
                bytes=outcome["bytes"],
                decode_seconds=outcome["decode_seconds"],
            )
        if self.on_update is not None:
            self.on_update(self.store.job(self.job_id))


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _run_segment(
    message: dict[str, Any], force: bool, decode_threads: int, max_frame_pixels: int
) -> dict[str, Any]:
    """Runs in a pool process: one segment, errors returned as text (they must pickle)."""
    try:
        result = process_segment(
            SegmentSpec.from_dict(message["spec"]),
            decode_threads=decode_threads,
            force=force,
            max_frame_pixels=max_frame_pixels,
        )
    except FramefleetError as e:
        return {"error": str(e)}
    except Exception as e:  # a bug or a foreign error: keep it visible, go on with the rest
        return {"error": f"{type(e).__name__}: {e}"}
    return {
        "images": result.images_written,
        "bytes": result.bytes_written,
        "decode_seconds": result.decode_seconds,
    }
