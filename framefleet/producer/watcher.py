"""The watch loop: settle, ingest, claim, enqueue, mark enqueued; repeat.

Exactly once per (file, rule), across restarts and with several watchers at once: a video is
enqueued for a rule only by the watcher whose claim row (unique on file and rule) went into the
catalog. A claim is written *before* the job is submitted and marked enqueued *after*; a claim
left unmarked by a watcher that died in between is released after ``stale_claim_seconds`` and the
video is enqueued again (segments are idempotent, so the worst case is work done twice, never
work lost). Rows added by other means (``catalog add`` on another host) are picked up too: each
poll asks the catalog for every matching video without a claim for the rule, so rows committed
out of order are never skipped the way a high-water-mark cursor would skip them.
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
from framefleet.catalog.claims import (
    claim_files,
    mark_enqueued,
    release_claims,
    release_stale_claims,
    unclaimed_videos,
)
from framefleet.errors import FramefleetError
from framefleet.media.probe import probe_video
from framefleet.producer.rules import Rule
from framefleet.producer.settle import SettleTracker
from framefleet.producer.submit import new_job_id

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
    tracker: SettleTracker = field(init=False)

    def __post_init__(self) -> None:
        self.tracker = SettleTracker(settle_seconds=self.settle_seconds)

    def poll(self) -> PollReport:
        """One pass: ingest what settled, then claim and enqueue per rule."""
        report = PollReport()
        for folder, files in self.tracker.poll(self.roots):
            ingest = ingest_paths(self.catalog, files, probe=probe_video)
            report.folders_ingested += 1
            for path, reason in ingest.failed:
                report.ingest_failures.append(f"{path}: {reason}")
                log.warning("skipped %s: %s", path, reason)
            if ingest.added or ingest.updated:
                log.info("ingested %s: %s", folder, ingest.summary())
        released = release_stale_claims(self.catalog, older_than_seconds=self.stale_claim_seconds)
        if released:
            log.warning("released %d claim(s) left by a watcher that stopped mid-way", released)
        for rule in self.rules:
            job_id = self._enqueue_rule(rule)
            if job_id is not None:
                report.enqueued.setdefault(rule.name, []).append(job_id)
        return report

    def _enqueue_rule(self, rule: Rule) -> str | None:
        candidates = unclaimed_videos(self.catalog, rule=rule.name, where=rule.where)
        if not candidates:
            return None
        job_id = new_job_id()
        won = claim_files(
            self.catalog,
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
            release_claims(self.catalog, sorted(won), rule=rule.name)
            raise
        mark_enqueued(self.catalog, sorted(won), rule=rule.name)
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

    def run(self, *, interval_seconds: float, once: bool = False) -> None:
        """Poll until interrupted (or once); a failing poll is logged and retried next time."""
        while True:
            try:
                self.poll()
            except FramefleetError as e:
                if once:
                    raise
                log.error("poll failed, retrying in %.0f s: %s", interval_seconds, e)
            if once:
                return
            time.sleep(interval_seconds)
