"""The watch loop: settle, ingest, claim, enqueue, mark enqueued; repeat.

Exactly once per (version of a file, rule), across restarts and with several watchers at once: a
video is enqueued for a rule only by the watcher whose claim row (unique on file and rule, and
remembering the file's version) went into the catalog. A file that changes (a video replaced or
grown after a pause, a sidecar that arrives after its video or is edited) is ingested again when
its folder settles again, which gives its row a new version; its claim is then stale and it is
enqueued again, its earlier images replaced (`framefleet.media.ownership`). A claim is written
*before* the job is submitted and marked enqueued *after*; a claim
left unmarked by a watcher that died in between is released after ``stale_claim_seconds`` and the
video is enqueued again (segments are idempotent, so the worst case is work done twice, never
work lost). Rows added by other means (``catalog add`` on another host) are picked up too: each
poll asks the catalog for every matching video without a claim for the rule, so rows committed
out of order are never skipped the way a high-water-mark cursor would skip them.

Nothing from one file, folder or rule stops the loop: whatever goes wrong with one is logged with
its path and reason, and the rest goes on; the next poll tries again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framefleet.catalog import Catalog, ingest_paths
from framefleet.errors import FramefleetError, JobNotFoundError
from framefleet.media.bags import image_topics
from framefleet.media.probe import probe_video
from framefleet.producer.submit import new_job_id
from framefleet.watch.rules import Rule
from framefleet.watch.settle import SettleTracker

log = logging.getLogger("framefleet.watcher")

Submit = Callable[[Rule, list[dict[str, Any]], str], int]
"""Enqueue ``rows`` for ``rule`` as job ``job_id``; return the number of segments enqueued."""


@dataclass
class PollReport:
    """What one poll did."""

    folders_ingested: int = 0
    ingest_failures: list[str] = field(default_factory=list)
    enqueued: dict[str, list[str]] = field(default_factory=dict)
    """Rule name -> job ids submitted in this poll."""
    errors: list[str] = field(default_factory=list)
    """Folders or rules that could not be handled in this poll (retried on the next)."""
    waiting: dict[Path, float | None] = field(default_factory=dict)
    """Folders changed but not settled yet -> seconds still needed (None: a file in progress)."""


def default_owner() -> str:
    """Who holds a claim: host and pid, for people reading the claims table."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Watcher:
    """Poll ``roots``; ingest settled folders; enqueue unclaimed matching videos per rule."""

    catalog: Catalog
    roots: Sequence[Path]
    rules: Sequence[Rule]
    submit: Submit
    settle_seconds: float = 5.0
    stale_claim_seconds: float = 600.0
    owner: str = field(default_factory=default_owner)
    reap: Callable[[], object] | None = None
    """Called every poll: re-enqueues segments whose worker died (`framefleet.jobs.leases`)."""
    register: Callable[[str], bool] | None = None
    """Registers a job's images in the catalog if it is complete (True: done, or nothing to
    do); asked every poll for the jobs of rules with ``register``."""
    _to_register: dict[str, str] = field(init=False, default_factory=dict)
    _pending_loaded: bool = field(init=False, default=False)
    tracker: SettleTracker = field(init=False)

    def __post_init__(self) -> None:
        self.tracker = SettleTracker(settle_seconds=self.settle_seconds)

    def poll(self) -> PollReport:
        """One pass: ingest what settled, then claim and enqueue per rule."""
        report = PollReport()
        for folder, files in self.tracker.poll(self.roots):
            try:
                self._ingest(folder, files, report)
            except Exception as e:  # one folder's problem never stops the watcher
                report.errors.append(f"{folder}: {_reason(e)}")
                log.error("could not ingest %s (retried on the next poll): %s", folder, _reason(e))
                self.tracker.forget(folder)
        report.waiting = dict(self.tracker.waiting)
        try:
            self._housekeeping()
        except Exception as e:  # Redis or the catalog down: the rules below say so too
            report.errors.append(f"housekeeping: {_reason(e)}")
            log.error("housekeeping failed (retried on the next poll): %s", _reason(e))
        for rule in self.rules:
            try:
                job_id = self._enqueue_rule(rule)
            except Exception as e:
                report.errors.append(f"rule {rule.name}: {_reason(e)}")
                log.error("rule %s: could not enqueue (next poll retries): %s", rule.name, e)
                continue
            if job_id is not None:
                report.enqueued.setdefault(rule.name, []).append(job_id)
                if rule.completion.register:
                    self._to_register[job_id] = rule.name
        self._register_completed(report)
        return report

    def _register_completed(self, report: PollReport) -> None:
        """Register the images of the rules' completed jobs (those of rules that ask)."""
        if self.register is None:
            return
        if not self._pending_loaded:  # jobs enqueued before a restart, still unregistered
            for registering in (r for r in self.rules if r.completion.register):
                for job_id in self.catalog.claims.unregistered_jobs(rule=registering.name):
                    self._to_register.setdefault(job_id, registering.name)
            self._pending_loaded = True
        for job_id, rule in list(self._to_register.items()):
            try:
                if self.register(job_id):
                    del self._to_register[job_id]
            except JobNotFoundError as e:  # expired from Redis: nothing will ever register it
                del self._to_register[job_id]
                report.errors.append(f"rule {rule}: job {job_id} not registered: {e}")
                log.error("rule %s: job %s cannot be registered: %s", rule, job_id, e)
            except Exception as e:
                report.errors.append(f"rule {rule}: registering job {job_id}: {_reason(e)}")
                log.error("rule %s: could not register job %s (retried): %s", rule, job_id, e)

    def _ingest(self, folder: Path, files: list[Path], report: PollReport) -> None:
        ingest = ingest_paths(self.catalog, files, probe=probe_video, bag_topics=image_topics)
        report.folders_ingested += 1
        for path, reason in ingest.failed:
            report.ingest_failures.append(f"{path}: {reason}")
            log.warning("skipped %s: %s", path, reason)
        for path, reason in ingest.warnings:
            log.warning("%s: %s", path, reason)
        if ingest.added or ingest.updated:
            log.info("ingested %s: %s", folder, ingest.summary())

    def _housekeeping(self) -> None:
        if self.reap is not None:
            self.reap()
        claims = self.catalog.claims
        claims.adopt_legacy()
        released = claims.release_stale(older_than_seconds=self.stale_claim_seconds)
        if released:
            log.warning("released %d claim(s) left by a watcher that stopped mid-way", released)

    def _enqueue_rule(self, rule: Rule) -> str | None:
        claims = self.catalog.claims
        candidates = claims.unclaimed_videos(rule=rule.name, where=rule.where)
        if not candidates:
            return None
        job_id = new_job_id()
        won = claims.claim(
            [row["id"] for row in candidates],
            rule=rule.name,
            job_id=job_id,
            owner=self.owner,
        )
        rows = [row for row in candidates if row["id"] in won]
        if not rows:
            return None  # another watcher claimed them first
        try:
            segments = self.submit(rule, rows, job_id)
        except BaseException:
            claims.release(sorted(won), rule=rule.name, job_id=job_id)
            raise
        claims.mark_enqueued(sorted(won), rule=rule.name, job_id=job_id)
        for row in rows:
            log.info(
                "picked up %s %s (%s) for rule %s: job %s",
                row["record_id"],
                row["contents"],
                row["path"],
                rule.name,
                job_id,
            )
        log.info("rule %s: job %s, %d segment(s) enqueued", rule.name, job_id, segments)
        return job_id

    def run(self, *, interval_seconds: float, once: bool = False) -> PollReport:
        """Poll until interrupted (or once, returning its report).

        A poll that fails as a whole (the catalog unreachable) is logged and retried after
        ``interval_seconds``; with ``once`` it is the report's one error.
        """
        announced: dict[Path, float | None] = {}
        while True:
            try:
                report = self.poll()
            except Exception as e:
                if once:
                    log.error("poll failed: %s", _reason(e))
                    return PollReport(errors=[f"poll failed: {_reason(e)}"])
                log.error("poll failed, retrying in %.0f s: %s", interval_seconds, _reason(e))
                time.sleep(interval_seconds)
                continue
            for folder, left in report.waiting.items():
                if once or folder not in announced:
                    log.info(
                        "waiting for %s to settle (%s)",
                        folder,
                        "a file is still in progress"
                        if left is None
                        else f"unchanged for {self.settle_seconds:g} s needed, {left:.0f} s to go",
                    )
            announced = report.waiting
            if once:
                return report
            time.sleep(interval_seconds)


def _reason(error: BaseException) -> str:
    """One line: a framefleet error's message; a foreign error with its type."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return text if isinstance(error, FramefleetError) else f"{type(error).__name__}: {text}"
