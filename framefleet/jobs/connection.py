"""The connection to Redis (broker and job store): a client, and Redis errors in our words."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis

from framefleet.config import redact_url
from framefleet.errors import QueueError

RedisClient = redis.Redis
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
"""Errors that mean "Redis is not answering right now" (includes "still loading its data")."""


@contextlib.contextmanager
def redis_errors(url: str) -> Iterator[None]:
    """Turn "Redis does not answer" (or any Redis error) into a one-line `QueueError`."""
    try:
        yield
    except redis.RedisError as e:
        raise QueueError(
            f"cannot use Redis at {redact_url(url)}: {e}; is it running there "
            "(--broker / FRAMEFLEET_BROKER_URL)?"
        ) from e


def connect(url: str) -> RedisClient:
    """A Redis client for the store: text replies, bounded waits, dead connections noticed."""
    try:
        return redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=30,
            health_check_interval=15,
        )
    except ValueError as e:
        raise QueueError(f"bad Redis URL: {e}") from e
