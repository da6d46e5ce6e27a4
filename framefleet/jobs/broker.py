"""Put segment messages on the broker, pipelined: tens of thousands per second.

The producer does not import Celery (only `framefleet.worker` does). It writes Celery task
messages (protocol 2: the task name, id and time limits in the headers; ``[args, kwargs, embed]``
as the JSON body) through kombu, the library Celery itself publishes with, inside kombu's
publish batch, which sends each batch of messages to Redis as one pipeline instead of one round
trip per message. ``celery.send_task`` in a loop manages a few thousand per second; this, over
25,000 (measured in ``bench/queue_bench.py``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import redis
from kombu.connection import Connection
from kombu.exceptions import OperationalError
from kombu.messaging import Producer

from framefleet.config import redact_url
from framefleet.errors import QueueError
from framefleet.jobs.limits import TimeLimits
from framefleet.jobs.message import DEFAULT_QUEUE, TASK_NAME, SegmentMessage

BATCH_SIZE = 1000
FINALIZE_TASK_NAME = "framefleet.finalize_job"
"""The Celery task that writes a complete job's manifest and exports (argument: the job id)."""
FINALIZE_LIMITS = TimeLimits(soft_seconds=3600, hard_seconds=3900)
"""A big job's manifest and Parquet/WebDataset exports take long; a segment's limits are far
too short for them."""
NORMAL_PRIORITY = 3
"""Segments of a new job. Redis has one list per priority step, and workers take from the
lowest number first: see `URGENT_PRIORITY`."""
URGENT_PRIORITY = 0
"""Segments handed back after their worker died, and retries: taken before any new segment,
so a lost segment is redone within seconds instead of after the rest of the queue."""
PRIORITY_STEPS = (URGENT_PRIORITY, NORMAL_PRIORITY)
_PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport: "{queue}{sep}{step}"


def queue_lists(queue: str = DEFAULT_QUEUE) -> list[str]:
    """The Redis lists holding ``queue``'s messages, in the order workers take from them."""
    return [
        queue if step == 0 else f"{queue}{_PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS
    ]


# kombu's API is untyped; these aliases keep strict mypy quiet at the two call sites.
_Connection: Any = Connection
_Producer: Any = Producer
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def task_message(message: SegmentMessage, *, limits: TimeLimits, origin: str) -> dict[str, Any]:
    """The Celery protocol-2 headers and body for one segment (what ``send_task`` would send)."""
    return _task(
        TASK_NAME,
        f"{message.job_id}-{message.segment_id}-{uuid.uuid4().hex[:12]}",
        [message.to_dict()],
        limits=limits,
        argsrepr=f"(job {message.job_id} segment {message.segment_id},)",
        origin=origin,
    )


def _task(
    name: str, task_id: str, args: list[Any], *, limits: TimeLimits, argsrepr: str, origin: str
) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "lang": "py",
        "task": name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [limits.hard_seconds, limits.soft_seconds],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": argsrepr,
        "kwargsrepr": "{}",
        "origin": origin,
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    return {"headers": headers, "body": [args, {}, _EMBED], "id": task_id}


def publish_finalize(broker_url: str, job_id: str, *, queue: str) -> None:
    """Publish one ``finalize_job`` task (`FINALIZE_TASK_NAME`, `FINALIZE_LIMITS`) ahead of
    every new segment on ``queue``.

    Raises:
        QueueError: the broker cannot be reached.
    """
    task = _task(
        FINALIZE_TASK_NAME,
        f"{job_id}-finalize-{uuid.uuid4().hex[:12]}",
        [job_id],
        limits=FINALIZE_LIMITS,
        argsrepr=f"({job_id!r},)",
        origin=f"{os.getpid()}@{socket.gethostname()}",
    )
    try:
        with _connect(broker_url) as connection:
            _Producer(connection.default_channel).publish(
                task["body"],
                exchange="",
                routing_key=queue,
                serializer="json",
                headers=task["headers"],
                correlation_id=task["id"],
                delivery_mode=2,
                priority=URGENT_PRIORITY,
            )
    except (OperationalError, OSError, redis.RedisError) as e:
        raise QueueError(
            f"cannot publish to the broker at {redact_url(broker_url)}: {e}; is Redis running "
            "there (--broker / FRAMEFLEET_BROKER_URL)?"
        ) from e


def _connect(broker_url: str) -> Any:
    """A kombu connection to the broker, connected (a few quick retries), for ``with``."""
    connection = _Connection(broker_url, connect_timeout=5)
    try:
        connection.ensure_connection(
            max_retries=3, interval_start=0.2, interval_step=0.5, interval_max=1
        )
    except BaseException:
        connection.release()
        raise
    return connection


def publish_segments(
    broker_url: str,
    messages: Iterable[SegmentMessage],
    *,
    limits: TimeLimits,
    queue: str = DEFAULT_QUEUE,
    priority: int = NORMAL_PRIORITY,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Publish one task message per segment to ``queue``; returns how many were sent.

    Args:
        limits: the soft and hard time limits every message carries.
        priority: `NORMAL_PRIORITY`, or `URGENT_PRIORITY` to go before every new segment.
        on_batch: called with the number of messages after each batch reached Redis.

    Raises:
        QueueError: the broker cannot be reached.
    """
    origin = f"{os.getpid()}@{socket.gethostname()}"
    sent = 0
    try:
        with _connect(broker_url) as connection:
            producer = _Producer(connection.default_channel)
            pending = 0
            with producer.batch(max_size=BATCH_SIZE) as batch:
                for message in messages:
                    task = task_message(message, limits=limits, origin=origin)
                    producer.publish(
                        task["body"],
                        exchange="",
                        routing_key=queue,
                        serializer="json",
                        headers=task["headers"],
                        correlation_id=task["id"],
                        delivery_mode=2,
                        priority=priority,
                    )
                    pending += 1
                    if pending == BATCH_SIZE:
                        batch.flush()
                        sent += pending
                        if on_batch is not None:
                            on_batch(pending)
                        pending = 0
            sent += pending
            if on_batch is not None and pending:
                on_batch(pending)
    except (OperationalError, OSError, redis.RedisError) as e:
        raise QueueError(
            f"cannot publish to the broker at {redact_url(broker_url)} after {sent} "
            f"message(s): {e}; is Redis running there (--broker / FRAMEFLEET_BROKER_URL)?"
        ) from e
    return sent
