"""Time limits of a segment and the Redis visibility timeout that must outlast them.

A segment's soft limit is ``2 s + time_limit_factor × length`` (the task stops and reports the
segment failed); its hard limit is a quarter more (at least 2 s), after which Celery kills the
process. Redis hands an unacknowledged message to another worker ``visibility_timeout`` seconds
after it was delivered: that is how the segments of a worker that died (container killed, host
lost) come back. It must exceed the hard limit, or a segment still running would be handed out
a second time; it should not be much longer, because it is also how long a dead worker's segments
wait. With the defaults (10 s segments, factor 6): soft 62 s, hard 78 s, visibility 138 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from framefleet.config import Settings
from framefleet.errors import ConfigError

SOFT_BASE_SECONDS = 2
"""Fixed part of the soft limit: process start, opening and indexing the video."""
VISIBILITY_MARGIN_SECONDS = 60
"""Derived visibility timeout = hard limit + this (queueing inside the worker, clock skew)."""


@dataclass(frozen=True)
class TimeLimits:
    """Soft and hard time limits of one segment, whole seconds."""

    soft_seconds: int
    hard_seconds: int


def time_limits(length_seconds: float, *, factor: float) -> TimeLimits:
    """The limits of a segment ``length_seconds`` long (see the module docstring)."""
    if not length_seconds > 0 or not factor > 0:
        raise ConfigError(
            f"segment length and time_limit_factor must be > 0, got {length_seconds}, {factor}"
        )
    soft = math.ceil(SOFT_BASE_SECONDS + factor * length_seconds)
    return TimeLimits(soft, soft + max(2, math.ceil(soft / 4)))


def visibility_timeout(settings: Settings) -> int:
    """The visibility timeout in seconds: the setting, or derived from ``segment_seconds``."""
    if settings.visibility_timeout_seconds > 0:
        return settings.visibility_timeout_seconds
    hard = time_limits(settings.segment_seconds, factor=settings.time_limit_factor).hard_seconds
    return hard + VISIBILITY_MARGIN_SECONDS


def restore_interval(visibility_seconds: int) -> int:
    """How often a worker looks for expired unacknowledged messages (kombu's sweep), seconds.

    A tenth of the visibility timeout, between 1 and 10 s: the sweep is one cheap ZRANGE.
    """
    return max(1, min(10, visibility_seconds // 10))


def restore_mutex_seconds(visibility_seconds: int) -> int:
    """How long kombu's restore sweep lock lives (kombu's default is 300 s).

    A worker that dies while sweeping leaves the lock behind; nobody sweeps until it expires.
    A sweep takes milliseconds and is transactional per message, so a short lock is safe.
    """
    return 3 * restore_interval(visibility_seconds)


def requeue_bound_seconds(settings: Settings) -> int:
    """How long a dead worker's segment waits, at most, before another worker may take it.

    Visibility timeout + one restore sweep, + the sweep lock's life in the rare case the worker
    died in the middle of a sweep. Then a free worker picks it up (it is at the queue's tail).
    With the defaults: 138 + 10 + 30 = 178 s.
    """
    vt = visibility_timeout(settings)
    return vt + restore_interval(vt) + restore_mutex_seconds(vt)


def checked_limits(settings: Settings, segment_seconds: float) -> TimeLimits:
    """The limits for segments of ``segment_seconds``, refused if the visibility timeout is short.

    Raises:
        ConfigError: the hard limit reaches the visibility timeout.
    """
    limits = time_limits(segment_seconds, factor=settings.time_limit_factor)
    vt = visibility_timeout(settings)
    if limits.hard_seconds >= vt:
        raise ConfigError(
            f"segments of {segment_seconds:g} s get a hard time limit of {limits.hard_seconds} s, "
            f"which must stay below the Redis visibility timeout ({vt} s) or a running segment "
            "would be handed to a second worker; use shorter --segment-seconds, or raise "
            "visibility_timeout_seconds (FRAMEFLEET_VISIBILITY_TIMEOUT_SECONDS) for workers "
            "and producer alike"
        )
    return limits
