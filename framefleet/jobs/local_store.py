"""The job store of a local job: the same state model as Redis, in a SQLite file under ``_jobs``.

A local job (``extract --local``, ``framefleet.extract(backend="local")``) keeps its state in
``{out}/_jobs/{job_id}.sqlite``: its spec and counters, each segment's message, state, attempts
and error. Only the process running the job writes it; any process may read it while it runs
(WAL), so ``framefleet status`` and ``framefleet retry`` work for local jobs as for queued ones.
It has the methods of `framefleet.jobs.store.JobStore` that a job's life needs (no leases: one
process supervises its own pool).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from framefleet.errors import JobNotFoundError, OutputError
from framefleet.jobs.message import SegmentMessage
from framefleet.jobs.state import Delivery, JobStatus, SegmentState, new_job_fields
from framefleet.jobs.store import NOT_PLANNED, planning_error
from framefleet.media.images import inside
from framefleet.media.naming import JOBS_DIR, path_safe

_SCHEMA = """
CREATE TABLE IF NOT EXISTS job (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, message TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, worker TEXT, pid INTEGER, error TEXT
);
"""
_COUNTERS = ("done", "failed", "images", "bytes", "decode_seconds")


def local_state_path(out_dir: str | Path, job_id: str) -> Path:
    """``{out}/_jobs/{job_id}.sqlite``."""
    return inside(Path(out_dir), f"{JOBS_DIR}/{path_safe(job_id)}.sqlite")


class LocalJobStore:
    """One local job's state (see the module docstring). One file per job."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        if not create and not path.is_file():
            raise JobNotFoundError(f"no local job state at {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise OutputError(f"cannot keep the local job's state in {path}: {e}") from e

    @classmethod
    def open(cls, out_dir: str | Path, job_id: str, *, create: bool = False) -> LocalJobStore:
        return cls(local_state_path(out_dir, job_id), create=create)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- creating and changing ---------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        *,
        out_dir: str,
        spec: dict[str, Any],
        messages: Sequence[SegmentMessage],
        skipped: Iterable[int] = (),
        failed: Mapping[int, str] | None = None,
        videos: int = 0,
        mode: str = "local",
        queue: str = "local",
    ) -> None:
        """Record the job and its segments, as `JobStore.create_job` does."""
        skipped_ids = set(skipped)
        failed = {i: planning_error(error) for i, error in (failed or {}).items()}
        total = sum(m.segment_id not in skipped_ids for m in messages)
        fields = new_job_fields(
            job_id,
            mode=mode,
            queue=queue,
            out_dir=out_dir,
            spec=spec,
            segments=len(messages),
            total=total,
            skipped=len(skipped_ids),
            failed=len(failed),
            videos=videos,
        )
        fields["enqueued"] = total - len(failed)  # handed to the pool as it starts

        def state(i: int) -> str:
            return "skipped" if i in skipped_ids else "failed" if i in failed else "queued"

        with self._write() as db:
            db.executemany("INSERT OR REPLACE INTO job VALUES (?, ?)", _pairs(fields))
            db.executemany(
                "INSERT OR REPLACE INTO segments (id, message, state, error) VALUES (?, ?, ?, ?)",
                [
                    (m.segment_id, m.to_json(), state(m.segment_id), failed.get(m.segment_id))
                    for m in messages
                ],
            )

    def begin(self, job_id: str, segment_id: int, *, worker: str, pid: int) -> Delivery:
        """Count an attempt of a segment and mark it running."""
        with self._write() as db:
            row = db.execute(
                "SELECT state, attempts FROM segments WHERE id = ?", (segment_id,)
            ).fetchone()
            if row is None:
                return Delivery(0, 2)
            if row[0] == "done":
                return Delivery(row[1], 1)
            db.execute(
                "UPDATE segments SET state = 'running', attempts = attempts + 1, worker = ?, "
                "pid = ? WHERE id = ?",
                (worker, pid, segment_id),
            )
            db.execute("INSERT OR IGNORE INTO job VALUES ('started', ?)", (str(time.time()),))
            return Delivery(row[1] + 1, 0)

    def finish(
        self, job_id: str, segment_id: int, *, images: int, bytes: int, decode_seconds: float
    ) -> int:
        """Count a segment done (once): 0 already counted, 1 counted, 2 the job completed."""
        with self._write() as db:
            state = self._state(db, segment_id)
            if state in (None, "done"):
                return 0
            db.execute(
                "UPDATE segments SET state = 'done', error = NULL WHERE id = ?", (segment_id,)
            )
            changes = {
                "done": 1,
                "images": images,
                "bytes": bytes,
                "decode_seconds": decode_seconds,
            }
            if state == "failed":
                changes["failed"] = -1
            self._add(db, changes)
            return self._complete(db)

    def fail(self, job_id: str, segment_id: int, *, error: str) -> int:
        """Count a segment failed (once, unless done); returns as `finish` does."""
        with self._write() as db:
            state = self._state(db, segment_id)
            if state in (None, "done"):
                return 0
            db.execute(
                "UPDATE segments SET state = 'failed', error = ? WHERE id = ?",
                (error[:4000], segment_id),
            )
            if state == "failed":
                return 0
            self._add(db, {"failed": 1})
            return self._complete(db)

    def reset_failed(self, job_id: str) -> list[SegmentMessage]:
        """Put the failed segments back to ``queued`` (attempts cleared); returns their messages.
        Those that could not be planned stay failed, as `JobStore.reset_failed` leaves them."""
        prefix = (len(NOT_PLANNED), NOT_PLANNED)
        with self._write() as db:
            rows = db.execute(
                "SELECT id, message FROM segments WHERE state = 'failed' "
                "AND substr(coalesce(error, ''), 1, ?) != ? ORDER BY id",
                prefix,
            ).fetchall()
            if rows:
                db.execute(
                    "UPDATE segments SET state = 'queued', attempts = 0, error = NULL "
                    "WHERE state = 'failed' AND substr(coalesce(error, ''), 1, ?) != ?",
                    prefix,
                )
                self._add(db, {"failed": -len(rows)})
                db.execute("DELETE FROM job WHERE key IN ('finished', 'manifest_done')")
        return [SegmentMessage.from_json(message) for _, message in rows]

    def mark_manifest(self, job_id: str, path: str, done: int, images: int) -> None:
        fields = {"manifest": path, "manifest_done": done, "manifest_images": images}
        with self._write() as db:
            db.executemany("INSERT OR REPLACE INTO job VALUES (?, ?)", _pairs(fields))

    # --- reading -----------------------------------------------------------------------------

    def job(self, job_id: str) -> JobStatus:
        data = dict(self._db.execute("SELECT key, value FROM job").fetchall())
        if not data:
            raise JobNotFoundError(f"local job {job_id!r} has no state in {self.path}")
        return JobStatus.from_hash(data)

    def messages(
        self, job_id: str, segment_ids: Sequence[int] | None = None
    ) -> list[SegmentMessage]:
        rows = self._db.execute("SELECT id, message FROM segments ORDER BY id").fetchall()
        wanted = None if segment_ids is None else set(segment_ids)
        return [SegmentMessage.from_json(m) for i, m in rows if wanted is None or i in wanted]

    def segments(self, job_id: str, segment_ids: Sequence[int]) -> list[SegmentState]:
        result = []
        for segment_id in segment_ids:
            row = self._db.execute(
                "SELECT state, attempts, worker, pid, error, message FROM segments WHERE id = ?",
                (segment_id,),
            ).fetchone()
            if row is None:
                continue
            spec = SegmentMessage.from_json(row[5]).spec
            result.append(
                SegmentState(
                    segment_id=segment_id,
                    state=row[0],
                    attempts=row[1],
                    worker=row[2],
                    pid=row[3],
                    error=row[4],
                    record_id=spec.record_id,
                    content=spec.content,
                    video_path=spec.video_path,
                    start_seconds=spec.start_seconds,
                    end_seconds=spec.end_seconds,
                )
            )
        return result

    def segment_states(self, job_id: str) -> dict[int, str]:
        return dict(self._db.execute("SELECT id, state FROM segments").fetchall())

    def running_segments(self, job_id: str) -> list[SegmentState]:
        states = self.segment_states(job_id)
        return self.segments(job_id, sorted(i for i, s in states.items() if s == "running"))

    def failed_segments(self, job_id: str) -> list[SegmentState]:
        states = self.segment_states(job_id)
        return self.segments(job_id, sorted(i for i, s in states.items() if s == "failed"))

    def done_ids(self, job_id: str) -> set[int]:
        return {i for i, s in self.segment_states(job_id).items() if s == "done"}

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _state(db: sqlite3.Connection, segment_id: int) -> str | None:
        row = db.execute("SELECT state FROM segments WHERE id = ?", (segment_id,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _add(db: sqlite3.Connection, changes: Mapping[str, float]) -> None:
        for key, delta in changes.items():
            assert key in _COUNTERS
            db.execute(
                "UPDATE job SET value = CAST(CAST(value AS REAL) + ? AS TEXT) WHERE key = ?",
                (delta, key),
            )

    @staticmethod
    def _complete(db: sqlite3.Connection) -> int:
        data = dict(
            db.execute(
                "SELECT key, value FROM job WHERE key IN ('total', 'done', 'failed', 'finished')"
            ).fetchall()
        )
        if "finished" not in data and float(data["done"]) + float(data["failed"]) >= float(
            data["total"]
        ):
            db.execute("INSERT INTO job VALUES ('finished', ?)", (str(time.time()),))
            return 2
        return 1


def _pairs(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(key, str(value)) for key, value in fields.items()]
