"""Jobs on the queue: create one from a plan and enqueue its segments; retry the failed ones.

Order matters for crash safety: the job and every segment's message are recorded in Redis
before the first message is published, so a worker never meets a segment the store does not
know, and ``retry`` can always rebuild a message.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from framefleet.config import Settings
from framefleet.jobs.broker import URGENT_PRIORITY, publish_segments
from framefleet.jobs.completion import Completion, save_sources
from framefleet.jobs.limits import checked_limits
from framefleet.jobs.manifest import finalize_job
from framefleet.jobs.message import DEFAULT_QUEUE, SegmentMessage
from framefleet.jobs.state import JobRecords
from framefleet.jobs.store import JobStore
from framefleet.media.specs import OutputSpec
from framefleet.producer.plan import Plan


def new_job_id(*, local: bool = False) -> str:
    """A readable, sortable, unique job id: ``20250101-120000-3f9a1c`` (``local-`` prefixed)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{'local-' if local else ''}{stamp}-{secrets.token_hex(3)}"


def job_spec(
    output: OutputSpec,
    *,
    segment_seconds: float,
    query: Mapping[str, Any] | None = None,
    completion: Completion | None = None,
) -> dict[str, Any]:
    """What a job was asked for (kept in the store and shown by ``status``)."""
    return {
        "output": asdict(output),
        "segment_seconds": segment_seconds,
        "query": dict(query or {}),
        "completion": (completion or Completion()).to_dict(),
    }


def record_job(
    store: JobRecords,
    plan: Plan,
    *,
    job_id: str,
    output: OutputSpec,
    segment_seconds: float,
    force: bool = False,
    query: Mapping[str, Any] | None = None,
    queue: str,
) -> list[SegmentMessage]:
    """Record ``plan`` as job ``job_id`` in ``store`` (Redis or a local job's file); returns
    its messages, one per segment in plan order. Exports and registration need the sources'
    catalog fields when the job completes: they are kept beside the job manifest."""
    messages = plan.messages(job_id, force=force)
    if plan.completion.exports or plan.completion.register:
        save_sources(output.out_dir, job_id, plan.sources)
    store.create_job(
        job_id,
        out_dir=output.out_dir,
        spec=job_spec(
            output, segment_seconds=segment_seconds, query=query, completion=plan.completion
        ),
        messages=messages,
        skipped=plan.skipped_ids,
        failed=plan.errors,
        videos=plan.videos,
        queue=queue,
    )
    return messages


@dataclass(frozen=True)
class Submitted:
    """A job on the queue: its id, plan, how many messages went out and how fast."""

    job_id: str
    plan: Plan
    enqueued: int
    enqueue_seconds: float


def submit_job(
    plan: Plan,
    *,
    store: JobStore,
    settings: Settings,
    output: OutputSpec,
    segment_seconds: float,
    force: bool = False,
    query: Mapping[str, Any] | None = None,
    job_id: str | None = None,
    queue: str = DEFAULT_QUEUE,
    on_created: Callable[[str], None] | None = None,
) -> Submitted:
    """Record the job, then publish one message per pending segment.

    Args:
        on_created: called with the job id once the job is recorded, before enqueueing
            (the CLI prints the id there, so it comes first).

    Raises:
        ConfigError: the segments' hard time limit would reach the visibility timeout.
        QueueError: Redis cannot be reached.
    """
    limits = checked_limits(settings, segment_seconds)
    job_id = job_id or new_job_id()
    messages = record_job(
        store,
        plan,
        job_id=job_id,
        output=output,
        segment_seconds=segment_seconds,
        force=force,
        query=query,
        queue=queue,
    )
    if on_created is not None:
        on_created(job_id)
    t0 = time.perf_counter()
    sent = publish_segments(
        settings.broker_url,
        (messages[s.segment_id] for s in plan.pending),
        limits=limits,
        queue=queue,
        on_batch=lambda n: store.mark_enqueued(job_id, n),
    )
    seconds = time.perf_counter() - t0
    if not plan.pending:
        finalize_job(store, job_id)
    return Submitted(job_id, plan, sent, seconds)


def retry_job(store: JobStore, job_id: str, *, settings: Settings) -> list[SegmentMessage]:
    """Re-enqueue the failed segments of a job (attempts reset) on its queue; returns their
    messages.

    Raises:
        JobNotFoundError: no such job.
    """
    job = store.job(job_id)
    segment_seconds = float(job.spec.get("segment_seconds") or settings.segment_seconds)
    limits = checked_limits(settings, segment_seconds)
    messages = store.reset_failed(job_id)
    if messages:
        publish_segments(
            settings.broker_url,
            messages,
            limits=limits,
            queue=job.queue,
            priority=URGENT_PRIORITY,
        )
    return messages
