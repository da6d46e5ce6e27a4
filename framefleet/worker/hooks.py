"""Per-process resources and the Celery signals that make and close them.

Each pool process gets its own Redis client (a client must not cross a fork), made in
``worker_process_init`` and closed in ``worker_process_shutdown``. The worker's main process
makes one lazily: it reports segments whose process hit the hard time limit, which the killed
process cannot do. The main process also runs the worker's heartbeat
(`framefleet.worker.heartbeat`) from ``worker_ready`` to ``worker_shutdown``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from celery import signals
from celery.exceptions import Reject, TimeLimitExceeded

from framefleet.config import Settings
from framefleet.cpus import whole_cpus
from framefleet.errors import ConfigError, MessageError
from framefleet.jobs.leases import hand_off_finalize
from framefleet.jobs.message import TASK_NAME, SegmentMessage
from framefleet.jobs.store import JobStore
from framefleet.worker.heartbeat import WorkerHeartbeat
from framefleet.worker.report import Reporter

log = logging.getLogger(__name__)


@dataclass
class _Process:
    settings: Settings | None = None
    concurrency: int = 0
    reporter: Reporter | None = None
    heartbeat: WorkerHeartbeat | None = None


_process = _Process()


def install(settings: Settings) -> None:
    """Remember the settings for this process tree and connect the signal handlers (once)."""
    _process.settings = settings
    signals.worker_init.connect(_on_worker_init, weak=False, dispatch_uid="framefleet-init")
    signals.worker_process_init.connect(
        _on_process_init, weak=False, dispatch_uid="framefleet-process-init"
    )
    signals.worker_process_shutdown.connect(
        _on_process_shutdown, weak=False, dispatch_uid="framefleet-process-shutdown"
    )
    signals.worker_shutdown.connect(
        _on_process_shutdown, weak=False, dispatch_uid="framefleet-shutdown"
    )
    signals.worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid="framefleet-ready")
    signals.task_failure.connect(_on_task_failure, weak=False, dispatch_uid="framefleet-failure")


def settings() -> Settings:
    if _process.settings is None:
        raise ConfigError("the framefleet worker was not configured (create_app was not called)")
    return _process.settings


def reporter() -> Reporter:
    """This process's reporter, made on first use when no start-up hook made it (solo pool)."""
    if _process.reporter is None:
        _open()
    assert _process.reporter is not None
    return _process.reporter


def decode_threads() -> int:
    """Decoder threads per segment: the setting, or 1 when processes share the cores, or the
    CPUs this process may really use (a container's CPU quota included).

    FFmpeg's own choice counts the host's CPUs, not the container's quota: with ``--scale`` on
    a big host that oversubscribes every core.
    """
    configured = settings().decode_threads
    if configured > 0:
        return configured
    return 1 if _process.concurrency != 1 else whole_cpus()


def _open() -> None:
    s = settings()
    store = JobStore.from_url(s.effective_results_url, ttl_seconds=s.result_ttl_seconds)
    _process.reporter = Reporter(store)


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    _process.concurrency = int(getattr(sender, "concurrency", 0) or 0)


def _on_process_init(**_: Any) -> None:
    _process.reporter = None  # never use a client inherited through fork
    _open()


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    """Main process: start the heartbeat, with this worker's name and queues."""
    hostname = str(getattr(sender, "hostname", "") or "worker")
    try:
        queues = sorted(sender.app.amqp.queues.consume_from)
    except AttributeError:
        queues = []
    _process.heartbeat = WorkerHeartbeat(
        settings(), hostname=hostname, queues=queues or ["framefleet"]
    )
    _process.heartbeat.start()


def _on_process_shutdown(**_: Any) -> None:
    if _process.heartbeat is not None:
        _process.heartbeat.stop()
        _process.heartbeat = None
    if _process.reporter is not None:
        _process.reporter.close()
        _process.reporter = None


def _on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    **_: Any,
) -> None:
    """Record a segment whose task ended in an exception the task did not handle itself.

    A hard time limit (reported here, in the main process, as the pool process is killed) or a
    bug. Rejections are not failures: the message went back to the queue. The failure is
    recorded under the failed delivery's lease, found by its task id: if another delivery
    holds the segment now (the failed one hung and its lease was reaped), nothing changes.
    """
    from framefleet.worker.tasks import SegmentFailedError

    if getattr(sender, "name", None) != TASK_NAME or isinstance(
        exception, Reject | SegmentFailedError
    ):
        return
    try:
        message = SegmentMessage.from_dict((args or [None])[0])
    except MessageError:
        return
    if isinstance(exception, TimeLimitExceeded):
        error = (
            f"hard time limit exceeded ({exception}s): the segment's process was killed; "
            "the video may be much larger than its length suggests (raise time_limit_factor)"
        )
    else:
        error = f"unexpected {type(exception).__name__}: {exception}"
    try:
        token = reporter().token_of_task(message, str(task_id or ""))
        if reporter().failed(message, error, token=token) == 2:
            hand_off_finalize(reporter().store, settings(), message.job_id)
    except Exception:  # a signal handler must not take the worker down
        log.exception("could not record the failure of segment %s", message.segment_id)
