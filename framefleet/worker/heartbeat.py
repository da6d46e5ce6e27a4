"""The worker's own heartbeat: a thread in the main process, every ``heartbeat_seconds``.

Each beat (1) tells the job store this worker is alive and which queues it consumes, so a
producer waiting on a job can say when nobody is listening; (2) touches the heartbeat file, if
one is configured, for container healthchecks (`framefleet health`); (3) reaps expired leases,
so a segment whose worker died goes back to the queue within seconds.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from framefleet.config import Settings
from framefleet.errors import FramefleetError
from framefleet.jobs.connection import REDIS_DOWN
from framefleet.jobs.leases import reap_expired_leases
from framefleet.jobs.store import JobStore

log = logging.getLogger(__name__)


class WorkerHeartbeat:
    """Beats until `stop`; a beat that fails is logged and the next one tries again."""

    def __init__(self, settings: Settings, *, hostname: str, queues: Sequence[str]) -> None:
        self.settings = settings
        self.hostname = hostname
        self.queues = list(queues)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="framefleet-heartbeat", daemon=True)
        self._store: JobStore | None = None

    def start(self) -> None:
        touch(self.settings.heartbeat_file)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.settings.heartbeat_seconds + 5)
        if self._store is not None:
            self._store.close()

    def beat(self) -> None:
        touch(self.settings.heartbeat_file)
        if self._store is None:
            s = self.settings
            self._store = JobStore.from_url(
                s.effective_results_url, ttl_seconds=s.result_ttl_seconds
            )
        self._store.register_worker(self.hostname, self.queues)
        reap_expired_leases(self._store, self.settings)

    def _run(self) -> None:
        while True:
            try:
                self.beat()
            except (FramefleetError, *REDIS_DOWN, OSError) as e:
                log.warning("worker heartbeat: %s", e)
            except Exception:  # a bug here must not silence the heartbeat for good
                log.exception("worker heartbeat failed")
            if self._stop.wait(self.settings.heartbeat_seconds):
                return


def touch(path: str) -> None:
    """Update the heartbeat file's time (creating it), if one is configured."""
    if not path:
        return
    p = Path(path)
    try:
        p.touch()
        os.utime(p)
    except OSError as e:
        log.warning("cannot touch the heartbeat file %s: %s", path, e)
