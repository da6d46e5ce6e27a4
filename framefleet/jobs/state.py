"""What a job and its segments look like when read back: plain frozen values, no Redis.

`JobStatus` is one snapshot of a job's counters; the progress display, ``framefleet status`` and
the exit code of ``extract --wait`` all read it. Times are epoch seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from framefleet.jobs.message import SegmentMessage

JobState = Literal["queued", "running", "done", "failed"]
SegmentStateName = Literal["queued", "running", "done", "failed", "skipped"]


@dataclass(frozen=True, kw_only=True)
class JobStatus:
    """A snapshot of one job: totals, counters and times.

    ``total`` counts the segments to run (``skipped`` ones were already complete when the job was
    planned and are not run). The job is complete when ``done + failed == total``.
    """

    job_id: str
    mode: str = "queue"
    queue: str = "framefleet"
    out_dir: str = ""
    spec: Mapping[str, Any] = field(default_factory=dict)
    segments: int = 0
    total: int = 0
    skipped: int = 0
    videos: int = 0
    enqueued: int = 0
    done: int = 0
    failed: int = 0
    images: int = 0
    bytes: int = 0
    decode_seconds: float = 0.0
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    manifest: str | None = None
    manifest_done: int | None = None
    manifest_images: int = 0
    """Images the job manifest lists: this job's and those of segments complete before it."""

    @property
    def complete(self) -> bool:
        return self.finished is not None or self.done + self.failed >= self.total

    @property
    def state(self) -> JobState:
        if self.complete:
            return "failed" if self.failed else "done"
        return "running" if self.started is not None else "queued"

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.done - self.failed)

    def elapsed_seconds(self, now: float | None = None) -> float:
        """Seconds since the job was created, up to its finish (or ``now``)."""
        end = self.finished if self.finished is not None else (now or time.time())
        return max(0.0, end - self.created)

    @classmethod
    def from_hash(cls, data: Mapping[str, str]) -> JobStatus:
        """Read the job hash kept in Redis (all values are strings there)."""

        def num(key: str) -> int:
            return int(float(data.get(key) or 0))

        def opt(key: str) -> float | None:
            value = data.get(key)
            return float(value) if value else None

        return cls(
            job_id=data["job_id"],
            mode=data.get("mode", "queue"),
            queue=data.get("queue", "framefleet"),
            out_dir=data.get("out_dir", ""),
            spec=json.loads(data.get("spec") or "{}"),
            segments=num("segments"),
            total=num("total"),
            skipped=num("skipped"),
            videos=num("videos"),
            enqueued=num("enqueued"),
            done=num("done"),
            failed=num("failed"),
            images=num("images"),
            bytes=num("bytes"),
            decode_seconds=float(data.get("decode_seconds") or 0),
            created=float(data.get("created") or 0),
            started=opt("started"),
            finished=opt("finished"),
            manifest=data.get("manifest") or None,
            manifest_done=None if data.get("manifest_done") is None else num("manifest_done"),
            manifest_images=num("manifest_images"),
        )


@dataclass(frozen=True, kw_only=True)
class SegmentState:
    """One segment as Redis knows it: state, deliveries, last worker, error of a failure."""

    segment_id: int
    state: str
    attempts: int = 0
    worker: str | None = None
    pid: int | None = None
    error: str | None = None
    record_id: str = ""
    content: str = ""
    video_path: str = ""
    start_seconds: float = 0.0
    end_seconds: float | None = None
    heartbeat_age_seconds: float | None = None
    """Running segments: seconds since its worker last renewed the lease."""
    lease_expires_in: float | None = None
    """Running segments: seconds until the lease expires (negative: expired, about to be reaped)."""

    def describe(self) -> str:
        """One line for a person: which segment, where, what went wrong or how it is doing."""
        end = "end" if self.end_seconds is None else f"{self.end_seconds:.3f}"
        where = f" on {self.worker}" if self.worker else ""
        line = (
            f"segment {self.segment_id} ({self.record_id} {self.content} "
            f"[{self.start_seconds:.3f}, {end}) s, {self.video_path}): {self.state} after "
            f"{self.attempts} attempt(s){where}"
        )
        if self.heartbeat_age_seconds is not None:
            line += f", last heartbeat {self.heartbeat_age_seconds:.1f} s ago"
        if self.lease_expires_in is not None:
            line += f", lease expires in {max(0.0, self.lease_expires_in):.0f} s"
        return f"{line}: {self.error}" if self.error else line


@dataclass(frozen=True)
class Delivery:
    """What beginning a delivery of a segment found: the attempt number, and whether to run."""

    attempt: int
    flag: int = 0

    @property
    def run(self) -> bool:
        return self.flag == 0

    @property
    def already_done(self) -> bool:
        return self.flag == 1

    @property
    def unknown_job(self) -> bool:
        return self.flag == 2

    @property
    def held_elsewhere(self) -> bool:
        """Another delivery of the segment holds a live lease (this one is a duplicate)."""
        return self.flag == 3

    @property
    def already_failed(self) -> bool:
        return self.flag == 4


@dataclass(frozen=True)
class Reaped:
    """A lease found expired: re-enqueued (``message``) or failed (out of attempts)."""

    job_id: str
    segment_id: int
    message: SegmentMessage | None
    completed_job: bool = False


def new_job_fields(
    job_id: str,
    *,
    mode: str,
    queue: str,
    out_dir: str,
    spec: Mapping[str, Any],
    segments: int,
    total: int,
    skipped: int,
    failed: int,
    videos: int,
) -> dict[str, Any]:
    """The first state of a job (what `JobStatus.from_hash` reads back), for either store.

    ``total`` counts the segments to run; ``failed`` of them could not even be planned. A job
    with nothing to run is finished at once.
    """
    now = time.time()
    fields: dict[str, Any] = {
        "job_id": job_id,
        "mode": mode,
        "queue": queue,
        "out_dir": out_dir,
        "spec": json.dumps(spec, sort_keys=True),
        "segments": segments,
        "total": total,
        "skipped": skipped,
        "videos": videos,
        "enqueued": 0,
        "done": 0,
        "failed": failed,
        "images": 0,
        "bytes": 0,
        "decode_seconds": 0,
        "created": now,
    }
    if total == failed:
        fields["finished"] = now
    return fields


class JobRecords(Protocol):
    """What a job's life needs from its store: Redis (`JobStore`) for queued jobs, a SQLite
    file (`LocalJobStore`) for local ones."""

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
        mode: str = ...,
        queue: str = ...,
    ) -> None: ...

    def job(self, job_id: str) -> JobStatus: ...

    def messages(
        self, job_id: str, segment_ids: Sequence[int] | None = None
    ) -> list[SegmentMessage]: ...

    def segments(self, job_id: str, segment_ids: Sequence[int]) -> list[SegmentState]: ...

    def segment_states(self, job_id: str) -> dict[int, str]: ...

    def running_segments(self, job_id: str) -> list[SegmentState]: ...

    def failed_segments(self, job_id: str) -> list[SegmentState]: ...

    def done_ids(self, job_id: str) -> set[int]: ...

    def reset_failed(self, job_id: str) -> list[SegmentMessage]: ...

    def mark_manifest(self, job_id: str, path: str, done: int, images: int) -> None: ...
