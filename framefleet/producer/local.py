"""Local mode: run a planned job in a process pool on this machine, no Redis needed.

The same plan, the same `process_segment`, the same segment manifests and job manifest
(``{out}/_jobs/{job_id}.jsonl``) as queue mode; only the transport differs. Processes come from
the ``forkserver`` context (``spawn`` where there is none): never a plain fork of a parent that
may hold decoder threads. With more than one process each decodes with one thread, which on
a machine with one process per core beats frame threads fighting over the same cores.

A segment whose process dies (a crash in native code) is retried alone in a fresh pool, up to
``max_attempts`` runs, as the queue does.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from framefleet.errors import FramefleetError
from framefleet.jobs.manifest import JobManifest, assemble_job_manifest
from framefleet.media.pipeline import DEFAULT_MAX_FRAME_PIXELS, process_segment
from framefleet.media.specs import SegmentSpec
from framefleet.producer.plan import Plan


@dataclass(frozen=True)
class SegmentOutcome:
    """What one segment did in local mode."""

    segment_id: int
    images: int = 0
    bytes: int = 0
    decode_seconds: float = 0.0
    error: str | None = None
    attempts: int = 1


@dataclass
class LocalRun:
    """The result of a local job: counters, failures and the job manifest."""

    job_id: str
    total: int
    skipped: int
    done: int = 0
    images: int = 0
    bytes: int = 0
    decode_seconds: float = 0.0
    failed: list[SegmentOutcome] = field(default_factory=list)
    manifest: JobManifest | None = None


def default_workers() -> int:
    """One process per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_local(
    plan: Plan,
    *,
    job_id: str,
    out_dir: str,
    workers: int | None = None,
    decode_threads: int | None = None,
    force: bool = False,
    max_attempts: int = 3,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    on_segment: Callable[[LocalRun], None] | None = None,
) -> LocalRun:
    """Run the pending segments of ``plan`` in ``workers`` processes, then write the job manifest.

    Args:
        workers: processes (default: one per core).
        decode_threads: decoder threads per process (default: 1 with several processes, else 0).
        force: redo segments even if their manifest exists.
        max_attempts: runs of a segment whose process died before it is failed.
        max_frame_pixels: refuse videos with larger frames.
        on_segment: called with the running totals after every segment.
    """
    workers = workers or default_workers()
    if decode_threads is None:
        decode_threads = 1 if workers > 1 else 0
    run = LocalRun(
        job_id=job_id,
        total=len(plan.pending) + len(plan.failed),
        skipped=plan.skipped,
        failed=[SegmentOutcome(s.segment_id, error=s.error, attempts=0) for s in plan.failed],
    )
    succeeded: set[int] = set()
    todo = {s.segment_id: s.spec for s in plan.pending}
    options = (decode_threads, force, max_frame_pixels)
    lost = _run_pool(todo, run, succeeded, workers, options, on_segment) if todo else {}
    # A dead process broke the pool under every segment in flight: find the culprit by running
    # each of them alone, so only the segment that kills its process uses up its attempts.
    for segment_id, spec in sorted(lost.items()):
        runs = 1  # the run in the pool that broke
        for _ in range(max(1, max_attempts - 1)):
            runs += 1
            if not _run_pool({segment_id: spec}, run, succeeded, 1, options, on_segment):
                break
        else:
            run.failed.append(
                SegmentOutcome(
                    segment_id,
                    error=f"its process died in {runs} runs (a crash in native code, or out of "
                    "memory); gave up",
                    attempts=runs,
                )
            )
            if on_segment is not None:
                on_segment(run)
    run.failed.sort(key=lambda o: o.segment_id)
    complete = [s.spec for s in plan.segments if s.skipped or s.segment_id in succeeded]
    run.manifest = assemble_job_manifest(out_dir, job_id, complete)
    return run


def _run_pool(
    todo: dict[int, SegmentSpec],
    run: LocalRun,
    succeeded: set[int],
    workers: int,
    options: tuple[int, bool, int],
    on_segment: Callable[[LocalRun], None] | None,
) -> dict[int, SegmentSpec]:
    """One pool's life: returns the segments whose process died (the pool broke under them)."""
    lost: dict[int, SegmentSpec] = {}
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=_context()) as pool:
        futures = {
            pool.submit(_run_segment, spec.to_dict(), *options): segment_id
            for segment_id, spec in todo.items()
        }
        pending: set[Future[dict[str, Any]]] = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                segment_id = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    lost[segment_id] = todo[segment_id]
                    continue
                _count(run, succeeded, segment_id, outcome)
                if on_segment is not None:
                    on_segment(run)
    return lost


def _count(run: LocalRun, succeeded: set[int], segment_id: int, outcome: dict[str, Any]) -> None:
    if outcome.get("error"):
        run.failed.append(SegmentOutcome(segment_id, error=outcome["error"]))
        return
    succeeded.add(segment_id)
    run.done += 1
    run.images += outcome["images"]
    run.bytes += outcome["bytes"]
    run.decode_seconds += outcome["decode_seconds"]


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _run_segment(
    spec: dict[str, Any], decode_threads: int, force: bool, max_frame_pixels: int
) -> dict[str, Any]:
    """Runs in a pool process: one segment, errors returned as text (they must pickle)."""
    try:
        result = process_segment(
            SegmentSpec.from_dict(spec),
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
