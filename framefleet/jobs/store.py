"""The job store in Redis: one job's spec, counters, per-segment state and leases.

The keys are `framefleet.jobs.keys.JobKeys`; every key of a job expires ``result_ttl_seconds``
after its last change. State changes are the atomic Lua scripts of `framefleet.jobs.scripts`.
Workers also leave a heartbeat here (`register_worker`), so a producer waiting on a job can tell
that no worker consumes its queue.

Times that are compared across hosts (lease expiries, heartbeats) are Redis's (``TIME``), never a
host's own clock. The store also remembers when its client last made a connection to Redis
(`connected_for`): a reaper that just reconnected holds back, see `framefleet.jobs.leases`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from framefleet.errors import JobNotFoundError, MessageError, QueueError
from framefleet.jobs import scripts
from framefleet.jobs.connection import RedisClient, connect
from framefleet.jobs.keys import (
    JOBS_INDEX,
    LEASES,
    WORKER_QUEUES,
    WORKERS,
    JobKeys,
    lease_member,
    parse_lease_member,
)
from framefleet.jobs.message import DEFAULT_QUEUE, SegmentMessage
from framefleet.jobs.state import Delivery, JobStatus, Reaped, SegmentState, new_job_fields

RECENT_JOBS_KEPT = 1000
_CHUNK = 2000

GAVE_UP = (
    "gave up after %d deliveries: each time the process running it died before finishing "
    "(killed, out of memory, a crash in native code, or its host lost)"
)
"""Why a segment that kills its worker every time failed (``%d``: how many deliveries)."""

NOT_PLANNED = "not planned: "
"""The start of the error of a segment whose recording could not be planned. Its message holds
only a stand-in spec (no start time, timestamps, topic or grid), so `reset_failed` (``retry``)
leaves it failed: planning it again is the extract's job."""

WORKERS_FORGOTTEN_SECONDS = 24 * 3600
"""A worker silent this long is dropped from the worker keys when another one registers."""


def not_planned(error: str | None) -> bool:
    """Whether a failed segment's error says its recording could not be planned."""
    return bool(error) and str(error).startswith(NOT_PLANNED)


def planning_error(error: str) -> str:
    """The error kept for a segment that could not be planned (marked `NOT_PLANNED`)."""
    text = error if not_planned(error) else NOT_PLANNED + error
    return text[:4000]


class JobStore:
    """Jobs, segment results, leases and worker heartbeats in Redis."""

    def __init__(self, client: RedisClient, *, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._begin = client.register_script(scripts.BEGIN)
        self._heartbeat = client.register_script(scripts.HEARTBEAT)
        self._release = client.register_script(scripts.RELEASE)
        self._finish = client.register_script(scripts.FINISH)
        self._fail = client.register_script(scripts.FAIL)
        self._reap = client.register_script(scripts.REAP)
        self._reset = client.register_script(scripts.RESET_FAILED)
        self._register = client.register_script(scripts.REGISTER_WORKER)
        self._connected_at = time.monotonic()  # a store made now: as good as a new connection
        _on_every_connection(client, self._connected)

    @classmethod
    def from_url(cls, url: str, *, ttl_seconds: int) -> JobStore:
        return cls(connect(url), ttl_seconds=ttl_seconds)

    def close(self) -> None:
        self.client.close()

    def _args(self, segment_id: int | str, *rest: Any) -> list[Any]:
        return [segment_id, self.ttl_seconds, *rest]

    def _connected(self) -> None:
        self._connected_at = time.monotonic()

    def connected_for(self) -> float:
        """Seconds since this store was made or its client last made a connection to Redis
        (its first, another for a second thread, or again after losing one)."""
        return time.monotonic() - self._connected_at

    def server_time(self) -> float:
        """Redis's clock (epoch seconds): the one every lease and heartbeat is kept in."""
        seconds, micros = self.client.time()
        return float(seconds) + float(micros) / 1e6

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
        queue: str = DEFAULT_QUEUE,
    ) -> None:
        """Record a new job and all its segments (``skipped`` ones are complete already,
        ``failed`` ones could not be planned: segment id -> why; kept marked `NOT_PLANNED`).

        Written before any message is enqueued, so a worker never sees a segment of a job
        the store does not know.
        """
        skipped_ids = set(skipped)
        failed = dict(failed or {})
        keys = JobKeys.of(job_id)
        fields = new_job_fields(
            job_id,
            mode=mode,
            queue=queue,
            out_dir=out_dir,
            spec=spec,
            segments=len(messages),
            total=sum(m.segment_id not in skipped_ids for m in messages),
            skipped=len(skipped_ids),
            failed=len(failed),
            videos=videos,
        )

        def state(segment_id: int) -> str:
            if segment_id in skipped_ids:
                return "skipped"
            return "failed" if segment_id in failed else "queued"

        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(keys.job, mapping={k: str(v) for k, v in fields.items()})
            for start in range(0, len(messages), _CHUNK):
                chunk = messages[start : start + _CHUNK]
                pipe.hset(keys.messages, mapping={m.segment_id: m.to_json() for m in chunk})
                pipe.hset(keys.state, mapping={m.segment_id: state(m.segment_id) for m in chunk})
            if failed:
                pipe.hset(keys.error, mapping={i: planning_error(e) for i, e in failed.items()})
                pipe.sadd(keys.failed, *failed)
            pipe.zadd(JOBS_INDEX, {job_id: fields["created"]})
            pipe.zremrangebyrank(JOBS_INDEX, 0, -RECENT_JOBS_KEPT - 1)
            for key in keys.own():
                pipe.expire(key, self.ttl_seconds)
            pipe.execute()

    def mark_enqueued(self, job_id: str, count: int) -> None:
        self.client.hincrby(JobKeys.of(job_id).job, "enqueued", count)

    def reset_failed(self, job_id: str) -> list[SegmentMessage]:
        """Put the failed segments of a job back to ``queued``; returns their messages.

        Segments that could not be planned (`not_planned`) stay failed: their messages are
        stand-ins, and running one would write wrongly named images.
        """
        self.job(job_id)  # raises JobNotFoundError
        ids = self._reset(keys=JobKeys.of(job_id).ordered(), args=self._args("", NOT_PLANNED))
        return self.messages(job_id, [int(i) for i in ids])

    def mark_manifest(self, job_id: str, path: str, done: int, images: int) -> None:
        """Remember that the job manifest at ``path`` holds the images of ``done`` segments."""
        self.client.hset(
            JobKeys.of(job_id).job,
            mapping={"manifest": path, "manifest_done": done, "manifest_images": images},
        )

    # --- worker side ------------------------------------------------------------------------

    def begin(
        self,
        job_id: str,
        segment_id: int,
        *,
        worker: str,
        pid: int,
        token: str,
        lease_seconds: float,
        steal_from: str = "",
    ) -> Delivery:
        """Count a delivery of a segment (at task start), mark it running, take its lease.

        Args:
            steal_from: the token of the lease's holder when it is known to be dead (its process
                is gone): its live lease is taken over instead of waited out.
        """
        member = lease_member(job_id, segment_id)
        attempt, flag = self._begin(
            keys=JobKeys.of(job_id).ordered(),
            args=self._args(segment_id, worker, pid, token, lease_seconds, member, steal_from),
        )
        return Delivery(int(attempt), int(flag))

    def lease_holder(self, job_id: str, segment_id: int) -> tuple[str, int, str] | None:
        """``(worker, pid, token)`` of the delivery holding a segment's lease, if any."""
        keys = JobKeys.of(job_id)
        with self.client.pipeline(transaction=False) as pipe:
            for key in (keys.worker, keys.pid, keys.token):
                pipe.hget(key, str(segment_id))
            worker, pid, token = pipe.execute()
        if not token or not worker or not str(pid or "").isdigit():
            return None
        return str(worker), int(pid), str(token)

    def release(self, job_id: str, segment_id: int, *, token: str) -> bool:
        """Give a segment back (it will be retried): queued again, its lease released."""
        released = self._release(
            keys=JobKeys.of(job_id).ordered(),
            args=self._args(segment_id, token, lease_member(job_id, segment_id)),
        )
        return bool(released)

    def heartbeat(self, job_id: str, segment_id: int, *, token: str, lease_seconds: float) -> bool:
        """Renew the lease of delivery ``token``; False when it no longer holds it."""
        renewed = self._heartbeat(
            keys=JobKeys.of(job_id).ordered(),
            args=self._args(segment_id, token, lease_seconds, lease_member(job_id, segment_id)),
        )
        return bool(renewed)

    def finish(
        self,
        job_id: str,
        segment_id: int,
        *,
        images: int,
        bytes: int,
        decode_seconds: float,
        token: str = "",
    ) -> int:
        """Count a segment done (once): 0 already counted, 1 counted, 2 the job completed (or
        had completed, and its manifest must be written again).

        Args:
            token: the reporting delivery's; its lease is released. A live lease of another
                delivery is left alone (that delivery stops at its next heartbeat).
        """
        return int(
            self._finish(
                keys=JobKeys.of(job_id).ordered(),
                args=self._args(
                    segment_id,
                    images,
                    bytes,
                    f"{decode_seconds:.6f}",
                    lease_member(job_id, segment_id),
                    token,
                ),
            )
        )

    def fail(self, job_id: str, segment_id: int, *, error: str, token: str = "") -> int:
        """Count a segment failed (once, unless it is done); returns as `finish` does.

        Does nothing (returns 0) while a delivery other than ``token`` holds a live lease on
        the segment: the failure is a stale delivery's, not the live one's.
        """
        return int(
            self._fail(
                keys=JobKeys.of(job_id).ordered(),
                args=self._args(segment_id, error[:4000], lease_member(job_id, segment_id), token),
            )
        )

    # --- leases -----------------------------------------------------------------------------

    def reap_expired(
        self, *, max_attempts: int, limit: int = 100, settle_seconds: float = 0.0
    ) -> list[Reaped]:
        """Take every segment whose lease expired: queued again (the caller publishes the
        returned message) or, when its attempts are used up, failed. Safe to call from any
        number of processes at once: each expired lease is reaped exactly once.

        Args:
            settle_seconds: take nothing unless `connected_for` is at least this, checked after
                a first round trip (which makes a connection lost since the last call again).
        """
        now = self.server_time()  # REAP checks each lease against Redis's clock again
        if self.connected_for() < settle_seconds:
            return []
        expired = self.client.zrangebyscore(LEASES, "-inf", now, start=0, num=limit)
        reaped = []
        for member in map(str, expired):
            parsed = parse_lease_member(member)
            if parsed is None:
                self.client.zrem(LEASES, member)
                continue
            job_id, segment_id = parsed
            result = self._reap(
                keys=JobKeys.of(job_id).ordered(),
                args=self._args(segment_id, member, max_attempts, GAVE_UP),
            )
            if int(result[0]) == 1:
                reaped.append(Reaped(job_id, segment_id, SegmentMessage.from_json(result[1])))
            elif int(result[0]) == 2:
                reaped.append(Reaped(job_id, segment_id, None, completed_job=int(result[1]) == 2))
        return reaped

    # --- workers ----------------------------------------------------------------------------

    def register_worker(self, hostname: str, queues: Sequence[str]) -> None:
        """A worker's heartbeat: it is alive and consumes ``queues``. Workers silent for
        `WORKERS_FORGOTTEN_SECONDS` are forgotten on the way."""
        self._register(
            keys=[WORKERS, WORKER_QUEUES],
            args=[hostname, ",".join(queues), WORKERS_FORGOTTEN_SECONDS],
        )

    def workers_alive(self, *, queue: str, within_seconds: float) -> list[str]:
        """Workers consuming ``queue`` that sent a heartbeat within the last seconds."""
        since = self.server_time() - within_seconds
        seen = [str(w) for w in self.client.zrangebyscore(WORKERS, since, "+inf")]
        if not seen:
            return []
        queues = self.client.hmget(WORKER_QUEUES, seen)
        return sorted(
            str(name)
            for name, consumed in zip(seen, queues, strict=True)
            if queue in str(consumed or "").split(",")
        )

    # --- reading ----------------------------------------------------------------------------

    def job(self, job_id: str) -> JobStatus:
        """The job's current snapshot.

        Raises:
            JobNotFoundError: no such job (never created, or expired after the TTL).
        """
        data = _text(self.client.hgetall(JobKeys.of(job_id).job))
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
                pipe.hgetall(JobKeys.of(job_id).job)
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
        key = JobKeys.of(job_id).messages
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
        """The state of some segments of a job, with their leases' state."""
        keys = JobKeys.of(job_id)
        ids = [str(i) for i in segment_ids]
        if not ids:
            return []
        columns = (keys.state, keys.attempts, keys.worker, keys.pid, keys.error, keys.messages)
        with self.client.pipeline(transaction=False) as pipe:
            for key in (*columns, keys.beat, keys.lease):
                pipe.hmget(key, ids)
            pipe.time()
            states, attempts, workers, pids, errors, specs, beats, leases, clock = pipe.execute()
        now = float(clock[0]) + float(clock[1]) / 1e6  # leases and beats are in Redis's time
        result = []
        for n, seg in enumerate(ids):
            spec = _spec_of(specs[n])
            running = states[n] == "running"
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
                    heartbeat_age_seconds=now - float(beats[n]) if running and beats[n] else None,
                    lease_expires_in=float(leases[n]) - now if running and leases[n] else None,
                )
            )
        return result

    def running_segments(self, job_id: str) -> list[SegmentState]:
        states = self.segment_states(job_id)
        return self.segments(job_id, sorted(i for i, s in states.items() if s == "running"))

    def failed_segments(self, job_id: str) -> list[SegmentState]:
        ids = sorted(int(i) for i in self.client.smembers(JobKeys.of(job_id).failed))
        return self.segments(job_id, ids)

    def done_ids(self, job_id: str) -> set[int]:
        return {int(i) for i in self.client.smembers(JobKeys.of(job_id).done)}

    def segment_states(self, job_id: str) -> dict[int, str]:
        """Every segment's state name, by id."""
        return {int(k): v for k, v in _text(self.client.hgetall(JobKeys.of(job_id).state)).items()}


def _on_every_connection(client: RedisClient, callback: Callable[[], None]) -> None:
    """Call ``callback`` each time ``client`` makes a connection to Redis (after its usual
    handshake), through the pool's ``redis_connect_func``: every connection the pool makes from
    now on gets it (a client is made for its store, before its first command)."""
    kwargs = getattr(client.connection_pool, "connection_kwargs", None)
    if not isinstance(kwargs, dict):
        return  # not a plain pool: the store's creation is all it knows
    previous = kwargs.get("redis_connect_func")

    def connected(connection: Any) -> None:
        if previous is not None:
            previous(connection)
        else:
            connection.on_connect()
        callback()

    kwargs["redis_connect_func"] = connected


def _spec_of(raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return SegmentMessage.from_json(raw).spec
    except MessageError:
        return None


def _text(data: Any) -> dict[str, str]:
    """A hash reply as ``str -> str`` (the client decodes replies; this tells the type checker)."""
    return {str(k): str(v) for k, v in data.items()}
