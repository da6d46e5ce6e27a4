"""The Celery app, built from `Settings` by a function: no URL or setting lives in this module.

What makes delivery at-least-once with idempotent effects:

- ``task_acks_late``: a message is acknowledged after its segment is reported, not on receipt;
- ``task_reject_on_worker_lost``: a pool process that dies gives its message back at once
  (within ``worker_lost_wait``, 1 s);
- prefetch multiplier 1: a worker holds no more messages than it has processes (fair, and a dead
  worker strands at most that many);
- Redis ``visibility_timeout`` (see `framefleet.jobs.limits`): a worker that dies entirely
  cannot give anything back, so Redis does, that many seconds after delivery; kombu's sweep for
  such messages runs every `restore_interval` seconds instead of its default ~100 s, and its lock
  expires in seconds, not 5 minutes, should a worker die holding it;
- JSON only, in and out.

A task that fails is acknowledged (``task_acks_on_failure_or_timeout``): its failure is recorded
in the job store. A segment task that cannot reach the job store at all records nothing and
rejects its message with requeue instead (`framefleet.worker.tasks`): another delivery does it.
The ``finalize_job`` task carries its own time limits and is acknowledged on receipt.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from celery import Celery
from celery.exceptions import SecurityWarning

from framefleet.config import Settings
from framefleet.jobs.broker import PRIORITY_STEPS
from framefleet.jobs.limits import (
    restore_interval,
    restore_mutex_seconds,
    time_limits,
    visibility_timeout,
)
from framefleet.jobs.message import DEFAULT_QUEUE
from framefleet.worker import hooks
from framefleet.worker.tasks import register_tasks


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings derived from ours."""
    vt = visibility_timeout(settings)
    limits = time_limits(settings.segment_seconds, factor=settings.time_limit_factor)
    transport = {
        "visibility_timeout": vt,
        "unacked_restore_interval": restore_interval(vt),
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": restore_mutex_seconds(vt),
        "socket_connect_timeout": 5,
        "health_check_interval": 15,
        # Take urgent segments (a dead worker's, retries) before new ones: see jobs.broker.
        "priority_steps": list(PRIORITY_STEPS),
        "queue_order_strategy": "priority",
    }
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.effective_results_url,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": vt},
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_ignore_result": True,  # results live in the job store, not Celery's backend
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        # A pool process that died may have sent its result first; billiard waits this long for
        # it (default 10 s) before the message is rejected and requeued. A result that was in
        # fact sent only means a repeat, which finds the segment done: requeue at once instead.
        "worker_lost_wait": 1.0,
        "worker_prefetch_multiplier": 1,
        "worker_max_tasks_per_child": settings.max_tasks_per_child or None,
        "worker_concurrency": settings.worker_concurrency or None,
        "task_default_queue": DEFAULT_QUEUE,
        # Messages carry limits derived from their own segment length; these cover the rest.
        "task_soft_time_limit": limits.soft_seconds,
        "task_time_limit": limits.hard_seconds,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # a restarted Redis is waited for, not fatal
        # Tasks running when the broker connection drops finish and report; their message comes
        # back after the visibility timeout and the repeat only finds the segment done.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_send_task_events": False,
        "worker_hijack_root_logger": True,
    }


def create_app(settings: Settings) -> Celery:
    """A Celery app for ``settings`` with the segment task registered."""
    _quiet_false_privilege_warnings()
    app = Celery("framefleet", set_as_current=False)
    app.conf.update(celery_config(settings))
    hooks.install(settings)
    register_tasks(app)
    return app


def _quiet_false_privilege_warnings() -> None:
    """Celery warns of "superuser privileges" whenever the process's group has no name (a
    container run with an arbitrary ``--user UID:GID``, as for host-owned output), even when
    the process is not root. Only a process that really is root keeps the warning."""
    if os.getuid() != 0 and os.geteuid() != 0:
        warnings.filterwarnings("ignore", category=SecurityWarning)
