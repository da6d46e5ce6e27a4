"""The job and result store in Redis: one job's spec, counters and per-segment state.

Key layout (prefix ``framefleet:``; every key of a job expires ``result_ttl_seconds`` after its
last change)::

    framefleet:jobs                   zset  job id -> created time (the recent-jobs index)
    framefleet:job:{id}               hash  job_id mode out_dir spec segments total skipped videos
                                            enqueued done failed images bytes decode_seconds
                                            created started finished manifest manifest_done
    framefleet:job:{id}:segments      hash  segment id -> message JSON (retry, job manifest)
    framefleet:job:{id}:state         hash  segment id -> queued|running|done|failed|skipped
    framefleet:job:{id}:attempts      hash  segment id -> deliveries (incremented at task start)
    framefleet:job:{id}:worker, :pid  hash  segment id -> last worker hostname, process id
    framefleet:job:{id}:error         hash  segment id -> error of a failed segment
    framefleet:job:{id}:done, :failed set   segment ids counted done / failed

State changes are the atomic Lua scripts of `framefleet.producer.scripts`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from framefleet.errors import JobNotFoundError, QueueError
from framefleet.producer import scripts
from framefleet.producer.messages import SegmentMessage
from framefleet.producer.status import JobStatus, SegmentState

PREFIX = "framefleet:"
JOBS_INDEX = PREFIX + "jobs"
RECENT_JOBS_KEPT = 1000
_CHUNK = 2000

RedisClient = redis.Redis


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
        raise QueueError(f"bad Redis URL {url!r}: {e}") from e


def job_keys(job_id: str) -> list[str]:
    """The keys of one job, in the order the Lua scripts expect."""
    base = f"{PREFIX}job:{job_id}"
    return [base + suffix for suffix in scripts.JOB_KEY_SUFFIXES]


@dataclass(frozen=True)
class Delivery:
    """What `JobStore.begin` found: the attempt number, and whether to run the segment."""

    attempt: int
    already_done: bool = False
    unknown_job: bool = False


class JobStore:
    """Jobs and segment results in Redis (see the module docstring for the key layout)."""

    def __init__(self, client: RedisClient, *, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._begin = client.register_script(scripts.BEGIN)
        self._finish = client.register_script(scripts.FINISH)
        self._fail = client.register_script(scripts.FAIL)
        self._reset = client.register_script(scripts.RESET_FAILED)

    @classmethod
    def from_url(cls, url: str, *, ttl_seconds: int) -> JobStore:
        return cls(connect(url), ttl_seconds=ttl_seconds)

    def close(self) -> None:
        self.client.close()

    # --- producer side ----------------------------------------------------------------------

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
        mode: str = "queue",
    ) -> None:
        """Record a new job and all its segments (``skipped`` ones are complete already,
        ``failed`` ones could not be planned: segment id -> why).

        Written before any message is enqueued, so a worker never sees a segment of a job
        the store does not know.
        """
        skipped_ids = set(skipped)
        failed = dict(failed or {})
        now = time.time()
        total = sum(m.segment_id not in skipped_ids for m in messages)
        keys = job_keys(job_id)
        fields: dict[FieldT, EncodableT] = {
            "job_id": job_id,
            "mode": mode,
            "out_dir": out_dir,
            "spec": json.dumps(spec, sort_keys=True),
            "segments": len(messages),
            "total": total,
            "skipped": len(skipped_ids),
            "videos": videos,
            "enqueued": 0,
            "done": 0,
            "failed": len(failed),
            "images": 0,
            "bytes": 0,
            "decode_seconds": 0,
            "created": now,
        }
        if total == len(failed):
            fields["finished"] = now
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(keys[0], mapping=fields)
            for start in range(0, len(messages), _CHUNK):
                chunk = messages[start : start + _CHUNK]
                pipe.hset(keys[1], mapping={m.segment_id: m.to_json() for m in chunk})
                pipe.hset(
                    keys[2],
                    mapping={
                        m.segment_id: "skipped"
                        if m.segment_id in skipped_ids
                        else "failed"
                        if m.segment_id in failed
                        else "queued"
                        for m in chunk
                    },
                )
            if failed:
                pipe.hset(keys[6], mapping={i: error[:4000] for i, error in failed.items()})
                pipe.sadd(keys[8], *failed)
            pipe.zadd(JOBS_INDEX, {job_id: now})
            pipe.zremrangebyrank(JOBS_INDEX, 0, -RECENT_JOBS_KEPT - 1)
            for key in keys:
                pipe.expire(key, self.ttl_seconds)
            pipe.execute()

    def mark_enqueued(self, job_id: str, count: int) -> None:
        self.client.hincrby(job_keys(job_id)[0], "enqueued", count)

    def reset_failed(self, job_id: str) -> list[SegmentMessage]:
        """Put the failed segments of a job back to ``queued``; returns their messages."""
        self.job(job_id)  # raises JobNotFoundError
        keys = job_keys(job_id)
        ids = self._reset(keys=keys, args=["", time.time(), self.ttl_seconds])
        return self.messages(job_id, [int(i) for i in ids])

    def mark_manifest(self, job_id: str, path: str, done: int) -> None:
        """Remember that the job manifest at ``path`` holds the images of ``done`` segments."""
        self.client.hset(job_keys(job_id)[0], mapping={"manifest": path, "manifest_done": done})

    # --- worker side ------------------------------------------------------------------------

    def begin(self, job_id: str, segment_id: int, *, worker: str, pid: int) -> Delivery:
        """Count a delivery of a segment (at task start) and mark it running."""
        attempt, flag = self._begin(
            keys=job_keys(job_id),
            args=[segment_id, time.time(), self.ttl_seconds, worker, pid],
        )
        return Delivery(int(attempt), already_done=flag == 1, unknown_job=flag == 2)

    def finish(
        self, job_id: str, segment_id: int, *, images: int, bytes: int, decode_seconds: float
    ) -> int:
        """Count a segment done (once): 0 already counted, 1 counted, 2 the job completed."""
        return int(
            self._finish(
                keys=job_keys(job_id),
                args=[
                    segment_id,
                    time.time(),
                    self.ttl_seconds,
                    images,
                    bytes,
                    f"{decode_seconds:.6f}",
                ],
            )
        )

    def fail(self, job_id: str, segment_id: int, *, error: str) -> int:
        """Count a segment failed (once, unless it is done); returns as `finish` does."""
        return int(
            self._fail(
                keys=job_keys(job_id),
                args=[segment_id, time.time(), self.ttl_seconds, error[:4000]],
            )
        )

    # --- reading ----------------------------------------------------------------------------

    def job(self, job_id: str) -> JobStatus:
        """The job's current snapshot.

        Raises:
            JobNotFoundError: no such job (never created, or expired after the TTL).
        """
        data = _text(self.client.hgetall(job_keys(job_id)[0]))
        if not data:
            raise JobNotFoundError(
                f"job {job_id!r} is not known to the result store (never created, or expired "
                f"after {self.ttl_seconds} s); `framefleet status` lists recent jobs"
            )
        return JobStatus.from_hash(data)

    def recent_jobs(self, limit: int = 20) -> list[JobStatus]:
        """The most recent jobs, newest first (expired ones are dropped from the index)."""
        ids = [str(i) for i in self.client.zrevrange(JOBS_INDEX, 0, max(0, limit - 1))]
        with self.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(job_keys(job_id)[0])
            found = pipe.execute()
        jobs, gone = [], []
        for job_id, data in zip(ids, found, strict=True):
            if data:
                jobs.append(JobStatus.from_hash(_text(data)))
            else:
                gone.append(job_id)
        if gone:
            self.client.zrem(JOBS_INDEX, *gone)
        return jobs

    def messages(
        self, job_id: str, segment_ids: Sequence[int] | None = None
    ) -> list[SegmentMessage]:
        """The messages of a job's segments (all of them, in plan order, when ids is None)."""
        key = job_keys(job_id)[1]
        if segment_ids is None:
            raw = self.client.hgetall(key)
            items = sorted((int(k), v) for k, v in raw.items())
            return [SegmentMessage.from_json(v) for _, v in items]
        if not segment_ids:
            return []
        values = self.client.hmget(key, [str(i) for i in segment_ids])
        found = [v for v in values if v is not None]
        if len(found) != len(segment_ids):
            missing = [i for i, v in zip(segment_ids, values, strict=True) if v is None]
            raise QueueError(f"job {job_id!r} has no message for segment(s) {missing[:10]}")
        return [SegmentMessage.from_json(v) for v in found]

    def segments(self, job_id: str, segment_ids: Sequence[int]) -> list[SegmentState]:
        """The state of some segments of a job."""
        keys = job_keys(job_id)
        ids = [str(i) for i in segment_ids]
        if not ids:
            return []
        with self.client.pipeline(transaction=False) as pipe:
            for key in (keys[2], keys[3], keys[4], keys[5], keys[6], keys[1]):
                pipe.hmget(key, ids)
            states, attempts, workers, pids, errors, specs = pipe.execute()
        result = []
        for n, seg in enumerate(ids):
            spec = SegmentMessage.from_json(specs[n]).spec if specs[n] else None
            result.append(
                SegmentState(
                    segment_id=int(seg),
                    state=states[n] or "unknown",
                    attempts=int(attempts[n] or 0),
                    worker=workers[n],
                    pid=int(pids[n]) if pids[n] else None,
                    error=errors[n],
                    record_id=spec.record_id if spec else "",
                    content=spec.content if spec else "",
                    video_path=spec.video_path if spec else "",
                    start_seconds=spec.start_seconds if spec else 0.0,
                    end_seconds=spec.end_seconds if spec else None,
                )
            )
        return result

    def failed_segments(self, job_id: str) -> list[SegmentState]:
        ids = sorted(int(i) for i in self.client.smembers(job_keys(job_id)[8]))
        return self.segments(job_id, ids)

    def done_ids(self, job_id: str) -> set[int]:
        return {int(i) for i in self.client.smembers(job_keys(job_id)[7])}

    def segment_states(self, job_id: str) -> dict[int, str]:
        """Every segment's state name, by id."""
        return {int(k): v for k, v in _text(self.client.hgetall(job_keys(job_id)[2])).items()}


def _text(data: Any) -> dict[str, str]:
    """A hash reply as ``str -> str`` (the client decodes replies; this tells the type checker)."""
    return {str(k): str(v) for k, v in data.items()}
