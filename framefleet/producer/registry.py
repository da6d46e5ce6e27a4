"""Where local jobs live, so ``framefleet status local-...`` finds one by its id alone.

A local job's state is under its output root (``{out}/_jobs/{job_id}.sqlite``); this registry
only remembers that root, one small file per job under the state directory (setting
``state_dir``; default ``$XDG_STATE_HOME/framefleet``, else ``~/.local/state/framefleet``). When
it cannot be written the job still runs; ``status --out DIR`` then finds it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from framefleet.config import Settings
from framefleet.media.images import write_atomic
from framefleet.media.naming import path_safe

log = logging.getLogger(__name__)


def state_dir(settings: Settings) -> Path:
    if settings.state_dir:
        return Path(settings.state_dir).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local/state")
    return Path(base) / "framefleet"


def remember_local_job(job_id: str, out_dir: str, *, settings: Settings) -> None:
    """Record where a local job's state lives (best effort: a warning when it cannot)."""
    path = state_dir(settings) / "local-jobs" / path_safe(job_id)
    try:
        write_atomic(path, str(Path(out_dir).resolve()).encode("utf-8", "surrogateescape"))
    except Exception as e:  # never fail a job for its registry entry
        log.warning("cannot remember local job %s under %s: %s", job_id, path.parent, e)


def find_local_job(job_id: str, *, settings: Settings) -> str | None:
    """The output root of a local job remembered here, or None."""
    path = state_dir(settings) / "local-jobs" / path_safe(job_id)
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def local_jobs(*, settings: Settings, limit: int) -> list[Any]:
    """Handles of the most recent local jobs remembered here whose state still exists."""
    from framefleet.errors import FramefleetError
    from framefleet.producer.backends import LocalJob

    folder = state_dir(settings) / "local-jobs"
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []
    found = []
    for entry in entries:
        out_dir = find_local_job(entry.name, settings=settings)
        if out_dir is None:
            continue
        job = LocalJob(entry.name, out_dir=out_dir, settings=settings)
        try:
            job.status()
        except FramefleetError:
            continue  # its output root was removed
        found.append(job)
        if len(found) == limit:
            break
    return found
